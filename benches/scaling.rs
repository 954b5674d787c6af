//! Threads, processes, writes and liveness against the peers (issue 7). All
//! tables: capacity 4096, 32-byte keys (namespace 8 + name 24), 75% load
//! unless said otherwise.
//!
//! * `read_scaling_threads`: per-op latency of one reader thread alone and
//!   while a second thread runs the same loop (`iter_custom`: both released by
//!   a barrier, the measuring thread timed); procreg, dashmap, papaya,
//!   `RwLock<HashMap>`. The second thread's per-op latency is printed.
//! * `read_scaling_processes`: the same with the second reader in another
//!   process (this binary re-executed), started once and driven through a
//!   control word in shared memory; the child's per-op latency is printed.
//! * `mixed_98_1_1`, `mixed_90_5_5`: lookup / register / unregister mixes
//!   (ops pre-drawn), 1 and 2 workers; procreg, dashmap, `RwLock<HashMap>`.
//! * `write_cycle`: register + unregister, uncontended (procreg
//!   `register_self`, `register` of a foreign live pid; dashmap, papaya,
//!   `RwLock<HashMap>` insert + remove).
//! * `write_contended_same_key`: one attempt = `register_self` of one key,
//!   then `unregister` if it was won; alone, and with a second process doing
//!   the same on the same key; the peer is dashmap (`entry` + `remove`),
//!   alone and with a second thread. Per-attempt p50/p99 printed.
//! * `metadata`: `update_metadata` alone and while another process reads the
//!   entry (`lookup`); `lookup` alone and while another process updates it.
//! * `liveness`: `lookup_pid` vs `lookup` vs `lookup_checked` (hits).
//! * `sweep_c<capacity>`: `sweep` of a table at 90% load of which 10% of the
//!   entries belong to a dead owner (a `sleep` child registered, killed and
//!   reaped before each timed sweep).
//! * With `PROCREG_BENCH_SYSCALL_PROBE=N` the binary does not benchmark: it
//!   registers once, then runs N `register_self` + `unregister` cycles
//!   between two marker writes to stderr, so `strace -f` shows the syscalls
//!   of the loop (used by `scripts/bench-report`). With
//!   `PROCREG_BENCH_COUNT=<op>,<n>` it runs `n` operations for callgrind
//!   (see `count_ops`); with `PROCREG_BENCH_PAIRED=<rounds>` it measures
//!   the target ratios in paired rounds (see `paired`).
//!
//! `PROCREG_BENCH_QUICK=1` shortens every measurement.
//!
//! Run: `cargo bench --bench scaling` (full mode: about 5 minutes on 2 cores).

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

mod common;

use common::*;
use criterion::{Criterion, SamplingMode, criterion_group};
use dashmap::DashMap;
use procreg::{Error, Registry};
use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::sync::{Barrier, Mutex, RwLock};
use std::time::{Duration, Instant};

const CAPACITY: usize = 4096;
const KEY_LEN: usize = 32;
const LIVE: u64 = (CAPACITY * 3 / 4) as u64;
/// Name of the single key of the contended and metadata benchmarks.
const HOT: &str = "hot-key-0123456789abcdef";

fn hit_seq() -> Vec<Probe> {
    probes(KEY_LEN, 'k', LIVE, 21)
}

fn background() -> Vec<Probe> {
    probes(KEY_LEN, 'k', LIVE, 20)
}

fn median_line(table: &str, id: &str, what: &str, v: &Mutex<Vec<f64>>) {
    let mut v = v.lock().unwrap();
    if v.is_empty() {
        return;
    }
    let n = v.len();
    let med = median(&mut v);
    table_line(
        table,
        &[
            ("id", id.into()),
            ("what", what.into()),
            ("median_ns", med.into()),
            ("p90_ns", quantile(&v, 0.9).into()),
            ("samples", n.into()),
        ],
    );
    v.clear();
}

// ---- 1. read scaling, threads --------------------------------------------------

/// Times `iters` operations on this thread while `readers - 1` other threads
/// run the same loop from other offsets; the other thread's per-op
/// nanoseconds go to `other_ns`.
fn timed_readers<T: Sync>(
    table: &T,
    seq: &[Probe],
    readers: usize,
    iters: u64,
    other_ns: &Mutex<Vec<f64>>,
    op: impl Fn(&T, Probe) + Sync,
) -> Duration {
    let run = |start: usize| {
        let mut cur = Cursor::new(seq, start);
        let t = Instant::now();
        for _ in 0..iters {
            op(black_box(table), cur.next_probe());
        }
        t.elapsed()
    };
    if readers == 1 {
        return run(0);
    }
    let barrier = Barrier::new(readers);
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            barrier.wait();
            run(seq.len() / 2)
        });
        barrier.wait();
        let mine = run(0);
        let theirs = other.join().unwrap();
        other_ns
            .lock()
            .unwrap()
            .push(theirs.as_nanos() as f64 / iters as f64);
        mine
    })
}

fn read_scaling_threads(c: &mut Criterion) {
    let keys = background();
    let shm = ShmRegistry::create("rs-threads", CAPACITY);
    fill_registry(&shm, &keys);
    let dash: DashMap<String, u32> = keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect();
    let pap: papaya::HashMap<String, u32> =
        keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect();
    let rw: RwLock<HashMap<String, u32>> =
        RwLock::new(keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect());
    let seq = hit_seq();
    let other = Mutex::new(Vec::new());

    let mut g = c.benchmark_group("read_scaling_threads");
    for readers in [1usize, 2] {
        let id = format!("procreg_shm/lookup_pid/{readers}_readers");
        g.bench_function(&id, |b| {
            b.iter_custom(|iters| {
                timed_readers(&*shm, &seq, readers, iters, &other, |r, p| {
                    black_box(r.lookup_pid(black_box(p.ns), black_box(p.name)).ok());
                })
            })
        });
        median_line("second_reader", &id, "second thread", &other);
        let id = format!("dashmap/get/{readers}_readers");
        g.bench_function(&id, |b| {
            b.iter_custom(|iters| {
                timed_readers(&dash, &seq, readers, iters, &other, |m, p| {
                    black_box(m.get(black_box(p.full)).map(|r| *r));
                })
            })
        });
        median_line("second_reader", &id, "second thread", &other);
        let id = format!("papaya/pin_get/{readers}_readers");
        g.bench_function(&id, |b| {
            b.iter_custom(|iters| {
                timed_readers(&pap, &seq, readers, iters, &other, |m, p| {
                    black_box(m.pin().get(black_box(p.full)).copied());
                })
            })
        });
        median_line("second_reader", &id, "second thread", &other);
        let id = format!("std_rwlock_hashmap/get/{readers}_readers");
        g.bench_function(&id, |b| {
            b.iter_custom(|iters| {
                timed_readers(&rw, &seq, readers, iters, &other, |m, p| {
                    let m = m.read().unwrap();
                    black_box(m.get(black_box(p.full)).copied());
                })
            })
        });
        median_line("second_reader", &id, "second thread", &other);
    }
    g.finish();
}

// ---- 2. read scaling, processes ------------------------------------------------

/// Child "reader": `lookup_pid` over the hit sequence from its middle.
fn child_reader(url: &str) {
    let reg = Registry::builder().open(url).expect("attach");
    let seq = hit_seq();
    let mut cur = Cursor::new(&seq, seq.len() / 2);
    serve_child(
        |iters| {
            let mut found = 0u64;
            for _ in 0..iters {
                let p = cur.next_probe();
                found += u64::from(
                    black_box(&reg)
                        .lookup_pid(black_box(p.ns), black_box(p.name))
                        .unwrap()
                        .is_some(),
                );
            }
            (iters, found)
        },
        |_| (0, 0),
    );
}

fn read_scaling_processes(c: &mut Criterion) {
    let shm = ShmRegistry::create("rs-procs", CAPACITY);
    fill_registry(&shm, &background());
    let seq = hit_seq();
    let other = Mutex::new(Vec::new());
    let kid = Child::spawn(
        "reader",
        "rs-procs",
        &[("PROCREG_BENCH_URL", shm.url().into())],
    );

    let mut g = c.benchmark_group("read_scaling_processes");
    let lookups = |iters: u64| {
        let mut cur = Cursor::new(&seq, 0);
        let t = Instant::now();
        for _ in 0..iters {
            let p = cur.next_probe();
            black_box(black_box(&*shm).lookup_pid(black_box(p.ns), black_box(p.name))).ok();
        }
        t.elapsed()
    };
    g.bench_function("procreg_shm/lookup_pid/1_processes", |b| {
        b.iter_custom(lookups)
    });
    g.bench_function("procreg_shm/lookup_pid/2_processes", |b| {
        b.iter_custom(|iters| {
            let gen_ = kid.start_run(iters);
            let mine = lookups(iters);
            let theirs = kid.finish(gen_);
            assert_eq!(kid.ctrl.load(ctl::WINS), iters, "child lookups missed");
            other
                .lock()
                .unwrap()
                .push(theirs.as_nanos() as f64 / iters as f64);
            mine
        })
    });
    g.finish();
    median_line(
        "second_reader",
        "procreg_shm/lookup_pid/2_processes",
        "second process (cross-process lookups of keys registered by the parent)",
        &other,
    );
}

// ---- 3. mixed ----------------------------------------------------------------------

/// What the mixed workloads need of a table.
trait Mixed: Sync {
    fn lookup(&self, p: Probe);
    fn insert(&self, p: Probe);
    fn remove(&self, p: Probe);
}
impl Mixed for Registry {
    #[inline]
    fn lookup(&self, p: Probe) {
        black_box(self.lookup_pid(black_box(p.ns), black_box(p.name)).ok());
    }
    #[inline]
    fn insert(&self, p: Probe) {
        self.register_self(p.ns, p.name, META).expect("register");
    }
    #[inline]
    fn remove(&self, p: Probe) {
        assert!(self.unregister(p.ns, p.name).expect("unregister"));
    }
}
impl Mixed for DashMap<String, u32> {
    #[inline]
    fn lookup(&self, p: Probe) {
        black_box(self.get(black_box(p.full)).map(|r| *r));
    }
    #[inline]
    fn insert(&self, p: Probe) {
        self.insert(p.full.to_owned(), VALUE);
    }
    #[inline]
    fn remove(&self, p: Probe) {
        assert!(DashMap::remove(self, p.full).is_some());
    }
}
impl Mixed for RwLock<HashMap<String, u32>> {
    #[inline]
    fn lookup(&self, p: Probe) {
        let m = self.read().unwrap();
        black_box(m.get(black_box(p.full)).copied());
    }
    #[inline]
    fn insert(&self, p: Probe) {
        self.write().unwrap().insert(p.full.to_owned(), VALUE);
    }
    #[inline]
    fn remove(&self, p: Probe) {
        assert!(self.write().unwrap().remove(p.full).is_some());
    }
}

/// Pre-drawn operations: 0 lookup, 1 register, 2 unregister.
fn op_stream(write_pct: u64, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix(seed);
    (0..65536)
        .map(|_| {
            let x = rng.below(100);
            if x < write_pct {
                1
            } else if x < 2 * write_pct {
                2
            } else {
                0
            }
        })
        .collect()
}

/// One worker: `iters` ops of `ops` (from `start`), lookups over `hits`,
/// registrations of its private keys (at most 64 at once, oldest removed
/// first). Returns the timed part; removes its keys afterwards.
fn mixed_worker<T: Mixed + ?Sized>(
    t: &T,
    hits: &[Probe],
    private: &[Probe],
    ops: &[u8],
    start: usize,
    iters: u64,
) -> Duration {
    let mut cur = Cursor::new(hits, start);
    let mut live: VecDeque<usize> = VecDeque::with_capacity(64);
    let mut next = 0usize;
    let mut oi = start % ops.len();
    let clock = Instant::now();
    for _ in 0..iters {
        let op = ops[oi];
        oi += 1;
        if oi == ops.len() {
            oi = 0;
        }
        match op {
            0 => t.lookup(cur.next_probe()),
            1 | 2 => {
                if (op == 1 && live.len() < 64) || live.is_empty() {
                    t.insert(private[next]);
                    live.push_back(next);
                    next = (next + 1) % private.len();
                } else {
                    t.remove(private[live.pop_front().unwrap()]);
                }
            }
            _ => unreachable!(),
        }
    }
    let d = clock.elapsed();
    for i in live {
        t.remove(private[i]);
    }
    d
}

fn mixed_run<T: Mixed + ?Sized>(
    t: &T,
    hits: &[Probe],
    private: &[Vec<Probe>; 2],
    ops: &[u8],
    workers: usize,
    iters: u64,
) -> Duration {
    if workers == 1 {
        return mixed_worker(t, hits, &private[0], ops, 0, iters);
    }
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            barrier.wait();
            mixed_worker(t, hits, &private[1], ops, ops.len() / 2, iters)
        });
        barrier.wait();
        mixed_worker(t, hits, &private[0], ops, 0, iters)
    })
}

fn mixed(c: &mut Criterion) {
    let keys = background();
    let shm = ShmRegistry::create("mixed", CAPACITY);
    fill_registry(&shm, &keys);
    let dash: DashMap<String, u32> = keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect();
    let rw: RwLock<HashMap<String, u32>> =
        RwLock::new(keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect());
    let hits = hit_seq();
    let private = [
        probes(KEY_LEN, 'p', 4096, 22),
        probes(KEY_LEN, 'q', 4096, 23),
    ];
    for (group, write_pct) in [("mixed_98_1_1", 1u64), ("mixed_90_5_5", 5)] {
        let ops = op_stream(write_pct, 24 + write_pct);
        let mut g = c.benchmark_group(group);
        for workers in [1usize, 2] {
            g.bench_function(format!("procreg_shm/{workers}_workers"), |b| {
                b.iter_custom(|iters| mixed_run(&shm.reg, &hits, &private, &ops, workers, iters))
            });
            g.bench_function(format!("dashmap/{workers}_workers"), |b| {
                b.iter_custom(|iters| mixed_run(&dash, &hits, &private, &ops, workers, iters))
            });
            g.bench_function(format!("std_rwlock_hashmap/{workers}_workers"), |b| {
                b.iter_custom(|iters| mixed_run(&rw, &hits, &private, &ops, workers, iters))
            });
        }
        g.finish();
    }
    assert_eq!(
        shm.stats().unwrap().live as u64,
        LIVE,
        "mixed left keys behind"
    );
}

// ---- 4. writes ------------------------------------------------------------------------

/// A `sleep` child: a live foreign pid; killed and reaped on drop.
struct Sleeper(std::process::Child);
impl Sleeper {
    fn spawn() -> Sleeper {
        Sleeper(
            std::process::Command::new("sleep")
                .arg("600")
                .spawn()
                .expect("spawn sleep"),
        )
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}
impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_cycle(c: &mut Criterion) {
    let keys = background();
    let shm = ShmRegistry::create("writes", CAPACITY);
    fill_registry(&shm, &keys);
    let dash: DashMap<String, u32> = keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect();
    let pap: papaya::HashMap<String, u32> =
        keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect();
    let rw: RwLock<HashMap<String, u32>> =
        RwLock::new(keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect());
    let cycled = probes(KEY_LEN, 'r', CAPACITY as u64, 25);
    let sleeper = Sleeper::spawn();

    let mut g = c.benchmark_group("write_cycle");
    g.bench_function("procreg_shm/register_self+unregister", |b| {
        let mut cur = Cursor::new(&cycled, 0);
        b.iter(|| {
            let p = cur.next_probe();
            let r = black_box(&*shm);
            black_box(r.register_self(black_box(p.ns), black_box(p.name), META)).expect("register");
            black_box(r.unregister(black_box(p.ns), black_box(p.name))).expect("unregister")
        })
    });
    g.bench_function("procreg_shm/register_foreign_pid+unregister", |b| {
        let mut cur = Cursor::new(&cycled, 0);
        let pid = sleeper.pid();
        b.iter(|| {
            let p = cur.next_probe();
            let r = black_box(&*shm);
            black_box(r.register(black_box(p.ns), black_box(p.name), pid, META)).expect("register");
            black_box(r.unregister(black_box(p.ns), black_box(p.name))).expect("unregister")
        })
    });
    g.bench_function("dashmap/insert+remove", |b| {
        let mut cur = Cursor::new(&cycled, 0);
        b.iter(|| {
            let p = cur.next_probe();
            let m = black_box(&dash);
            black_box(m.insert(black_box(p.full).to_owned(), VALUE));
            black_box(m.remove(black_box(p.full)))
        })
    });
    g.bench_function("papaya/insert+remove", |b| {
        let mut cur = Cursor::new(&cycled, 0);
        b.iter(|| {
            let p = cur.next_probe();
            let m = black_box(&pap).pin();
            black_box(m.insert(black_box(p.full).to_owned(), VALUE));
            black_box(m.remove(black_box(p.full)).copied())
        })
    });
    g.bench_function("std_rwlock_hashmap/insert+remove", |b| {
        let mut cur = Cursor::new(&cycled, 0);
        b.iter(|| {
            let p = cur.next_probe();
            let m = black_box(&rw);
            black_box(
                m.write()
                    .unwrap()
                    .insert(black_box(p.full).to_owned(), VALUE),
            );
            black_box(m.write().unwrap().remove(black_box(p.full)))
        })
    });
    g.finish();
}

/// `Busy` answers met by the contended attempts of this process (register
/// or unregister: the lock of the key's neighbourhood was not obtained
/// within the lock timeout).
static BUSY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One contended attempt: register `HOT`; unregister if won (retried after
/// `Busy`). True if won.
#[inline]
fn attempt(reg: &Registry) -> bool {
    match reg.register_self(NS, black_box(HOT), META) {
        Ok(_) => {
            while let Err(e) = reg.unregister(NS, HOT) {
                match e {
                    Error::Busy(_) => {
                        BUSY.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    e => panic!("contended unregister: {e}"),
                }
            }
            true
        }
        Err(Error::AlreadyExists { .. }) => false,
        Err(Error::Busy(_)) => {
            BUSY.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            false
        }
        Err(e) => panic!("contended register: {e}"),
    }
}

/// The peer's attempt: insert `HOT` if absent (then remove it, a win), as a
/// `DashMap` entry.
fn dash_attempt(m: &DashMap<String, u32>) -> bool {
    match m.entry(black_box(HOT).to_owned()) {
        dashmap::Entry::Vacant(v) => {
            drop(v.insert(VALUE));
            black_box(m.remove(HOT));
            true
        }
        dashmap::Entry::Occupied(_) => false,
    }
}

/// Child "contender": attempts on `HOT` until stopped.
fn child_contender(url: &str) {
    let reg = Registry::builder().open(url).expect("attach");
    serve_child(
        |_| (0, 0),
        |stop| {
            let (mut ops, mut wins) = (0u64, 0u64);
            while !ops.is_multiple_of(64) || !stop() {
                wins += u64::from(attempt(&reg));
                ops += 1;
            }
            // The parent reports its own Busy count; the child's goes to stderr.
            let busy = BUSY.load(std::sync::atomic::Ordering::Relaxed);
            if busy > 0 {
                eprintln!("bench: contender child met Busy {busy} times");
            }
            (ops, wins)
        },
    );
}

/// Child "entry_reader" / "updater": `lookup` / `update_metadata` of `HOT`
/// until stopped.
fn child_hot_loop(url: &str, update: bool) {
    let reg = Registry::builder().open(url).expect("attach");
    serve_child(
        |_| (0, 0),
        |stop| {
            let mut ops = 0u64;
            while !ops.is_multiple_of(64) || !stop() {
                if update {
                    let m: &[u8] = if ops.is_multiple_of(2) {
                        b"port=1111"
                    } else {
                        b"port=2222-updated"
                    };
                    reg.update_metadata(NS, HOT, m).expect("update");
                } else {
                    let e = reg.lookup(NS, HOT).expect("lookup").expect("present");
                    black_box(e.metadata.len());
                }
                ops += 1;
            }
            (ops, ops)
        },
    );
}

/// Times each op (for p50/p99) and returns the total; per-op values go to `lat`.
fn timed_each(iters: u64, lat: &Mutex<Vec<f64>>, mut op: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut v = lat.lock().unwrap();
    for _ in 0..iters {
        let t = Instant::now();
        op();
        let d = t.elapsed();
        total += d;
        if v.len() < 2_000_000 {
            v.push(d.as_nanos() as f64);
        }
    }
    total
}

fn percentile_line(id: &str, extra: &[(&str, serde_json::Value)], lat: &Mutex<Vec<f64>>) {
    let mut v = lat.lock().unwrap();
    if v.is_empty() {
        return;
    }
    v.sort_by(f64::total_cmp);
    let mut fields = vec![
        ("id", id.into()),
        ("p50_ns", quantile(&v, 0.5).into()),
        ("p99_ns", quantile(&v, 0.99).into()),
        ("p999_ns", quantile(&v, 0.999).into()),
        ("ops", v.len().into()),
    ];
    fields.extend_from_slice(extra);
    table_line("per_op_percentiles", &fields);
    v.clear();
}

/// Benchmarks `attempt` in group `g` as `id`, timing each call (latencies
/// to `lat`); returns the wins and attempts made while measuring.
fn bench_attempts(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    lat: &Mutex<Vec<f64>>,
    attempt: impl Fn() -> bool,
) -> (u64, u64) {
    let (mut wins, mut tries) = (0u64, 0u64);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            timed_each(iters, lat, || {
                wins += u64::from(attempt());
                tries += 1;
            })
        })
    });
    (wins, tries)
}

fn contended(c: &mut Criterion) {
    const GROUP: &str = "write_contended_same_key";
    let shm = ShmRegistry::create("contend", CAPACITY);
    fill_registry(&shm, &background());
    let lat = Mutex::new(Vec::new());
    let mut g = c.benchmark_group(GROUP);
    // A line of per-attempt percentiles; with a second contender, who won what.
    let report =
        |id: &str, (wins, tries): (u64, u64), other: Option<(u64, u64)>, busy: Option<u64>| {
            let mut f: Vec<(&str, serde_json::Value)> = Vec::new();
            if let Some((owins, otries)) = other {
                f.extend([
                    ("parent_wins", wins.into()),
                    ("parent_attempts", tries.into()),
                    ("child_wins", owins.into()),
                    ("child_attempts", otries.into()),
                ]);
            }
            if let Some(busy) = busy {
                f.push(("parent_busy", busy.into()));
            }
            percentile_line(&format!("{GROUP}/{id}"), &f, &lat);
        };

    let id = "procreg_shm/attempt/1_processes";
    let n = bench_attempts(&mut g, id, &lat, || attempt(&shm));
    report(id, n, None, None);
    let kid = Child::spawn(
        "contender",
        "contend",
        &[("PROCREG_BENCH_URL", shm.url().into())],
    );
    let g_ = kid.start_loop();
    let id = "procreg_shm/attempt/2_processes";
    let n = bench_attempts(&mut g, id, &lat, || attempt(&shm));
    let (kops, kwins, _) = kid.stop_loop(g_);
    drop(kid);
    let busy = BUSY.load(std::sync::atomic::Ordering::Relaxed);
    report(id, n, Some((kwins, kops)), Some(busy));

    // The in-process peer: one thread alone, then with a second thread
    // attempting on the same key.
    let dash: DashMap<String, u32> = DashMap::new();
    let id = "dashmap/attempt/1_threads";
    let n = bench_attempts(&mut g, id, &lat, || dash_attempt(&dash));
    report(id, n, None, None);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let id = "dashmap/attempt/2_threads";
    let (n, other) = std::thread::scope(|sc| {
        let other = sc.spawn(|| {
            let (mut n, mut w) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                w += u64::from(dash_attempt(&dash));
                n += 1;
            }
            (w, n)
        });
        let n = bench_attempts(&mut g, id, &lat, || dash_attempt(&dash));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (n, other.join().expect("contending thread"))
    });
    report(id, n, Some(other), None);
    g.finish();
}

fn metadata(c: &mut Criterion) {
    let shm = ShmRegistry::create("meta", CAPACITY);
    fill_registry(&shm, &background());
    shm.register_self(NS, HOT, META).unwrap();
    let lat = Mutex::new(Vec::new());
    let mut g = c.benchmark_group("metadata");
    let mut flip = false;
    let mut update = |shm: &Registry| {
        flip = !flip;
        let m: &[u8] = if flip { b"port=3333" } else { b"port=4444-x" };
        black_box(shm.update_metadata(NS, black_box(HOT), m)).unwrap();
    };
    // A reader that gives up (`Busy`) is counted, not fatal: the count is
    // part of the result.
    let read = |shm: &Registry| match shm.lookup(NS, black_box(HOT)) {
        Ok(e) => {
            black_box(e.expect("present"));
        }
        Err(Error::Busy(_)) => {
            BUSY.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Err(e) => panic!("lookup: {e}"),
    };
    g.bench_function("procreg_shm/update_metadata/alone", |b| {
        b.iter_custom(|iters| timed_each(iters, &lat, || update(&shm)))
    });
    percentile_line("metadata/procreg_shm/update_metadata/alone", &[], &lat);
    g.bench_function("procreg_shm/lookup/alone", |b| {
        b.iter_custom(|iters| timed_each(iters, &lat, || read(&shm)))
    });
    percentile_line("metadata/procreg_shm/lookup/alone", &[], &lat);
    {
        let kid = Child::spawn(
            "entry_reader",
            "meta-r",
            &[("PROCREG_BENCH_URL", shm.url().into())],
        );
        let g_ = kid.start_loop();
        g.bench_function("procreg_shm/update_metadata/reader_process", |b| {
            b.iter_custom(|iters| timed_each(iters, &lat, || update(&shm)))
        });
        let (ops, _, el) = kid.stop_loop(g_);
        percentile_line(
            "metadata/procreg_shm/update_metadata/reader_process",
            &[(
                "reader_ns_per_op",
                (el.as_nanos() as f64 / ops.max(1) as f64).into(),
            )],
            &lat,
        );
    }
    {
        let kid = Child::spawn(
            "updater",
            "meta-w",
            &[("PROCREG_BENCH_URL", shm.url().into())],
        );
        let g_ = kid.start_loop();
        let busy_before = BUSY.load(std::sync::atomic::Ordering::Relaxed);
        g.bench_function("procreg_shm/lookup/updater_process", |b| {
            b.iter_custom(|iters| timed_each(iters, &lat, || read(&shm)))
        });
        let (ops, _, el) = kid.stop_loop(g_);
        percentile_line(
            "metadata/procreg_shm/lookup/updater_process",
            &[
                (
                    "updater_ns_per_op",
                    (el.as_nanos() as f64 / ops.max(1) as f64).into(),
                ),
                (
                    "reader_busy",
                    (BUSY.load(std::sync::atomic::Ordering::Relaxed) - busy_before).into(),
                ),
            ],
            &lat,
        );
    }
    g.finish();
}

// ---- 5. liveness -------------------------------------------------------------------------

fn liveness(c: &mut Criterion) {
    let shm = ShmRegistry::create("live", CAPACITY);
    fill_registry(&shm, &background());
    let seq = hit_seq();
    let mut g = c.benchmark_group("liveness");
    g.bench_function("procreg_shm/lookup_pid", |b| {
        let mut cur = Cursor::new(&seq, 0);
        b.iter(|| {
            let p = cur.next_probe();
            black_box(black_box(&*shm).lookup_pid(black_box(p.ns), black_box(p.name)))
        })
    });
    g.bench_function("procreg_shm/lookup", |b| {
        let mut cur = Cursor::new(&seq, 0);
        b.iter(|| {
            let p = cur.next_probe();
            black_box(black_box(&*shm).lookup(black_box(p.ns), black_box(p.name)))
        })
    });
    g.bench_function("procreg_shm/lookup_checked", |b| {
        let mut cur = Cursor::new(&seq, 0);
        b.iter(|| {
            let p = cur.next_probe();
            black_box(black_box(&*shm).lookup_checked(black_box(p.ns), black_box(p.name)))
        })
    });
    g.finish();
}

fn sweep(c: &mut Criterion) {
    for capacity in [4096usize, 65536] {
        let total = capacity * 9 / 10;
        let dead = total / 10;
        let live = total - dead;
        let shm = ShmRegistry::create(&format!("sweep-{capacity}"), capacity);
        fill_registry(&shm, &probes(KEY_LEN, 'k', live as u64, 26));
        let dead_keys = probes(KEY_LEN, 'd', dead as u64, 27);
        let mut g = c.benchmark_group(format!("sweep_c{capacity}"));
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        let id = format!("procreg_shm/sweep_l90_dead10pct_{dead}");
        g.bench_function(&id, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let s = Sleeper::spawn();
                    for p in &dead_keys {
                        shm.register(p.ns, p.name, s.pid(), META)
                            .expect("register for the sleeper");
                    }
                    drop(s); // killed and reaped: its entries' owner is dead
                    let t = Instant::now();
                    let n = black_box(black_box(&*shm).sweep().expect("sweep"));
                    timed += t.elapsed();
                    assert_eq!(n, dead, "sweep reclaimed {n}, expected {dead}");
                }
                timed
            })
        });
        g.finish();
        assert_eq!(shm.stats().unwrap().live, live);
    }
}

// ---- 6. syscall probe ------------------------------------------------------------------

fn marker(s: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(s.as_bytes());
}

/// Marked sections for `strace -f`: the first `register_self` of the
/// process; `n` `register_self` + `unregister` cycles; `register_self` of
/// distinct keys; 10 `lookup_checked` hits (entries of this process); one
/// `sweep` of the table (every entry alive, owned by this process).
fn syscall_probe(n: usize) {
    let shm = ShmRegistry::create("syscalls", CAPACITY);
    let first = probes(KEY_LEN, 'k', 64, 28);
    marker("PROBE-FIRST-BEGIN\n");
    black_box(shm.register_self(first[0].ns, first[0].name, META)).unwrap();
    marker("PROBE-FIRST-END\n");
    fill_registry(&shm, &first[1..]);
    let keys = probes(KEY_LEN, 'r', n.clamp(1, CAPACITY / 2) as u64, 29);
    marker("PROBE-CYCLE-BEGIN\n");
    for i in 0..n {
        let p = keys[i % keys.len()];
        black_box(shm.register_self(p.ns, p.name, META)).unwrap();
        black_box(shm.unregister(p.ns, p.name)).unwrap();
    }
    marker("PROBE-CYCLE-END\n");
    marker("PROBE-REGISTER-BEGIN\n");
    for p in &keys {
        black_box(shm.register_self(p.ns, p.name, META)).unwrap();
    }
    marker("PROBE-REGISTER-END\n");
    marker("PROBE-CHECKED-BEGIN\n");
    for p in keys.iter().take(10) {
        black_box(shm.lookup_checked(p.ns, p.name)).unwrap();
    }
    marker("PROBE-CHECKED-END\n");
    let live = shm.stats().unwrap().live;
    marker("PROBE-SWEEP-BEGIN\n");
    black_box(shm.sweep()).unwrap();
    marker("PROBE-SWEEP-END\n");
    println!("syscall probe: swept {live} live entries");
    println!("syscall probe: {n} cycles, {} registrations", keys.len());
}

// ---- 7. instruction counts ---------------------------------------------------------------

/// `PROCREG_BENCH_COUNT=<op>,<n>`: sets up a 75% table (32-byte keys), then
/// runs `n` operations of `op` and exits; run under callgrind with two values
/// of `n`, the difference of the instruction counts divided by the
/// difference of `n` is the cost of one operation without the setup.
fn count_ops(spec: &str) {
    let (op, n) = spec.split_once(',').expect("PROCREG_BENCH_COUNT=<op>,<n>");
    let n: u64 = n.parse().expect("count");
    let keys = background();
    let hits = hit_seq();
    let misses = probes(KEY_LEN, 'x', CAPACITY as u64, 30);
    let cycled = probes(KEY_LEN, 'r', CAPACITY as u64, 25);
    let mut i = 0usize;
    let mut next = |v: &[Probe]| {
        let p = v[i % v.len()];
        i += 1;
        p
    };
    if op.starts_with("procreg") {
        let reg = ShmRegistry::create(&format!("count-{op}"), CAPACITY);
        fill_registry(&reg, &keys);
        let r = black_box(&*reg);
        for _ in 0..n {
            match op {
                "procreg_hit" => {
                    let p = next(&hits);
                    black_box(r.lookup_pid(black_box(p.ns), black_box(p.name)).unwrap());
                }
                "procreg_miss" => {
                    let p = next(&misses);
                    black_box(r.lookup_pid(black_box(p.ns), black_box(p.name)).unwrap());
                }
                "procreg_checked" => {
                    let p = next(&hits);
                    black_box(
                        r.lookup_checked(black_box(p.ns), black_box(p.name))
                            .unwrap(),
                    );
                }
                "procreg_cycle" => {
                    let p = next(&cycled);
                    r.register_self(black_box(p.ns), black_box(p.name), META)
                        .unwrap();
                    r.unregister(black_box(p.ns), black_box(p.name)).unwrap();
                }
                _ => panic!("unknown op {op}"),
            }
        }
    } else {
        let m: DashMap<String, u32> = keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect();
        let m = black_box(&m);
        for _ in 0..n {
            match op {
                "dashmap_hit" => {
                    black_box(m.get(black_box(next(&hits).full)).map(|r| *r));
                }
                "dashmap_miss" => {
                    black_box(m.get(black_box(next(&misses).full)).map(|r| *r));
                }
                "dashmap_cycle" => {
                    let p = next(&cycled);
                    m.insert(black_box(p.full).to_owned(), VALUE);
                    black_box(m.remove(black_box(p.full)));
                }
                _ => panic!("unknown op {op}"),
            }
        }
    }
}

/// `PROCREG_BENCH_PAIRED=<rounds>`: the target ratios measured as paired
/// rounds instead of one criterion median each. Every round times one batch
/// of each side back to back (the order alternating between rounds) and
/// keeps their ratio; the median of the per-round ratios is robust to the
/// load of a shared machine, which moves both sides of a round together.
/// Prints one `BENCH-TABLE {"table": "paired", ...}` line per comparison.
fn paired(rounds: usize) {
    let keys = background();
    let hits = hit_seq();
    let misses = probes(KEY_LEN, 'x', CAPACITY as u64, 30);
    let cycled = probes(KEY_LEN, 'r', CAPACITY as u64, 25);
    let reg = ShmRegistry::create("paired", CAPACITY);
    fill_registry(&reg, &keys);
    let dash: DashMap<String, u32> = keys.iter().map(|p| (p.full.to_owned(), VALUE)).collect();
    let lmdb = Lmdb::create("paired", &keys);
    let r = &*reg;
    // Fuller tables of their own (keys `k0..`, the 75% table's and more).
    let fuller = |pct: usize, tag: &str| {
        let keys = probes(KEY_LEN, 'k', (CAPACITY * pct / 100) as u64, 20);
        let reg = ShmRegistry::create(tag, CAPACITY);
        fill_registry(&reg, &keys);
        (reg, keys)
    };
    let (reg90, keys90) = fuller(90, "paired90");
    let (reg95, keys95) = fuller(95, "paired95");
    let dash90: DashMap<String, u32> = keys90.iter().map(|p| (p.full.to_owned(), VALUE)).collect();
    let hits95 = probes_of(KEY_LEN, 'k', &permutation(keys95.len() as u64, 22));

    // ns per op of `n` calls of `op`, cycling through `probes` with a
    // compare (a division per op, `i % len`, would add its latency to
    // every side and shrink the ratios).
    fn batch(probes: &[Probe], n: usize, mut op: impl FnMut(Probe)) -> f64 {
        let mut cur = Cursor::new(probes, 0);
        let t = Instant::now();
        for _ in 0..n {
            op(cur.next_probe());
        }
        t.elapsed().as_nanos() as f64 / n as f64
    }
    let lookups = |reg: &Registry, probes: &[Probe], n: usize| {
        batch(probes, n, |p| {
            black_box(reg.lookup_pid(black_box(p.ns), black_box(p.name)).unwrap());
        })
    };
    // Each side times one batch of `n` operations and returns ns per op.
    let compare = |name: &str,
                   what: &str,
                   n: usize,
                   a: &mut dyn FnMut(usize) -> f64,
                   b: &mut dyn FnMut(usize) -> f64| {
        a(n);
        b(n);
        let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (x, y) = if round % 2 == 0 {
                let x = a(n);
                (x, b(n))
            } else {
                let y = b(n);
                (a(n), y)
            };
            ta.push(x);
            tb.push(y);
            ratios.push(x / y);
        }
        for v in [&mut ta, &mut tb, &mut ratios] {
            v.sort_by(f64::total_cmp);
        }
        table_line(
            "paired",
            &[
                ("id", name.into()),
                ("what", what.into()),
                ("rounds", rounds.into()),
                ("ops_per_batch", n.into()),
                ("a_median_ns", quantile(&ta, 0.5).into()),
                ("b_median_ns", quantile(&tb, 0.5).into()),
                ("ratio_median", quantile(&ratios, 0.5).into()),
                ("ratio_q1", quantile(&ratios, 0.25).into()),
                ("ratio_q3", quantile(&ratios, 0.75).into()),
            ],
        );
    };
    compare(
        "hit75",
        "procreg lookup_pid / dashmap get (hits, 75% load)",
        50_000,
        &mut |n| lookups(r, &hits, n),
        &mut |n| {
            batch(&hits, n, |p| {
                black_box(black_box(&dash).get(black_box(p.full)).map(|v| *v));
            })
        },
    );
    compare(
        "miss90",
        "procreg lookup_pid / dashmap get (misses, 90% load)",
        50_000,
        &mut |n| lookups(&reg90, &misses, n),
        &mut |n| {
            batch(&misses, n, |p| {
                black_box(black_box(&dash90).get(black_box(p.full)).map(|v| *v));
            })
        },
    );
    compare(
        "hit95",
        "procreg lookup_pid hits, 95% load / 75% load",
        50_000,
        &mut |n| lookups(&reg95, &hits95, n),
        &mut |n| lookups(r, &hits, n),
    );
    compare(
        "miss95",
        "procreg lookup_pid misses, 95% load / 75% load",
        50_000,
        &mut |n| lookups(&reg95, &misses, n),
        &mut |n| lookups(r, &misses, n),
    );
    // One reader while a second thread reads the same table, against alone:
    // the second thread parks between the "with" batches. procreg, then
    // dashmap in the same way.
    let two_readers = |name: &str, what: &str, read: &(dyn Fn(&[Probe], usize) -> f64 + Sync)| {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
        let (run, stop, parked) = (
            AtomicBool::new(false),
            AtomicBool::new(false),
            AtomicU64::new(0),
        );
        std::thread::scope(|sc| {
            let second = sc.spawn(|| {
                let mut i = 0;
                while !stop.load(Acquire) {
                    if run.load(Acquire) {
                        read(&hits[i % 64 * 48..], 64);
                        i += 1;
                    } else {
                        parked.fetch_add(1, Release);
                        std::thread::park();
                    }
                }
            });
            let with = |n: usize| {
                run.store(true, Release);
                second.thread().unpark();
                let t = read(&hits, n);
                run.store(false, Release);
                t
            };
            let alone = |n: usize| {
                // Until the second reader has parked again.
                let seen = parked.load(Acquire);
                while parked.load(Acquire) == seen {
                    second.thread().unpark();
                    std::thread::yield_now();
                }
                read(&hits, n)
            };
            compare(name, what, 50_000, &mut { with }, &mut { alone });
            stop.store(true, Release);
            second.thread().unpark();
        });
    };
    two_readers(
        "threads2",
        "procreg lookup_pid per op, 2 reader threads / 1",
        &|probes, n| lookups(r, probes, n),
    );
    two_readers(
        "threads2_dashmap",
        "dashmap get per op, 2 reader threads / 1",
        &|probes, n| {
            batch(probes, n, |p| {
                black_box(black_box(&dash).get(black_box(p.full)).map(|v| *v));
            })
        },
    );
    {
        // The same with the second reader in another process (this binary as
        // the "reader" child, told to run as many lookups as the batch).
        let kid = Child::spawn(
            "reader",
            "paired-procs",
            &[("PROCREG_BENCH_URL", reg.url().into())],
        );
        compare(
            "procs2",
            "procreg lookup_pid per op, 2 reader processes / 1",
            50_000,
            &mut |n| {
                let g = kid.start_run(n as u64);
                let t = lookups(r, &hits, n);
                kid.finish(g);
                t
            },
            &mut |n| lookups(r, &hits, n),
        );
    }
    compare(
        "lmdb",
        "LMDB read_txn + get / procreg lookup_pid (hits, 75% load)",
        20_000,
        &mut |n| {
            batch(&hits, n, |p| {
                black_box(black_box(&lmdb).get(black_box(p.full)));
            })
        },
        &mut |n| lookups(r, &hits, n),
    );
    compare(
        "register",
        "procreg register_self + unregister / dashmap insert + remove",
        10_000,
        &mut |n| {
            batch(&cycled, n, |p| {
                r.register_self(black_box(p.ns), black_box(p.name), META)
                    .unwrap();
                black_box(r.unregister(black_box(p.ns), black_box(p.name)).unwrap());
            })
        },
        &mut |n| {
            batch(&cycled, n, |p| {
                let m = black_box(&dash);
                m.insert(black_box(p.full).to_owned(), VALUE);
                black_box(m.remove(black_box(p.full)));
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = config();
    targets = read_scaling_threads, read_scaling_processes, mixed, write_cycle, contended,
        metadata, liveness, sweep
}

fn main() {
    if let Ok(role) = std::env::var("PROCREG_BENCH_CHILD") {
        let url = std::env::var("PROCREG_BENCH_URL").expect("PROCREG_BENCH_URL");
        match role.as_str() {
            "reader" => child_reader(&url),
            "contender" => child_contender(&url),
            "entry_reader" => child_hot_loop(&url, false),
            "updater" => child_hot_loop(&url, true),
            r => panic!("unknown bench child role {r}"),
        }
        return;
    }
    if let Ok(spec) = std::env::var("PROCREG_BENCH_COUNT") {
        count_ops(&spec);
        return;
    }
    if let Ok(n) = std::env::var("PROCREG_BENCH_PAIRED") {
        paired(n.parse().expect("PROCREG_BENCH_PAIRED=<rounds>"));
        return;
    }
    if let Ok(n) = std::env::var("PROCREG_BENCH_SYSCALL_PROBE") {
        syscall_probe(n.parse().expect("PROCREG_BENCH_SYSCALL_PROBE=<count>"));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
