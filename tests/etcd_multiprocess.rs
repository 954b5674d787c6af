//! Many processes on one etcd registry, through `Registry::open(etcd://)`:
//! the test binary re-executes itself as children (the harness of
//! `tests/reliability_support`), which talk to the parent over pipes. Each
//! test prints what it measured (`--nocapture`).
//!
//! Endpoints: `PROCREG_ETCD_ENDPOINTS`, or the script's cluster (started when
//! unset and left running; `scripts/etcd-cluster stop` stops it).
#![cfg(feature = "etcd")]

mod reliability_support;
mod support {
    pub mod etcd_cluster;
}

use procreg::{Error, EventKind};
use reliability_support::{Kid, child_role, hear, say};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::etcd_cluster::{cluster_lock, endpoints, epoch_ns, open_url, prefix, url_at};

const NS: &str = "mp";
const KIDS: usize = 8;

fn me() -> u32 {
    std::process::id()
}

// ---- children -----------------------------------------------------------------

/// Registers `n` keys named `p<kid>-<i>` ("<kid> <n>" in ARGS), says `done`,
/// and holds them until `exit`.
#[test]
fn child_fill() {
    let Some((url, args)) = child_role("fill") else {
        return;
    };
    let (kid, n) = args.split_once(' ').unwrap();
    let n: usize = n.parse().unwrap();
    let reg = open_url(&url);
    let t0 = Instant::now();
    for i in 0..n {
        reg.register_self(NS, &format!("p{kid}-{i}"), kid.as_bytes())
            .unwrap_or_else(|e| panic!("kid {kid} key {i}: {e}"));
    }
    say(&format!("done {}", t0.elapsed().as_micros()));
    let _ = hear();
}

/// On `go`, tries to register keys `k0..k<n>`; reports the keys won and, for
/// each key lost, the pid the refusal named.
#[test]
fn child_race() {
    let Some((url, n)) = child_role("race") else {
        return;
    };
    let n: usize = n.parse().unwrap();
    let reg = open_url(&url);
    reg.revision().unwrap(); // connected before the start line
    say("ready");
    assert_eq!(hear().as_deref(), Some("go"));
    let mut won = Vec::new();
    let mut lost = Vec::new();
    for k in 0..n {
        let name = format!("k{k}");
        match reg.register_self(NS, &name, b"") {
            Ok(_) => won.push(name),
            Err(Error::AlreadyExists { pid, .. }) => lost.push(format!("{name}:{pid}")),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    say(&format!("won {}", won.join(",")));
    say(&format!("lost {}", lost.join(",")));
    let _ = hear();
}

/// Watches the namespace after the revision in ARGS until `late` is
/// registered; reports every event as `kind:name:revision:pid`.
#[test]
fn child_watcher() {
    let Some((url, rev)) = child_role("watcher") else {
        return;
    };
    let reg = open_url(&url);
    let mut w = reg.watch(Some(NS), rev.parse().unwrap()).unwrap();
    say("watching");
    let mut seen = Vec::new();
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no `late` within 20s"
        );
        let e = match w.next(Duration::from_millis(500)) {
            Ok(e) => e,
            Err(Error::Timeout { .. }) => continue,
            Err(e) => panic!("watch: {e}"),
        };
        seen.push(format!("{:?}:{}:{}:{}", e.kind, e.name, e.revision, e.pid));
        if e.kind == EventKind::Registered && e.name == "late" {
            break;
        }
    }
    say(&format!("events {}", seen.join(",")));
    let _ = hear();
}

/// On `go`, waits for the name in ARGS; reports the pid of the entry that
/// woke it and when (wall clock), or the error.
#[test]
fn child_waiter() {
    let Some((url, name)) = child_role("waiter") else {
        return;
    };
    let reg = open_url(&url);
    reg.revision().unwrap();
    say("ready");
    assert_eq!(hear().as_deref(), Some("go"));
    say("waiting");
    match reg.wait_for(NS, &name, Duration::from_secs(15)) {
        Ok(e) => say(&format!("woke {} {}", e.pid, epoch_ns())),
        Err(e) => say(&format!("failed {e}")),
    }
    let _ = hear();
}

/// On `go`: registers k0..k9, unregisters k3 and k7, replaces k0's
/// metadata, registers `late`; says each change as it commits.
#[test]
fn child_writer() {
    let Some((url, _)) = child_role("writer") else {
        return;
    };
    let reg = open_url(&url);
    say("ready");
    assert_eq!(hear().as_deref(), Some("go"));
    let mut ops = Vec::new();
    for k in 0..10 {
        reg.register_self(NS, &format!("k{k}"), b"v1").unwrap();
        ops.push(format!("Registered:k{k}"));
    }
    for k in [3, 7] {
        assert!(reg.unregister(NS, &format!("k{k}")).unwrap());
        ops.push(format!("Unregistered:k{k}"));
    }
    reg.update_metadata(NS, "k0", b"v2").unwrap();
    ops.push("Updated:k0".into());
    say(&format!("registering {}", epoch_ns()));
    reg.register_self(NS, "late", b"").unwrap();
    ops.push("Registered:late".into());
    say(&format!("ops {}", ops.join(",")));
    let _ = hear();
}

/// Registers the name in ARGS, says so, and idles until killed.
#[test]
fn child_holder() {
    let Some((url, name)) = child_role("holder") else {
        return;
    };
    let reg = open_url(&url);
    reg.register_self(NS, &name, b"").unwrap();
    say("registered");
    let _ = hear();
}

// ---- tests ---------------------------------------------------------------------

#[test]
fn eight_processes_register_50_keys_each_and_every_key_is_listed_once() {
    let _g = cluster_lock().read().unwrap_or_else(|e| e.into_inner());
    let url = url_at(endpoints(), &prefix("fill"), "");
    let reg = open_url(&url);
    const N: usize = 50;
    let t0 = Instant::now();
    let mut kids: Vec<Kid> = (0..KIDS)
        .map(|k| Kid::spawn("child_fill", "fill", &url, &format!("{k} {N}"), &[]))
        .collect();
    let mut per_kid = Vec::new();
    for k in &mut kids {
        let us: u64 = k.expect("done").parse().unwrap();
        per_kid.push(Duration::from_micros(us));
    }
    let took = t0.elapsed();
    let listed = reg.list(NS).unwrap();
    let mut by_name: BTreeMap<String, u32> = BTreeMap::new();
    for e in &listed {
        assert!(
            by_name.insert(e.name.clone(), e.pid).is_none(),
            "{} twice",
            e.name
        );
    }
    assert_eq!(listed.len(), KIDS * N);
    for (k, kid) in kids.iter().enumerate() {
        for i in 0..N {
            assert_eq!(
                by_name.get(&format!("p{k}-{i}")),
                Some(&kid.pid()),
                "p{k}-{i}"
            );
        }
    }
    eprintln!(
        "{KIDS} processes x {N} keys: all {} listed once; spawn to last done {took:?}, each kid's 50 registers took {:?}",
        listed.len(),
        per_kid
    );
    for k in &mut kids {
        k.send("exit");
    }
    for k in &mut kids {
        k.assert_success();
    }
}

#[test]
fn eight_processes_race_for_20_keys_one_winner_each_and_losers_name_the_winner() {
    let _g = cluster_lock().read().unwrap_or_else(|e| e.into_inner());
    let url = url_at(endpoints(), &prefix("race"), "");
    let reg = open_url(&url);
    const N: usize = 20;
    let mut kids: Vec<Kid> = (0..KIDS)
        .map(|_| Kid::spawn("child_race", "race", &url, &N.to_string(), &[]))
        .collect();
    for k in &mut kids {
        k.expect("ready");
    }
    for k in &mut kids {
        k.send("go");
    }
    let mut winner: BTreeMap<String, u32> = BTreeMap::new();
    let mut named: Vec<(String, u32, u32)> = Vec::new(); // key, named pid, loser
    for k in &mut kids {
        let won = k.expect("won");
        for name in won.split(',').filter(|s| !s.is_empty()) {
            if let Some(other) = winner.insert(name.to_owned(), k.pid()) {
                panic!("{name} won by {other} and {}", k.pid());
            }
        }
        let lost = k.expect("lost");
        for l in lost.split(',').filter(|s| !s.is_empty()) {
            let (name, pid) = l.split_once(':').unwrap();
            named.push((name.to_owned(), pid.parse().unwrap(), k.pid()));
        }
    }
    assert_eq!(winner.len(), N, "keys without a winner");
    assert_eq!(named.len(), N * (KIDS - 1), "every loser is refused");
    for (name, pid, loser) in &named {
        assert_eq!(
            Some(pid),
            winner.get(name),
            "{loser} was told {name} is held by {pid}"
        );
    }
    let listed: BTreeMap<String, u32> = reg
        .list(NS)
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.pid))
        .collect();
    assert_eq!(listed, winner);
    let spread: BTreeSet<u32> = winner.values().copied().collect();
    eprintln!(
        "{KIDS} processes raced for {N} keys: one winner each ({} distinct winning processes), {} AlreadyExists naming the winner",
        spread.len(),
        named.len()
    );
    for k in &mut kids {
        k.send("exit");
    }
    for k in &mut kids {
        k.assert_success();
    }
}

#[test]
fn a_watcher_process_sees_another_process_changes_in_revision_order_and_a_waiter_wakes() {
    let _g = cluster_lock().read().unwrap_or_else(|e| e.into_inner());
    let url = url_at(endpoints(), &prefix("watch"), "");
    let reg = open_url(&url);
    let rev = reg.revision().unwrap();
    let mut watcher = Kid::spawn("child_watcher", "watcher", &url, &rev.to_string(), &[]);
    let mut waiter = Kid::spawn("child_waiter", "waiter", &url, "late", &[]);
    let mut writer = Kid::spawn("child_writer", "writer", &url, "", &[]);
    watcher.expect("watching");
    waiter.expect("ready");
    writer.expect("ready");
    waiter.send("go");
    waiter.expect("waiting");
    std::thread::sleep(Duration::from_millis(200));
    writer.send("go");
    let registering: u64 = writer.expect("registering").parse().unwrap();
    let ops: Vec<String> = writer.expect("ops").split(',').map(str::to_owned).collect();
    let woke = waiter.expect("woke");
    let (pid, at) = woke.split_once(' ').unwrap();
    assert_eq!(pid.parse::<u32>().unwrap(), writer.pid());
    let lag_ms = at.parse::<u64>().unwrap().saturating_sub(registering) as f64 / 1e6;
    let events = watcher.expect("events");
    let mut last = 0u64;
    let mut seen = Vec::new();
    for e in events.split(',') {
        let f: Vec<&str> = e.split(':').collect();
        let r: u64 = f[2].parse().unwrap();
        assert!(r > last, "revision {r} after {last}: {events}");
        last = r;
        assert_eq!(f[3].parse::<u32>().unwrap(), writer.pid(), "{e}");
        seen.push(format!("{}:{}", f[0], f[1]));
    }
    assert_eq!(seen, ops, "the watcher process saw another history");
    eprintln!(
        "watcher process saw all {} changes of the writer process in revision order; wait_for in a third process woke {lag_ms:.1} ms after the register call began",
        seen.len()
    );
    for k in [&mut watcher, &mut waiter, &mut writer] {
        k.send("exit");
    }
    for k in [&mut watcher, &mut waiter, &mut writer] {
        k.assert_success();
    }
}

#[test]
fn wait_for_in_another_process_skips_a_dead_owners_entry_and_wakes_on_a_live_one() {
    let _g = cluster_lock().read().unwrap_or_else(|e| e.into_inner());
    let url = url_at(endpoints(), &prefix("deadwait"), "");
    let reg = open_url(&url);
    let mut holder = Kid::spawn("child_holder", "holder", &url, "svc", &[]);
    holder.expect("registered");
    let dead = holder.pid();
    holder.kill();
    // The entry stays until its lease runs out (10 s), but its owner is dead.
    assert_eq!(reg.lookup(NS, "svc").unwrap().unwrap().pid, dead);
    let mut waiter = Kid::spawn("child_waiter", "waiter", &url, "svc", &[]);
    waiter.expect("ready");
    waiter.send("go");
    waiter.expect("waiting");
    std::thread::sleep(Duration::from_millis(500));
    let t0 = epoch_ns();
    reg.register_self(NS, "svc", b"live").unwrap();
    let woke = waiter.expect("woke");
    let (pid, at) = woke.split_once(' ').unwrap();
    assert_eq!(
        pid.parse::<u32>().unwrap(),
        me(),
        "woke on the dead owner's entry"
    );
    eprintln!(
        "wait_for skipped the dead owner's entry and woke {:.1} ms after a live registration",
        at.parse::<u64>().unwrap().saturating_sub(t0) as f64 / 1e6
    );
    waiter.send("exit");
    waiter.assert_success();
}
