//! Process groups across real processes on `shm:` (the test binary
//! re-executes itself; the harness is the reliability suite's, in
//! `tests/reliability_support`), and the size of a group on a default-size
//! registry.

mod common;
mod reliability_support;

use common::{SegGuard, shm_url};
use procreg::{Error, Registry};
use reliability_support::{Kid, child_role, hear, say};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn pid_set(reg: &Registry, ns: &str, group: &str) -> Vec<u32> {
    reg.members(ns, group)
        .unwrap()
        .into_iter()
        .map(|e| e.pid)
        .collect()
}

// ---- 16 processes join one group and all see 16 ---------------------------

const JOIN_KIDS: usize = 16;

#[test]
fn child_join_and_count() {
    let Some((url, args)) = child_role("join16") else {
        return;
    };
    let reg = Registry::builder().open(&url).unwrap();
    reg.join_self("grp", "workers", format!("kid={args}").as_bytes())
        .unwrap();
    say("joined");
    let seen = reg
        .wait_for_members("grp", "workers", JOIN_KIDS, Duration::from_secs(60))
        .unwrap();
    let pids: Vec<String> = seen.iter().map(|e| e.pid.to_string()).collect();
    say(&format!("saw {}", pids.join(",")));
    assert_eq!(hear().as_deref(), Some("exit"));
}

#[test]
fn sixteen_processes_join_one_group_and_every_one_sees_all_sixteen() {
    let url = shm_url("g16");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().create(&url).unwrap();
    let mut kids: Vec<Kid> = (0..JOIN_KIDS)
        .map(|k| Kid::spawn("child_join_and_count", "join16", &url, &k.to_string(), &[]))
        .collect();
    let want: BTreeSet<u32> = kids.iter().map(Kid::pid).collect();
    for kid in &mut kids {
        kid.expect("joined");
    }
    for kid in &mut kids {
        let saw: BTreeSet<u32> = kid
            .expect("saw")
            .split(',')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(saw, want, "{}", kid.what);
    }
    let m = reg.members("grp", "workers").unwrap();
    assert_eq!(m.iter().map(|e| e.pid).collect::<BTreeSet<_>>(), want);
    assert_eq!(m.len(), JOIN_KIDS, "each process once");
    for e in &m {
        let kid = kids.iter().position(|k| k.pid() == e.pid).unwrap();
        assert_eq!(e.metadata, format!("kid={kid}").into_bytes());
    }
    for kid in &mut kids {
        kid.send("exit");
    }
    for kid in &mut kids {
        kid.assert_success();
    }
    // All gone: their members are dead, and a sweep reclaims them.
    assert_eq!(reg.health_check().unwrap().dead_owners, JOIN_KIDS);
    assert_eq!(reg.sweep().unwrap(), JOIN_KIDS);
    assert!(reg.members("grp", "workers").unwrap().is_empty());
}

// ---- a SIGKILLed member disappears after sweep ---------------------------

#[test]
fn child_join_and_hang() {
    let Some((url, _)) = child_role("hang") else {
        return;
    };
    let reg = Registry::builder().open(&url).unwrap();
    reg.join_self("grp", "workers", b"doomed").unwrap();
    say("joined");
    let _ = hear(); // until killed
}

#[test]
fn a_sigkilled_member_disappears_after_sweep() {
    let url = shm_url("gkill");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().create(&url).unwrap();
    let me = std::process::id();
    reg.join_self("grp", "workers", b"parent").unwrap();
    let mut kid = Kid::spawn("child_join_and_hang", "hang", &url, "", &[]);
    kid.expect("joined");
    let victim = kid.pid();
    let mut both = vec![me, victim];
    both.sort();
    assert_eq!(pid_set(&reg, "grp", "workers"), both);
    assert!(kid.kill().signal().is_some());
    // Listed until reclaimed, but no longer counted as live.
    assert_eq!(pid_set(&reg, "grp", "workers"), both);
    assert!(matches!(
        reg.wait_for_members("grp", "workers", 2, Duration::from_millis(20)),
        Err(Error::Timeout { .. })
    ));
    assert_eq!(reg.sweep().unwrap(), 1);
    assert_eq!(pid_set(&reg, "grp", "workers"), vec![me]);
    // Its slot is free again: it can be joined by a new process.
    assert_eq!(reg.stats().unwrap().live, 1);
}

// ---- wait_for_members wakes when the n-th member joins elsewhere --------

const WAKE_ROUNDS: usize = 30;

#[test]
fn child_join_on_go() {
    let Some((url, _)) = child_role("wake") else {
        return;
    };
    let reg = Registry::builder().open(&url).unwrap();
    reg.join_self("warm", "up", b"").unwrap(); // take the writer slot first
    say("ready");
    while let Some(line) = hear() {
        let Some(i) = line.strip_prefix("go ") else {
            break;
        };
        let t = now_ns();
        reg.join_self("wake", &format!("g{i}"), b"").unwrap();
        say(&format!("joined {t}"));
    }
}

#[test]
fn wait_for_members_wakes_within_milliseconds_when_the_nth_joins_in_another_process() {
    let url = shm_url("gwake");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().create(&url).unwrap();
    let mut kid = Kid::spawn("child_join_on_go", "wake", &url, "", &[]);
    kid.expect("ready");
    let mut wakes = Vec::new();
    for i in 0..WAKE_ROUNDS {
        let group = format!("g{i}");
        reg.join_self("wake", &group, b"").unwrap(); // member 1 of 2
        let (tx, rx) = mpsc::channel();
        let waiter = reg.clone();
        let t = std::thread::spawn(move || {
            let _ = tx.send(());
            let r = waiter.wait_for_members("wake", &group, 2, Duration::from_secs(30));
            (r, now_ns())
        });
        rx.recv().unwrap();
        // Let the waiter count and go to sleep; it must be woken, not poll.
        std::thread::sleep(Duration::from_millis(20));
        kid.send(&format!("go {i}"));
        let joined_at: u64 = kid.expect("joined").parse().unwrap();
        let (r, woke_at) = t.join().unwrap();
        let m = r.unwrap();
        assert_eq!(
            m.iter().map(|e| e.pid).collect::<BTreeSet<_>>(),
            [std::process::id(), kid.pid()].into_iter().collect(),
            "round {i}"
        );
        assert!(woke_at >= joined_at, "woke before the join (round {i})");
        wakes.push(woke_at - joined_at);
    }
    wakes.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "wait_for_members wake-up after a join in another process, {WAKE_ROUNDS} rounds: \
         median {:.0} µs, max {:.0} µs",
        us(wakes[wakes.len() / 2]),
        us(wakes[wakes.len() - 1])
    );
    kid.send("exit");
    kid.assert_success();
}

// ---- 8 processes join and leave 100 times ---------------------------------

const RACE_KIDS: usize = 8;
const RACE_ROUNDS: usize = 100;

#[test]
fn child_join_leave() {
    let Some((url, args)) = child_role("churn") else {
        return;
    };
    let me = std::process::id();
    let reg = Registry::builder().open(&url).unwrap();
    reg.join_self("warm", "up", b"").unwrap();
    say("ready");
    assert_eq!(hear().as_deref(), Some("go"));
    for r in 0..RACE_ROUNDS {
        reg.join_self("race", "g", format!("kid={args} round={r}").as_bytes())
            .unwrap();
        assert!(
            matches!(
                reg.join_self("race", "g", b""),
                Err(Error::AlreadyExists { pid, .. }) if pid == me
            ),
            "round {r}: a second join must be refused"
        );
        let mine = reg
            .members("race", "g")
            .unwrap()
            .into_iter()
            .filter(|e| e.pid == me)
            .collect::<Vec<_>>();
        assert_eq!(mine.len(), 1, "round {r}: exactly once");
        assert_eq!(
            mine[0].metadata,
            format!("kid={args} round={r}").into_bytes()
        );
        assert!(reg.leave("race", "g", me).unwrap(), "round {r}");
        assert!(!reg.leave("race", "g", me).unwrap(), "round {r}");
    }
    reg.join_self("race", "g", b"final").unwrap();
    say("done");
    assert_eq!(hear().as_deref(), Some("exit"));
}

#[test]
fn eight_processes_joining_and_leaving_100_times_keep_every_member_exactly_once() {
    let url = shm_url("gchurn");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().create(&url).unwrap();
    let mut kids: Vec<Kid> = (0..RACE_KIDS)
        .map(|k| Kid::spawn("child_join_leave", "churn", &url, &k.to_string(), &[]))
        .collect();
    let pids: BTreeSet<u32> = kids.iter().map(Kid::pid).collect();
    for kid in &mut kids {
        kid.expect("ready");
    }
    for kid in &mut kids {
        kid.send("go");
    }
    // Read along: a member is never seen twice, and only racers are seen.
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let reader = reg.clone();
    let racers = pids.clone();
    let watcher = std::thread::spawn(move || {
        let mut reads = 0;
        while stop_rx.try_recv().is_err() {
            let m = pid_set(&reader, "race", "g");
            let distinct: BTreeSet<u32> = m.iter().copied().collect();
            assert_eq!(distinct.len(), m.len(), "a member seen twice: {m:?}");
            assert!(distinct.is_subset(&racers), "{m:?}");
            reads += 1;
        }
        reads
    });
    for kid in &mut kids {
        kid.expect_within("done", Duration::from_secs(120));
    }
    stop_tx.send(()).unwrap();
    let reads = watcher.join().unwrap();
    assert!(reads > 0);
    let m = reg.members("race", "g").unwrap();
    assert_eq!(m.len(), RACE_KIDS);
    assert_eq!(m.iter().map(|e| e.pid).collect::<BTreeSet<_>>(), pids);
    assert!(m.iter().all(|e| e.metadata == b"final"));
    let t = reg.stats().unwrap();
    // 8 warm-up entries and 8 final members; nothing left behind.
    assert_eq!(t.live, 2 * RACE_KIDS);
    for kid in &mut kids {
        kid.send("exit");
    }
    for kid in &mut kids {
        kid.assert_success();
    }
}

// ---- the size of a group ---------------------------------------------------

#[path = "support/threads.rs"]
mod threads;
use threads::Threads;

#[test]
fn a_group_of_1000_members_fits_a_default_size_registry() {
    let threads = Threads::spawn(1000);
    let url = shm_url("g1000");
    let _g = SegGuard::new(&url);
    for reg in [
        Registry::builder().create(&url).unwrap(),
        Registry::builder().create("mem:").unwrap(),
    ] {
        assert_eq!(reg.limits().capacity, Some(4096), "the default size");
        reg.register_self("big", "workers", b"unique").unwrap();
        for (i, &tid) in threads.tids.iter().enumerate() {
            reg.join("big", "workers", tid, format!("i={i}").as_bytes())
                .unwrap_or_else(|e| panic!("member {i}: {e}"));
        }
        let m = reg.members("big", "workers").unwrap();
        assert_eq!(m.len(), 1000);
        let want: BTreeSet<u32> = threads.tids.iter().copied().collect();
        assert_eq!(m.iter().map(|e| e.pid).collect::<BTreeSet<_>>(), want);
        assert_eq!(
            reg.wait_for_members("big", "workers", 1000, Duration::ZERO)
                .unwrap()
                .len(),
            1000
        );
        assert_eq!(reg.select(Some("big"), "i=999").unwrap().len(), 1);
        assert_eq!(reg.list("big").unwrap().len(), 1, "members are not listed");
        for &tid in &threads.tids {
            assert!(reg.leave("big", "workers", tid).unwrap());
        }
        assert!(reg.members("big", "workers").unwrap().is_empty());
    }
}

#[test]
fn a_group_larger_than_the_registry_fails_with_full() {
    let threads = Threads::spawn(64);
    let reg = Registry::builder().capacity(32).create("mem:").unwrap();
    let mut joined = 0;
    let err = loop {
        match reg.join("small", "g", threads.tids[joined], b"") {
            Ok(_) => joined += 1,
            Err(e) => break e,
        }
        assert!(joined < 64, "a 32-slot registry took 64 members");
    };
    assert!(matches!(&err, Error::Full { capacity: 32 }), "{err}");
    assert!(err.to_string().contains("larger capacity"), "{err}");
    assert!(joined >= 16, "only {joined} members fit in 32 slots");
    assert_eq!(reg.members("small", "g").unwrap().len(), joined);
}

// ---- etcd: a SIGKILLed member's key expires with its owner's lease ---------

#[cfg(feature = "etcd")]
mod support {
    pub mod etcd_cluster;
}

#[cfg(feature = "etcd")]
#[test]
fn child_etcd_join_and_hang() {
    let Some((url, _)) = child_role("etcdhang") else {
        return;
    };
    let reg = support::etcd_cluster::open_url(&url);
    reg.join_self("grp", "workers", b"doomed").unwrap();
    say("joined");
    let _ = hear(); // until killed
}

#[cfg(feature = "etcd")]
#[test]
fn on_etcd_a_sigkilled_members_key_expires_with_its_lease() {
    use procreg::EventKind;
    use support::etcd_cluster::{cluster_lock, endpoints, open_url, prefix, url_at};
    let _g = cluster_lock().read().unwrap_or_else(|e| e.into_inner());
    let url = url_at(endpoints(), &prefix("groupttl"), "?ttl=2s");
    let reg = open_url(&url);
    let me = std::process::id();
    reg.join_self("grp", "workers", b"parent").unwrap();
    let mut kid = Kid::spawn("child_etcd_join_and_hang", "etcdhang", &url, "", &[]);
    kid.expect("joined");
    let victim = kid.pid();
    let mut both = vec![me, victim];
    both.sort();
    assert_eq!(pid_set(&reg, "grp", "workers"), both);
    let mut w = reg.watch(Some("grp"), reg.revision().unwrap()).unwrap();
    let t0 = std::time::Instant::now();
    assert!(kid.kill().signal().is_some());
    // No sweep: the server deletes the key when the dead owner's lease
    // runs out, and the watcher sees the member go.
    let gone = loop {
        let ev = w.next(Duration::from_secs(30)).unwrap();
        if ev.member && ev.name == "workers" && ev.pid == victim {
            break ev;
        }
    };
    println!(
        "etcd: the SIGKILLed member's key went ({}) {:.2} s after the kill (session ttl 2 s)",
        gone.kind,
        t0.elapsed().as_secs_f64()
    );
    assert!(matches!(
        gone.kind,
        EventKind::Unregistered | EventKind::Expired | EventKind::Reclaimed
    ));
    assert_eq!(pid_set(&reg, "grp", "workers"), vec![me]);
    Registry::builder().destroy(&url).unwrap();
}
