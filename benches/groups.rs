//! Costs of process groups and metadata queries (see BENCHMARKS.md,
//! "Groups and queries"), all on a fresh `shm:` registry of the default
//! capacity (4,096 slots):
//!
//! * **members** of a group of 10, 100 and 1,000 members (one read of the
//!   namespace; each member is a live thread id, which has its own
//!   `/proc/<tid>/stat` start time, so it counts as a live owner);
//! * **join + leave** against **register + unregister** of the same pid
//!   and metadata (a member is an entry under a name that holds a NUL), and
//!   against a register + unregister of a name as long as the member's;
//! * **select** of `role=api` over 3,000 entries (a third match) against
//!   `list_all` plus the same filter written in Rust.
//!
//! Run: `cargo bench --bench groups` (about a minute on 2 cores).

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use procreg::Registry;
use std::hint::black_box;

/// A fresh `shm:` registry removed on drop.
struct Fresh(Registry, String);
impl Fresh {
    fn new(tag: &str) -> Fresh {
        let url = format!("shm:bench-groups-{}-{tag}", std::process::id());
        let _ = Registry::destroy(&url);
        let reg = Registry::builder().create(&url).unwrap();
        Fresh(reg, url)
    }
}
impl Drop for Fresh {
    fn drop(&mut self) {
        let _ = Registry::destroy(&self.1);
    }
}

#[path = "../tests/support/threads.rs"]
mod threads;
use threads::Threads;

fn members(c: &mut Criterion) {
    let threads = Threads::spawn(1000);
    let mut g = c.benchmark_group("members");
    for n in [10usize, 100, 1000] {
        let f = Fresh::new(&format!("members-{n}"));
        for &tid in &threads.tids[..n] {
            f.0.join("bench", "workers", tid, b"role=worker").unwrap();
        }
        assert_eq!(f.0.members("bench", "workers").unwrap().len(), n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(f.0.members("bench", "workers").unwrap()))
        });
    }
    g.finish();
}

fn join_leave(c: &mut Criterion) {
    let f = Fresh::new("churn");
    let me = std::process::id();
    let mut g = c.benchmark_group("churn");
    g.bench_function("join+leave", |b| {
        b.iter(|| {
            f.0.join("bench", "workers", me, b"role=worker").unwrap();
            assert!(f.0.leave("bench", "workers", me).unwrap());
        })
    });
    g.bench_function("register+unregister", |b| {
        b.iter(|| {
            f.0.register("bench", "workers", me, b"role=worker")
                .unwrap();
            assert!(f.0.unregister("bench", "workers").unwrap());
        })
    });
    // The member's stored name is longer ("workers\0<pid>"): the same
    // register + unregister with a name of that length.
    let long = format!("workers-{me}");
    g.bench_function("register+unregister (member-length name)", |b| {
        b.iter(|| {
            f.0.register("bench", &long, me, b"role=worker").unwrap();
            assert!(f.0.unregister("bench", &long).unwrap());
        })
    });
    g.finish();
}

fn select(c: &mut Criterion) {
    let f = Fresh::new("select");
    let me = std::process::id();
    let roles = ["api", "db", "cache"];
    for i in 0..3000 {
        let meta = format!("role={} port={} worker={i}", roles[i % 3], 8000 + i);
        f.0.register(
            &format!("ns{}", i % 4),
            &format!("svc-{i}"),
            me,
            meta.as_bytes(),
        )
        .unwrap();
    }
    let by_hand = || {
        f.0.list_all()
            .unwrap()
            .into_iter()
            .filter(|e| e.metadata.split(|&b| b == b' ').any(|t| t == b"role=api"))
            .collect::<Vec<_>>()
    };
    assert_eq!(f.0.select(None, "role=api").unwrap().len(), 1000);
    assert_eq!(by_hand().len(), 1000);
    let mut g = c.benchmark_group("select-3000");
    g.bench_function("select role=api", |b| {
        b.iter(|| black_box(f.0.select(None, "role=api").unwrap()))
    });
    g.bench_function("list_all+filter", |b| b.iter(|| black_box(by_hand())));
    g.finish();
}

criterion_group!(benches, members, join_leave, select);
criterion_main!(benches);
