//! Contract 5 at the Registry level: deleted slots are reused. Churn of 100×
//! capacity distinct keys at 90% live load never yields `Full`, and a miss
//! after the churn costs about what it costs on a fresh table at that load.

mod common;

use common::{SegGuard, shm_url};
use procreg::{Error, Registry};
use std::collections::VecDeque;

const CAPACITY: usize = 1024;
/// 90% of capacity stays live throughout.
const LIVE: usize = CAPACITY * 9 / 10;
const CYCLES: usize = 100 * CAPACITY;
const NS: &str = "churn";

fn name(serial: usize) -> String {
    format!("key-{serial}")
}

fn churn(reg: &Registry, kind: &str) {
    let mut live: VecDeque<usize> = VecDeque::with_capacity(LIVE + 1);
    for s in 0..LIVE {
        reg.register_self(NS, &name(s), &s.to_le_bytes())
            .unwrap_or_else(|e| panic!("{kind}: initial fill, key {s}: {e}"));
        live.push_back(s);
    }
    let fresh = reg.stats().unwrap();
    assert_eq!(fresh.live, LIVE, "{kind}");
    assert_eq!(
        fresh.table().unwrap().tombstones,
        0,
        "{kind}: a fresh table has no tombstones"
    );

    for i in 0..CYCLES {
        let s = LIVE + i;
        match reg.register_self(NS, &name(s), &s.to_le_bytes()) {
            Ok(_) => {}
            Err(e @ Error::Full { .. }) => {
                panic!("{kind}: Full at cycle {i} of {CYCLES} with {LIVE} live: {e}")
            }
            Err(e) => panic!("{kind}: register at cycle {i}: {e}"),
        }
        live.push_back(s);
        let old = live.pop_front().unwrap();
        assert!(
            reg.unregister(NS, &name(old))
                .unwrap_or_else(|e| panic!("{kind}: unregister at cycle {i}: {e}")),
            "{kind}: key {old} was registered, unregister must find it (cycle {i})"
        );
    }

    let churned = reg.stats().unwrap();
    assert_eq!(churned.live, LIVE, "{kind}");
    assert_eq!(churned.table().unwrap().claimed, 0, "{kind}");
    assert_eq!(
        churned.table().unwrap().registers,
        (LIVE + CYCLES) as u64,
        "{kind}"
    );
    assert_eq!(
        churned.table().unwrap().unregisters,
        CYCLES as u64,
        "{kind}"
    );
    // Every surviving key is intact; every retired key is gone.
    for &s in &live {
        let e = reg
            .lookup(NS, &name(s))
            .unwrap()
            .unwrap_or_else(|| panic!("{kind}: live key {s} lost"));
        assert_eq!(e.metadata, s.to_le_bytes(), "{kind}: key {s}");
    }
    for s in (0..CYCLES).step_by(97) {
        assert_eq!(reg.lookup_pid(NS, &name(s)).unwrap(), None, "{kind}: {s}");
    }
    // Cost of a miss in groups read, plus the home word.
    let cost_fresh = fresh.table().unwrap().mean_miss_groups + 1.0;
    let cost_churned = churned.table().unwrap().mean_miss_groups + 1.0;
    eprintln!(
        "{kind}: miss cost fresh {cost_fresh:.3}, after {CYCLES} churn cycles {cost_churned:.3} \
         (tombstones {}, max probe {} -> {})",
        churned.table().unwrap().tombstones,
        fresh.table().unwrap().max_probe_distance,
        churned.table().unwrap().max_probe_distance
    );
    assert!(
        cost_churned <= 2.0 * cost_fresh,
        "{kind}: a miss after churn costs {cost_churned:.3} groups, more than twice the \
         {cost_fresh:.3} of a fresh table at the same load"
    );
}

#[test]
fn mem_churn_of_100x_capacity_at_90_percent_load_never_fills_and_keeps_misses_cheap() {
    let reg = Registry::builder()
        .capacity(CAPACITY)
        .create("mem:")
        .unwrap();
    churn(&reg, "mem");
}

#[test]
fn shm_churn_of_100x_capacity_at_90_percent_load_never_fills_and_keeps_misses_cheap() {
    let url = shm_url("churn");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().capacity(CAPACITY).create(&url).unwrap();
    churn(&reg, "shm");
    // Another handle (as another process would) sees the same final state.
    let other = Registry::builder().open(&url).unwrap();
    assert_eq!(other.stats().unwrap().live, LIVE);
    assert_eq!(other.list(NS).unwrap().len(), LIVE);
}
