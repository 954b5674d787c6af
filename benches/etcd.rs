//! The etcd backend against a bare etcd client, on a real 3-member cluster
//! (issue: etcd backend). Everything in one run, side by side:
//!
//! * `etcd_register_cycle`: one `register_self` + `unregister` through
//!   procreg (`Registry::open("etcd://…")`) against what a bare etcd-client
//!   needs for the same thing: a put-if-absent transaction under a lease
//!   (`create_revision == 0 → put`, else get) and a delete. Two round trips
//!   on both sides.
//! * `etcd_lookup`: procreg `lookup` (full entry) and `lookup_pid` against a
//!   bare linearizable `get` of the same key, a serializable `get`, and a
//!   linearizable `get` issued the way procreg issues it (`Handle::block_on`
//!   on a current-thread runtime driven by another thread), which separates
//!   the cost of that arrangement from procreg's own work.
//! * Paired rounds (`etcd_latency`, `etcd_overhead` lines): batches of single
//!   timed operations of each side back to back, alternating which side goes
//!   first; per-op median and spread, and the median of the per-round
//!   procreg/raw ratios.
//! * `etcd_throughput`: 1 and 8 client processes (this binary re-executed,
//!   each with its own handle and session) doing register / lookup /
//!   unregister cycles of their own keys, a fixed number of operations in
//!   all; operations per second, all processes together.
//! * `etcd_expiry`: owner processes (children holding two entries each
//!   under their session lease, TTL 2 s and 10 s) are SIGKILLed (and
//!   reaped) at a random point of their keep-alive period; the time from
//!   the kill to the parent's watcher reporting the entries deleted, and
//!   the kind it reports. The entries of most owners name the parent's pid
//!   (alive), so the watcher cannot judge them by pid, as a watcher on
//!   another host cannot, and classifies the delete by the lease
//!   (`Expired`); two more owners at TTL 2 s register their own pid, to show
//!   what a watcher on the dead owner's host reports.
//!
//! Every result is also printed as a `BENCH-TABLE {json}` line.
//!
//! Cluster: `PROCREG_ETCD_ENDPOINTS=h:p,h:p,h:p` names a running one;
//! otherwise the bench starts `scripts/etcd-cluster` (ports from
//! `PROCREG_ETCD_PORT_BASE`, default 27790) and stops it (by its pid files)
//! at the end. procreg and the raw client both talk to the first endpoint.
//!
//! Run: `cargo bench --features etcd --bench etcd` (about 2 minutes);
//! `PROCREG_BENCH_QUICK=1` shortens it.

mod common;

use common::*;
use criterion::Criterion;
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp};
use procreg::{EventKind, Registry};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Default client port base of the cluster this bench starts.
const PORT_BASE: &str = "27790";
/// Session TTL of the latency and throughput handles.
const TTL: &str = "10s";

// ---- the cluster ------------------------------------------------------------

fn script() -> std::process::Command {
    let mut c =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/etcd-cluster"));
    if std::env::var_os("PROCREG_ETCD_PORT_BASE").is_none() {
        c.env("PROCREG_ETCD_PORT_BASE", PORT_BASE);
    }
    if std::env::var_os("PROCREG_ETCD_DIR").is_none() {
        c.env(
            "PROCREG_ETCD_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/target/etcd-bench-cluster"),
        );
    }
    c
}

fn script_out(args: &[&str]) -> String {
    let out = script()
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run scripts/etcd-cluster");
    assert!(
        out.status.success(),
        "scripts/etcd-cluster {args:?} failed ({})",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The cluster of this run; stops it on drop if this process started it.
struct Cluster {
    endpoints: Vec<String>,
    started: bool,
}

impl Cluster {
    fn get() -> Cluster {
        if let Ok(eps) = std::env::var("PROCREG_ETCD_ENDPOINTS") {
            return Cluster {
                endpoints: eps.split(',').map(str::to_owned).collect(),
                started: false,
            };
        }
        eprintln!("etcd bench: starting scripts/etcd-cluster");
        let out = script_out(&["start"]);
        let line = out.lines().last().unwrap_or_default();
        Cluster {
            endpoints: line.split(',').map(str::to_owned).collect(),
            started: true,
        }
    }

    fn url(&self, prefix: &str, ttl: &str) -> String {
        format!(
            "etcd://{}/{prefix}?ttl={ttl}&timeout=5s",
            self.endpoints.join(",")
        )
    }

    /// Number (1..3) of the leader, when this run started the cluster.
    fn leader(&self) -> Option<String> {
        self.started.then(|| script_out(&["leader"]))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started {
            eprintln!("etcd bench: stopping the cluster");
            let _ = script().arg("stop").status();
        }
    }
}

// ---- a bare etcd client ---------------------------------------------------------

/// A bare etcd-client on one endpoint, with a lease of its own, as an
/// application using etcd directly would hold. Its runtime is either run by
/// the calling thread (`block_on`) or driven by a thread of its own (as
/// procreg's), entered with `Handle::block_on`.
struct Raw {
    client: Client,
    lease: i64,
    handle: tokio::runtime::Handle,
    /// Same-thread runtime (None when driven by `driver`).
    rt: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    driver: Option<std::thread::JoinHandle<()>>,
}

impl Raw {
    fn connect(endpoint: &str, driven: bool) -> Raw {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let handle = rt.handle().clone();
        let (rt, stop, driver) = if driven {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let t = std::thread::spawn(move || {
                let _ = rt.block_on(rx);
            });
            (None, Some(tx), Some(t))
        } else {
            (Some(rt), None, None)
        };
        let ep = endpoint.to_owned();
        let fut = async move {
            let mut c =
                Client::connect([ep], Some(ConnectOptions::new().with_require_leader(true)))
                    .await?;
            let lease = c.lease_grant(600, None).await?.id();
            Ok::<_, etcd_client::Error>((c, lease))
        };
        let (client, lease) = match &rt {
            Some(rt) => rt.block_on(fut),
            None => handle.block_on(fut),
        }
        .expect("connect the raw etcd client and grant its lease");
        Raw {
            client,
            lease,
            handle,
            rt,
            stop,
            driver,
        }
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            None => self.handle.block_on(f),
        }
    }

    /// Put-if-absent under the lease (the create of a registration).
    fn create(&self, key: &str, value: &[u8]) {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                value,
                Some(PutOptions::new().with_lease(self.lease)),
            )])
            .or_else([TxnOp::get(key, None)]);
        let mut c = self.client.clone();
        let r = self
            .block_on(async move { c.txn(txn).await })
            .expect("raw txn");
        assert!(r.succeeded(), "raw put-if-absent of {key} found the key");
    }

    fn delete(&self, key: &str) {
        let mut c = self.client.clone();
        let r = self
            .block_on(async move { c.delete(key, None).await })
            .expect("raw delete");
        assert_eq!(r.deleted(), 1, "raw delete of {key}");
    }

    /// Value length of `key` (linearizable or serializable get).
    fn get(&self, key: &str, serializable: bool) -> usize {
        let mut c = self.client.clone();
        let opts = serializable.then(|| GetOptions::new().with_serializable());
        let r = self
            .block_on(async move { c.get(key, opts).await })
            .expect("raw get");
        r.kvs().first().map_or(0, |kv| kv.value().len())
    }

    fn delete_prefix(&self, prefix: &str) {
        let mut c = self.client.clone();
        let _ = self.block_on(async move {
            c.delete(
                prefix,
                Some(etcd_client::DeleteOptions::new().with_prefix()),
            )
            .await
        });
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let (mut c, lease) = (self.client.clone(), self.lease);
        let _ = self.block_on(async move { c.lease_revoke(lease).await });
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.driver.take() {
            let _ = t.join();
        }
    }
}

// ---- figures ------------------------------------------------------------------

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Median, 10th and 90th percentile, min and max of `v` (sorted).
fn spread(v: &[f64]) -> [(&'static str, serde_json::Value); 6] {
    let r = |x: f64| serde_json::Value::from((x * 10.0).round() / 10.0);
    [
        ("median", r(quantile(v, 0.5))),
        ("p10", r(quantile(v, 0.1))),
        ("p90", r(quantile(v, 0.9))),
        ("min", r(v.first().copied().unwrap_or(f64::NAN))),
        ("max", r(v.last().copied().unwrap_or(f64::NAN))),
        ("n", v.len().into()),
    ]
}

fn line(table: &str, head: &[(&str, serde_json::Value)], tail: &[(&str, serde_json::Value)]) {
    let mut f: Vec<(&str, serde_json::Value)> = head.to_vec();
    f.extend_from_slice(tail);
    table_line(table, &f);
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---- the latency run ----------------------------------------------------------

/// What the latency groups share.
struct Fixture {
    reg: Registry,
    raw: Raw,
    driven: Raw,
    /// procreg's key of `LOOKUP_NAME`, read raw by the raw side of the lookups.
    lookup_key: String,
    /// Key the raw side creates and deletes.
    raw_cycle_key: String,
    /// A value as long as procreg's for the same entry.
    raw_value: Vec<u8>,
}

const LOOKUP_NAME: &str = "lookup-key-0123456";
const CYCLE_NAME: &str = "cycle-key-01234567";

impl Fixture {
    fn new(cluster: &Cluster, prefix: &str) -> Fixture {
        let reg = Registry::open(&cluster.url(prefix, TTL)).expect("open the etcd registry");
        reg.register_self(NS, LOOKUP_NAME, META)
            .expect("register the lookup key");
        let raw = Raw::connect(&cluster.endpoints[0], false);
        let driven = Raw::connect(&cluster.endpoints[0], true);
        let lookup_key = format!("/{prefix}/u/{NS}/{LOOKUP_NAME}");
        let len = raw.get(&lookup_key, false);
        assert!(len > 0, "procreg's entry is not at {lookup_key}");
        Fixture {
            reg,
            raw,
            driven,
            lookup_key,
            raw_cycle_key: format!("/{prefix}-raw/u/{NS}/{CYCLE_NAME}"),
            raw_value: vec![b'x'; len],
        }
    }

    fn procreg_cycle(&self) {
        self.reg
            .register_self(NS, CYCLE_NAME, META)
            .expect("procreg register");
        assert!(
            self.reg
                .unregister(NS, CYCLE_NAME)
                .expect("procreg unregister")
        );
    }

    fn raw_cycle(&self) {
        self.raw.create(&self.raw_cycle_key, &self.raw_value);
        self.raw.delete(&self.raw_cycle_key);
    }

    fn procreg_lookup(&self) {
        let e = self.reg.lookup(NS, LOOKUP_NAME).expect("procreg lookup");
        assert!(black_box(e).is_some());
    }

    fn procreg_lookup_pid(&self) {
        let p = self
            .reg
            .lookup_pid(NS, LOOKUP_NAME)
            .expect("procreg lookup_pid");
        assert_eq!(black_box(p), Some(std::process::id()));
    }

    fn raw_get(&self) {
        assert!(black_box(self.raw.get(&self.lookup_key, false)) > 0);
    }

    fn raw_get_serializable(&self) {
        assert!(black_box(self.raw.get(&self.lookup_key, true)) > 0);
    }

    fn driven_get(&self) {
        assert!(black_box(self.driven.get(&self.lookup_key, false)) > 0);
    }
}

type Op<'a> = (&'a str, &'a dyn Fn());

fn criterion_groups(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("etcd_register_cycle");
    g.bench_function("procreg/register_self+unregister", |b| {
        b.iter(|| fx.procreg_cycle())
    });
    g.bench_function("raw/txn_put_if_absent+delete", |b| {
        b.iter(|| fx.raw_cycle())
    });
    g.finish();

    let mut g = c.benchmark_group("etcd_lookup");
    g.bench_function("procreg/lookup", |b| b.iter(|| fx.procreg_lookup()));
    g.bench_function("procreg/lookup_pid", |b| b.iter(|| fx.procreg_lookup_pid()));
    g.bench_function("raw/get_linearizable", |b| b.iter(|| fx.raw_get()));
    g.bench_function("raw/get_linearizable_driven_runtime", |b| {
        b.iter(|| fx.driven_get())
    });
    g.bench_function("raw/get_serializable", |b| {
        b.iter(|| fx.raw_get_serializable())
    });
    g.finish();
}

/// Paired rounds over `sides`: each round times `batch` single operations
/// of every side, the first side rotating; returns per side the single-op
/// microseconds (sorted) and the per-round medians.
fn paired(sides: &[Op<'_>], rounds: usize, batch: usize) -> Vec<(Vec<f64>, Vec<f64>)> {
    let mut out: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); sides.len()];
    for r in 0..rounds {
        for k in 0..sides.len() {
            let s = (r + k) % sides.len();
            let mut v = Vec::with_capacity(batch);
            for _ in 0..batch {
                let t = Instant::now();
                (sides[s].1)();
                v.push(t.elapsed().as_nanos() as f64 / 1e3);
            }
            out[s].0.extend_from_slice(&v);
            out[s].1.push(median(&mut v));
        }
    }
    out.into_iter().map(|(all, m)| (sorted(all), m)).collect()
}

fn ratio_line(group: &str, num: (&str, &[f64]), den: (&str, &[f64])) {
    let ratios = sorted(num.1.iter().zip(den.1).map(|(a, b)| a / b).collect());
    let r = |x: f64| serde_json::Value::from((x * 1000.0).round() / 1000.0);
    table_line(
        "etcd_overhead",
        &[
            ("group", group.into()),
            ("ratio", format!("{} / {}", num.0, den.0).into()),
            ("median", r(quantile(&ratios, 0.5))),
            ("q1", r(quantile(&ratios, 0.25))),
            ("q3", r(quantile(&ratios, 0.75))),
            ("rounds", ratios.len().into()),
        ],
    );
}

fn paired_rounds(fx: &Fixture) {
    let (rounds, batch) = if quick() { (7, 20) } else { (25, 40) };
    let cycle: [Op<'_>; 2] = [
        ("procreg register_self+unregister", &|| fx.procreg_cycle()),
        ("raw txn put-if-absent+delete", &|| fx.raw_cycle()),
    ];
    let res = paired(&cycle, rounds, batch);
    for (side, (all, _)) in cycle.iter().zip(&res) {
        line(
            "etcd_latency",
            &[
                ("group", "register_cycle".into()),
                ("op", side.0.into()),
                ("unit", "us".into()),
            ],
            &spread(all),
        );
    }
    ratio_line("register_cycle", ("procreg", &res[0].1), ("raw", &res[1].1));

    let lookups: [Op<'_>; 5] = [
        ("procreg lookup", &|| fx.procreg_lookup()),
        ("procreg lookup_pid", &|| fx.procreg_lookup_pid()),
        ("raw get linearizable", &|| fx.raw_get()),
        ("raw get linearizable, runtime on another thread", &|| {
            fx.driven_get()
        }),
        ("raw get serializable", &|| fx.raw_get_serializable()),
    ];
    let res = paired(&lookups, rounds, batch);
    for (side, (all, _)) in lookups.iter().zip(&res) {
        line(
            "etcd_latency",
            &[
                ("group", "lookup".into()),
                ("op", side.0.into()),
                ("unit", "us".into()),
            ],
            &spread(all),
        );
    }
    ratio_line(
        "lookup",
        ("procreg lookup", &res[0].1),
        ("raw get", &res[2].1),
    );
    ratio_line(
        "lookup",
        ("procreg lookup_pid", &res[1].1),
        ("raw get", &res[2].1),
    );
    ratio_line(
        "lookup",
        ("raw get, runtime on another thread", &res[3].1),
        ("raw get", &res[2].1),
    );
    ratio_line(
        "lookup",
        ("procreg lookup", &res[0].1),
        ("raw get, runtime on another thread", &res[3].1),
    );
    ratio_line(
        "lookup",
        ("raw get serializable", &res[4].1),
        ("raw get", &res[2].1),
    );

    // A shm: lookup of the same kind, for scale.
    let shm = ShmRegistry::create("etcd-scale", 64);
    shm.register_self(NS, LOOKUP_NAME, META)
        .expect("shm register");
    let n = 200_000u32;
    let mut v = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..n {
            black_box(shm.lookup_pid(black_box(NS), black_box(LOOKUP_NAME)).ok());
        }
        v.push(t.elapsed().as_nanos() as f64 / f64::from(n));
    }
    let shm_ns = median(&mut v);
    let etcd_us = quantile(&res[1].0, 0.5);
    table_line(
        "etcd_vs_shm",
        &[
            ("shm_lookup_pid_ns", ((shm_ns * 10.0).round() / 10.0).into()),
            (
                "etcd_lookup_pid_us",
                ((etcd_us * 10.0).round() / 10.0).into(),
            ),
            ("ratio", (etcd_us * 1e3 / shm_ns).round().into()),
        ],
    );
}

// ---- throughput: client processes ---------------------------------------------

/// Child "cycler": `register_self`, `lookup_pid`, `unregister` of keys of
/// its own, `iters` cycles per command (3 operations each).
fn child_cycler(url: &str) {
    let reg = Registry::open(url).expect("child: open the etcd registry");
    let me = std::process::id();
    let names: Vec<String> = (0..8).map(|j| format!("cyc-{me}-{j}")).collect();
    serve_child(
        |iters| {
            let mut ok = 0u64;
            for i in 0..iters as usize {
                let name = &names[i % names.len()];
                ok += u64::from(reg.register_self(NS, name, META).is_ok());
                ok += u64::from(reg.lookup_pid(NS, name).ok().flatten() == Some(me));
                ok += u64::from(reg.unregister(NS, name).unwrap_or(false));
            }
            (3 * iters, ok)
        },
        |_| (0, 0),
    );
}

fn throughput(cluster: &Cluster, prefix: &str) {
    let total_ops: u64 = if quick() { 600 } else { 2400 };
    let reps = if quick() { 1 } else { 3 };
    let url = cluster.url(prefix, TTL);
    for procs in [1u64, 8] {
        let kids: Vec<Child> = (0..procs)
            .map(|i| {
                Child::spawn(
                    "cycler",
                    &format!("cyc{i}"),
                    &[("PROCREG_BENCH_URL", url.clone())],
                )
            })
            .collect();
        let cycles = total_ops / 3 / procs;
        let mut rates = Vec::new();
        for _ in 0..reps {
            let t0 = Instant::now();
            let gens: Vec<u64> = kids.iter().map(|k| k.start_run(cycles)).collect();
            for (k, g) in kids.iter().zip(gens) {
                k.finish(g);
                assert_eq!(
                    k.ctrl.load(ctl::WINS),
                    3 * cycles,
                    "a cycler's operation failed"
                );
            }
            rates.push((3 * cycles * procs) as f64 / t0.elapsed().as_secs_f64());
        }
        let rates = sorted(rates);
        line(
            "etcd_throughput",
            &[
                ("processes", procs.into()),
                ("ops_per_run", (3 * cycles * procs).into()),
                ("unit", "ops/s".into()),
            ],
            &spread(&rates),
        );
    }
}

// ---- expiry after an owner's death ----------------------------------------------

/// Child "owner": registers `o<tag>-a` and `o<tag>-b` in `PROCREG_BENCH_NS`
/// under its session (for `PROCREG_BENCH_PID`, or for itself), says ready,
/// then idles until killed (or told to exit).
fn child_owner(url: &str) {
    let reg = Registry::open(url).expect("owner: open the etcd registry");
    let ns = std::env::var("PROCREG_BENCH_NS").expect("PROCREG_BENCH_NS");
    let tag = std::env::var("PROCREG_BENCH_TAG").expect("PROCREG_BENCH_TAG");
    let pid = std::env::var("PROCREG_BENCH_PID")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(std::process::id);
    for s in ["a", "b"] {
        reg.register(&ns, &format!("o{tag}-{s}"), pid, META)
            .expect("owner: register");
    }
    let ctrl = Ctrl::open(&std::env::var("PROCREG_BENCH_CTRL").expect("PROCREG_BENCH_CTRL"));
    ctrl.store(ctl::WINS, u64::MAX);
    let seen = ctrl.load(ctl::GEN);
    while ctrl.load(ctl::GEN) == seen {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn expiry(cluster: &Cluster, prefix: &str) {
    let reg = Registry::open(&cluster.url(prefix, TTL)).expect("open the watcher's registry");
    let plan: &[(u64, usize, usize)] = if quick() {
        &[(2, 3, 1), (10, 2, 0)]
    } else {
        &[(2, 6, 2), (10, 5, 0)]
    };
    let parent = std::process::id().to_string();
    let mut rng = SplitMix(0x5EED);
    for &(ttl, remote, local) in plan {
        let ns = format!("expiry-{ttl}s");
        let url = cluster.url(prefix, &format!("{ttl}s"));
        let mut w = reg
            .watch(Some(&ns), reg.revision().expect("revision"))
            .expect("watch");
        let n = remote + local;
        let mut kids: Vec<Child> = (0..n)
            .map(|i| {
                Child::spawn(
                    "owner",
                    &format!("own{ttl}-{i}"),
                    &[
                        ("PROCREG_BENCH_URL", url.clone()),
                        ("PROCREG_BENCH_NS", ns.clone()),
                        ("PROCREG_BENCH_TAG", i.to_string()),
                        (
                            "PROCREG_BENCH_PID",
                            if i < remote {
                                parent.clone()
                            } else {
                                "self".into()
                            },
                        ),
                    ],
                )
            })
            .collect();
        // Kill each at a random point of its keep-alive period (ttl / 3):
        // all kills are over before the earliest expiry can come.
        let period_ms = ttl * 1000 / 3;
        let mut offsets: Vec<(u64, usize)> = (0..n).map(|i| (rng.below(period_ms), i)).collect();
        offsets.sort_unstable();
        let start = Instant::now();
        let mut killed_at = vec![start; n];
        for &(off, i) in &offsets {
            let at = start + Duration::from_millis(off);
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            killed_at[i] = kids[i].kill_now();
            kids[i].reap();
        }
        // The first delete of each owner's entries: (ms after its kill, kind).
        let mut got: Vec<Option<(f64, EventKind)>> = vec![None; n];
        let deadline = Instant::now() + Duration::from_secs(ttl + 8);
        while got.iter().any(Option::is_none) && Instant::now() < deadline {
            let Ok(e) = w.next(deadline.saturating_duration_since(Instant::now())) else {
                break;
            };
            let now = Instant::now();
            if e.kind == EventKind::Registered {
                continue;
            }
            let Some(i) = e
                .name
                .strip_prefix('o')
                .and_then(|r| r.split('-').next())
                .and_then(|t| t.parse::<usize>().ok())
            else {
                continue;
            };
            if i < n && got[i].is_none() {
                got[i] = Some(((now - killed_at[i]).as_secs_f64() * 1e3, e.kind));
            }
        }
        let bound_ms = (ttl * 1000 + 1500) as f64;
        for (label, range) in [
            (
                "entry pid alive: judged by the lease (as from another host)",
                0..remote,
            ),
            (
                "entry pid = the killed owner, on the watcher's host",
                remote..n,
            ),
        ] {
            if range.is_empty() {
                continue;
            }
            let mut kinds: Vec<String> = Vec::new();
            let mut ms = Vec::new();
            let mut missing = 0;
            for g in &got[range] {
                match g {
                    Some((t, k)) => {
                        ms.push(*t);
                        kinds.push(k.to_string());
                    }
                    None => missing += 1,
                }
            }
            kinds.sort();
            kinds.dedup();
            let ms = sorted(ms);
            line(
                "etcd_expiry",
                &[
                    ("ttl_s", ttl.into()),
                    ("owner", label.into()),
                    ("unit", "ms from SIGKILL to the watcher's event".into()),
                    ("kinds", kinds.join(",").into()),
                    ("missing", missing.into()),
                    (
                        "within_ttl_plus_1_5s",
                        ms.last().is_some_and(|&m| m <= bound_ms).into(),
                    ),
                ],
                &spread(&ms),
            );
        }
        let _ = reg.clear_namespace(&ns);
    }
}

// ---- main -------------------------------------------------------------------------

fn setup_line(cluster: &Cluster, when: &str) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let etcd = std::process::Command::new("etcd")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    table_line(
        "etcd_setup",
        &[
            ("when", when.into()),
            ("endpoints", cluster.endpoints.join(",").into()),
            ("started_here", cluster.started.into()),
            ("leader_member", cluster.leader().unwrap_or_default().into()),
            ("member_used", "1 (first endpoint)".into()),
            (
                "cpus",
                std::thread::available_parallelism()
                    .map_or(0, |n| n.get())
                    .into(),
            ),
            ("cpu", cpu.into()),
            (
                "kernel",
                std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .unwrap_or_default()
                    .trim()
                    .into(),
            ),
            ("etcd", etcd.into()),
            ("loadavg", load_average().into()),
        ],
    );
}

fn main() {
    if let Ok(role) = std::env::var("PROCREG_BENCH_CHILD") {
        let url = std::env::var("PROCREG_BENCH_URL").expect("PROCREG_BENCH_URL");
        match role.as_str() {
            "cycler" => child_cycler(&url),
            "owner" => child_owner(&url),
            r => panic!("unknown bench child role {r}"),
        }
        return;
    }
    let t0 = Instant::now();
    let cluster = Cluster::get();
    setup_line(&cluster, "start");
    let prefix = format!("procreg-bench-{}", std::process::id());
    {
        let fx = Fixture::new(&cluster, &prefix);
        let mut c = if quick() {
            Criterion::default()
                .sample_size(10)
                .warm_up_time(Duration::from_millis(200))
                .measurement_time(Duration::from_millis(500))
        } else {
            Criterion::default()
                .sample_size(20)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2))
        }
        .without_plots()
        .configure_from_args();
        criterion_groups(&mut c, &fx);
        paired_rounds(&fx);
        let _ = fx.reg.clear_namespace(NS);
        fx.raw.delete_prefix(&format!("/{prefix}-raw/"));
        c.final_summary();
    }
    throughput(&cluster, &prefix);
    expiry(&cluster, &prefix);
    setup_line(&cluster, "end");
    table_line(
        "etcd_run",
        &[("seconds", (t0.elapsed().as_secs_f64().round()).into())],
    );
}
