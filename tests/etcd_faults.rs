//! The etcd backend under real faults, through the public `Registry` API:
//! owners that are SIGKILLed, SIGSTOPped past their TTL or partitioned by a
//! TCP proxy are real processes (this test binary re-executing itself, the
//! harness of `tests/reliability_support`); members are SIGKILLed and
//! restarted by `scripts/etcd-cluster`. Each test prints the figures it
//! measured (`eprintln!`, shown with `--nocapture`).
//!
//! Endpoints: `PROCREG_ETCD_ENDPOINTS`, or the script's cluster (started when
//! unset and left running; `scripts/etcd-cluster stop` stops it).
#![cfg(feature = "etcd")]

mod reliability_support;
mod support {
    pub mod etcd_cluster;
    pub mod tcp_proxy;
}

use procreg::{BackendHealth, Error, Event, EventKind, Registry, Watcher};
use reliability_support::{Kid, child_role, hear, say, signal, wait_stopped};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::etcd_cluster::{
    Restart, cluster_lock, compact, endpoints, epoch_ns, kind_of, open_url, prefix, script, url_at,
    wait_readable,
};
use support::tcp_proxy::TcpProxy;

const NS: &str = "svc";

fn me() -> u32 {
    std::process::id()
}

/// The session-lost reason of `reg`'s health, if any.
fn session_lost(reg: &Registry) -> Option<String> {
    match reg.health_check().unwrap().detail {
        BackendHealth::Etcd(h) => h.session_lost,
        other => panic!("not an etcd health: {other:?}"),
    }
}

/// Collects `Expired` events of `names` from `w` (other kinds are skipped),
/// with the instant each arrived; stops at `within`.
fn expired_of(w: &mut Watcher, names: &[&str], within: Duration) -> BTreeMap<String, Instant> {
    let t0 = Instant::now();
    let mut seen = BTreeMap::new();
    while seen.len() < names.len() && t0.elapsed() < within {
        match w.next(Duration::from_millis(100)) {
            Ok(e) if e.kind == EventKind::Expired && names.contains(&e.name.as_str()) => {
                seen.insert(e.name.clone(), Instant::now());
            }
            Ok(e) => assert_ne!(
                (e.kind, names.contains(&e.name.as_str())),
                (EventKind::Reclaimed, true),
                "a lease expiry must read as Expired: {e:?}"
            ),
            Err(Error::Timeout { .. }) => {}
            Err(e) => panic!("watch: {e}"),
        }
    }
    seen
}

// ---- children -----------------------------------------------------------------

/// Registers the comma-separated names of ARGS, says `registered`, then idles
/// until killed or told `exit`.
#[test]
fn child_owner() {
    let Some((url, args)) = child_role("owner") else {
        return;
    };
    let reg = open_url(&url);
    for name in args.split(',') {
        reg.register_self(NS, name, b"owner").unwrap();
    }
    say("registered");
    while let Some(cmd) = hear() {
        if cmd == "exit" {
            break;
        }
    }
}

/// On `go`, waits for the name in ARGS and says whose entry woke it.
#[test]
fn child_waiter() {
    let Some((url, name)) = child_role("waiter") else {
        return;
    };
    let reg = open_url(&url);
    say("ready");
    assert_eq!(hear().as_deref(), Some("go"));
    say("waiting");
    match reg.wait_for(NS, &name, Duration::from_secs(10)) {
        Ok(e) => say(&format!("woke {} {}", e.pid, epoch_ns())),
        Err(e) => say(&format!("failed {e}")),
    }
    let _ = hear();
}

/// Registers the name in ARGS and keeps it until told `exit`.
#[test]
fn child_taker() {
    let Some((url, name)) = child_role("taker") else {
        return;
    };
    let reg = open_url(&url);
    match reg.register_self(NS, &name, b"taker") {
        Ok(_) => say("took"),
        Err(e) => say(&format!("refused {e}")),
    }
    while let Some(cmd) = hear() {
        if cmd == "exit" {
            break;
        }
        if cmd == "check" {
            let e = reg.lookup(NS, &name).unwrap();
            say(&format!("holder {}", e.map_or(0, |e| e.pid)));
        }
    }
}

/// Register/lookup load until `stop`: one key after another, each retried
/// (on the same handle, whose retry recognises its own write) until
/// acknowledged; reports acknowledged keys and failures by kind.
#[test]
fn child_loader() {
    let Some((url, kid)) = child_role("loader") else {
        return;
    };
    let reg = open_url(&url);
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let _ = hear();
        s.store(true, Ordering::SeqCst);
    });
    say("ready");
    let mut acked = Vec::new();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_ok = Instant::now();
    let mut worst_gap = Duration::ZERO;
    let mut ops = 0u64;
    let mut note = |r: Result<(), Error>, last_ok: &mut Instant| match r {
        Ok(()) => {
            worst_gap = worst_gap.max(last_ok.elapsed());
            *last_ok = Instant::now();
        }
        Err(e) => {
            eprintln!("loader {kid}: {e}");
            *failures.entry(kind_of(&e)).or_default() += 1;
        }
    };
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let name = format!("c{kid}-{i}");
        loop {
            let r = reg.register_self(NS, &name, b"load").map(|_| ());
            let ok = r.is_ok();
            note(r, &mut last_ok);
            ops += 1;
            if ok {
                break;
            }
        }
        acked.push(name.clone());
        let r = match reg.lookup(NS, &name) {
            Ok(Some(e)) if e.pid == me() => Ok(()),
            Ok(other) => panic!("lookup of an acknowledged {name}: {other:?}"),
            Err(e) => Err(e),
        };
        note(r, &mut last_ok);
        ops += 1;
        i += 1;
    }
    let fails: Vec<String> = failures.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    say(&format!(
        "done {ops} {} {}",
        worst_gap.as_millis(),
        if fails.is_empty() {
            "-".to_string()
        } else {
            fails.join(",")
        }
    ));
    say(&format!("acked {}", acked.join(",")));
    // Stay alive (holding the session) until the parent has listed.
    let _ = hear();
}

/// Registers `held`, then writes (registers `tick-N`) every 50 ms until
/// `report`; frozen by the parent in between. Reports what the writes started
/// after the freeze got, the session's health, and a retry of `held`.
#[test]
fn child_frozen_owner() {
    let Some((url, _)) = child_role("frozen") else {
        return;
    };
    let reg = open_url(&url);
    reg.register_self(NS, "held", b"first").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (reg, stop) = (reg.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut log: Vec<(Instant, Result<(), Error>)> = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                log.push((
                    t,
                    reg.register_self(NS, &format!("tick-{i}"), b"").map(|_| ()),
                ));
                i += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            log
        })
    };
    say("registered");
    assert_eq!(hear().as_deref(), Some("report"));
    stop.store(true, Ordering::SeqCst);
    let log = writer.join().unwrap();
    // The freeze shows as a gap of more than a second between two starts.
    let gap = log
        .windows(2)
        .position(|w| w[1].0 - w[0].0 > Duration::from_secs(1))
        .expect("no freeze seen in the write log");
    let after = &log[gap + 1..];
    let first = match &after.first().expect("no write after the freeze").1 {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("{}: {e}", kind_of(e)),
    };
    let later_ok = after.iter().filter(|(_, r)| r.is_ok()).count();
    say(&format!("first {first}"));
    say(&format!("after {} {later_ok}", after.len()));
    say(&format!("lost {}", session_lost(&reg).unwrap_or_default()));
    match reg.register_self(NS, "held", b"again") {
        Ok(_) => say("held ok"),
        Err(e) => say(&format!("held {}: {e}", kind_of(&e))),
    }
    let _ = hear();
}

/// Through the parent's proxies: registers `held`, watches its own namespace
/// and says when its handle reported `held` Expired (the local loss); after
/// `heal`, reports a retried registration and its health.
#[test]
fn child_partitioned() {
    let Some((url, _)) = child_role("partitioned") else {
        return;
    };
    let reg = open_url(&url);
    reg.register_self(NS, "held", b"").unwrap();
    let mut w = reg.watch(Some(NS), reg.revision().unwrap()).unwrap();
    say("registered");
    let t0 = Instant::now();
    let mut lost = None;
    while lost.is_none() && t0.elapsed() < Duration::from_secs(15) {
        if let Ok(e) = w.next(Duration::from_millis(200)) {
            if e.kind == EventKind::Expired && e.name == "held" {
                lost = Some(epoch_ns());
            }
        }
    }
    say(&format!("lost {}", lost.unwrap_or(0)));
    assert_eq!(hear().as_deref(), Some("healed"));
    match reg.register_self(NS, "held", b"again") {
        Ok(_) => say("retry ok"),
        Err(e) => say(&format!("retry {}: {e}", kind_of(&e))),
    }
    say(&format!(
        "health {}",
        session_lost(&reg).unwrap_or_default()
    ));
    let _ = hear();
}

/// With `reregister=true`: registers `mine` and `contested`; after being
/// frozen past its TTL it reports the loss (own watcher: Expired for both),
/// then the handle re-registers what it can by itself.
#[test]
fn child_reregistering_owner() {
    let Some((url, _)) = child_role("rereg") else {
        return;
    };
    let reg = open_url(&url);
    reg.register_self(NS, "mine", b"m").unwrap();
    reg.register_self(NS, "contested", b"c").unwrap();
    let mut w = reg.watch(Some(NS), reg.revision().unwrap()).unwrap();
    say("registered");
    let mut expired = BTreeSet::new();
    let t0 = Instant::now();
    while expired.len() < 2 && t0.elapsed() < Duration::from_secs(15) {
        if let Ok(e) = w.next(Duration::from_millis(200)) {
            if e.kind == EventKind::Expired && e.pid == me() {
                expired.insert(e.name);
            }
        }
    }
    let names: Vec<String> = expired.into_iter().collect();
    say(&format!("expired {}", names.join(",")));
    assert_eq!(hear().as_deref(), Some("report"));
    say(&format!("lost {}", session_lost(&reg).unwrap_or_default()));
    match reg.register_self(NS, "fresh", b"f") {
        Ok(_) => say("fresh ok"),
        Err(e) => say(&format!("fresh {}: {e}", kind_of(&e))),
    }
    let _ = hear();
}

// ---- 1. SIGKILLed owner ---------------------------------------------------------

#[test]
fn sigkilled_owner_entries_expire_within_ttl_plus_1500ms_and_wake_a_waiter_elsewhere() {
    let _g = cluster_lock().read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("sigkill");
    let reg = open_url(&url_at(endpoints(), &p, ""));
    let names = ["a", "b", "c"];
    let mut w = reg.watch(Some(NS), reg.revision().unwrap()).unwrap();
    let mut owner = Kid::spawn(
        "child_owner",
        "owner",
        &url_at(endpoints(), &p, "?ttl=2s"),
        &names.join(","),
        &[],
    );
    let mut waiter = Kid::spawn(
        "child_waiter",
        "waiter",
        &url_at(endpoints(), &p, ""),
        "b",
        &[],
    );
    owner.expect("registered");
    waiter.expect("ready");
    for n in names {
        assert_eq!(reg.lookup(NS, n).unwrap().unwrap().pid, owner.pid());
    }
    let died = Instant::now();
    owner.kill();
    let seen = expired_of(&mut w, &names, Duration::from_secs(8));
    let times: Vec<Duration> = seen.values().map(|t| *t - died).collect();
    eprintln!("SIGKILLed owner (ttl 2s): death -> Expired per entry {times:?}");
    assert_eq!(seen.len(), 3, "Expired seen for {:?} only", seen.keys());
    for t in &times {
        assert!(
            *t <= Duration::from_millis(2000 + 1500),
            "expired after {t:?}"
        );
    }
    for n in names {
        assert_eq!(reg.lookup(NS, n).unwrap(), None, "{n} still there");
    }
    // Another process waits for `b`; a third party (this process) registers it.
    waiter.send("go");
    waiter.expect("waiting");
    std::thread::sleep(Duration::from_millis(300));
    let registered_ns = epoch_ns();
    reg.register_self(NS, "b", b"third party").unwrap();
    let woke = waiter.expect_within("woke", Duration::from_secs(10));
    let (pid, at) = woke.split_once(' ').unwrap();
    assert_eq!(pid.parse::<u32>().unwrap(), me());
    let lag = at.parse::<u64>().unwrap().saturating_sub(registered_ns);
    eprintln!(
        "wait_for in pid {} woke {:.1} ms after the third party's register call began",
        waiter.pid(),
        lag as f64 / 1e6
    );
    assert!(lag < 2_000_000_000);
    waiter.send("exit");
    waiter.assert_success();
}

// ---- 2. leader SIGKILL under load from 2 processes --------------------------------

#[test]
fn leader_sigkill_under_load_from_two_processes_loses_and_duplicates_nothing() {
    let _g = cluster_lock().write().unwrap_or_else(|e| e.into_inner());
    let p = prefix("leaderload");
    let url = url_at(endpoints(), &p, "?timeout=5s");
    let reg = open_url(&url);
    wait_readable(&reg);
    let mut kids: Vec<Kid> = (0..2)
        .map(|k| Kid::spawn("child_loader", "loader", &url, &k.to_string(), &[]))
        .collect();
    for k in &mut kids {
        k.expect("ready");
    }
    std::thread::sleep(Duration::from_millis(700));
    let leader = script(&["leader"]);
    let _restart = Restart(vec![leader.clone()]);
    script(&["kill", &leader]);
    std::thread::sleep(Duration::from_secs(5));
    for k in &mut kids {
        k.send("stop");
    }
    let mut acked: BTreeMap<String, u32> = BTreeMap::new();
    let mut total_ops = 0u64;
    for k in &mut kids {
        let done = k.expect("done");
        let mut f = done.split(' ');
        let ops: u64 = f.next().unwrap().parse().unwrap();
        let gap: u64 = f.next().unwrap().parse().unwrap();
        let fails = f.next().unwrap().to_owned();
        eprintln!(
            "leader m{leader} SIGKILLed: {} did {ops} ops, longest gap between successes {gap} ms, failures by kind: {fails}",
            k.what
        );
        assert_eq!(fails, "-", "{}: requests failed", k.what);
        assert!(gap <= 5000, "{}: no success for {gap} ms", k.what);
        total_ops += ops;
        let list = k.expect("acked");
        for name in list.split(',').filter(|s| !s.is_empty()) {
            assert!(
                acked.insert(name.to_owned(), k.pid()).is_none(),
                "{name} twice"
            );
        }
    }
    assert!(total_ops > 50, "only {total_ops} ops");
    let listed: BTreeMap<String, u32> = reg
        .list(NS)
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.pid))
        .collect();
    let all = reg.list(NS).unwrap().len();
    assert_eq!(all, listed.len(), "a key listed twice");
    assert_eq!(listed, acked, "list() differs from the acknowledged keys");
    eprintln!(
        "{} acknowledged registrations, list() matches exactly",
        acked.len()
    );
    for k in &mut kids {
        k.send("exit");
    }
    for k in &mut kids {
        k.assert_success();
    }
    script(&["restart", &leader]);
}

// ---- 3. SIGSTOP past the TTL ----------------------------------------------------

#[test]
fn sigstopped_owner_reports_the_loss_before_any_write_and_the_new_owner_keeps_the_name() {
    let _g = cluster_lock().read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("sigstop");
    let reg = open_url(&url_at(endpoints(), &p, ""));
    let mut w = reg.watch(Some(NS), reg.revision().unwrap()).unwrap();
    let mut frozen = Kid::spawn(
        "child_frozen_owner",
        "frozen",
        &url_at(endpoints(), &p, "?ttl=2s"),
        "",
        &[],
    );
    frozen.expect("registered");
    std::thread::sleep(Duration::from_millis(300));
    let stopped = Instant::now();
    signal(frozen.pid(), libc::SIGSTOP);
    assert!(wait_stopped(frozen.pid(), Duration::from_secs(2)));
    let seen = expired_of(&mut w, &["held"], Duration::from_secs(8));
    let gone = seen.get("held").expect("held never expired");
    eprintln!(
        "SIGSTOPped owner (ttl 2s): held expired {:?} after the stop",
        *gone - stopped
    );
    // A new owner, another process, takes the name while the first is frozen.
    let mut taker = Kid::spawn(
        "child_taker",
        "taker",
        &url_at(endpoints(), &p, ""),
        "held",
        &[],
    );
    taker.expect("took");
    signal(frozen.pid(), libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(700));
    frozen.send("report");
    let first = frozen.expect("first");
    let after = frozen.expect("after");
    let lost = frozen.expect("lost");
    let held = frozen.expect("held");
    eprintln!(
        "resumed owner: first write after the freeze -> {first}; writes after: {after} (count, ok); health: {lost}; retry of held: {held}"
    );
    assert!(first.starts_with("Unavailable"), "{first}");
    assert!(first.contains("lease"), "{first}");
    assert!(
        after.ends_with(" 0"),
        "a write succeeded after the freeze: {after}"
    );
    assert!(!lost.is_empty(), "health does not show the session lost");
    assert!(held.starts_with("Unavailable"), "{held}");
    // No silent resurrection: the new owner keeps the name, nothing of the
    // frozen owner's lease is left.
    std::thread::sleep(Duration::from_millis(500));
    taker.send("check");
    assert_eq!(taker.expect("holder"), taker.pid().to_string());
    let left: Vec<String> = reg
        .list(NS)
        .unwrap()
        .into_iter()
        .filter(|e| e.pid == frozen.pid())
        .map(|e| e.name)
        .collect();
    assert!(left.is_empty(), "entries of the lost lease: {left:?}");
    for k in [&mut frozen, &mut taker] {
        k.send("exit");
    }
    frozen.assert_success();
    taker.assert_success();
}

// ---- 4. partition ----------------------------------------------------------------

#[test]
fn partitioned_owner_declares_the_loss_no_later_than_the_server_deletes_and_stays_fenced() {
    let _g = cluster_lock().read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("partition");
    let proxies: Vec<TcpProxy> = endpoints()
        .split(',')
        .map(|ep| TcpProxy::start(ep.parse().unwrap()).unwrap())
        .collect();
    let via: Vec<String> = proxies.iter().map(|x| x.addr().to_string()).collect();
    let observer = open_url(&url_at(endpoints(), &p, ""));
    let mut w = observer
        .watch(Some(NS), observer.revision().unwrap())
        .unwrap();
    let mut kid = Kid::spawn(
        "child_partitioned",
        "partitioned",
        &url_at(&via.join(","), &p, "?ttl=3s&timeout=1s"),
        "",
        &[],
    );
    kid.expect("registered");
    std::thread::sleep(Duration::from_millis(300));
    let cut_ns = epoch_ns();
    for x in &proxies {
        x.cut();
    }
    let seen = expired_of(&mut w, &["held"], Duration::from_secs(10));
    let deleted_ns = epoch_ns();
    assert!(seen.contains_key("held"), "the server never deleted held");
    let lost_ns: u64 = kid.expect("lost").parse().unwrap();
    assert!(
        lost_ns > 0,
        "the partitioned handle never reported the loss"
    );
    let ms = |ns: u64| ns.saturating_sub(cut_ns) as f64 / 1e6;
    eprintln!(
        "partition (ttl 3s): client declared the loss {:.0} ms after the cut, the observer saw the server's delete {:.0} ms after",
        ms(lost_ns),
        ms(deleted_ns)
    );
    assert!(
        lost_ns <= deleted_ns,
        "the client learned of its loss after the server deleted"
    );
    assert!(ms(deleted_ns) <= 3000.0 + 1500.0);
    for x in &proxies {
        x.heal();
    }
    std::thread::sleep(Duration::from_millis(500));
    kid.send("healed");
    let retry = kid.expect("retry");
    let health = kid.expect("health");
    eprintln!("after heal: retry {retry}; health: {health}");
    assert!(retry.starts_with("Unavailable"), "{retry}");
    assert!(!health.is_empty());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(observer.lookup(NS, "held").unwrap(), None, "resurrected");
    kid.send("exit");
    kid.assert_success();
}

// ---- 5. majority down -------------------------------------------------------------

#[test]
fn majority_down_is_unavailable_within_the_timeout_and_recovers_without_manual_action() {
    let _g = cluster_lock().write().unwrap_or_else(|e| e.into_inner());
    let p = prefix("majority");
    // A short session (it will run out during the outage) and a long one.
    let short = open_url(&url_at(endpoints(), &p, "?timeout=2s&ttl=2s"));
    let long = open_url(&url_at(endpoints(), &p, "?timeout=2s&ttl=30s"));
    wait_readable(&long);
    long.register_self(NS, "kept", b"").unwrap();
    let _restart = Restart(vec!["1".into(), "2".into()]);
    script(&["kill", "1"]);
    script(&["kill", "2"]);
    let t0 = Instant::now();
    let e = long.register_self(NS, "x", b"").unwrap_err();
    let took_write = t0.elapsed();
    let t0 = Instant::now();
    let e2 = short.lookup(NS, "kept").unwrap_err();
    let took_read = t0.elapsed();
    eprintln!(
        "2 of 3 down (timeout 2s): register failed after {took_write:?}, lookup after {took_read:?}: {e}"
    );
    for (e, took) in [(&e, took_write), (&e2, took_read)] {
        match e {
            Error::Unavailable(m) => {
                for ep in endpoints().split(',') {
                    assert!(m.contains(ep), "{m} must name {ep}");
                }
            }
            other => panic!("expected Unavailable, got {other}"),
        }
        assert!(took <= Duration::from_millis(2500), "took {took:?}");
    }
    std::thread::sleep(Duration::from_millis(1000));
    script(&["restart", "1"]);
    script(&["restart", "2"]);
    let t0 = Instant::now();
    wait_readable(&long);
    let read_back = t0.elapsed();
    // The long session survived the outage: the same handle writes again.
    let write_back = loop {
        match long.register_self(NS, "x", b"") {
            Ok(_) => break t0.elapsed(),
            Err(e) => {
                assert!(
                    t0.elapsed() < Duration::from_secs(15),
                    "no write recovery: {e}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert_eq!(long.lookup(NS, "kept").unwrap().unwrap().pid, me());
    // The short session ran out: the same handle reads, says it is lost, refuses writes.
    assert!(short.lookup(NS, "kept").unwrap().is_some());
    let lost = session_lost(&short).expect("a 2s session outlived a longer outage");
    let refused = short.register_self(NS, "y", b"").unwrap_err();
    assert!(
        matches!(&refused, Error::Unavailable(m) if m.contains("lease")),
        "{refused}"
    );
    let fresh = open_url(&url_at(endpoints(), &p, "?timeout=2s&ttl=2s"));
    fresh.register_self(NS, "y", b"").unwrap();
    eprintln!(
        "after restarting m1, m2: reads back {read_back:?}, writes on the same ttl=30s handle {write_back:?}; the ttl=2s handle says: {lost}"
    );
}

// ---- 6. compaction under a stopped watcher ----------------------------------------

#[test]
fn a_watcher_cut_off_while_its_history_is_compacted_gets_lagged_then_resyncs() {
    let _g = cluster_lock().write().unwrap_or_else(|e| e.into_inner());
    let p = prefix("compact");
    let proxies: Vec<TcpProxy> = endpoints()
        .split(',')
        .map(|ep| TcpProxy::start(ep.parse().unwrap()).unwrap())
        .collect();
    let via: Vec<String> = proxies.iter().map(|x| x.addr().to_string()).collect();
    let watching = open_url(&url_at(&via.join(","), &p, ""));
    let writer = open_url(&url_at(endpoints(), &p, ""));
    let mut w = watching
        .watch(Some(NS), writer.revision().unwrap())
        .unwrap();
    writer.register_self(NS, "k0", b"").unwrap();
    let e = w.next(Duration::from_secs(5)).unwrap();
    assert_eq!((e.kind, e.name.as_str()), (EventKind::Registered, "k0"));
    // The watcher's connections are cut while changes happen and are compacted.
    for x in &proxies {
        x.cut();
    }
    for i in 1..=4 {
        writer.register_self(NS, &format!("k{i}"), b"").unwrap();
    }
    writer.unregister(NS, "k0").unwrap();
    let now = writer.revision().unwrap();
    compact(now);
    for x in &proxies {
        x.heal();
    }
    let t0 = Instant::now();
    let r = w.next(Duration::from_secs(10));
    assert!(
        !matches!(r, Err(Error::Timeout { .. })),
        "nothing within 10s"
    );
    eprintln!(
        "watcher after its history was compacted: {r:?} after {:?}",
        t0.elapsed()
    );
    match r {
        Err(Error::Lagged { missed }) => assert!(missed >= 1),
        other => panic!("expected Lagged, got {other:?}"),
    }
    // Resync: a revision, the list, a watch from that revision.
    let rev = watching.revision().unwrap();
    let names: Vec<String> = watching
        .list(NS)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["k1", "k2", "k3", "k4"]);
    let mut w2 = watching.watch(Some(NS), rev).unwrap();
    writer.unregister(NS, "k1").unwrap();
    writer.register_self(NS, "k5", b"").unwrap();
    let got: Vec<(EventKind, String)> = (0..2)
        .map(|_| {
            let e: Event = w2.next(Duration::from_secs(5)).unwrap();
            (e.kind, e.name)
        })
        .collect();
    assert_eq!(
        got,
        [
            (EventKind::Unregistered, "k1".to_string()),
            (EventKind::Registered, "k5".to_string())
        ]
    );
}

// ---- 7. member down at open --------------------------------------------------------

#[test]
fn open_succeeds_and_works_with_a_member_down() {
    let _g = cluster_lock().write().unwrap_or_else(|e| e.into_inner());
    let p = prefix("downatopen");
    wait_readable(&open_url(&url_at(endpoints(), &p, "")));
    let _restart = Restart(vec!["1".into()]);
    script(&["kill", "1"]);
    let t0 = Instant::now();
    let reg = open_url(&url_at(endpoints(), &p, "?timeout=3s"));
    let opened = t0.elapsed();
    reg.register_self(NS, "x", b"m").unwrap();
    assert_eq!(reg.lookup(NS, "x").unwrap().unwrap().metadata, b"m");
    let worked = t0.elapsed();
    eprintln!(
        "member 1 (first endpoint) down: open took {opened:?}, open+register+lookup {worked:?}"
    );
    assert!(worked < Duration::from_secs(3));
    script(&["restart", "1"]);
}

// ---- 8. owner and leader die together ------------------------------------------------

#[test]
fn owner_and_leader_killed_together_entries_expire_within_ttl_election_ttl() {
    let _g = cluster_lock().write().unwrap_or_else(|e| e.into_inner());
    let p = prefix("ownerleader");
    let reg = open_url(&url_at(endpoints(), &p, "?timeout=5s"));
    wait_readable(&reg);
    let names = ["a", "b", "c"];
    let mut w = reg.watch(Some(NS), reg.revision().unwrap()).unwrap();
    let mut owner = Kid::spawn(
        "child_owner",
        "owner",
        &url_at(endpoints(), &p, "?ttl=2s"),
        &names.join(","),
        &[],
    );
    owner.expect("registered");
    std::thread::sleep(Duration::from_millis(300));
    let leader = script(&["leader"]);
    let _restart = Restart(vec![leader.clone()]);
    let died = Instant::now();
    owner.kill();
    script(&["kill", &leader]);
    let seen = expired_of(&mut w, &names, Duration::from_secs(12));
    let times: Vec<Duration> = seen.values().map(|t| *t - died).collect();
    eprintln!("owner and leader m{leader} SIGKILLed together (ttl 2s): death -> Expired {times:?}");
    assert_eq!(seen.len(), 3, "Expired seen for {:?} only", seen.keys());
    // TTL + election (<= 2.5 s here) + TTL.
    for t in &times {
        assert!(
            *t <= Duration::from_millis(2000 + 2500 + 2000),
            "expired after {t:?}"
        );
    }
    for n in names {
        assert_eq!(reg.lookup(NS, n).unwrap(), None);
    }
    script(&["restart", &leader]);
}

// ---- re-registration: off by default, on with reregister=true ------------------------

#[test]
fn with_reregister_a_resumed_owner_takes_back_its_free_names_but_never_a_taken_one() {
    let _g = cluster_lock().read().unwrap_or_else(|e| e.into_inner());
    let p = prefix("rereg");
    let reg = open_url(&url_at(endpoints(), &p, ""));
    let mut w = reg.watch(Some(NS), reg.revision().unwrap()).unwrap();
    let mut kid = Kid::spawn(
        "child_reregistering_owner",
        "rereg",
        &url_at(endpoints(), &p, "?ttl=2s&reregister=true"),
        "",
        &[],
    );
    kid.expect("registered");
    std::thread::sleep(Duration::from_millis(300));
    signal(kid.pid(), libc::SIGSTOP);
    assert!(wait_stopped(kid.pid(), Duration::from_secs(2)));
    let seen = expired_of(&mut w, &["mine", "contested"], Duration::from_secs(8));
    assert_eq!(seen.len(), 2);
    // Someone else takes one of the names while the owner is frozen.
    reg.register_self(NS, "contested", b"thief").unwrap();
    let resumed = Instant::now();
    signal(kid.pid(), libc::SIGCONT);
    // The owner reports the loss first.
    assert_eq!(
        kid.expect_within("expired", Duration::from_secs(10)),
        "contested,mine"
    );
    let back = loop {
        if let Some(e) = reg.lookup(NS, "mine").unwrap() {
            assert_eq!(e.pid, kid.pid());
            break resumed.elapsed();
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(10),
            "mine never came back"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(reg.lookup(NS, "contested").unwrap().unwrap().pid, me());
    kid.send("report");
    let lost = kid.expect("lost");
    let fresh = kid.expect("fresh");
    eprintln!(
        "reregister=true: 'mine' back {back:?} after SIGCONT, 'contested' stays with its new owner; health after: {lost:?}; new write: {fresh}"
    );
    assert_eq!(fresh, "ok");
    assert_eq!(reg.lookup(NS, "fresh").unwrap().unwrap().pid, kid.pid());
    kid.send("exit");
    kid.assert_success();
}

#[test]
fn reregister_takes_true_or_false_only() {
    match Registry::open("etcd://127.0.0.1:1/p?reregister=maybe") {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("reregister=true"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}
