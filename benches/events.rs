//! Costs of reacting to change (see BENCHMARKS.md, "Waiting and watching"):
//!
//! * **wake-up latency across processes**: a child process waits with
//!   `wait_for` for `ping-i`; the parent registers it and waits for the
//!   child's `pong-i`. Half of each round trip is one wake-up (register in
//!   one process → `wait_for` returns in the other); median and p99 over
//!   2,000 round trips, printed (criterion has no percentiles).
//! * **register + unregister with and without a watcher attached**: a
//!   criterion group; with a watcher, every change is also recorded in the
//!   change ring (the watcher never reads, so the ring wraps, as it would
//!   for a slow watcher: writers never wait for watchers).
//!
//! * **the same, paired**: 15 alternating rounds in one process; the median
//!   ratio is the figure BENCHMARKS.md quotes (criterion's two separate
//!   groups are exposed to different noise).
//!
//! Run: `cargo bench --bench events` (about a minute on 2 cores).

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group};
use procreg::Registry;
use std::hint::black_box;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "PROCREG_BENCH_WAKE_CHILD";
const ROUNDS: usize = 2000;
const NS: &str = "wake";

/// A fresh `shm:` registry removed on drop.
struct Fresh(Registry, String);
impl Fresh {
    fn new(tag: &str, capacity: usize) -> Fresh {
        let url = format!("shm:bench-{}-{tag}", std::process::id());
        let _ = Registry::destroy(&url);
        let reg = Registry::builder().capacity(capacity).create(&url).unwrap();
        Fresh(reg, url)
    }
}
impl Drop for Fresh {
    fn drop(&mut self) {
        let _ = Registry::destroy(&self.1);
    }
}

/// The child of the wake-up benchmark: answers every ping with a pong.
fn child(url: &str) {
    let reg = Registry::builder().open(url).unwrap();
    for i in 0..ROUNDS {
        reg.wait_for(NS, &format!("ping-{i}"), Duration::from_secs(30))
            .unwrap();
        reg.register_self(NS, &format!("pong-{i}"), b"").unwrap();
    }
    // Stay alive until the parent saw the last pong (wait_for wants a live owner).
    reg.wait_for(NS, "done", Duration::from_secs(30)).unwrap();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn wake_latency() {
    let f = Fresh::new("wake", 16384);
    let mut kid = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, &f.1)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Let the child attach and start waiting.
    std::thread::sleep(Duration::from_millis(200));
    let mut one_way = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let t0 = Instant::now();
        f.0.register_self(NS, &format!("ping-{i}"), b"").unwrap();
        f.0.wait_for(NS, &format!("pong-{i}"), Duration::from_secs(30))
            .unwrap();
        one_way.push(t0.elapsed() / 2);
    }
    f.0.register_self(NS, "done", b"").unwrap();
    assert!(kid.wait().unwrap().success());
    one_way.sort();
    println!(
        "wake_latency/cross_process: one-way (half a round trip) over {ROUNDS} rounds: \
         median {:.1} us, p90 {:.1} us, p99 {:.1} us, max {:.1} us",
        percentile(&one_way, 0.5).as_secs_f64() * 1e6,
        percentile(&one_way, 0.9).as_secs_f64() * 1e6,
        percentile(&one_way, 0.99).as_secs_f64() * 1e6,
        one_way.last().unwrap().as_secs_f64() * 1e6,
    );
}

/// `register_self` + `unregister` cycles without and with a watcher
/// attached, alternating 15 rounds of 200,000 cycles in one process, so
/// that machine noise hits both alike; prints the median per-round ratio.
fn ring_cost_paired() {
    let f = Fresh::new("ring-paired", 4096);
    for i in 0..3072 {
        f.0.register_self("bg", &format!("{i:016}"), b"port=5432")
            .unwrap();
    }
    let cycles = |n: usize| {
        let t = Instant::now();
        for _ in 0..n {
            let r = black_box(&f.0);
            r.register_self("bench-ns", black_box("0123456789abcdef"), b"port=5432")
                .unwrap();
            r.unregister("bench-ns", black_box("0123456789abcdef"))
                .unwrap();
        }
        t.elapsed().as_nanos() as f64 / n as f64
    };
    let (mut plain, mut watched, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..15 {
        let a = cycles(200_000);
        let w = f.0.watch(None, f.0.revision().unwrap()).unwrap();
        let b = cycles(200_000);
        drop(w);
        plain.push(a);
        watched.push(b);
        ratio.push(b / a);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "ring_cost/paired: register_self+unregister median {:.1} ns without a watcher, \
         {:.1} ns with one attached; median ratio of 15 alternating rounds {:.3}",
        median(&mut plain),
        median(&mut watched),
        median(&mut ratio)
    );
}

fn register_with_and_without_watcher(c: &mut Criterion) {
    let mut g = c.benchmark_group("register_unregister");
    let f = Fresh::new("ring", 4096);
    // 75% background load, as in benches/lookup.rs.
    for i in 0..3072 {
        f.0.register_self("bg", &format!("{i:016}"), b"port=5432")
            .unwrap();
    }
    let cycle = || {
        let r = black_box(&f.0);
        r.register_self("bench-ns", black_box("0123456789abcdef"), b"port=5432")
            .unwrap();
        r.unregister("bench-ns", black_box("0123456789abcdef"))
            .unwrap();
    };
    g.bench_function("no_watcher", |b| b.iter(cycle));
    let w = f.0.watch(None, f.0.revision().unwrap()).unwrap();
    g.bench_function("watcher_attached", |b| b.iter(cycle));
    drop(w);
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = register_with_and_without_watcher
}

fn main() {
    if let Ok(url) = std::env::var(CHILD) {
        child(&url);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing.
    if std::env::args().any(|a| a == "--bench") {
        wake_latency();
        ring_cost_paired();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
