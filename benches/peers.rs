//! Lookups against the peers users would pick instead, in one run (issue 7):
//!
//! * `lookup_{hit,miss}_c<capacity>_l<load%>_k<key bytes>_<dist>`: one
//!   criterion group per configuration, with `procreg_shm/lookup_pid`,
//!   `dashmap/get`, `papaya/pin_get` (a pin per lookup), `std_rwlock_hashmap/get`
//!   (read lock + get) and `lmdb/read_txn+get` (heed, environment on tmpfs)
//!   over the same keys. Key bytes = namespace (8) + name; the peers are keyed
//!   by the same bytes as one `String` and looked up with `&str`.
//!   Loads 50/75/90/95%, keys 16/32/100 bytes, capacity 4096 and 65536,
//!   uniform (a permutation of the live keys) and Zipf(0.99) (a pre-drawn
//!   sequence) key choice. Misses look up keys of another prefix.
//! * memory: segment bytes per slot and per live entry, and the RSS a process
//!   adds by attaching (a child process: open, then `lookup_pid` of every key,
//!   then `list_all`), printed as `BENCH-TABLE` lines (no timing).
//!
//! Same method as `benches/lookup.rs`: probe keys in one contiguous array,
//! walked cyclically; table, key and result through `black_box`; tables
//! filled before the timed part; segments removed by drop guards.
//!
//! `PROCREG_BENCH_QUICK=1` measures a subset (capacity 4096: 32-byte keys at
//! every load, 16/100-byte keys at 75%, Zipf at 75%) with short
//! measurements; `scripts/bench-report` uses it.
//!
//! Run: `cargo bench --bench peers` (full mode: 960 benchmarks, about 50 minutes on 2
//! cores; the setup of every configuration takes about 15 s in all).

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

mod common;

use common::*;
use criterion::{Criterion, criterion_group};
use dashmap::DashMap;
use procreg::Registry;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::RwLock;

/// One lookup configuration.
#[derive(Clone, Copy)]
struct Conf {
    capacity: usize,
    load_pct: usize,
    key_len: usize,
    dist: Dist,
}

fn configurations() -> Vec<Conf> {
    let mut v = Vec::new();
    let c = |capacity, load_pct, key_len, dist| Conf {
        capacity,
        load_pct,
        key_len,
        dist,
    };
    if quick() {
        for load in [50, 75, 90, 95] {
            v.push(c(4096, load, 32, Dist::Uniform));
        }
        v.push(c(4096, 75, 16, Dist::Uniform));
        v.push(c(4096, 75, 100, Dist::Uniform));
        v.push(c(4096, 75, 32, Dist::Zipf));
    } else {
        for capacity in [4096, 65536] {
            for dist in [Dist::Uniform, Dist::Zipf] {
                for key_len in [16, 32, 100] {
                    for load in [50, 75, 90, 95] {
                        v.push(c(capacity, load, key_len, dist));
                    }
                }
            }
        }
    }
    v
}

fn lookups(c: &mut Criterion) {
    for conf in configurations() {
        lookup_conf(c, conf);
    }
}

fn lookup_conf(c: &mut Criterion, conf: Conf) {
    let Conf {
        capacity,
        load_pct,
        key_len,
        dist,
    } = conf;
    let live = (capacity * load_pct / 100) as u64;
    let tag = format!("c{capacity}_l{load_pct}_k{key_len}_{}", dist.label());
    let keys = probes(key_len, 'k', live, 11);
    let shm = ShmRegistry::create(&tag, capacity);
    fill_registry(&shm, &keys);
    let dash: DashMap<String, u32> = keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect();
    let pap: papaya::HashMap<String, u32> = papaya::HashMap::new();
    {
        let m = pap.pin();
        for p in &keys {
            m.insert(p.full.to_owned(), VALUE);
        }
    }
    let rw: RwLock<HashMap<String, u32>> =
        RwLock::new(keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect());
    let lmdb = Lmdb::create(&tag, &keys);
    let s = shm.stats().unwrap();
    eprintln!(
        "bench: {tag}: live {} load {:.3} max_probe {} mean_miss_groups {:.3}",
        s.live,
        s.load_factor(),
        s.table().unwrap().max_probe_distance,
        s.table().unwrap().mean_miss_groups
    );

    for hit in [true, false] {
        if !hit && dist == Dist::Zipf && quick() {
            continue;
        }
        let seq = if hit {
            probe_sequence(key_len, 'k', live, dist, 12)
        } else {
            probe_sequence(key_len, 'x', capacity as u64, dist, 13)
        };
        for p in seq.iter().take(4096) {
            assert_eq!(shm.lookup_pid(p.ns, p.name).unwrap().is_some(), hit);
            assert_eq!(dash.get(p.full).is_some(), hit);
            assert_eq!(pap.pin().get(p.full).is_some(), hit);
            assert_eq!(lmdb.get(p.full).is_some(), hit);
        }
        let mut g = c.benchmark_group(format!("lookup_{}_{tag}", if hit { "hit" } else { "miss" }));
        g.bench_function("procreg_shm/lookup_pid", |b| {
            let mut cur = Cursor::new(&seq, 0);
            b.iter(|| {
                let p = cur.next_probe();
                black_box(black_box(&*shm).lookup_pid(black_box(p.ns), black_box(p.name)))
            })
        });
        g.bench_function("dashmap/get", |b| {
            let mut cur = Cursor::new(&seq, 0);
            b.iter(|| {
                let p = cur.next_probe();
                black_box(black_box(&dash).get(black_box(p.full)).map(|r| *r))
            })
        });
        g.bench_function("papaya/pin_get", |b| {
            let mut cur = Cursor::new(&seq, 0);
            b.iter(|| {
                let p = cur.next_probe();
                black_box(black_box(&pap).pin().get(black_box(p.full)).copied())
            })
        });
        g.bench_function("std_rwlock_hashmap/get", |b| {
            let mut cur = Cursor::new(&seq, 0);
            b.iter(|| {
                let p = cur.next_probe();
                let m = black_box(&rw).read().unwrap();
                black_box(m.get(black_box(p.full)).copied())
            })
        });
        g.bench_function("lmdb/read_txn+get", |b| {
            let mut cur = Cursor::new(&seq, 0);
            b.iter(|| {
                let p = cur.next_probe();
                black_box(black_box(&lmdb).get(black_box(p.full)))
            })
        });
        g.finish();
    }
}

// ---- memory -----------------------------------------------------------------

const ATTACH_CHILD: &str = "PROCREG_BENCH_ATTACH_CHILD";

/// Child: RSS before and after attaching `url` and reading every key.
fn attach_child(spec: &str) {
    let mut it = spec.split(',');
    let url = it.next().unwrap();
    let live: u64 = it.next().unwrap().parse().unwrap();
    let key_len: usize = it.next().unwrap().parse().unwrap();
    let keys = probes(key_len, 'k', live, 11);
    let before = statm();
    let reg = Registry::builder().open(url).expect("attach");
    let opened = statm();
    let mut found = 0usize;
    for p in &keys {
        found += usize::from(reg.lookup_pid(p.ns, p.name).unwrap().is_some());
    }
    assert_eq!(found as u64, live);
    let scanned = statm();
    let all = reg.list_all().expect("list_all");
    let listed = statm();
    assert_eq!(all.len() as u64, live);
    drop(all);
    println!(
        "{} {} {} {} {} {}",
        before.0, opened.0, scanned.0, listed.0, scanned.1, listed.1
    );
}

fn memory() {
    let key_len = 32;
    for capacity in [4096usize, 65536] {
        for load_pct in [75usize, 90] {
            let live = (capacity * load_pct / 100) as u64;
            let keys = probes(key_len, 'k', live, 11);
            let shm = ShmRegistry::create(&format!("mem-{capacity}-{load_pct}"), capacity);
            fill_registry(&shm, &keys);
            let s = shm.stats().unwrap();
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .env(ATTACH_CHILD, format!("{},{live},{key_len}", shm.url()))
                .output()
                .expect("run the attach child");
            assert!(out.status.success(), "attach child failed: {out:?}");
            let f: Vec<u64> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect();
            let (before, opened, scanned, listed, shared_scanned) = (f[0], f[1], f[2], f[3], f[4]);
            table_line(
                "memory",
                &[
                    ("capacity", capacity.into()),
                    ("load_pct", load_pct.into()),
                    ("live", s.live.into()),
                    ("key_bytes", key_len.into()),
                    ("segment_bytes", s.table().unwrap().segment_bytes.into()),
                    (
                        "bytes_per_slot",
                        (s.table().unwrap().segment_bytes as f64 / capacity as f64).into(),
                    ),
                    (
                        "bytes_per_live",
                        (s.table().unwrap().segment_bytes as f64 / s.live as f64).into(),
                    ),
                    ("rss_open", opened.saturating_sub(before).into()),
                    ("rss_lookup_all", scanned.saturating_sub(before).into()),
                    ("rss_list_all", listed.saturating_sub(before).into()),
                    ("shared_after_lookup_all", shared_scanned.into()),
                ],
            );
        }
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = lookups
}

fn main() {
    if let Ok(spec) = std::env::var(ATTACH_CHILD) {
        attach_child(&spec);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing.
    if std::env::args().any(|a| a == "--bench") {
        remove_stale_segments();
        memory();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
