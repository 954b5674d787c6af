//! The two fuzz targets of procreg, as plain functions of a byte string, so
//! that cargo-fuzz (fuzz_targets/) and proptest (tests/reliability_fuzz.rs,
//! which includes this file with `#[path]`) drive the very same code.
//!
//! * [`segment_bytes`]: a segment file made of (or corrupted by) arbitrary
//!   bytes is opened and every read operation (plus sweep and a few bounded
//!   writes) runs on it. Nothing may panic, hang or read out of bounds.
//! * [`api_model`]: arbitrary call sequences with arbitrary strings and
//!   metadata on a `mem:` registry, each result checked against a `HashMap`.

use procreg::{Error, Registry};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// Reads the input as a stream of small numbers (zeros once exhausted).
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn empty(&self) -> bool {
        self.0.is_empty()
    }
    /// A short string over an alphabet with multi-byte and NUL characters,
    /// so that empty, over-long and NUL-holding keys all occur.
    fn text(&mut self) -> String {
        const ALPHABET: [&str; 6] = ["a", "b", "k", "\u{e9}", "\0", "z"];
        let n = self.byte() % 8;
        (0..n)
            .map(|_| ALPHABET[self.byte() as usize % ALPHABET.len()])
            .collect()
    }
    fn bytes(&mut self) -> Vec<u8> {
        let n = self.byte() % 12;
        (0..n).map(|_| self.byte()).collect()
    }
}

// ---- (a) hostile segment bytes ---------------------------------------------------

/// Limits of the template segment: tiny, so the input covers its whole table.
const T_CAPACITY: usize = 16;

/// A pristine segment (bytes) with three entries, and its table offset.
fn template() -> &'static (Vec<u8>, usize) {
    static T: OnceLock<(Vec<u8>, usize)> = OnceLock::new();
    T.get_or_init(|| {
        let path = scratch("template");
        let url = format!("file:{}", path.display());
        let _ = std::fs::remove_file(&path);
        let reg = Registry::builder()
            .capacity(T_CAPACITY)
            .max_namespace_len(8)
            .max_name_len(8)
            .max_metadata_len(16)
            .max_writers(2)
            .create(&url)
            .expect("create the template segment");
        for (ns, name, m) in [
            ("a", "k0", &b"zero"[..]),
            ("a", "k1", b""),
            ("b", "k2", b"two"),
        ] {
            reg.register_self(ns, name, m).unwrap();
        }
        drop(reg);
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let table_offset = u64::from_le_bytes(bytes[56..64].try_into().unwrap()) as usize;
        (bytes, table_offset)
    })
}

/// A per-process, per-thread scratch file in /dev/shm (or the temp dir).
fn scratch(what: &str) -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let tid = format!("{:?}", std::thread::current().id());
    let tid: String = tid.chars().filter(char::is_ascii_digit).collect();
    dir.join(format!(
        "procreg-fuzz-{what}-{}-{tid}.seg",
        std::process::id()
    ))
}

/// Fuzz target (a): opens a segment made of arbitrary bytes (mode 0), or the
/// template with its owner records and table overwritten (1), sparsely
/// corrupted (2) or overwritten from the owner records on (3), then runs
/// every read operation, sweep and a few bounded writes.
pub fn segment_bytes(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (tpl, table_offset) = template();
    let bytes = match mode % 4 {
        0 => {
            // An empty file, or one with procreg's magic but no "initialised"
            // word, looks like a segment being created: openers wait (2 s,
            // bounded) for its creator. Correct, but it would stall the
            // fuzzer, so such inputs are made "initialised" here.
            let mut b = rest.to_vec();
            if b.is_empty() {
                return;
            }
            if b.len() >= 128 && b.starts_with(b"PROCREG") {
                b[120..128].copy_from_slice(&0x5245_4144_595f_4f4bu64.to_le_bytes());
            }
            b
        }
        1 => {
            let mut b = tpl.clone();
            let n = rest.len().min(b.len() - table_offset);
            b[*table_offset..table_offset + n].copy_from_slice(&rest[..n]);
            b
        }
        2 => {
            // (offset:u16 little-endian, xor value) triples anywhere past the header.
            let mut b = tpl.clone();
            for t in rest.chunks_exact(3) {
                let off = 4096 + u16::from_le_bytes([t[0], t[1]]) as usize % (b.len() - 4096);
                b[off] ^= t[2];
            }
            b
        }
        _ => {
            let mut b = tpl.clone();
            let n = rest.len().min(b.len() - 4096);
            b[4096..4096 + n].copy_from_slice(&rest[..n]);
            b
        }
    };
    let path = scratch("seg");
    let _ = std::fs::remove_file(&path);
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, &bytes).unwrap();
    }
    let url = format!("file:{}", path.display());
    let opened = Registry::builder()
        .lock_timeout(Duration::from_millis(1))
        .open(&url);
    if !mode.is_multiple_of(4) {
        // Only the table (or owner records) changed: the header still validates.
        assert!(opened.is_ok(), "template with a hostile table: {opened:?}");
    }
    if let Ok(reg) = opened {
        exercise(&reg, rest);
    }
    let _ = std::fs::remove_file(&path);
}

/// Every read operation on a possibly hostile registry; the results must
/// respect the registry's limits. Then sweep and bounded writes.
fn exercise(reg: &Registry, data: &[u8]) {
    let lim = reg.limits();
    let mut keys: Vec<(String, String)> = [("a", "k0"), ("a", "k1"), ("b", "k2"), ("a", "zz")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let mut inp = Input(data);
    for _ in 0..4 {
        keys.push((inp.text(), inp.text()));
    }
    let check = |e: &procreg::Entry| {
        assert!(e.metadata.len() <= lim.max_metadata_len, "{e:?}");
    };
    let read_all = |reg: &Registry| {
        for (ns, name) in &keys {
            if let Ok(Some(e)) = reg.lookup(ns, name) {
                check(&e);
            }
            let _ = reg.lookup_pid(ns, name);
            if let Ok(Some(e)) = reg.lookup_checked(ns, name) {
                check(&e);
            }
        }
        if let Ok(all) = reg.list_all() {
            assert!(all.len() <= lim.capacity.unwrap_or(usize::MAX));
            all.iter().for_each(check);
        }
        if let Ok(v) = reg.list("a") {
            v.iter().for_each(check);
        }
        let _ = reg.namespaces();
        let s = reg.stats().unwrap();
        let t = s.table().unwrap();
        assert!(s.live + t.tombstones + t.claimed <= t.capacity, "{s:?}");
        let _ = reg.health_check();
    };
    read_all(reg);
    let _ = reg.sweep();
    let _ = reg.register_self("a", "new", b"fuzz");
    let _ = reg.update_metadata("a", "k0", b"changed");
    let _ = reg.unregister("b", "k2");
    read_all(reg);
}

// ---- (b) API sequences against a model ----------------------------------------------

const M_CAPACITY: usize = 16;
const M_NS: usize = 4;
const M_NAME: usize = 6;
const M_META: usize = 8;

#[derive(Debug, Clone)]
struct ModelEntry {
    pid: u32,
    meta: Vec<u8>,
    version: u64,
}

fn valid_part(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.contains('\0')
}

fn valid_key(ns: &str, name: &str) -> bool {
    valid_part(ns, M_NS) && valid_part(name, M_NAME)
}

fn is_invalid_key<T: std::fmt::Debug>(r: &procreg::Result<T>) -> bool {
    matches!(r, Err(Error::InvalidKey(_)))
}

/// For a write of `meta` under `(ns, name)`: true when the input is bad
/// (invalid key, or metadata over the limit), after checking that `r` is
/// the error it must be.
fn refused_write<T: std::fmt::Debug>(
    r: &procreg::Result<T>,
    ns: &str,
    name: &str,
    meta: &[u8],
    ctx: &str,
) -> bool {
    if !valid_key(ns, name) {
        assert!(is_invalid_key(r), "{ctx}: {r:?}");
        true
    } else if meta.len() > M_META {
        assert!(
            matches!(r, Err(Error::MetadataTooLarge { .. })),
            "{ctx}: {r:?}"
        );
        true
    } else {
        false
    }
}

/// Fuzz target (b): a sequence of API calls decoded from `data`, each result
/// compared with a `HashMap` model of what the registry must hold.
pub fn api_model(data: &[u8]) {
    let reg = Registry::builder()
        .capacity(M_CAPACITY)
        .max_namespace_len(M_NS)
        .max_name_len(M_NAME)
        .max_metadata_len(M_META)
        .create("mem:")
        .unwrap();
    let me = std::process::id();
    // Another live process (Miri cannot call getppid: there it is this one).
    let other = if cfg!(miri) {
        me
    } else {
        std::os::unix::process::parent_id()
    };
    let mut model: HashMap<(String, String), ModelEntry> = HashMap::new();
    let mut inp = Input(data);
    let mut step = 0;
    while !inp.empty() && step < 400 {
        step += 1;
        let op = inp.byte() % 12;
        let (ns, name) = (inp.text(), inp.text());
        let key = (ns.clone(), name.clone());
        let ctx = format!("step {step} op {op} key {ns:?}/{name:?}");
        match op {
            0 | 1 => {
                let meta = inp.bytes();
                let pid = if op == 0 { me } else { other };
                let r = if op == 0 {
                    reg.register_self(&ns, &name, &meta)
                } else {
                    reg.register(&ns, &name, pid, &meta)
                };
                if refused_write(&r, &ns, &name, &meta, &ctx) {
                    // Bad input, refused as it must be: nothing changed.
                } else if let Some(e) = model.get(&key) {
                    assert!(
                        matches!(&r, Err(Error::AlreadyExists { pid, .. }) if *pid == e.pid),
                        "{ctx}: {r:?}"
                    );
                } else if model.len() == M_CAPACITY {
                    assert!(matches!(r, Err(Error::Full { .. })), "{ctx}: {r:?}");
                } else {
                    let version = r.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    model.insert(key, ModelEntry { pid, meta, version });
                }
            }
            2..=4 => {
                // (namespace, name, pid, metadata, version); lookup_pid
                // answers only the pid, the rest is taken from the model.
                let parts = |e: procreg::Entry| (e.namespace, e.name, e.pid, e.metadata, e.version);
                let r = match op {
                    2 => reg.lookup(&ns, &name).map(|e| e.map(parts)),
                    3 => reg.lookup_checked(&ns, &name).map(|e| e.map(parts)),
                    _ => reg.lookup_pid(&ns, &name).map(|p| {
                        p.map(|pid| {
                            let m = model.get(&key);
                            (
                                ns.clone(),
                                name.clone(),
                                pid,
                                m.map(|e| e.meta.clone()).unwrap_or_default(),
                                m.map_or(0, |e| e.version),
                            )
                        })
                    }),
                };
                if !valid_key(&ns, &name) {
                    assert!(is_invalid_key(&r), "{ctx}: {r:?}");
                    continue;
                }
                let got = r.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                match (got, model.get(&key)) {
                    (None, None) => {}
                    (Some(g), Some(m)) => {
                        assert_eq!(
                            (&g.0, &g.1, g.2, &g.3, g.4),
                            (&ns, &name, m.pid, &m.meta, m.version),
                            "{ctx}"
                        );
                    }
                    (g, m) => panic!("{ctx}: registry {g:?}, model {m:?}"),
                }
            }
            5 | 6 => {
                let pid = if inp.byte().is_multiple_of(2) {
                    me
                } else {
                    other
                };
                let r = if op == 5 {
                    reg.unregister(&ns, &name)
                } else {
                    reg.unregister_if_owner(&ns, &name, pid)
                };
                if !valid_key(&ns, &name) {
                    assert!(is_invalid_key(&r), "{ctx}: {r:?}");
                    continue;
                }
                let want = match model.get(&key) {
                    Some(e) => op == 5 || e.pid == pid,
                    None => false,
                };
                assert_eq!(r.unwrap_or_else(|e| panic!("{ctx}: {e}")), want, "{ctx}");
                if want {
                    model.remove(&key);
                }
            }
            7 => {
                let meta = inp.bytes();
                let r = reg.update_metadata(&ns, &name, &meta);
                if refused_write(&r, &ns, &name, &meta, &ctx) {
                    // Bad input, refused as it must be: nothing changed.
                } else if let Some(e) = model.get_mut(&key) {
                    let v = r.unwrap_or_else(|err| panic!("{ctx}: {err}"));
                    assert_ne!(v, e.version, "{ctx}: an update changes the version");
                    e.version = v;
                    e.meta = meta;
                } else {
                    assert!(matches!(r, Err(Error::NotFound { .. })), "{ctx}: {r:?}");
                }
            }
            8 => {
                let r = reg.list(&ns);
                if !valid_part(&ns, M_NS) {
                    assert!(is_invalid_key(&r), "{ctx}: {r:?}");
                    continue;
                }
                let got: Vec<(String, u32, Vec<u8>)> = r
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"))
                    .into_iter()
                    .map(|e| {
                        assert_eq!(e.namespace, ns, "{ctx}");
                        (e.name, e.pid, e.metadata)
                    })
                    .collect();
                let mut want: Vec<(String, u32, Vec<u8>)> = model
                    .iter()
                    .filter(|((n, _), _)| *n == ns)
                    .map(|((_, name), e)| (name.clone(), e.pid, e.meta.clone()))
                    .collect();
                want.sort();
                assert_eq!(got, want, "{ctx}");
            }
            9 => {
                let r = reg.clear_namespace(&ns);
                if !valid_part(&ns, M_NS) {
                    assert!(is_invalid_key(&r), "{ctx}: {r:?}");
                    continue;
                }
                let before = model.len();
                model.retain(|(n, _), _| *n != ns);
                assert_eq!(
                    r.unwrap_or_else(|e| panic!("{ctx}: {e}")),
                    before - model.len(),
                    "{ctx}"
                );
            }
            10 => {
                let all = reg.list_all().unwrap();
                assert_eq!(all.len(), model.len(), "{ctx}");
                let s = reg.stats().unwrap();
                let claimed = s.table().unwrap().claimed;
                assert_eq!((s.live, claimed), (model.len(), 0), "{ctx}: {s:?}");
            }
            _ => {
                // Every owner (this process, its parent) is alive: nothing to reclaim.
                assert_eq!(reg.sweep().unwrap(), 0, "{ctx}");
            }
        }
    }
    assert_eq!(reg.stats().unwrap().live, model.len());
}
