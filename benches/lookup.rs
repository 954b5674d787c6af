//! Lookup, miss, read-scaling and register/unregister benchmarks of procreg
//! against in-process peers (DashMap, `RwLock<HashMap>`).
//!
//! Method (see BENCHMARKS.md):
//! * keys are `("bench-ns", 16-byte name)`: 24 bytes of namespace + name; the
//!   peers are keyed by the same 24 bytes as one `String`, looked up with `&str`
//!   (no allocation on lookup);
//! * the probe keys of a benchmark live in one contiguous, pre-built array in a
//!   pseudo-random permutation order and are walked cyclically, so no single
//!   key (nor its slot) stays hot;
//! * table, key and result go through `black_box`; every table is filled (and
//!   churned) before the timed part;
//! * `shm:` segments are named `bench-<pid>-…`, created fresh and removed by a
//!   drop guard, also when a benchmark panics. Segments left by a killed run
//!   (dead pid) are removed at start.
//!
//! Run: `cargo bench --bench lookup` (about 2 minutes on 2 cores, plus the build).

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

mod common;

use common::{ShmRegistry, remove_stale_segments};
use criterion::{Criterion, criterion_group, criterion_main};
use dashmap::DashMap;
use procreg::Registry;
use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::sync::{Barrier, RwLock};
use std::time::{Duration, Instant};

const NS: &str = "bench-ns";
const NAME_LEN: usize = 16;
const KEY_LEN: usize = NS.len() + NAME_LEN;
const CAPACITY: usize = 4096;
const META: &[u8] = b"port=5432";
/// Pid-like value stored in the peers.
const VALUE: u32 = 4242;

// ---- keys -------------------------------------------------------------------

/// One probe: views into a contiguous key buffer.
#[derive(Clone, Copy)]
struct Probe {
    ns: &'static str,
    name: &'static str,
    /// `ns ++ name`: the key of the peers.
    full: &'static str,
}

/// The 24-byte key `NS ++ <prefix><id:015>`.
fn key_string(prefix: char, id: u64) -> String {
    let s = format!("{NS}{prefix}{id:015}");
    debug_assert_eq!(s.len(), KEY_LEN);
    s
}

/// SplitMix64: a tiny deterministic generator for the permutations.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Keys `prefix` + `0..n` in a pseudo-random permutation (Fisher–Yates, fixed
/// seed), their bytes in one contiguous buffer (leaked: it lives as long as
/// the benchmark process), and the probe array over it.
fn probes(prefix: char, n: u64, seed: u64) -> Vec<Probe> {
    let mut ids: Vec<u64> = (0..n).collect();
    let mut rng = SplitMix(seed);
    for i in (1..ids.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        ids.swap(i, j);
    }
    let mut buf = String::with_capacity(ids.len() * KEY_LEN);
    for &id in &ids {
        buf.push_str(&key_string(prefix, id));
    }
    let buf: &'static str = buf.leak();
    (0..ids.len())
        .map(|i| {
            let full = &buf[i * KEY_LEN..(i + 1) * KEY_LEN];
            Probe {
                ns: &full[..NS.len()],
                name: &full[NS.len()..],
                full,
            }
        })
        .collect()
}

/// Cyclic walk over a probe array.
struct Cursor<'a> {
    probes: &'a [Probe],
    i: usize,
}
impl<'a> Cursor<'a> {
    fn new(probes: &'a [Probe], start: usize) -> Self {
        Cursor {
            probes,
            i: start % probes.len(),
        }
    }
    #[inline(always)]
    fn next(&mut self) -> Probe {
        let p = self.probes[self.i];
        self.i += 1;
        if self.i == self.probes.len() {
            self.i = 0;
        }
        p
    }
}

// ---- tables -----------------------------------------------------------------

fn mem_registry() -> Registry {
    Registry::builder()
        .capacity(CAPACITY)
        .create("mem:")
        .expect("create mem:")
}

fn fill_registry(reg: &Registry, keys: &[Probe]) {
    for p in keys {
        reg.register_self(p.ns, p.name, META)
            .unwrap_or_else(|e| panic!("register {}: {e}", p.full));
    }
}

fn fill_dashmap(keys: &[Probe]) -> DashMap<String, u32> {
    let m = DashMap::new();
    for p in keys {
        m.insert(p.full.to_owned(), VALUE);
    }
    m
}

/// Keeps `reg` at its current live count while it runs `cycles`
/// unregister(oldest) + register(new, distinct) cycles. `live` holds the ids
/// (prefix 'k') registered now, oldest first.
fn churn(reg: &Registry, live: &mut VecDeque<u64>, mut next_id: u64, cycles: usize) {
    for _ in 0..cycles {
        let old = live.pop_front().expect("churn needs live keys");
        let k = key_string('k', old);
        assert!(
            reg.unregister(&k[..NS.len()], &k[NS.len()..])
                .expect("unregister")
        );
        let k = key_string('k', next_id);
        reg.register_self(&k[..NS.len()], &k[NS.len()..], META)
            .unwrap_or_else(|e| panic!("churn register {k}: {e}"));
        live.push_back(next_id);
        next_id += 1;
    }
}

fn describe(what: &str, reg: &Registry) {
    let s = reg.stats().unwrap();
    eprintln!(
        "bench: {what}: live {} tombstones {} max_probe {} mean_miss_groups {:.3} registers {} unregisters {}",
        s.live,
        s.table().unwrap().tombstones,
        s.table().unwrap().max_probe_distance,
        s.table().unwrap().mean_miss_groups,
        s.table().unwrap().registers,
        s.table().unwrap().unregisters
    );
}

// ---- 1. hits ------------------------------------------------------------------

fn hit_75pct_24b(c: &mut Criterion) {
    let n = (CAPACITY * 3 / 4) as u64; // 3072
    let keys = probes('k', n, 1);
    let shm = ShmRegistry::create("hit", CAPACITY);
    fill_registry(&shm, &keys);
    let mem = mem_registry();
    fill_registry(&mem, &keys);
    let dash = fill_dashmap(&keys);
    let rw: RwLock<HashMap<String, u32>> =
        RwLock::new(keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect());
    // Probe in another permutation than the one used to fill.
    let hits = probes('k', n, 2);
    for p in &hits {
        assert!(shm.lookup_pid(p.ns, p.name).unwrap().is_some());
        assert!(mem.lookup_pid(p.ns, p.name).unwrap().is_some());
        assert!(dash.get(p.full).is_some());
    }

    let mut g = c.benchmark_group("hit_75pct_24B");
    g.bench_function("procreg_shm/lookup_pid", |b| {
        let mut cur = Cursor::new(&hits, 0);
        b.iter(|| {
            let p = cur.next();
            black_box(black_box(&*shm).lookup_pid(black_box(p.ns), black_box(p.name)))
        })
    });
    g.bench_function("procreg_mem/lookup_pid", |b| {
        let mut cur = Cursor::new(&hits, 0);
        b.iter(|| {
            let p = cur.next();
            black_box(black_box(&mem).lookup_pid(black_box(p.ns), black_box(p.name)))
        })
    });
    g.bench_function("procreg_shm/lookup", |b| {
        let mut cur = Cursor::new(&hits, 0);
        b.iter(|| {
            let p = cur.next();
            black_box(black_box(&*shm).lookup(black_box(p.ns), black_box(p.name)))
        })
    });
    g.bench_function("dashmap/get", |b| {
        let mut cur = Cursor::new(&hits, 0);
        b.iter(|| {
            let p = cur.next();
            black_box(black_box(&dash).get(black_box(p.full)).map(|r| *r))
        })
    });
    g.bench_function("std_rwlock_hashmap/get", |b| {
        let mut cur = Cursor::new(&hits, 0);
        b.iter(|| {
            let p = cur.next();
            let m = black_box(&rw).read().unwrap();
            black_box(m.get(black_box(p.full)).copied())
        })
    });
    g.finish();
}

// ---- 2. misses ----------------------------------------------------------------

fn miss_at(c: &mut Criterion, group: &str, live: usize) {
    let keys = probes('k', live as u64, 3);
    let fresh = ShmRegistry::create(&format!("{group}-fresh"), CAPACITY);
    fill_registry(&fresh, &keys);
    describe(&format!("{group} fresh"), &fresh);

    let churned = ShmRegistry::create(&format!("{group}-churn"), CAPACITY);
    fill_registry(&churned, &keys);
    let mut ids: VecDeque<u64> = (0..live as u64).collect();
    let t = Instant::now();
    churn(&churned, &mut ids, live as u64, 100 * CAPACITY);
    eprintln!(
        "bench: {group}: {} churn cycles in {:.2?}",
        100 * CAPACITY,
        t.elapsed()
    );
    describe(&format!("{group} after churn"), &churned);

    let dash = fill_dashmap(&keys);
    // Absent keys: another prefix, never registered.
    let misses = probes('x', CAPACITY as u64, 4);
    for p in &misses {
        assert!(fresh.lookup_pid(p.ns, p.name).unwrap().is_none());
        assert!(churned.lookup_pid(p.ns, p.name).unwrap().is_none());
        assert!(dash.get(p.full).is_none());
    }

    let mut g = c.benchmark_group(group);
    for (id, reg) in [
        ("procreg_shm/fresh", &fresh),
        ("procreg_shm/after_churn", &churned),
    ] {
        g.bench_function(id, |b| {
            let mut cur = Cursor::new(&misses, 0);
            b.iter(|| {
                let p = cur.next();
                black_box(black_box(&**reg).lookup_pid(black_box(p.ns), black_box(p.name)))
            })
        });
    }
    g.bench_function("dashmap/miss", |b| {
        let mut cur = Cursor::new(&misses, 0);
        b.iter(|| {
            let p = cur.next();
            black_box(black_box(&dash).get(black_box(p.full)).map(|r| *r))
        })
    });
    g.finish();
}

fn misses(c: &mut Criterion) {
    miss_at(c, "miss_90pct", CAPACITY * 9 / 10); // 3686
    miss_at(c, "miss_75pct", CAPACITY * 3 / 4); // 3072
}

// ---- 3. read scaling ------------------------------------------------------------

/// Times `iters` operations on this thread while `readers - 1` other threads
/// run the same loop (same count, other start offsets) on `others`.
/// Returns the measuring thread's elapsed time; thread start-up is excluded
/// (a barrier releases everyone, then the clock starts).
///
/// `others` is the table the other threads read: the same table, or (as a
/// control for what the machine itself loses when both cores are busy) a
/// separate table of the same contents.
fn timed_readers<T, F>(
    table: &T,
    others: &T,
    probes: &[Probe],
    readers: usize,
    iters: u64,
    op: F,
) -> Duration
where
    T: Sync,
    F: Fn(&T, Probe) + Sync,
{
    let run = |t: &T, start: usize| {
        let mut cur = Cursor::new(probes, start);
        for _ in 0..iters {
            op(black_box(t), cur.next());
        }
    };
    if readers == 1 {
        let t = Instant::now();
        run(table, 0);
        return t.elapsed();
    }
    let barrier = Barrier::new(readers);
    std::thread::scope(|s| {
        for r in 1..readers {
            let (barrier, run) = (&barrier, &run);
            s.spawn(move || {
                barrier.wait();
                run(others, r * probes.len() / readers);
            });
        }
        barrier.wait();
        let t = Instant::now();
        run(table, 0);
        t.elapsed()
    })
}

fn read_scaling(c: &mut Criterion) {
    let n = (CAPACITY * 3 / 4) as u64;
    let keys = probes('k', n, 5);
    let shm = ShmRegistry::create("scale", CAPACITY);
    fill_registry(&shm, &keys);
    // Control: a second, separate segment with the same keys.
    let shm2 = ShmRegistry::create("scale2", CAPACITY);
    fill_registry(&shm2, &keys);
    let dash = fill_dashmap(&keys);
    let hits = probes('k', n, 6);
    let lookup = |r: &Registry, p: Probe| {
        black_box(r.lookup_pid(black_box(p.ns), black_box(p.name)).ok());
    };

    let mut g = c.benchmark_group("read_scaling");
    for (id, readers, others) in [
        ("1_readers", 1usize, &*shm),
        ("2_readers", 2, &*shm),
        ("2_readers_separate_tables", 2, &*shm2),
    ] {
        g.bench_function(format!("procreg_shm/lookup_pid/{id}"), |b| {
            b.iter_custom(|iters| timed_readers(&*shm, others, &hits, readers, iters, lookup))
        });
    }
    for readers in [1usize, 2] {
        g.bench_function(format!("dashmap/get/{readers}_readers"), |b| {
            b.iter_custom(|iters| {
                timed_readers(&dash, &dash, &hits, readers, iters, |m, p| {
                    black_box(m.get(black_box(p.full)).map(|r| *r));
                })
            })
        });
    }
    g.finish();
}

// ---- 4. register + unregister ---------------------------------------------------

fn register_unregister(c: &mut Criterion) {
    // Background population at 75%, cycled keys absent from it.
    let background = probes('k', (CAPACITY * 3 / 4) as u64, 7);
    let cycled = probes('r', CAPACITY as u64, 8);
    let shm = ShmRegistry::create("rw", CAPACITY);
    fill_registry(&shm, &background);
    let dash = fill_dashmap(&background);

    let mut g = c.benchmark_group("register_unregister");
    g.bench_function("procreg_shm/register_self+unregister", |b| {
        let mut cur = Cursor::new(&cycled, 0);
        b.iter(|| {
            let p = cur.next();
            let r = black_box(&*shm);
            black_box(r.register_self(black_box(p.ns), black_box(p.name), META)).expect("register");
            black_box(
                r.unregister(black_box(p.ns), black_box(p.name))
                    .expect("unregister"),
            )
        })
    });
    g.bench_function("dashmap/insert+remove", |b| {
        let mut cur = Cursor::new(&cycled, 0);
        b.iter(|| {
            let p = cur.next();
            let m = black_box(&dash);
            black_box(m.insert(black_box(p.full).to_owned(), VALUE));
            black_box(m.remove(black_box(p.full)))
        })
    });
    g.finish();
    describe("register_unregister after", &shm);
}

fn config() -> Criterion {
    remove_stale_segments();
    Criterion::default()
        .sample_size(60)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = hit_75pct_24b, misses, read_scaling, register_unregister
}
criterion_main!(benches);
