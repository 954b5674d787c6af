//! One behaviour suite, run against every backend: `mem:`, `shm:`, and with
//! the `etcd` feature `etcd://` on the cluster named by
//! `PROCREG_ETCD_ENDPOINTS` (`scripts/etcd-cluster start` prints it).

mod common;
use common::SegGuard;
use procreg::{Error, EventKind, Liveness, Registry};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Capacity of the table backends in this suite.
const CAPACITY: usize = 256;

fn backends(test: &str) -> Vec<(String, Registry)> {
    let shm = format!("shm:compliance-{test}-{}", std::process::id());
    let _ = Registry::destroy(&shm);
    #[allow(unused_mut)]
    let mut regs = vec![
        (
            "mem".into(),
            Registry::builder()
                .capacity(CAPACITY)
                .create("mem:")
                .unwrap(),
        ),
        (
            shm.clone(),
            Registry::builder().capacity(CAPACITY).create(&shm).unwrap(),
        ),
    ];
    #[cfg(feature = "etcd")]
    {
        let endpoints = std::env::var("PROCREG_ETCD_ENDPOINTS").expect(
            "the etcd feature runs this suite on etcd too: set PROCREG_ETCD_ENDPOINTS \
             (scripts/etcd-cluster start prints it)",
        );
        let url = format!(
            "etcd://{endpoints}/compliance-{test}-{}?ttl=3s&timeout=5s",
            std::process::id()
        );
        let _ = Registry::destroy(&url);
        regs.push((url.clone(), Registry::open(&url).unwrap()));
    }
    regs
}

fn cleanup(regs: Vec<(String, Registry)>) {
    for (url, reg) in regs {
        drop(reg);
        if !url.starts_with("mem") {
            Registry::destroy(&url).unwrap();
        }
    }
}

#[test]
fn register_lookup_update_unregister_round_trip() {
    let regs = backends("roundtrip");
    for (url, reg) in &regs {
        let me = std::process::id();
        let v1 = reg.register_self("svc", "db", b"port=1").unwrap();
        assert_eq!(reg.lookup_pid("svc", "db").unwrap(), Some(me), "{url}");
        let e = reg.lookup("svc", "db").unwrap().unwrap();
        assert_eq!(
            (e.namespace.as_str(), e.name.as_str(), e.pid),
            ("svc", "db", me)
        );
        assert_eq!(e.metadata, b"port=1");
        assert_eq!(e.version, v1);
        let v2 = reg.update_metadata("svc", "db", b"port=2").unwrap();
        assert_ne!(v1, v2);
        assert_eq!(
            reg.lookup_checked("svc", "db").unwrap().unwrap().metadata,
            b"port=2"
        );
        assert!(matches!(
            reg.register_self("svc", "db", b""),
            Err(Error::AlreadyExists { pid, alive: Liveness::Alive, .. }) if pid == me
        ));
        assert!(!reg.unregister_if_owner("svc", "db", me + 1).unwrap());
        assert!(reg.unregister_if_owner("svc", "db", me).unwrap());
        assert!(!reg.unregister("svc", "db").unwrap());
        assert_eq!(reg.lookup("svc", "db").unwrap(), None);
        assert!(matches!(
            reg.update_metadata("svc", "db", b""),
            Err(Error::NotFound { .. })
        ));
    }
    cleanup(regs);
}

#[test]
fn namespaces_list_and_clear_are_isolated() {
    let regs = backends("ns");
    for (url, reg) in &regs {
        for i in 0..5 {
            reg.register_self("a", &format!("s{i}"), b"").unwrap();
        }
        reg.register_self("b", "only", b"").unwrap();
        assert_eq!(
            reg.namespaces().unwrap(),
            vec!["a".to_string(), "b".to_string()],
            "{url}"
        );
        let names: Vec<String> = reg.list("a").unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["s0", "s1", "s2", "s3", "s4"]);
        assert_eq!(reg.clear_namespace("a").unwrap(), 5);
        assert!(reg.list("a").unwrap().is_empty());
        assert_eq!(reg.list("b").unwrap().len(), 1);
        let st = reg.stats().unwrap();
        assert_eq!(st.live, 1, "{url}");
        if let Some(t) = st.table() {
            assert_eq!(t.capacity, CAPACITY, "{url}");
        }
        assert!(reg.health_check().unwrap().healthy);
    }
    cleanup(regs);
}

#[test]
fn dead_pid_is_refused_and_dead_owner_is_reclaimed() {
    let regs = backends("dead");
    for (url, reg) in &regs {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        reg.register("svc", "worker", pid, b"").unwrap();
        assert!(matches!(
            reg.register("svc", "worker", std::process::id(), b""),
            Err(Error::AlreadyExists {
                alive: Liveness::Alive,
                ..
            })
        ));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            matches!(reg.register("svc", "x", pid, b""), Err(Error::ProcessNotAlive(p)) if p == pid)
        );
        // Unchecked lookup still sees it; the checked one reclaims it.
        assert_eq!(reg.lookup_pid("svc", "worker").unwrap(), Some(pid), "{url}");
        assert_eq!(reg.health_check().unwrap().dead_owners, 1);
        assert_eq!(reg.lookup_checked("svc", "worker").unwrap(), None);
        assert_eq!(reg.lookup_pid("svc", "worker").unwrap(), None);
        // A dead owner's key is taken over by a new registration.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        reg.register("svc", "w2", child.id(), b"").unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        reg.register_self("svc", "w2", b"new").unwrap();
        assert_eq!(
            reg.lookup_pid("svc", "w2").unwrap(),
            Some(std::process::id())
        );
        if let Some(t) = reg.stats().unwrap().table() {
            assert_eq!(t.reclaimed, 2, "{url}");
        }
    }
    cleanup(regs);
}

#[test]
fn default_segment_size_matches_the_documented_layout() {
    let url = format!("shm:compliance-size-{}", std::process::id());
    let _ = Registry::destroy(&url);
    let reg = Registry::open(&url).unwrap();
    let bytes = reg.stats().unwrap().table().unwrap().segment_bytes;
    eprintln!("default segment bytes {bytes}");
    // header 4 KiB + 1024 writer slots of 32 B + table words (see README
    // "Limits"): counters, control words, home and tag words, hot and cold rows, and a
    // change ring of 4096 records of 4 + 24 words rounded up to 32 (4 lines).
    assert_eq!(
        bytes,
        4096 + 32768 + 8 * (16 + 4096 + 512 + 512 + 4096 * 8 + 4096 * 88 + 4096 * 32)
    );
    assert_eq!(bytes, 4_272_256);
    drop(reg);
    Registry::destroy(&url).unwrap();
}

/// `owner_liveness` judges without changing anything: a dead owner's entry
/// stays (and stays dead) until something reclaims it.
#[test]
fn owner_liveness_is_read_only() {
    for url in ["mem:", &common::shm_url("owner-liveness")] {
        let _g = SegGuard::new(url);
        let reg = Registry::open(url).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        reg.register("ns", "child", child.id(), b"").unwrap();
        reg.register_self("ns", "me", b"").unwrap();
        assert_eq!(
            reg.owner_liveness("ns", "me").unwrap(),
            Some(Liveness::Alive)
        );
        assert_eq!(
            reg.owner_liveness("ns", "child").unwrap(),
            Some(Liveness::Alive)
        );
        assert_eq!(reg.owner_liveness("ns", "absent").unwrap(), None);
        child.kill().unwrap();
        child.wait().unwrap();
        for _ in 0..2 {
            assert_eq!(
                reg.owner_liveness("ns", "child").unwrap(),
                Some(Liveness::Dead)
            );
        }
        assert_eq!(reg.lookup_pid("ns", "child").unwrap(), Some(child.id()));
        assert_eq!(reg.sweep().unwrap(), 1);
        assert_eq!(reg.owner_liveness("ns", "child").unwrap(), None);
    }
}

#[test]
fn entries_and_events_name_the_owners_host() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let regs = backends("host");
    for (url, reg) in &regs {
        let mut w = reg.watch(Some("h"), reg.revision().unwrap()).unwrap();
        reg.register_self("h", "k", b"").unwrap();
        assert_eq!(
            reg.lookup("h", "k").unwrap().unwrap().host,
            host.trim(),
            "{url}"
        );
        let ev = w.next(Duration::from_secs(5)).unwrap();
        assert_eq!(
            (ev.name.as_str(), ev.host.as_str()),
            ("k", host.trim()),
            "{url}"
        );
        let mut hosts = Vec::new();
        reg.visit(Some("h"), |e| {
            hosts.push(e.host.to_owned());
            true
        })
        .unwrap();
        assert_eq!(hosts, [host.trim()], "{url}");
    }
    cleanup(regs);
}

#[test]
fn clones_share_one_handle_and_its_hook() {
    let regs = backends("clone");
    for (url, reg) in &regs {
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        let twin = reg.clone();
        twin.on_event(move |_| {
            count.fetch_add(1, Ordering::SeqCst);
        });
        reg.register_self("c", "k", b"").unwrap();
        assert_eq!(
            twin.lookup_pid("c", "k").unwrap(),
            Some(std::process::id()),
            "{url}"
        );
        assert!(twin.unregister("c", "k").unwrap());
        assert_eq!(
            seen.load(Ordering::SeqCst),
            2,
            "{url}: a hook set on a clone"
        );
    }
    cleanup(regs);
}

#[test]
fn a_watcher_outlives_the_handle_it_came_from() {
    let regs = backends("outlive");
    for (url, reg) in &regs {
        let mut w = reg.watch(None, reg.revision().unwrap()).unwrap();
        let other = reg.clone();
        drop(w.next(Duration::ZERO)); // nothing yet: a timeout
        let reg = reg.clone();
        drop(reg);
        other.register_self("o", "k", b"").unwrap();
        let ev = w.next(Duration::from_secs(5)).unwrap();
        assert_eq!(
            (ev.kind, ev.name.as_str()),
            (EventKind::Registered, "k"),
            "{url}"
        );
    }
    cleanup(regs);
}

#[test]
fn a_reaper_runs_on_any_registry_even_an_anonymous_one() {
    let regs = backends("reaper");
    for (url, reg) in &regs {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        reg.register("r", "child", child.id(), b"").unwrap();
        let reaper = reg.spawn_reaper(Duration::from_secs(60)).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let t = std::time::Instant::now();
        while reg.lookup_pid("r", "child").unwrap().is_some() {
            assert!(t.elapsed() < Duration::from_secs(5), "{url}: not reaped");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(reaper.stop().unwrap(), 1, "{url}");
    }
    cleanup(regs);
}

#[test]
fn limits_stats_and_health_report_the_generic_and_the_table_part() {
    let regs = backends("limits");
    for (url, reg) in &regs {
        let lim = reg.limits();
        let table = url == "mem" || url.starts_with("shm:");
        assert_eq!(lim.capacity, table.then_some(CAPACITY), "{url}");
        assert!(lim.min_lease_ttl <= lim.max_lease_ttl, "{url}");
        for ttl in [
            lim.min_lease_ttl / 2,
            lim.max_lease_ttl + Duration::from_millis(1),
        ] {
            let r = reg.register_with_lease("l", "k", std::process::id(), b"", ttl);
            assert!(
                matches!(r, Err(Error::InvalidArgument(_))),
                "{url} {ttl:?}: {r:?}"
            );
        }
        reg.register_self("l", "a", b"").unwrap();
        reg.register_self("l", "b", b"").unwrap();
        let st = reg.stats().unwrap();
        assert_eq!(st.live, reg.list_all().unwrap().len(), "{url}");
        // Revisions only grow (on etcd they are cluster-wide: other
        // registries of the same cluster move them too).
        let now = reg.revision().unwrap();
        assert!(
            st.revision > 0 && st.revision <= now,
            "{url}: {} > {now}",
            st.revision
        );
        assert_eq!(st.limits, lim, "{url}");
        assert_eq!(st.table().is_some(), table, "{url}");
        if let Some(t) = st.table() {
            assert_eq!((t.capacity, t.registers), (CAPACITY, 2), "{url}");
        }
        let h = reg.health_check().unwrap();
        assert!(h.healthy, "{url}: {:?}", h.problems);
        assert_eq!((h.live, h.alive_owners), (2, 2), "{url}");
        if let Some(t) = h.table() {
            assert_eq!(t.stuck_slots, 0, "{url}");
        }
    }
    cleanup(regs);
}

#[test]
fn a_lease_kept_alive_outlives_its_ttl_and_a_lapsed_one_is_gone() {
    let regs = backends("lease");
    let ttl = Duration::from_secs(2);
    for (url, reg) in &regs {
        let me = std::process::id();
        reg.register_with_lease("l", "kept", me, b"", ttl).unwrap();
        reg.register_self("l", "plain", b"").unwrap();
        let t0 = std::time::Instant::now();
        while t0.elapsed() < ttl + ttl / 2 {
            reg.keepalive("l", "kept").unwrap();
            std::thread::sleep(ttl / 4);
        }
        assert!(
            reg.lookup_checked("l", "kept").unwrap().is_some(),
            "{url}: renewed for 1.5 ttl, still there"
        );
        assert!(
            matches!(reg.keepalive("l", "plain"), Err(Error::InvalidArgument(_))),
            "{url}: an entry without a lease has nothing to renew"
        );
        let stopped = std::time::Instant::now();
        while reg.lookup_checked("l", "kept").unwrap().is_some() {
            assert!(
                stopped.elapsed() < ttl + Duration::from_millis(1500),
                "{url}: a lapsed lease outlived ttl + 1.5 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{url}: lapsed after {:?}", stopped.elapsed());
        assert!(
            matches!(reg.keepalive("l", "kept"), Err(Error::NotFound { .. })),
            "{url}: a lapsed lease cannot be renewed"
        );
    }
    cleanup(regs);
}

#[test]
fn prepared_keys_answer_as_the_string_lookups() {
    let regs = backends("keys");
    for (url, reg) in &regs {
        let me = std::process::id();
        reg.register_self("svc", "db", b"port=1").unwrap();
        let hit = procreg::Key::new("svc", "db").unwrap();
        let miss = procreg::Key::new("svc", "nope").unwrap();
        assert_eq!(reg.lookup_pid_key(&hit).unwrap(), Some(me), "{url}");
        assert_eq!(reg.lookup_pid_key(&miss).unwrap(), None, "{url}");
        let e = reg.lookup_key(&hit).unwrap().unwrap();
        assert_eq!((e.pid, &e.metadata[..]), (me, &b"port=1"[..]), "{url}");
        assert_eq!(reg.lookup_key(&miss).unwrap(), None, "{url}");
        // A key longer than this registry admits: refused by a compare, in
        // the same words as a string lookup.
        let long = procreg::Key::new("svc", &"n".repeat(reg.limits().max_name_len + 1)).unwrap();
        let e = reg.lookup_pid_key(&long).unwrap_err();
        assert!(matches!(e, Error::InvalidKey(_)), "{url}: {e}");
        assert!(e.to_string().contains("at most"), "{url}: {e}");
        assert!(
            reg.service("svc", &"n".repeat(reg.limits().max_name_len + 1))
                .is_err()
        );
        // One key works with any registry.
        for (_, other) in &regs {
            assert_eq!(
                other.lookup_pid_key(&hit).unwrap(),
                other.lookup_pid("svc", "db").unwrap()
            );
        }
        reg.unregister("svc", "db").unwrap();
    }
    cleanup(regs);
}

#[test]
fn a_service_follows_its_entry_through_every_change() {
    let regs = backends("service");
    for (url, reg) in &regs {
        let me = std::process::id();
        let mut svc = reg.service("svc", "db").unwrap();
        assert_eq!(svc.pid().unwrap(), None, "{url}");
        assert!(svc.entry().unwrap().is_none());
        reg.register_self("svc", "db", b"v=1").unwrap();
        assert_eq!(
            svc.pid().unwrap(),
            Some(me),
            "{url}: registered after the service was made"
        );
        assert_eq!(svc.pid().unwrap(), Some(me), "{url}: from the cache");
        assert_eq!(svc.entry().unwrap().unwrap().metadata, b"v=1");
        reg.update_metadata("svc", "db", b"v=2").unwrap();
        assert_eq!(
            svc.entry().unwrap().unwrap().metadata,
            b"v=2",
            "{url}: updated"
        );
        // Replaced by another owner.
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(reg.unregister("svc", "db").unwrap());
        assert_eq!(svc.pid().unwrap(), None, "{url}: unregistered");
        reg.register("svc", "db", other.id(), b"v=3").unwrap();
        assert_eq!(svc.pid().unwrap(), Some(other.id()), "{url}: replaced");
        assert_eq!(svc.entry().unwrap().unwrap().pid, other.id());
        // The owner dies; once its entry is reclaimed, the service misses.
        other.kill().unwrap();
        other.wait().unwrap();
        if !url.starts_with("etcd") {
            assert_eq!(reg.sweep().unwrap(), 1, "{url}");
            assert_eq!(svc.pid().unwrap(), None, "{url}: reclaimed");
            assert!(svc.entry().unwrap().is_none());
        } else {
            assert!(reg.unregister("svc", "db").unwrap());
            assert_eq!(svc.pid().unwrap(), None, "{url}");
        }
        // A clone answers on its own cache.
        reg.register_self("svc", "db", b"").unwrap();
        let mut twin = svc.clone();
        assert_eq!(
            (svc.pid().unwrap(), twin.pid().unwrap()),
            (Some(me), Some(me))
        );
        assert_eq!((svc.key().namespace(), svc.key().name()), ("svc", "db"));
        reg.unregister("svc", "db").unwrap();
        assert_eq!(twin.pid().unwrap(), None);
    }
    cleanup(regs);
}

#[test]
fn a_service_answers_from_the_segment_its_handle_opened() {
    // Destroyed and recreated under the same name: a service of the old
    // handle keeps answering from the old (unlinked) segment, like the
    // handle itself; a service of a new handle sees the new one.
    let url = format!("shm:compliance-recreate-{}", std::process::id());
    let _guard = SegGuard::new(&url);
    let old = Registry::builder().capacity(CAPACITY).create(&url).unwrap();
    old.register_self("svc", "db", b"old").unwrap();
    let mut old_svc = old.service("svc", "db").unwrap();
    assert_eq!(old_svc.pid().unwrap(), Some(std::process::id()));
    Registry::destroy(&url).unwrap();
    let new = Registry::builder().capacity(CAPACITY).create(&url).unwrap();
    let mut new_svc = new.service("svc", "db").unwrap();
    assert_eq!(new_svc.pid().unwrap(), None);
    assert_eq!(old_svc.pid().unwrap(), old.lookup_pid("svc", "db").unwrap());
    assert_eq!(old_svc.entry().unwrap().unwrap().metadata, b"old");
    new.register_self("svc", "db", b"new").unwrap();
    assert_eq!(new_svc.entry().unwrap().unwrap().metadata, b"new");
    assert!(old.unregister("svc", "db").unwrap());
    assert_eq!(old_svc.pid().unwrap(), None);
    assert_eq!(new_svc.pid().unwrap(), Some(std::process::id()));
}

/// `sleep 30` children, killed and reaped on drop: live pids to join.
struct Sleepers(Vec<std::process::Child>);
impl Sleepers {
    fn spawn(n: usize) -> Sleepers {
        Sleepers(
            (0..n)
                .map(|_| {
                    std::process::Command::new("sleep")
                        .arg("30")
                        .spawn()
                        .unwrap()
                })
                .collect(),
        )
    }
    fn pids(&self) -> Vec<u32> {
        self.0.iter().map(|c| c.id()).collect()
    }
}
impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn group_members_join_leave_and_keep_their_own_metadata() {
    let regs = backends("groups");
    for (url, reg) in &regs {
        let me = std::process::id();
        let kids = Sleepers::spawn(2);
        let (a, b) = (kids.pids()[0], kids.pids()[1]);
        // A unique key and a group share the name "api" without clashing.
        reg.register_self("svc", "api", b"role=front").unwrap();
        let v_me = reg.join_self("svc", "api", b"role=api n=0").unwrap();
        reg.join("svc", "api", a, b"role=api n=1").unwrap();
        reg.join("svc", "api", b, b"role=api n=2").unwrap();
        reg.join("svc", "other", a, b"").unwrap();

        let m = reg.members("svc", "api").unwrap();
        let mut want = vec![me, a, b];
        want.sort();
        assert_eq!(m.iter().map(|e| e.pid).collect::<Vec<_>>(), want, "{url}");
        assert!(
            m.iter()
                .all(|e| e.member && e.name == "api" && e.namespace == "svc")
        );
        let mine = m.iter().find(|e| e.pid == me).unwrap();
        assert_eq!(
            (mine.metadata.as_slice(), mine.version),
            (&b"role=api n=0"[..], v_me)
        );

        // One member by pid: its entry and its owner's liveness; the unique
        // key of the same name is another entry, and a non-member is None.
        let one = reg.member("svc", "api", a).unwrap().unwrap();
        assert_eq!(
            (
                one.pid,
                one.member,
                one.name.as_str(),
                one.metadata.as_slice()
            ),
            (a, true, "api", &b"role=api n=1"[..]),
            "{url}"
        );
        assert_eq!(
            reg.member_liveness("svc", "api", a).unwrap(),
            Some(Liveness::Alive),
            "{url}"
        );
        let nobody = kids.pids()[0] ^ 0x4000_0000;
        assert_eq!(reg.member("svc", "api", nobody).unwrap(), None);
        assert_eq!(reg.member_liveness("svc", "api", nobody).unwrap(), None);
        assert_eq!(reg.member_liveness("svc", "other", b).unwrap(), None);
        // Joining twice is refused, naming the group.
        assert!(
            matches!(
                reg.join("svc", "api", a, b""),
                Err(Error::AlreadyExists { ref name, pid, alive: Liveness::Alive, .. })
                    if name == "api" && pid == a
            ),
            "{url}"
        );
        // list/list_all/visit show the unique entry only; members elsewhere.
        let listed = reg.list("svc").unwrap();
        assert_eq!(listed.len(), 1, "{url}");
        assert!(!listed[0].member && listed[0].name == "api" && listed[0].pid == me);
        assert_eq!(reg.list_all().unwrap().len(), 1);
        let mut visited = 0;
        reg.visit(Some("svc"), |e| {
            assert_eq!(e.name, b"api");
            visited += 1;
            true
        })
        .unwrap();
        assert_eq!(visited, 1);
        let all = reg.list_members(None).unwrap();
        assert_eq!(
            all.iter()
                .map(|e| (e.name.as_str(), e.pid))
                .collect::<Vec<_>>(),
            want.iter()
                .map(|&p| ("api", p))
                .chain([("other", a)])
                .collect::<Vec<_>>()
        );
        assert_eq!(reg.lookup_pid("svc", "api").unwrap(), Some(me));
        assert_eq!(reg.namespaces().unwrap(), vec!["svc".to_string()]);

        // Each member has its own metadata and version.
        let v2 = reg
            .update_member_metadata("svc", "api", a, b"role=api n=1 state=draining")
            .unwrap();
        let ma = reg.members("svc", "api").unwrap();
        let ea = ma.iter().find(|e| e.pid == a).unwrap();
        assert_eq!(
            (ea.metadata.as_slice(), ea.version),
            (&b"role=api n=1 state=draining"[..], v2)
        );
        assert_eq!(
            ma.iter().find(|e| e.pid == b).unwrap().metadata,
            b"role=api n=2"
        );
        assert!(matches!(
            reg.update_member_metadata("svc", "nogroup", a, b""),
            Err(Error::NotFound { ref name, .. }) if name == "nogroup"
        ));

        // Leave: true once, then false; the unique key is untouched.
        assert!(reg.leave("svc", "api", a).unwrap());
        assert!(!reg.leave("svc", "api", a).unwrap());
        assert_eq!(reg.members("svc", "api").unwrap().len(), 2);
        assert_eq!(reg.lookup_pid("svc", "api").unwrap(), Some(me));
        assert!(reg.unregister("svc", "api").unwrap());
        assert_eq!(reg.members("svc", "api").unwrap().len(), 2, "{url}");
        assert!(
            reg.members("svc", "ap").unwrap().is_empty(),
            "a prefix is another group"
        );
        assert!(reg.members("other-ns", "api").unwrap().is_empty());
        assert_eq!(reg.clear_namespace("svc").unwrap(), 3, "{url}");
        assert!(reg.list_members(None).unwrap().is_empty());
    }
    cleanup(regs);
}

#[test]
fn bad_group_input_gets_a_typed_error_and_members_are_not_unique_keys() {
    let regs = backends("groupbad");
    for (url, reg) in &regs {
        let me = std::process::id();
        let max_group = reg.limits().max_name_len - 11;
        assert!(matches!(
            reg.join("svc", "g", 0, b""),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            reg.join_self("svc", "", b""),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            reg.join_self("", "g", b""),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            reg.join_self("svc", "a\0b", b""),
            Err(Error::InvalidKey(_))
        ));
        let long = "g".repeat(max_group + 1);
        assert!(
            matches!(reg.join_self("svc", &long, b""), Err(Error::InvalidKey(ref m)) if m.contains("group")),
            "{url}"
        );
        reg.join_self("svc", &"g".repeat(max_group), b"").unwrap();
        let big = vec![b'x'; reg.limits().max_metadata_len + 1];
        assert!(matches!(
            reg.join_self("svc", "g", &big),
            Err(Error::MetadataTooLarge { .. })
        ));
        assert!(matches!(
            reg.wait_for_members("svc", "a\0b", 1, Duration::ZERO),
            Err(Error::InvalidKey(_))
        ));

        // A member's stored name is not a unique key anyone can reach.
        reg.join_self("svc", "g", b"").unwrap();
        let stored = format!("g\0{me}");
        assert!(matches!(
            reg.unregister("svc", &stored),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            reg.lookup("svc", &stored),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            reg.update_metadata("svc", &stored, b""),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            reg.register_self("svc", &stored, b""),
            Err(Error::InvalidKey(_))
        ));
        // Every reader, the fast `lookup_pid` included (it does not scan a
        // hit's bytes for NUL): members are a keyspace of their own.
        for _ in 0..2 {
            assert!(
                matches!(reg.lookup_pid("svc", &stored), Err(Error::InvalidKey(_))),
                "{url}"
            );
        }
        assert!(matches!(
            reg.lookup_checked("svc", &stored),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            reg.lookup_into("svc", &stored, &mut [0u8; 8]),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            reg.owner_liveness("svc", &stored),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            reg.unregister_if_owner("svc", &stored, me),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            reg.wait_for("svc", &stored, Duration::ZERO),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            reg.service("svc", &stored),
            Err(Error::InvalidKey(_))
        ));
        assert_eq!(reg.members("svc", "g").unwrap().len(), 1, "{url}");

        for bad in ["", "role", "=api", "role=api port"] {
            assert!(
                matches!(reg.select(None, bad), Err(Error::InvalidArgument(ref m)) if m.contains("field=value")),
                "{url} {bad:?}"
            );
        }
        assert!(matches!(
            reg.select(Some(""), "a=b"),
            Err(Error::InvalidKey(_))
        ));
    }
    cleanup(regs);
}

#[test]
fn a_dead_member_is_listed_not_live_until_sweep_reclaims_it() {
    let regs = backends("groupdead");
    for (url, reg) in &regs {
        let mut kids = Sleepers::spawn(2);
        let pids = kids.pids();
        reg.join("svc", "workers", pids[0], b"").unwrap();
        reg.join("svc", "workers", pids[1], b"").unwrap();
        reg.join_self("svc", "workers", b"").unwrap();
        for c in &mut kids.0 {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        // Listed until reclaimed, but not counted as live.
        assert_eq!(reg.members("svc", "workers").unwrap().len(), 3, "{url}");
        assert_eq!(
            reg.wait_for_members("svc", "workers", 1, Duration::ZERO)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(reg.health_check().unwrap().dead_owners, 2, "{url}");
        // The checked read of one member reclaims it (a plain read shows
        // it); sweep takes the other.
        assert!(reg.member("svc", "workers", pids[0]).unwrap().is_some());
        assert_eq!(
            reg.member_checked("svc", "workers", pids[0]).unwrap(),
            None,
            "{url}"
        );
        assert_eq!(reg.member("svc", "workers", pids[0]).unwrap(), None);
        let me = reg
            .member_checked("svc", "workers", std::process::id())
            .unwrap()
            .unwrap();
        assert!(me.member && me.name == "workers");
        assert_eq!(reg.sweep().unwrap(), 1, "{url}");
        let m = reg.members("svc", "workers").unwrap();
        assert_eq!(
            m.iter().map(|e| e.pid).collect::<Vec<_>>(),
            vec![std::process::id()],
            "{url}"
        );
    }
    cleanup(regs);
}

#[test]
fn wait_for_members_returns_when_the_nth_member_joins() {
    let regs = backends("groupwait");
    for (url, reg) in &regs {
        let kids = Sleepers::spawn(2);
        let pids = kids.pids();
        // Enough already: at once.
        assert!(
            reg.wait_for_members("svc", "g", 0, Duration::ZERO)
                .unwrap()
                .is_empty()
        );
        reg.join("svc", "g", pids[0], b"").unwrap();
        assert_eq!(
            reg.wait_for_members("svc", "g", 1, Duration::ZERO)
                .unwrap()
                .len(),
            1
        );
        // Not enough: a Timeout that says what it waited for.
        let e = reg
            .wait_for_members("svc", "g", 2, Duration::from_millis(50))
            .unwrap_err();
        assert!(
            matches!(&e, Error::Timeout { what, .. } if what.contains("2 live members")),
            "{url}: {e}"
        );
        // The second member joins from another thread while we wait; a
        // change elsewhere in the namespace does not end the wait.
        let other = reg.clone();
        let pid = pids[1];
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            other.register_self("svc", "noise", b"").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            other.join("svc", "g", pid, b"").unwrap();
        });
        let got = reg
            .wait_for_members("svc", "g", 2, Duration::from_secs(10))
            .unwrap();
        t.join().unwrap();
        let mut want = pids.clone();
        want.sort();
        assert_eq!(got.iter().map(|e| e.pid).collect::<Vec<_>>(), want, "{url}");
    }
    cleanup(regs);
}

#[test]
fn watchers_and_hooks_see_joins_and_leaves_as_member_events() {
    let regs = backends("groupwatch");
    for (url, reg) in &regs {
        let me = std::process::id();
        let hooked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let h = hooked.clone();
        reg.on_event(move |e| {
            h.lock()
                .unwrap()
                .push((e.kind, e.name.clone(), e.member, e.pid))
        });
        let mut w = reg.watch(Some("svc"), reg.revision().unwrap()).unwrap();
        // The member is another process: every event names it, not the
        // caller (etcd's hook once gave the caller's pid for an update).
        let kids = Sleepers::spawn(1);
        let kid = kids.pids()[0];
        reg.register_self("svc", "api", b"").unwrap();
        reg.join("svc", "api", kid, b"").unwrap();
        reg.update_member_metadata("svc", "api", kid, b"x=1")
            .unwrap();
        reg.leave("svc", "api", kid).unwrap();
        let want = vec![
            (EventKind::Registered, "api".to_string(), false, me),
            (EventKind::Registered, "api".to_string(), true, kid),
            (EventKind::Updated, "api".to_string(), true, kid),
            (EventKind::Unregistered, "api".to_string(), true, kid),
        ];
        let seen: Vec<_> = (0..4)
            .map(|_| {
                let e = w.next(Duration::from_secs(5)).unwrap();
                (e.kind, e.name, e.member, e.pid)
            })
            .collect();
        assert_eq!(seen, want, "{url}");
        assert_eq!(*hooked.lock().unwrap(), want, "{url}");
    }
    cleanup(regs);
}

#[test]
fn select_matches_kv_and_json_metadata_of_entries_and_members() {
    let regs = backends("select");
    for (url, reg) in &regs {
        let me = std::process::id();
        reg.register_self("a", "web", b"role=api port=8080 zone=eu")
            .unwrap();
        reg.register_self("a", "db", br#"{"role":"db","port":5432,"tls":true}"#)
            .unwrap();
        reg.register_self("b", "cache", b"role=api;port=6379,zone=us")
            .unwrap();
        reg.register_self("b", "odd", b"role: api").unwrap();
        reg.register_self("b", "bin", &[0xff, 0xfe]).unwrap();
        reg.join_self("a", "workers", br#"{"role":"api","port":9000}"#)
            .unwrap();
        let names = |v: Vec<procreg::Entry>| {
            v.into_iter()
                .map(|e| (e.namespace, e.name, e.member))
                .collect::<Vec<_>>()
        };
        let s = |ns: &str, n: &str, m: bool| (ns.to_string(), n.to_string(), m);
        assert_eq!(
            names(reg.select(None, "role=api").unwrap()),
            vec![
                s("a", "web", false),
                s("a", "workers", true),
                s("b", "cache", false)
            ],
            "{url}"
        );
        assert_eq!(
            names(reg.select(Some("a"), "role=api").unwrap()),
            vec![s("a", "web", false), s("a", "workers", true)]
        );
        assert_eq!(
            names(reg.select(None, "role=api  zone=eu").unwrap()),
            vec![s("a", "web", false)]
        );
        assert_eq!(
            names(reg.select(None, "port=5432 tls=true").unwrap()),
            vec![s("a", "db", false)]
        );
        assert!(reg.select(None, "role=API").unwrap().is_empty());
        assert!(reg.select(Some("c"), "role=api").unwrap().is_empty());
        let w = reg.select(None, "port=9000").unwrap();
        assert_eq!((w.len(), w[0].pid, w[0].member), (1, me, true));
    }
    cleanup(regs);
}

#[test]
fn a_service_entry_with_a_lease_shows_the_lease_as_of_the_call() {
    // A renewal rewrites the lease without a new version: an entry with a
    // lease is read afresh by every `entry()`, so its time left moves.
    let regs = backends("service-lease");
    for (url, reg) in &regs {
        if url.starts_with("etcd") {
            continue; // etcd reports the lease id only
        }
        reg.register_with_lease(
            "svc",
            "leased",
            std::process::id(),
            b"",
            Duration::from_secs(30),
        )
        .unwrap();
        let mut svc = reg.service("svc", "leased").unwrap();
        let first = svc
            .entry()
            .unwrap()
            .unwrap()
            .lease
            .unwrap()
            .remaining
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let later = svc
            .entry()
            .unwrap()
            .unwrap()
            .lease
            .unwrap()
            .remaining
            .unwrap();
        assert!(later < first, "{url}: {later:?} not below {first:?}");
        reg.keepalive("svc", "leased").unwrap();
        let renewed = svc
            .entry()
            .unwrap()
            .unwrap()
            .lease
            .unwrap()
            .remaining
            .unwrap();
        assert!(
            renewed > later,
            "{url}: renewal not seen: {renewed:?} after {later:?}"
        );
        assert_eq!(svc.pid().unwrap(), Some(std::process::id()));
    }
    cleanup(regs);
}
