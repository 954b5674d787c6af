// The body of `benches/instructions.rs` and `benches/instructions_site2.rs`
// (included by both; `SECOND_SITE` differs). Not a module of `common`.
//
// `PROCREG_COUNT=<reader>,<case>,<n>` sets up one table, then runs `n`
// lookups of `reader` and exits. `scripts/instructions` runs it under
// callgrind with two values of `n`: the difference of the two instruction
// counts divided by the difference of `n` is the cost of one lookup, the
// setup cancelled out.
//
// * readers: `procreg_pid` (`Registry::lookup_pid`), `procreg_key`
//   (`lookup_pid_key` with a prepared `Key` per probe), `procreg_service`
//   (`Service::pid`, one service per probe), `dashmap` (`get`),
//   `hashbrown_foldhash` (`get`), `std_hashmap` (`get`, SipHash), `lmdb`
//   (heed: read transaction + get), and `walk`, the loop alone (the probe
//   walk and `black_box`, no lookup). The peers are keyed by `ns ++ name` as
//   one `String` and looked up with `&str`.
// * cases: `<hit|miss><load %>_k<key bytes>`, loads 75 and 90 (3,072 and
//   3,686 keys in 4,096 slots), keys of 16, 26 and 100 bytes: the namespace
//   `production` and a name of 6, 16 or 90 bytes (`s%05d`, `service-%08d`,
//   `service-%08d-` padded with `x`). Misses look up names of another
//   prefix. Every reader walks the same keys in the same order.
//
// With `SECOND_SITE` (the `instructions_site2` binary) every procreg reader
// is also called from a second function of this crate, so LLVM decides its
// inlining as it would in a program that looks up from more than one place.

use common::{Lmdb, Probe, ShmRegistry, VALUE, fill_registry};
use procreg::{Key, Registry};
use std::hint::black_box;

const CAPACITY: usize = 4096;
const NAMESPACE: &str = "production";

/// `n` distinct keys of `key_len` bytes (`NAMESPACE` + a name), in a
/// permuted order, laid out in one leaked buffer; `miss` keys use another
/// name prefix, so none of them is ever registered.
fn keys(key_len: usize, n: usize, miss: bool) -> Vec<Probe> {
    let name_len = key_len - NAMESPACE.len();
    let mut buf = String::with_capacity(n * key_len);
    for id in common::permutation(n as u64, 7 + key_len as u64 + miss as u64) {
        let name = match (name_len, miss) {
            (6, false) => format!("s{id:05}"),
            (6, true) => format!("m{id:05}"),
            (_, false) => format!("service-{id:08}"),
            (_, true) => format!("missing-{id:08}"),
        };
        let mut name = name;
        if name_len > 16 {
            name.push('-');
        }
        while name.len() < name_len {
            name.push('x');
        }
        assert_eq!(name.len(), name_len);
        buf.push_str(NAMESPACE);
        buf.push_str(&name);
    }
    let buf: &'static str = buf.leak();
    (0..n)
        .map(|i| {
            let full = &buf[i * key_len..(i + 1) * key_len];
            Probe {
                ns: &full[..NAMESPACE.len()],
                name: &full[NAMESPACE.len()..],
                full,
            }
        })
        .collect()
}

/// One lookup of `p` through `Registry::lookup_pid`, from a second site.
#[inline(never)]
fn second_site_pid(r: &Registry, p: Probe) -> Option<u32> {
    r.lookup_pid(p.ns, p.name).unwrap()
}

#[inline(never)]
fn second_site_key(r: &Registry, k: &Key) -> Option<u32> {
    r.lookup_pid_key(k).unwrap()
}

#[inline(never)]
fn second_site_service(s: &mut procreg::Service) -> Option<u32> {
    s.pid().unwrap()
}

fn main() {
    let Ok(spec) = std::env::var("PROCREG_COUNT") else {
        // `cargo bench` runs every bench binary: this one only counts.
        eprintln!("instructions: run through scripts/instructions (PROCREG_COUNT=<reader>,<case>,<n>)");
        return;
    };
    let mut it = spec.split(',');
    let (reader, case, n) = match (it.next(), it.next(), it.next()) {
        (Some(r), Some(c), Some(n)) => (r, c, n.parse::<usize>().expect("n")),
        _ => panic!("PROCREG_COUNT=<reader>,<case>,<n>"),
    };
    let (kind, rest) = case.split_at(if case.starts_with("hit") { 3 } else { 4 });
    let (load, klen) = rest.split_once("_k").expect("case <hit|miss><load>_k<len>");
    let load: usize = load.parse().expect("load %");
    let key_len: usize = klen.parse().expect("key bytes");
    let live = keys(key_len, CAPACITY * load / 100, false);
    let probes = if kind == "hit" {
        live.clone()
    } else {
        keys(key_len, live.len(), true)
    };
    // The same walk for every reader: one pass over the probes, again and
    // again, with a compare instead of a division per lookup.
    let mut i = 0usize;
    let mut next = || {
        let p = probes[i];
        i += 1;
        if i == probes.len() {
            i = 0;
        }
        p
    };
    let procreg = || {
        let reg = ShmRegistry::create(&format!("count-{reader}-{case}"), CAPACITY);
        fill_registry(&reg, &live);
        // Hits hit and misses miss (through `lookup`, so the readers
        // counted keep their call sites).
        for p in &probes {
            let found = reg.lookup(p.ns, p.name).unwrap();
            assert_eq!(found.is_some(), kind == "hit", "{case}: {}{}", p.ns, p.name);
        }
        reg
    };
    let full_map = || live.iter().map(|p| (p.full.to_owned(), VALUE));
    match reader {
        "procreg_pid" => {
            let reg = procreg();
            let r = black_box(&*reg);
            if SECOND_SITE {
                black_box(second_site_pid(r, probes[0]));
            }
            for _ in 0..n {
                let p = next();
                black_box(r.lookup_pid(black_box(p.ns), black_box(p.name)).unwrap());
            }
        }
        "procreg_key" => {
            let reg = procreg();
            let r = black_box(&*reg);
            let prepared: Vec<Key> = probes
                .iter()
                .map(|p| Key::new(p.ns, p.name).unwrap())
                .collect();
            if SECOND_SITE {
                black_box(second_site_key(r, &prepared[0]));
            }
            let mut i = 0usize;
            for _ in 0..n {
                let k = &prepared[i];
                i += 1;
                if i == prepared.len() {
                    i = 0;
                }
                black_box(r.lookup_pid_key(black_box(k)).unwrap());
            }
        }
        "procreg_service" => {
            let reg = procreg();
            let r = black_box(&*reg);
            let mut services: Vec<procreg::Service> = probes
                .iter()
                .map(|p| r.service(p.ns, p.name).unwrap())
                .collect();
            if SECOND_SITE {
                black_box(second_site_service(&mut services[0]));
            }
            let (mut i, len) = (0usize, services.len());
            for _ in 0..n {
                let s = black_box(&mut services[i]);
                i += 1;
                if i == len {
                    i = 0;
                }
                black_box(s.pid().unwrap());
            }
        }
        "walk" => {
            // The walk alone: what every row above includes besides its lookup.
            for _ in 0..n {
                black_box(black_box(next()).name.len());
            }
        }
        "dashmap" => {
            let m: dashmap::DashMap<String, u32> = full_map().collect();
            let m = black_box(&m);
            for _ in 0..n {
                black_box(m.get(black_box(next().full)).map(|r| *r));
            }
        }
        "hashbrown_foldhash" => {
            let m: hashbrown::HashMap<String, u32, foldhash::fast::RandomState> =
                full_map().collect();
            let m = black_box(&m);
            for _ in 0..n {
                black_box(m.get(black_box(next().full)).copied());
            }
        }
        "std_hashmap" => {
            let m: std::collections::HashMap<String, u32> = full_map().collect();
            let m = black_box(&m);
            for _ in 0..n {
                black_box(m.get(black_box(next().full)).copied());
            }
        }
        "lmdb" => {
            let db = Lmdb::create(&format!("count-{case}"), &live);
            let db = black_box(&db);
            for _ in 0..n {
                black_box(db.get(black_box(next().full)));
            }
        }
        _ => panic!("unknown reader {reader}"),
    }
}
