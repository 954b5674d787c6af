//! Multi-process tests with real processes. The test binary re-executes itself
//! (`--exact child_… --nocapture`); the harness (`Kid`, `child_role`, `say`,
//! `hear`) is the reliability suite's, in `tests/reliability_support`. Parent
//! and children talk over pipes: a child prints `PROCREG:<tag> <data>` lines on
//! stdout and reads commands (barriers) from stdin.

mod common;
mod reliability_support;

use common::{SegGuard, shm_url};
use procreg::{Error, Registry};
use reliability_support::{Kid, child_role, hear, say};
use std::collections::{BTreeSet, HashMap};
use std::os::unix::process::ExitStatusExt;

// ---- (a) every process sees every key ------------------------------------

const FILL_KIDS: usize = 8;
const FILL_KEYS: usize = 500;
const FILL_NS: &str = "fill";

fn fill_name(kid: usize, i: usize) -> String {
    format!("p{kid}-k{i}")
}
fn fill_meta(kid: usize, i: usize) -> Vec<u8> {
    format!("key={};kid={kid}", fill_name(kid, i)).into_bytes()
}

/// Checks all `FILL_KIDS × FILL_KEYS` keys; `pids[k]` owns kid `k`'s keys.
fn check_all_fill_keys(reg: &Registry, pids: &[u32], checked: bool, who: &str) {
    for (kid, &pid) in pids.iter().enumerate() {
        for i in 0..FILL_KEYS {
            let name = fill_name(kid, i);
            let e = if checked {
                reg.lookup_checked(FILL_NS, &name)
            } else {
                reg.lookup(FILL_NS, &name)
            }
            .unwrap()
            .unwrap_or_else(|| panic!("{who}: key {name} missing"));
            assert_eq!(
                (e.namespace.as_str(), e.name.as_str(), e.pid),
                (FILL_NS, name.as_str(), pid),
                "{who}"
            );
            assert_eq!(e.metadata, fill_meta(kid, i), "{who}: metadata of {name}");
        }
    }
}

#[test]
fn child_fill_then_verify() {
    let Some((url, args)) = child_role("fill") else {
        return;
    };
    let kid: usize = args.parse().unwrap();
    let reg = Registry::builder().open(&url).unwrap();
    for i in 0..FILL_KEYS {
        reg.register_self(FILL_NS, &fill_name(kid, i), &fill_meta(kid, i))
            .unwrap_or_else(|e| panic!("kid {kid} key {i}: {e}"));
    }
    say("ready");
    let go = hear().expect("parent sends go");
    let pids: Vec<u32> = go
        .strip_prefix("go ")
        .expect("go <pids>")
        .split(',')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), FILL_KIDS);
    assert_eq!(pids[kid], std::process::id());
    // Every other process is alive until the parent says exit: checked lookups hit too.
    check_all_fill_keys(&reg, &pids, false, &format!("kid {kid}"));
    check_all_fill_keys(&reg, &pids, true, &format!("kid {kid} (checked)"));
    say(&format!("verified {}", FILL_KIDS * FILL_KEYS));
    assert_eq!(hear().as_deref(), Some("exit"));
}

#[test]
fn eight_processes_register_500_keys_each_and_every_process_sees_all_4000() {
    let url = shm_url("fill");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().capacity(8192).create(&url).unwrap();
    let mut kids: Vec<Kid> = (0..FILL_KIDS)
        .map(|k| Kid::spawn("child_fill_then_verify", "fill", &url, &k.to_string(), &[]))
        .collect();
    for kid in &mut kids {
        kid.expect("ready");
    }
    let pids: Vec<u32> = kids.iter().map(Kid::pid).collect();
    assert_eq!(reg.stats().unwrap().live, FILL_KIDS * FILL_KEYS);
    check_all_fill_keys(&reg, &pids, false, "parent");
    check_all_fill_keys(&reg, &pids, true, "parent (checked)");
    let go = format!(
        "go {}",
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    for kid in &mut kids {
        kid.send(&go);
    }
    for kid in &mut kids {
        let n: usize = kid.expect("verified").parse().unwrap();
        assert_eq!(n, FILL_KIDS * FILL_KEYS);
    }
    let h = reg.health_check().unwrap();
    assert_eq!((h.alive_owners, h.dead_owners), (FILL_KIDS * FILL_KEYS, 0));
    for kid in &mut kids {
        kid.send("exit");
    }
    for kid in &mut kids {
        kid.assert_success();
    }
    // All owners are gone now: their entries are dead and a sweep reclaims them.
    assert_eq!(
        reg.health_check().unwrap().dead_owners,
        FILL_KIDS * FILL_KEYS
    );
    assert_eq!(reg.sweep().unwrap(), FILL_KIDS * FILL_KEYS);
    assert_eq!(reg.stats().unwrap().live, 0);
}

// ---- (b) racing registrations of the same keys ----------------------------

const RACE_KIDS: usize = 4;
const RACE_KEYS: usize = 1000;
const RACE_NS: &str = "race";

#[test]
fn child_race() {
    let Some((url, args)) = child_role("race") else {
        return;
    };
    let kid: usize = args.parse().unwrap();
    let me = std::process::id();
    let reg = Registry::builder().open(&url).unwrap();
    // Take the writer token before the start line, so all start equal.
    reg.register_self("warmup", &format!("kid{kid}"), b"")
        .unwrap();
    say("ready");
    assert_eq!(hear().as_deref(), Some("go"));
    let mut won = Vec::new();
    let mut lost = 0usize;
    for i in 0..RACE_KEYS {
        match reg.register_self(RACE_NS, &format!("k{i}"), format!("kid{kid}").as_bytes()) {
            Ok(_) => won.push(i),
            Err(Error::AlreadyExists { pid, .. }) => {
                assert_ne!(pid, me, "kid {kid}: key {i} refused as already ours");
                lost += 1;
            }
            Err(e) => panic!("kid {kid}: key {i}: {e}"),
        }
    }
    let list: Vec<String> = won.iter().map(usize::to_string).collect();
    say(&format!("result {} {lost} {}", won.len(), list.join(",")));
    assert_eq!(hear().as_deref(), Some("exit"));
}

#[test]
fn four_processes_racing_for_1000_keys_win_each_exactly_once() {
    let url = shm_url("race");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().capacity(4096).create(&url).unwrap();
    let mut kids: Vec<Kid> = (0..RACE_KIDS)
        .map(|k| Kid::spawn("child_race", "race", &url, &k.to_string(), &[]))
        .collect();
    for kid in &mut kids {
        kid.expect("ready");
    }
    for kid in &mut kids {
        kid.send("go");
    }
    let mut winner: HashMap<usize, usize> = HashMap::new();
    let mut total_ok = 0;
    let mut counts = Vec::new();
    for (k, kid) in kids.iter_mut().enumerate() {
        let res = kid.expect("result");
        let mut parts = res.splitn(3, ' ');
        let ok: usize = parts.next().unwrap().parse().unwrap();
        let lost: usize = parts.next().unwrap().parse().unwrap();
        let list = parts.next().unwrap_or("");
        let won: BTreeSet<usize> = list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(won.len(), ok, "kid {k}: list and count disagree");
        assert_eq!(
            ok + lost,
            RACE_KEYS,
            "kid {k}: every attempt is Ok or AlreadyExists"
        );
        for i in won {
            if let Some(other) = winner.insert(i, k) {
                panic!("key k{i} was won by kid {other} and by kid {k}");
            }
        }
        total_ok += ok;
        counts.push(ok);
    }
    eprintln!("race: keys won per process {counts:?}");
    assert_eq!(
        total_ok, RACE_KEYS,
        "exactly one registration per key succeeds"
    );
    assert_eq!(reg.list(RACE_NS).unwrap().len(), RACE_KEYS);
    for i in 0..RACE_KEYS {
        let k = *winner
            .get(&i)
            .unwrap_or_else(|| panic!("key k{i} won by nobody"));
        let e = reg.lookup(RACE_NS, &format!("k{i}")).unwrap().unwrap();
        assert_eq!(
            e.pid,
            kids[k].pid(),
            "k{i}: owner is the kid that reported the win"
        );
        assert_eq!(e.metadata, format!("kid{k}").into_bytes(), "k{i}");
    }
    for kid in &mut kids {
        kid.send("exit");
    }
    for kid in &mut kids {
        kid.assert_success();
    }
}

// ---- (c) an owner killed with SIGKILL -----------------------------------

const VICTIM_KEYS: usize = 50;

#[test]
fn child_register_and_block() {
    let Some((url, _)) = child_role("block") else {
        return;
    };
    let reg = Registry::builder().open(&url).unwrap();
    for i in 0..VICTIM_KEYS {
        reg.register_self("victim", &format!("k{i}"), format!("m{i}").as_bytes())
            .unwrap();
    }
    say("ready");
    // Block until killed (or until the parent goes away).
    let _ = hear();
}

#[test]
fn entries_of_a_sigkilled_owner_are_dead_swept_and_reregistrable() {
    let url = shm_url("kill");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().capacity(256).create(&url).unwrap();
    let mut kid = Kid::spawn("child_register_and_block", "block", &url, "", &[]);
    kid.expect("ready");
    let pid = kid.pid();
    for i in 0..VICTIM_KEYS {
        let e = reg.lookup_checked("victim", &format!("k{i}")).unwrap();
        assert_eq!(e.map(|e| e.pid), Some(pid), "k{i} while its owner lives");
    }
    let h = reg.health_check().unwrap();
    assert_eq!((h.alive_owners, h.dead_owners), (VICTIM_KEYS, 0));

    kid.child.kill().unwrap();
    let st = kid.child.wait().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}");

    // Unchecked lookups still return what the dead owner registered.
    for i in 0..VICTIM_KEYS {
        let e = reg.lookup("victim", &format!("k{i}")).unwrap().unwrap();
        assert_eq!((e.pid, e.metadata), (pid, format!("m{i}").into_bytes()));
    }
    assert_eq!(reg.lookup_checked("victim", "k0").unwrap(), None);
    let h = reg.health_check().unwrap();
    assert_eq!(h.dead_owners, VICTIM_KEYS - 1, "{h:?}");
    assert!(!h.healthy, "dead owners must make the registry unhealthy");
    let swept = reg.sweep().unwrap();
    assert!(swept >= VICTIM_KEYS - 1, "sweep reclaimed only {swept}");
    let s = reg.stats().unwrap();
    assert_eq!(s.live, 0, "{s:?}");
    assert_eq!(reg.health_check().unwrap().dead_owners, 0);
    reg.register_self("victim", "k7", b"mine").unwrap();
    assert_eq!(
        reg.lookup_pid("victim", "k7").unwrap(),
        Some(std::process::id())
    );
}

// ---- (d) a writer killed mid-insert -------------------------------------

#[cfg(feature = "fault-injection")]
const CRASH_KEYS: usize = 200;

#[test]
fn child_crash_mid_insert() {
    let Some((url, _)) = child_role("crash") else {
        return;
    };
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads one valid rlimit struct; it only limits core dumps here.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    let reg = Registry::builder().open(&url).unwrap();
    say("registering");
    // With PROCREG_CRASH_AT=InsertWritten this aborts inside the insert.
    let r = reg.register_self("crash", "k0", b"child");
    say(&format!("survived {r:?}"));
}

#[cfg(feature = "fault-injection")]
#[test]
fn writer_aborted_mid_insert_does_not_block_its_neighbourhood() {
    let url = shm_url("crash");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().capacity(512).create(&url).unwrap();
    let mut kid = Kid::spawn(
        "child_crash_mid_insert",
        "crash",
        &url,
        "",
        &[("PROCREG_CRASH_AT", "InsertWritten")],
    );
    kid.expect("registering");
    let st = kid.wait_exit();
    assert_eq!(
        st.signal(),
        Some(libc::SIGABRT),
        "the child must die inside the insert: {st:?}"
    );
    // It left a claimed slot (and its neighbourhood lock) behind, unpublished.
    assert_eq!(reg.stats().unwrap().table().unwrap().claimed, 1);
    assert!(reg.health_check().unwrap().table().unwrap().stuck_slots >= 1);
    assert_eq!(reg.lookup("crash", "k0").unwrap(), None);

    // The same key (same neighbourhood) and many others register at once.
    let t = std::time::Instant::now();
    for i in 0..CRASH_KEYS {
        reg.register_self("crash", &format!("k{i}"), b"parent")
            .unwrap_or_else(|e| panic!("k{i} after the crash: {e}"));
    }
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "registering took {:?}",
        t.elapsed()
    );
    reg.sweep().unwrap();
    let s = reg.stats().unwrap();
    assert_eq!(s.table().unwrap().claimed, 0, "{s:?}");
    assert_eq!(s.live, CRASH_KEYS, "{s:?}");
    assert_eq!(reg.health_check().unwrap().table().unwrap().stuck_slots, 0);
    let me = std::process::id();
    for i in 0..CRASH_KEYS {
        assert_eq!(
            reg.lookup_pid("crash", &format!("k{i}")).unwrap(),
            Some(me),
            "k{i}"
        );
    }
}

// ---- readers keep up with another process updating the entry in a loop ----

const HOT_NS: &str = "hot";
/// Long enough that copying it is most of a read (the window a concurrent
/// update must not hit), of two lengths so a torn read shows.
const HOT_METAS: [&[u8]; 2] = [&[b'a'; 600], &[b'b'; 900]];

#[test]
fn child_update_hot_entry() {
    let Some((url, _)) = child_role("updater") else {
        return;
    };
    let reg = Registry::builder().open(&url).unwrap();
    say("ready");
    let mut n = 0u64;
    // Flat out, checking for the parent's stop key every 64 updates.
    while !n.is_multiple_of(64) || reg.lookup_pid(HOT_NS, "stop").unwrap().is_none() {
        reg.update_metadata(HOT_NS, "svc", HOT_METAS[(n % 2) as usize])
            .unwrap();
        n += 1;
    }
    say(&format!("updates {n}"));
}

#[test]
fn lookups_of_an_entry_updated_in_a_loop_by_another_process_never_give_up() {
    let url = shm_url("hot");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder()
        .capacity(64)
        .max_metadata_len(1024)
        .create(&url)
        .unwrap();
    reg.register_self(HOT_NS, "svc", HOT_METAS[0]).unwrap();
    let mut kid = Kid::spawn("child_update_hot_entry", "updater", &url, "", &[]);
    kid.expect("ready");
    let t0 = std::time::Instant::now();
    let (mut reads, mut busy) = (0u64, 0u64);
    while t0.elapsed() < std::time::Duration::from_millis(1500) {
        for _ in 0..1000 {
            match reg.lookup(HOT_NS, "svc") {
                Ok(Some(e)) => assert!(
                    HOT_METAS.contains(&e.metadata.as_slice()),
                    "torn metadata {:?}",
                    e.metadata
                ),
                Ok(None) => panic!("the entry vanished"),
                Err(Error::Busy(_)) => busy += 1,
                Err(e) => panic!("{e}"),
            }
            reads += 1;
        }
    }
    reg.register_self(HOT_NS, "stop", b"").unwrap();
    let updates: u64 = kid.expect("updates").parse().unwrap();
    assert!(kid.wait_exit().success());
    println!("{reads} lookups during {updates} updates by another process; Busy {busy}");
    assert!(
        updates > 10_000,
        "the updater hardly ran ({updates} updates)"
    );
    assert_eq!(busy, 0, "{busy} of {reads} lookups gave up with Busy");
}

// ---- cached service references across processes ---------------------------

const SVC_ROUNDS: usize = 150;

/// Another process changes the entry in lockstep with the parent: register
/// for itself, replace it with a registration for pid `args`, unregister.
#[test]
fn child_service_churn() {
    let Some((url, args)) = child_role("svc-churn") else {
        return;
    };
    let other: u32 = args.parse().unwrap();
    let reg = Registry::builder().open(&url).unwrap();
    for _ in 0..SVC_ROUNDS {
        reg.register_self("svc", "db", b"").unwrap();
        say("up");
        hear().unwrap();
        assert!(reg.unregister("svc", "db").unwrap());
        reg.register("svc", "db", other, b"").unwrap();
        say("swapped");
        hear().unwrap();
        assert!(reg.unregister("svc", "db").unwrap());
        say("down");
        hear().unwrap();
    }
    // Free running: churn until told to stop.
    say("free");
    let mut n = 0u64;
    loop {
        reg.register_self("svc", "db", b"").unwrap();
        reg.unregister("svc", "db").unwrap();
        reg.register("svc", "db", other, b"").unwrap();
        reg.unregister("svc", "db").unwrap();
        n += 1;
        if n.is_multiple_of(64)
            && std::fs::metadata(format!("/dev/shm/procreg-svc-stop-{other}")).is_ok()
        {
            break;
        }
    }
    say(&format!("stopped {n}"));
}

/// A `Service` never answers with an entry that was unregistered or
/// replaced by another process before the call began: each change the
/// child reports (after it committed) shows in the very next call, cached
/// or not; and under free-running churn every answer is one of the two
/// owners or none.
#[test]
fn a_service_never_answers_with_a_replaced_entry() {
    let url = shm_url("service");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().capacity(256).create(&url).unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let other = sleeper.id();
    let mut svc = reg.service("svc", "db").unwrap();
    let mut kid = Kid::spawn(
        "child_service_churn",
        "svc-churn",
        &url,
        &other.to_string(),
        &[],
    );
    let child = kid.pid();
    for round in 0..SVC_ROUNDS {
        kid.expect("up");
        assert_eq!(svc.pid().unwrap(), Some(child), "round {round}: registered");
        assert_eq!(svc.pid().unwrap(), Some(child), "round {round}: cached");
        kid.send("go");
        kid.expect("swapped");
        assert_eq!(svc.pid().unwrap(), Some(other), "round {round}: replaced");
        kid.send("go");
        kid.expect("down");
        assert_eq!(svc.pid().unwrap(), None, "round {round}: unregistered");
        kid.send("go");
    }
    kid.expect("free");
    let stop = format!("/dev/shm/procreg-svc-stop-{other}");
    let mut seen = [0usize; 3];
    for _ in 0..200_000 {
        match svc.pid().unwrap() {
            None => seen[0] += 1,
            Some(p) if p == child => seen[1] += 1,
            Some(p) if p == other => seen[2] += 1,
            Some(p) => panic!("pid {p} never owned the key"),
        }
    }
    std::fs::write(&stop, b"").unwrap();
    let said = kid.expect("stopped");
    kid.assert_success();
    std::fs::remove_file(&stop).unwrap();
    assert_eq!(svc.pid().unwrap(), None, "after the last unregister");
    eprintln!("service under churn: none/child/other = {seen:?}; child cycles {said}");
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}
