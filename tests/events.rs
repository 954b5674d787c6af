//! Waiting, watching, reaping and the event hook, across real processes.
//! Children are this test binary re-executed (`--exact child_entry`) with
//! `EVENTS_CHILD_ROLE` set; `child_entry` returns at once without it.

mod common;

use common::{SegGuard, shm_url};
use procreg::{Error, Event, EventKind, Registry};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROLE: &str = "EVENTS_CHILD_ROLE";
const URL: &str = "EVENTS_CHILD_URL";
const ARG: &str = "EVENTS_CHILD_ARG";

fn spawn_child(role: &str, url: &str, arg: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(URL, url)
        .env(ARG, arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads the child's stdout until a line starting with `tag`; returns it.
fn read_until(child: &mut Child, tag: &str) -> String {
    let out = child.stdout.as_mut().unwrap();
    let mut r = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "child ended before {tag:?}"
        );
        if let Some(at) = line.find(tag) {
            return line[at..].trim_end().to_owned();
        }
    }
}

/// The body of every child process.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let url = std::env::var(URL).unwrap();
    let arg = std::env::var(ARG).unwrap();
    let reg = Registry::builder().open(&url).unwrap();
    match role.as_str() {
        // Registers `arg` after 200 ms, then stays alive until killed.
        "register-later" => {
            std::thread::sleep(Duration::from_millis(200));
            reg.register_self("ev", &arg, b"late").unwrap();
            println!("EVENTS:registered");
            std::thread::sleep(Duration::from_secs(60));
        }
        // Registers 3 keys `arg-i`, says so, and waits to be killed.
        "hold" => {
            for i in 0..3 {
                reg.register_self("ev", &format!("{arg}-{i}"), b"held")
                    .unwrap();
            }
            println!("EVENTS:holding");
            std::thread::sleep(Duration::from_secs(60));
        }
        // 2,500 operations on keys `arg-i`: register, update, unregister.
        "churn" => {
            let mut n = 0;
            let mut i = 0;
            while n < 2500 {
                let name = format!("{arg}-{i}");
                reg.register_self("ev", &name, b"a").unwrap();
                n += 1;
                if n < 2500 {
                    reg.update_metadata("ev", &name, b"b").unwrap();
                    n += 1;
                }
                if n < 2500 {
                    assert!(reg.unregister("ev", &name).unwrap());
                    n += 1;
                } else {
                    // The last key stays: its owner exits right after.
                }
                i += 1;
            }
            println!("EVENTS:done {n}");
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn wait_for_returns_when_another_process_registers() {
    let url = shm_url("ev-wait");
    let _g = SegGuard::new(&url);
    let reg = Registry::open(&url).unwrap();
    let mut child = spawn_child("register-later", &url, "svc");
    let t = Instant::now();
    let e = reg.wait_for("ev", "svc", Duration::from_secs(30)).unwrap();
    let waited = t.elapsed();
    assert_eq!(e.pid, child.id());
    assert_eq!(e.metadata, b"late");
    assert!(
        waited >= Duration::from_millis(150),
        "returned before the registration: {waited:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn wait_for_an_existing_key_returns_at_once_and_a_missing_one_times_out() {
    let reg = Registry::open("mem:").unwrap();
    reg.register_self("ev", "here", b"").unwrap();
    let t = Instant::now();
    assert_eq!(
        reg.wait_for("ev", "here", Duration::from_secs(10))
            .unwrap()
            .pid,
        std::process::id()
    );
    assert!(t.elapsed() < Duration::from_secs(1));
    let t = Instant::now();
    match reg.wait_for("ev", "absent", Duration::from_millis(300)) {
        Err(Error::Timeout { waited, .. }) => {
            assert!(waited >= Duration::from_millis(300), "{waited:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    // Other changes wake the waiter, which goes back to sleep until its key.
    std::thread::scope(|s| {
        let w = s.spawn(|| reg.wait_for("ev", "target", Duration::from_secs(20)));
        for i in 0..20 {
            reg.register_self("ev", &format!("noise-{i}"), b"").unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        reg.register_self("ev", "target", b"t").unwrap();
        assert_eq!(w.join().unwrap().unwrap().metadata, b"t");
    });
}

#[test]
fn sixty_four_waiters_on_one_key_all_wake() {
    let url = shm_url("ev-64");
    let _g = SegGuard::new(&url);
    let reg = Registry::open(&url).unwrap();
    let woke = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|_| {
                s.spawn(|| {
                    let r = reg.wait_for("ev", "many", Duration::from_secs(30));
                    woke.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    r
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            woke.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "nobody wakes early"
        );
        reg.register_self("ev", "many", b"m").unwrap();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap().metadata, b"m");
        }
    });
    assert_eq!(woke.into_inner(), 64);
}

#[test]
fn watcher_sees_every_change_of_four_processes_in_revision_order() {
    let url = shm_url("ev-watch4");
    let _g = SegGuard::new(&url);
    // Capacity 16384: the history holds 16,384 changes, more than the run makes.
    let reg = Registry::builder().capacity(16384).create(&url).unwrap();
    let start = reg.revision().unwrap();
    let mut w = reg.watch(Some("ev"), start).unwrap();
    let mut kids: Vec<Child> = (0..4)
        .map(|i| spawn_child("churn", &url, &format!("p{i}")))
        .collect();
    let pids: Vec<u32> = kids.iter().map(Child::id).collect();
    let mut events = Vec::with_capacity(10_000);
    let deadline = Instant::now() + Duration::from_secs(120);
    while events.len() < 10_000 {
        assert!(Instant::now() < deadline, "only {} events", events.len());
        match w.next(Duration::from_secs(10)) {
            Ok(e) => events.push(e),
            Err(Error::Timeout { .. }) => {}
            Err(e) => panic!("after {} events: {e}", events.len()),
        }
    }
    for k in &mut kids {
        assert_eq!(read_until(k, "EVENTS:done"), "EVENTS:done 2500");
        assert!(k.wait().unwrap().success());
    }
    // Consecutive revisions, nothing lost.
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.revision, start + 1 + i as u64, "gap at event {i}: {e:?}");
        assert_ne!(e.kind, EventKind::Lost, "{e:?}");
    }
    // Per process: 834 registered, 833 updated, 833 unregistered; per key in order.
    let mut per_pid: HashMap<u32, [usize; 3]> = HashMap::new();
    let mut last: HashMap<String, EventKind> = HashMap::new();
    for e in &events {
        let c = per_pid.entry(e.pid).or_default();
        let expected_before = match e.kind {
            EventKind::Registered => {
                c[0] += 1;
                None
            }
            EventKind::Updated => {
                c[1] += 1;
                Some(EventKind::Registered)
            }
            EventKind::Unregistered => {
                c[2] += 1;
                Some(EventKind::Updated)
            }
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(last.get(&e.name).copied(), expected_before, "{e:?}");
        last.insert(e.name.clone(), e.kind);
    }
    for pid in pids {
        assert_eq!(per_pid[&pid], [834, 833, 833], "pid {pid}");
    }
}

#[test]
fn a_watcher_that_falls_a_whole_history_behind_gets_lagged_and_goes_on() {
    let reg = Registry::builder()
        .capacity(256)
        .open_or_create("mem:")
        .unwrap();
    let mut w = reg.watch(None, reg.revision().unwrap()).unwrap();
    for i in 0..500 {
        reg.register_self("lag", &format!("k{i}"), b"").unwrap();
        reg.unregister("lag", &format!("k{i}")).unwrap();
    }
    match w.next(Duration::from_secs(1)) {
        Err(Error::Lagged { missed }) => assert_eq!(missed, 1000),
        other => panic!("{other:?}"),
    }
    reg.register_self("lag", "after", b"").unwrap();
    let e = w.next(Duration::from_secs(1)).unwrap();
    assert_eq!((e.kind, e.name.as_str()), (EventKind::Registered, "after"));
    // A watcher starting before it was attached has nothing recorded to read.
    let mut old = reg.watch(None, 0).unwrap();
    assert!(matches!(
        old.next(Duration::from_secs(1)),
        Err(Error::Lagged { .. })
    ));
    match w.next(Duration::from_millis(100)) {
        Err(Error::Timeout { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn reaper_reclaims_a_killed_owners_entries_within_100_ms() {
    let url = shm_url("ev-reap");
    let _g = SegGuard::new(&url);
    let reg = Registry::open(&url).unwrap();
    let reaper = reg.spawn_reaper(Duration::from_secs(5)).unwrap();
    // A second reaper (another handle, as another process would have): each
    // entry is still reclaimed and reported once.
    let other = Registry::open(&url).unwrap();
    let reaper2 = other.spawn_reaper(Duration::from_secs(5)).unwrap();
    let mut w = reg.watch(Some("ev"), reg.revision().unwrap()).unwrap();
    let mut child = spawn_child("hold", &url, "victim");
    read_until(&mut child, "EVENTS:holding");
    for _ in 0..3 {
        assert_eq!(
            w.next(Duration::from_secs(5)).unwrap().kind,
            EventKind::Registered
        );
    }
    // Let the reapers see the new owner and open its pidfd.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    let killed = Instant::now();
    child.wait().unwrap();
    let mut reclaimed = Vec::new();
    while reclaimed.len() < 3 {
        let e = w.next(Duration::from_secs(5)).unwrap();
        assert_eq!(e.kind, EventKind::Reclaimed, "{e:?}");
        reclaimed.push(e.name);
    }
    let took = killed.elapsed();
    reclaimed.sort();
    assert_eq!(reclaimed, ["victim-0", "victim-1", "victim-2"]);
    assert_eq!(reg.lookup_pid("ev", "victim-1").unwrap(), None);
    assert!(
        took < Duration::from_millis(100),
        "reclaimed {took:?} after the kill"
    );
    assert!(
        matches!(
            w.next(Duration::from_millis(200)),
            Err(Error::Timeout { .. })
        ),
        "no double report"
    );
    let total = reaper.stop().unwrap() + reaper2.stop().unwrap();
    assert_eq!(total, 3, "the two reapers reclaimed 3 entries between them");
    eprintln!("reclaimed 3 entries {took:?} after SIGKILL");
}

#[test]
fn on_event_sees_this_handles_changes_and_stats_count_this_process() {
    let reg = Registry::open("mem:").unwrap();
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = seen.clone();
    reg.on_event(move |e| sink.lock().unwrap().push(e.clone()));
    let before = reg.stats().unwrap().process;
    reg.register_self("hook", "a", b"1").unwrap();
    reg.update_metadata("hook", "a", b"2").unwrap();
    assert_eq!(
        reg.lookup_pid("hook", "a").unwrap(),
        Some(std::process::id())
    );
    assert_eq!(reg.lookup_pid("hook", "b").unwrap(), None);
    assert!(reg.unregister("hook", "a").unwrap());
    let kinds: Vec<(EventKind, u64)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.kind, e.revision))
        .collect();
    let r = reg.revision().unwrap();
    assert_eq!(
        kinds,
        [
            (EventKind::Registered, r - 2),
            (EventKind::Updated, r - 1),
            (EventKind::Unregistered, r)
        ]
    );
    let after = reg.stats().unwrap().process;
    // Other tests of this binary run in parallel threads: at least ours.
    assert!(after.registers > before.registers);
    assert!(after.updates > before.updates);
    assert!(after.unregisters > before.unregisters);
    assert!(after.lookup_hits > before.lookup_hits);
    assert!(after.lookup_misses > before.lookup_misses);
}

#[test]
fn an_unrenewed_lease_expires_even_though_its_owner_lives() {
    let reg = Registry::open("mem:").unwrap();
    let me = std::process::id();
    let mut w = reg.watch(Some("lease"), reg.revision().unwrap()).unwrap();
    reg.register_with_lease("lease", "hung", me, b"", Duration::from_millis(100))
        .unwrap();
    reg.register_with_lease("lease", "kept", me, b"", Duration::from_millis(100))
        .unwrap();
    reg.register_self("lease", "plain", b"").unwrap();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(50));
        reg.keepalive("lease", "kept").unwrap();
    }
    // 200 ms later: "hung" ran out, "kept" was renewed, "plain" has no lease.
    let h = reg.health_check().unwrap();
    assert_eq!((h.expired_leases, h.alive_owners, h.healthy), (1, 2, false));
    assert!(reg.lookup_checked("lease", "hung").unwrap().is_none());
    assert!(reg.lookup_checked("lease", "kept").unwrap().is_some());
    assert!(matches!(
        reg.keepalive("lease", "hung"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        reg.keepalive("lease", "plain"),
        Err(Error::InvalidArgument(_))
    ));
    let kinds: Vec<(EventKind, String)> = (0..4)
        .map(|_| w.next(Duration::from_secs(1)).unwrap())
        .map(|e| (e.kind, e.name))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Registered, "hung".to_string()),
            (EventKind::Registered, "kept".to_string()),
            (EventKind::Registered, "plain".to_string()),
            (EventKind::Expired, "hung".to_string()),
        ]
    );
    // A sweep leaves the renewed one; an expired key can be registered anew.
    assert_eq!(reg.sweep().unwrap(), 0);
    reg.register_self("lease", "hung", b"again").unwrap();
    for bad in [Duration::ZERO, Duration::from_secs(5 * 3600)] {
        assert!(matches!(
            reg.register_with_lease("lease", "x", me, b"", bad),
            Err(Error::InvalidArgument(_))
        ));
    }
}

#[test]
fn registering_over_an_expired_lease_replaces_it_though_its_owner_lives() {
    let reg = Registry::open("mem:").unwrap();
    let me = std::process::id();
    reg.register_with_lease("lease2", "k", me, b"old", Duration::from_millis(50))
        .unwrap();
    assert!(matches!(
        reg.register_self("lease2", "k", b"new"),
        Err(Error::AlreadyExists { .. })
    ));
    let mut w = reg.watch(Some("lease2"), reg.revision().unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    reg.register_self("lease2", "k", b"new").unwrap();
    assert_eq!(reg.lookup("lease2", "k").unwrap().unwrap().metadata, b"new");
    let kinds: Vec<EventKind> = (0..2)
        .map(|_| w.next(Duration::from_secs(1)).unwrap().kind)
        .collect();
    assert_eq!(kinds, [EventKind::Expired, EventKind::Registered]);
}
