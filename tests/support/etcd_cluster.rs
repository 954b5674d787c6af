//! The test cluster for the etcd fault and multi-process suites: endpoints
//! from `PROCREG_ETCD_ENDPOINTS`, or `scripts/etcd-cluster start` (ports from
//! `PROCREG_ETCD_PORT_BASE`), left running for the next test binary. Tests
//! that kill members take [`cluster_lock`] for writing, the others for
//! reading; killed members are restarted by a [`Restart`] guard even when
//! the test fails.
#![allow(dead_code)] // each test binary uses a different subset

use procreg::Registry;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn script(args: &[&str]) -> String {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/etcd-cluster"))
        .args(args)
        .output()
        .expect("run scripts/etcd-cluster");
    assert!(
        out.status.success(),
        "scripts/etcd-cluster {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn endpoints() -> &'static str {
    static EP: OnceLock<String> = OnceLock::new();
    EP.get_or_init(|| match std::env::var("PROCREG_ETCD_ENDPOINTS") {
        Ok(e) if !e.is_empty() => e,
        _ => script(&["start"])
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Disruptive tests take it for writing; the others for reading.
pub fn cluster_lock() -> &'static RwLock<()> {
    static L: RwLock<()> = RwLock::new(());
    &L
}

/// A key prefix of its own for each test (and each run).
pub fn prefix(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "procreg-test/{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn url_at(endpoints: &str, prefix: &str, query: &str) -> String {
    format!("etcd://{endpoints}/{prefix}{query}")
}

pub fn open_url(url: &str) -> Registry {
    Registry::open(url).unwrap_or_else(|e| panic!("open {url}: {e}"))
}

/// Restarts the named members when dropped.
pub struct Restart(pub Vec<String>);
impl Drop for Restart {
    fn drop(&mut self) {
        for m in &self.0 {
            let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/etcd-cluster"))
                .args(["restart", m])
                .output();
        }
    }
}

/// Waits (bounded, 30 s) until `reg` reads again; how long it took.
pub fn wait_readable(reg: &Registry) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if reg.revision().is_ok() {
            return t0.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the cluster did not answer within 30s");
}

/// Wall-clock nanoseconds (comparable between processes of this host).
pub fn epoch_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The variant name of an error, for counting failures by kind.
pub fn kind_of(e: &procreg::Error) -> String {
    let d = format!("{e:?}");
    d.split(['(', ' ', '{']).next().unwrap_or("?").to_owned()
}

/// Compacts the cluster's history up to `revision` with etcdctl.
pub fn compact(revision: u64) {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoints(), "compact", &revision.to_string()])
        .output()
        .expect("run etcdctl");
    assert!(
        out.status.success(),
        "etcdctl compact {revision}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
