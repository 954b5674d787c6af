//! Shared pieces of `benches/peers.rs` and `benches/scaling.rs`: key sets of a
//! given byte length in one contiguous buffer, uniform and Zipf(0.99) probe
//! sequences, `shm:` segments and LMDB environments removed by drop guards, a
//! small shared-memory control block that drives a child process (the bench
//! binary re-executed), quick mode, and the `BENCH-TABLE` lines that
//! `scripts/bench-report` collects.
//!
//! Each bench includes this file with `mod common;`; not every bench uses
//! every item.
#![allow(dead_code)]

use criterion::Criterion;
use procreg::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The namespace of every key: 8 bytes.
pub const NS: &str = "bench-ns";
/// Metadata of every registration.
pub const META: &[u8] = b"port=5432";
/// Pid-like value the peers store.
pub const VALUE: u32 = 4242;

/// `PROCREG_BENCH_QUICK=1`: fewer configurations, shorter measurements.
pub fn quick() -> bool {
    std::env::var("PROCREG_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Criterion settings: short in quick mode.
pub fn config() -> Criterion {
    remove_stale_segments();
    let c = Criterion::default();
    if quick() {
        c.sample_size(10)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(400))
            .without_plots()
    } else {
        c.sample_size(40)
            .warm_up_time(Duration::from_millis(800))
            .measurement_time(Duration::from_secs(2))
            .without_plots()
    }
}

/// Prints one machine-readable result line for `scripts/bench-report`
/// (`BENCH-TABLE {"table": ..., ...}`), alongside criterion's output.
pub fn table_line(table: &str, fields: &[(&str, serde_json::Value)]) {
    let mut m = serde_json::Map::new();
    m.insert("table".into(), table.into());
    for (k, v) in fields {
        m.insert((*k).into(), v.clone());
    }
    println!("BENCH-TABLE {}", serde_json::Value::Object(m));
}

// ---- keys -------------------------------------------------------------------

/// One probe: views into a contiguous key buffer.
#[derive(Clone, Copy)]
pub struct Probe {
    pub ns: &'static str,
    pub name: &'static str,
    /// `ns ++ name`: the key of the peers.
    pub full: &'static str,
}

/// `NS ++ <prefix><id, zero-padded>`, `len` bytes in all (16 ≤ len ≤ 136).
pub fn key_string(len: usize, prefix: char, id: u64) -> String {
    let digits = len - NS.len() - 1;
    let s = format!("{NS}{prefix}{id:0digits$}");
    assert_eq!(s.len(), len, "id {id} does not fit a {len}-byte key");
    s
}

/// SplitMix64: a tiny deterministic generator.
pub struct SplitMix(pub u64);
impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `0..n` in a pseudo-random order (Fisher–Yates, fixed seed).
pub fn permutation(n: u64, seed: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = (0..n).collect();
    let mut rng = SplitMix(seed);
    for i in (1..ids.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        ids.swap(i, j);
    }
    ids
}

/// Zipf(s) over ranks `0..n`: rank k is drawn with weight `1 / (k+1)^s`
/// (inverse CDF by binary search over the precomputed cumulative weights).
pub struct Zipf {
    cdf: Vec<f64>,
}
impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for k in 0..n {
            acc += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }
    pub fn sample(&self, rng: &mut SplitMix) -> usize {
        let u = rng.next_f64();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// How probe keys are chosen.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dist {
    /// Every key once per pass, in a pseudo-random order.
    Uniform,
    /// Zipf(0.99) over the keys (hot ranks scattered over the key ids).
    Zipf,
}
impl Dist {
    pub fn label(self) -> &'static str {
        match self {
            Dist::Uniform => "uniform",
            Dist::Zipf => "zipf",
        }
    }
}

/// Lays the keys `ids` (of `prefix`, `len` bytes each) out in one contiguous
/// buffer, in the order given (leaked: it lives as long as the process).
pub fn probes_of(len: usize, prefix: char, ids: &[u64]) -> Vec<Probe> {
    let mut buf = String::with_capacity(ids.len() * len);
    for &id in ids {
        buf.push_str(&key_string(len, prefix, id));
    }
    let buf: &'static str = buf.leak();
    (0..ids.len())
        .map(|i| {
            let full = &buf[i * len..(i + 1) * len];
            Probe {
                ns: &full[..NS.len()],
                name: &full[NS.len()..],
                full,
            }
        })
        .collect()
}

/// The keys `prefix` + `0..n` in a permutation of `seed`.
pub fn probes(len: usize, prefix: char, n: u64, seed: u64) -> Vec<Probe> {
    probes_of(len, prefix, &permutation(n, seed))
}

/// A probe sequence over keys `prefix` + `0..n`: uniform = one permuted
/// pass; Zipf = `max(n, 65536)` draws, rank r mapped to a permuted key id.
pub fn probe_sequence(len: usize, prefix: char, n: u64, dist: Dist, seed: u64) -> Vec<Probe> {
    match dist {
        Dist::Uniform => probes(len, prefix, n, seed),
        Dist::Zipf => {
            let ids = permutation(n, seed ^ 0x5A5A);
            let z = Zipf::new(n as usize, 0.99);
            let mut rng = SplitMix(seed);
            let draws = (n as usize).max(65536);
            let seq: Vec<u64> = (0..draws).map(|_| ids[z.sample(&mut rng)]).collect();
            probes_of(len, prefix, &seq)
        }
    }
}

/// Cyclic walk over a probe array.
pub struct Cursor<'a> {
    probes: &'a [Probe],
    i: usize,
}
impl<'a> Cursor<'a> {
    pub fn new(probes: &'a [Probe], start: usize) -> Self {
        Cursor {
            probes,
            i: start % probes.len(),
        }
    }
    #[inline(always)]
    pub fn next_probe(&mut self) -> Probe {
        let p = self.probes[self.i];
        self.i += 1;
        if self.i == self.probes.len() {
            self.i = 0;
        }
        p
    }
}

// ---- procreg segments -------------------------------------------------------

/// A registry on a fresh `shm:bench-<pid>-<tag>` segment, removed on drop
/// (also while a panic unwinds).
pub struct ShmRegistry {
    pub reg: Registry,
}
impl ShmRegistry {
    pub fn create(tag: &str, capacity: usize) -> Self {
        let url = format!("shm:bench-{}-{tag}", std::process::id());
        let _ = Registry::destroy(&url);
        let reg = Registry::builder()
            .capacity(capacity)
            .create(&url)
            .unwrap_or_else(|e| panic!("create {url}: {e}"));
        ShmRegistry { reg }
    }
}
impl std::ops::Deref for ShmRegistry {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        &self.reg
    }
}
impl Drop for ShmRegistry {
    fn drop(&mut self) {
        if let Err(e) = Registry::destroy(self.reg.url()) {
            eprintln!("bench: could not remove {}: {e}", self.reg.url());
        }
    }
}

/// Removes `procreg.bench-<pid>-*` segments, LMDB directories and control
/// files of earlier runs whose process is gone.
pub fn remove_stale_segments() {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let (rest, kind) = if let Some(r) = name.strip_prefix("procreg.bench-") {
            (r, 0)
        } else if let Some(r) = name.strip_prefix("procreg-benchlmdb-") {
            (r, 1)
        } else if let Some(r) = name.strip_prefix("procreg-benchctl-") {
            (r, 2)
        } else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match kind {
            0 => drop(Registry::destroy(&format!("shm:bench-{rest}"))),
            1 => drop(std::fs::remove_dir_all(entry.path())),
            _ => drop(std::fs::remove_file(entry.path())),
        }
    }
}

/// Registers every key for the calling process.
pub fn fill_registry(reg: &Registry, keys: &[Probe]) {
    for p in keys {
        reg.register_self(p.ns, p.name, META)
            .unwrap_or_else(|e| panic!("register {}: {e}", p.full));
    }
}

// ---- LMDB -------------------------------------------------------------------

/// An LMDB environment (heed) in `/dev/shm/procreg-benchlmdb-<pid>-<tag>`
/// (tmpfs, like procreg's segments), closed and removed on drop.
pub struct Lmdb {
    /// Boxed and leaked so that `db` (which borrows the environment) can be
    /// kept next to it; `Drop` takes the box back.
    env: &'static heed::Env,
    db: heed::Database<'static, heed::types::Bytes, heed::types::Bytes>,
    dir: std::path::PathBuf,
}
impl Lmdb {
    pub fn create(tag: &str, keys: &[Probe]) -> Lmdb {
        let dir = std::path::PathBuf::from(format!(
            "/dev/shm/procreg-benchlmdb-{}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the LMDB directory");
        // SAFETY: the directory is new and private to this process; nothing
        // else opens or truncates this environment while it is mapped.
        let env = unsafe {
            heed::EnvOpenOptions::new()
                .map_size(1 << 30)
                .max_dbs(1)
                .open(&dir)
        }
        .expect("open LMDB");
        let env: &'static heed::Env = Box::leak(Box::new(env));
        let wtxn = env.write_txn().expect("LMDB write txn");
        let db = env
            .create_databases_and_commit(wtxn, |o, wtxn| {
                o.database_options()
                    .types::<heed::types::Bytes, heed::types::Bytes>()
                    .create(wtxn)
                    .map(heed::CommitOrAbort::<_, ()>::Commit)
            })
            .expect("LMDB database")
            .unwrap_commit();
        let mut wtxn = env.write_txn().expect("LMDB write txn");
        for p in keys {
            db.put(&mut wtxn, p.full.as_bytes(), &VALUE.to_ne_bytes())
                .expect("LMDB put");
        }
        wtxn.commit().expect("LMDB commit");
        Lmdb { env, db, dir }
    }
    /// One read transaction + get: what an LMDB reader pays per lookup.
    #[inline]
    pub fn get(&self, key: &str) -> Option<u32> {
        let rtxn = self.env.read_txn().expect("LMDB read txn");
        self.db
            .get(&rtxn, key.as_bytes())
            .expect("LMDB get")
            .map(|v| u32::from_ne_bytes(v.try_into().expect("4-byte value")))
    }
}
impl Drop for Lmdb {
    fn drop(&mut self) {
        // SAFETY: `env` came from `Box::leak` in `create` and is reclaimed
        // only here; `db` (the only other borrow) is dropped with `self` and
        // no read transaction outlives a `get` call.
        drop(unsafe { Box::from_raw(self.env as *const heed::Env as *mut heed::Env) });
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- child processes ----------------------------------------------------------

/// Words of the control block.
pub mod ctl {
    /// Command generation: the parent bumps it to issue `CMD` with `ITERS`.
    pub const GEN: usize = 0;
    pub const CMD: usize = 1;
    pub const ITERS: usize = 2;
    /// The child sets it to the generation it started.
    pub const ACK: usize = 3;
    /// The child sets it to the generation it finished.
    pub const DONE: usize = 4;
    /// The child's elapsed nanoseconds for the last finished command.
    pub const ELAPSED: usize = 5;
    /// Set by the parent to end a `LOOP` command.
    pub const STOP: usize = 6;
    /// Operations the child did in the last command.
    pub const OPS: usize = 7;
    /// Successful operations (e.g. registrations won).
    pub const WINS: usize = 8;
    pub const WORDS: usize = 16;

    /// Run `ITERS` operations, timed.
    pub const RUN: u64 = 1;
    /// Run operations until `STOP`.
    pub const LOOP: u64 = 2;
    /// Exit.
    pub const EXIT: u64 = 3;
}

/// A page of shared memory (`/dev/shm/procreg-benchctl-<pid>-<tag>`) holding
/// [`ctl`] words, mapped by the parent and by its child.
pub struct Ctrl {
    base: *const AtomicU64,
    path: std::path::PathBuf,
    owner: bool,
}
// SAFETY: the mapping is only accessed through `AtomicU64`s, which are Sync.
unsafe impl Sync for Ctrl {}
// SAFETY: as above; the pointer stays valid until drop, wherever it moves.
unsafe impl Send for Ctrl {}

impl Ctrl {
    pub fn create(tag: &str) -> Ctrl {
        let path = std::path::PathBuf::from(format!(
            "/dev/shm/procreg-benchctl-{}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        Self::map(path, true)
    }
    pub fn open(path: &str) -> Ctrl {
        Self::map(path.into(), false)
    }
    fn map(path: std::path::PathBuf, owner: bool) -> Ctrl {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(owner)
            .truncate(false)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        if owner {
            f.set_len(4096).expect("size the control page");
        }
        // SAFETY: a fresh shared mapping of a 4096-byte file we hold open;
        // the kernel picks the address; the result is checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert!(p != libc::MAP_FAILED, "mmap the control page");
        Ctrl {
            base: p.cast::<AtomicU64>(),
            path,
            owner,
        }
    }
    pub fn path(&self) -> String {
        self.path.display().to_string()
    }
    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < ctl::WORDS);
        // SAFETY: `base` maps 4096 bytes (page-aligned, so 8-aligned) for the
        // lifetime of `self`, i < 16 keeps the access inside it, and every
        // access to these bytes in either process goes through AtomicU64.
        unsafe { &*self.base.add(i) }
    }
    pub fn load(&self, i: usize) -> u64 {
        self.word(i).load(Ordering::Acquire)
    }
    pub fn store(&self, i: usize, v: u64) {
        self.word(i).store(v, Ordering::Release)
    }
    /// Issues a command; returns its generation.
    pub fn issue(&self, cmd: u64, iters: u64) -> u64 {
        self.store(ctl::CMD, cmd);
        self.store(ctl::ITERS, iters);
        self.store(ctl::STOP, 0);
        self.word(ctl::GEN).fetch_add(1, Ordering::AcqRel) + 1
    }
    /// Waits until word `i` reaches `v`: spins briefly, then sleeps in 20 µs
    /// steps (so that a parent that finished its timed loop leaves the CPU to
    /// a child still timing its own); panics after `timeout`.
    pub fn wait_until(&self, i: usize, v: u64, timeout: Duration) {
        let t = std::time::Instant::now();
        let mut spins = 0u32;
        while self.load(i) < v {
            spins += 1;
            if spins < 1000 {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(Duration::from_micros(20));
                if t.elapsed() > timeout {
                    panic!("bench child did not reach word {i} = {v} within {timeout:?}");
                }
            }
        }
    }
    /// Child side: waits for a generation after `seen` (sleeping briefly
    /// between checks while idle); returns it.
    pub fn next_command(&self, seen: u64) -> u64 {
        let mut spins = 0u32;
        loop {
            let g = self.load(ctl::GEN);
            if g > seen {
                return g;
            }
            spins += 1;
            if spins < 2000 {
                std::hint::spin_loop();
            } else if spins < 4000 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
}
impl Drop for Ctrl {
    fn drop(&mut self) {
        // SAFETY: unmaps the page mapped in `map`; no reference from `word`
        // outlives `self`.
        unsafe { libc::munmap(self.base as *mut libc::c_void, 4096) };
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A child process: the bench binary re-executed with `PROCREG_BENCH_CHILD`
/// set; killed and reaped on drop.
pub struct Child {
    pub ctrl: Ctrl,
    child: std::process::Child,
}
impl Child {
    /// Starts `role` with the given environment; returns once the child has
    /// attached and said it is ready (`WINS` = `u64::MAX`).
    pub fn spawn(role: &str, tag: &str, env: &[(&str, String)]) -> Child {
        let ctrl = Ctrl::create(tag);
        let mut cmd = std::process::Command::new(std::env::current_exe().expect("current exe"));
        cmd.env("PROCREG_BENCH_CHILD", role)
            .env("PROCREG_BENCH_CTRL", ctrl.path())
            .stdout(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn the bench child");
        // The child sets WINS = u64::MAX once it is attached and ready.
        ctrl.wait_until(ctl::WINS, u64::MAX, Duration::from_secs(60));
        Child { ctrl, child }
    }
    /// Runs `iters` operations in the child; returns its generation once it
    /// has started them.
    pub fn start_run(&self, iters: u64) -> u64 {
        let g = self.ctrl.issue(ctl::RUN, iters);
        self.ctrl.wait_until(ctl::ACK, g, Duration::from_secs(60));
        g
    }
    /// Waits for generation `g` to finish; the child's elapsed time.
    pub fn finish(&self, g: u64) -> Duration {
        self.ctrl.wait_until(ctl::DONE, g, Duration::from_secs(120));
        Duration::from_nanos(self.ctrl.load(ctl::ELAPSED))
    }
    /// Starts an open-ended loop in the child.
    pub fn start_loop(&self) -> u64 {
        let g = self.ctrl.issue(ctl::LOOP, 0);
        self.ctrl.wait_until(ctl::ACK, g, Duration::from_secs(60));
        g
    }
    /// Ends the loop of generation `g`; (ops, wins, elapsed) of the child.
    pub fn stop_loop(&self, g: u64) -> (u64, u64, Duration) {
        self.ctrl.store(ctl::STOP, 1);
        self.ctrl.wait_until(ctl::DONE, g, Duration::from_secs(60));
        (
            self.ctrl.load(ctl::OPS),
            self.ctrl.load(ctl::WINS),
            Duration::from_nanos(self.ctrl.load(ctl::ELAPSED)),
        )
    }
}
impl Child {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Sends SIGKILL and returns when it was sent; does not reap the child
    /// (it stays a zombie until [`reap`](Self::reap) or drop).
    pub fn kill_now(&mut self) -> std::time::Instant {
        self.child.kill().expect("SIGKILL the bench child");
        std::time::Instant::now()
    }
    /// Waits for the (killed) child to be gone and reaps it.
    pub fn reap(&mut self) {
        let _ = self.child.wait();
    }
}
impl Drop for Child {
    fn drop(&mut self) {
        self.ctrl.issue(ctl::EXIT, 0);
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Child side of the protocol: maps the control block, says ready, and
/// serves commands until `EXIT`. `run(iters)` does `iters` operations and
/// returns (ops, wins); `looped(stop)` runs until `stop()` and returns
/// (ops, wins).
pub fn serve_child(
    mut run: impl FnMut(u64) -> (u64, u64),
    mut looped: impl FnMut(&dyn Fn() -> bool) -> (u64, u64),
) {
    let path = std::env::var("PROCREG_BENCH_CTRL").expect("PROCREG_BENCH_CTRL");
    let ctrl = Ctrl::open(&path);
    ctrl.store(ctl::WINS, u64::MAX);
    let mut seen = ctrl.load(ctl::GEN);
    loop {
        let g = ctrl.next_command(seen);
        seen = g;
        let cmd = ctrl.load(ctl::CMD);
        let iters = ctrl.load(ctl::ITERS);
        ctrl.store(ctl::ACK, g);
        let t = std::time::Instant::now();
        let (ops, wins) = match cmd {
            ctl::RUN => run(iters),
            ctl::LOOP => {
                let stop = || ctrl.load(ctl::STOP) != 0;
                looped(&stop)
            }
            _ => return,
        };
        ctrl.store(ctl::ELAPSED, t.elapsed().as_nanos() as u64);
        ctrl.store(ctl::OPS, ops);
        ctrl.store(ctl::WINS, wins);
        ctrl.store(ctl::DONE, g);
    }
}

// ---- measurements -------------------------------------------------------------

/// Resident and shared bytes of this process (`/proc/self/statm`).
pub fn statm() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let f: Vec<u64> = s
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    (f[1] * page, f[2] * page)
}

/// The `p`-quantile of sorted values.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Median of values (sorts them).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile(v, 0.5)
}
