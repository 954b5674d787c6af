//! Reliability suite, part 1 (needs `--features fault-injection`): writers
//! crashed at every named step of the slot protocol, and a writer frozen with
//! SIGSTOP in the middle of a write. See RELIABILITY.md for the figures.
//!
//! ```text
//! cargo test --features fault-injection --test reliability_faults -- --nocapture
//! PROCREG_SOAK=1 cargo test --release --features fault-injection --test reliability_faults -- --nocapture
//! ```
#![cfg(feature = "fault-injection")]

mod common;
mod reliability_support;

use common::{SegGuard, shm_url};
use procreg::{Error, Registry};
use reliability_support::*;
use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

// ---- (1) crash-point sweep ----------------------------------------------------

/// Every named crash point of the writers (src/table/mod.rs, `enum Step`).
const STEPS: [&str; 7] = [
    "InsertLocked",
    "InsertClaimed",
    "InsertWritten",
    "RemoveTombstoned",
    "UpdateWriting",
    "UpdateWritten",
    "ReclaimLocked",
];
const NS: &str = "crash";
/// Background keys of the surviving parent; in 64 slots (8 groups) about 5
/// of them share the crashed writer's neighbourhood.
const BG: usize = 40;
const VICTIM: &str = "victim";

/// The crashing writer: one operation that reaches `step`, where
/// `PROCREG_CRASH_AT` aborts it.
#[test]
fn child_crash_at_step() {
    let Some((url, args)) = child_role("crash-step") else {
        return;
    };
    no_core_dumps();
    let (step, parent) = args.split_once(' ').unwrap();
    let parent: u32 = parent.parse().unwrap();
    let reg = Registry::builder().open(&url).unwrap();
    say("go");
    let r = match step {
        "InsertLocked" | "InsertClaimed" | "InsertWritten" => reg
            .register(NS, VICTIM, parent, &meta(VICTIM, 1))
            .map(|_| 0),
        "RemoveTombstoned" => reg.unregister(NS, VICTIM).map(|_| 0),
        "UpdateWriting" | "UpdateWritten" => {
            reg.update_metadata(NS, VICTIM, &meta(VICTIM, 2)).map(|_| 0)
        }
        "ReclaimLocked" => reg.sweep(),
        "RingWritten" => reg
            .register(NS, VICTIM, parent, &meta(VICTIM, 1))
            .map(|_| 0),
        other => panic!("unknown step {other}"),
    };
    say(&format!("survived {r:?}"));
}

#[derive(Default)]
struct CrashTally {
    runs: usize,
    aborted_at_step: usize,
    stuck_after: usize,
    lost: usize,
    duplicated: usize,
    left_claimed_seen: usize,
    dead_locks_seen: usize,
}

/// One crash of a writer at `step`, then recovery by the next writer or by
/// sweep (alternating), then the checks: survivors read and write, nothing
/// stuck, lost or duplicated.
fn crash_run(step: &str, run: usize, t: &mut CrashTally) {
    let me = std::process::id();
    let url = shm_url(&format!("crash-{step}-{run}"));
    let _g = SegGuard::new(&url);
    let reg = Registry::builder()
        .capacity(64)
        .lock_timeout(Duration::from_secs(2))
        .create(&url)
        .unwrap();
    let bg = |i: usize| format!("bg{i}");
    for i in 0..BG {
        reg.register_self(NS, &bg(i), &meta(&bg(i), 1)).unwrap();
    }
    match step {
        "RemoveTombstoned" | "UpdateWriting" | "UpdateWritten" => {
            reg.register_self(NS, VICTIM, &meta(VICTIM, 1)).unwrap();
        }
        "ReclaimLocked" => {
            // An owner that dies: register a live sleeper, then kill it.
            let mut c = std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap();
            reg.register(NS, VICTIM, c.id(), &meta(VICTIM, 1)).unwrap();
            c.kill().unwrap();
            c.wait().unwrap();
        }
        _ => {}
    }

    let mut kid = Kid::spawn(
        "child_crash_at_step",
        "crash-step",
        &url,
        &format!("{step} {me}"),
        &[("PROCREG_CRASH_AT", step)],
    );
    kid.expect("go");
    let st = kid.wait_exit();
    assert_eq!(
        st.signal(),
        Some(libc::SIGABRT),
        "{step} run {run}: the writer must die at the step: {st:?}"
    );
    t.aborted_at_step += 1;
    let h = reg.health_check().unwrap();
    t.left_claimed_seen += reg.stats().unwrap().table().unwrap().claimed;
    t.dead_locks_seen += (h.table().unwrap().stuck_slots > 0) as usize;
    assert!(
        h.table().unwrap().stuck_slots >= 1,
        "{step}: the dead writer left its lock: {h:?}"
    );

    // Recovery: even runs let the next writer meet the leftovers first,
    // odd runs sweep first.
    let deadline = Instant::now() + Duration::from_secs(10);
    if !run.is_multiple_of(2) {
        reg.sweep().unwrap();
    }
    // Survivors read: every background key intact.
    for i in 0..BG {
        let e = reg.lookup(NS, &bg(i)).unwrap();
        match e {
            Some(e) if e.pid == me && check_meta(&bg(i), &e.metadata) == Ok(1) => {}
            other => {
                t.lost += 1;
                panic!("{step} run {run}: bg{i} after the crash: {other:?}");
            }
        }
    }
    // Survivors write: every background key (those of the crashed
    // neighbourhood need its lock, held by the dead writer).
    for i in 0..BG {
        reg.update_metadata(NS, &bg(i), &meta(&bg(i), 2))
            .unwrap_or_else(|e| panic!("{step} run {run}: update bg{i}: {e}"));
    }
    // The victim key: what the half-done operation leaves is all or nothing.
    let v = reg.lookup(NS, VICTIM).unwrap();
    match step {
        "InsertLocked" | "InsertClaimed" | "InsertWritten" | "RemoveTombstoned" => {
            assert_eq!(v, None, "{step}: unpublished insert / tombstoned key");
            reg.register_self(NS, VICTIM, &meta(VICTIM, 3))
                .unwrap_or_else(|e| panic!("{step} run {run}: re-register victim: {e}"));
        }
        "UpdateWriting" | "UpdateWritten" => {
            let v = v.expect("an unflipped update keeps the entry");
            assert_eq!(v.pid, me);
            assert_eq!(
                check_meta(VICTIM, &v.metadata),
                Ok(1),
                "{step}: the old metadata, intact"
            );
            reg.update_metadata(NS, VICTIM, &meta(VICTIM, 3)).unwrap();
        }
        "ReclaimLocked" => {
            // Dead owner: replaced by a new registration (before or after sweep).
            reg.register_self(NS, VICTIM, &meta(VICTIM, 3))
                .unwrap_or_else(|e| panic!("{step} run {run}: replace victim: {e}"));
        }
        _ => unreachable!(),
    }
    assert!(
        Instant::now() < deadline,
        "{step} run {run}: recovery took too long"
    );
    if run.is_multiple_of(2) {
        reg.sweep().unwrap();
    }
    // Writes in every neighbourhood still go through.
    for i in 0..16 {
        let k = format!("post{i}");
        reg.register_self(NS, &k, &meta(&k, 1))
            .unwrap_or_else(|e| panic!("{step} run {run}: {k}: {e}"));
        assert!(reg.unregister(NS, &k).unwrap());
    }
    reg.sweep().unwrap();
    let s = reg.stats().unwrap();
    let h = reg.health_check().unwrap();
    t.stuck_after += s.table().unwrap().claimed + h.table().unwrap().stuck_slots;
    assert_eq!(
        (
            s.table().unwrap().claimed,
            h.table().unwrap().stuck_slots,
            h.dead_owners
        ),
        (0, 0, 0),
        "{step} run {run}: {s:?} {h:?}"
    );
    // Nothing lost, nothing twice.
    let all = reg.list(NS).unwrap();
    let names: HashSet<&str> = all.iter().map(|e| e.name.as_str()).collect();
    t.duplicated += all.len() - names.len();
    assert_eq!(names.len(), all.len(), "{step} run {run}: a key twice");
    assert_eq!(all.len(), BG + 1, "{step} run {run}: {all:?}");
    for e in &all {
        let want = if e.name == VICTIM { 3 } else { 2 };
        if e.pid != me || check_meta(&e.name, &e.metadata) != Ok(want) {
            t.lost += 1;
            panic!("{step} run {run}: {e:?}");
        }
    }
    t.runs += 1;
}

#[test]
fn writer_crashed_at_every_step_leaves_nothing_stuck_lost_or_duplicated() {
    let runs = knob("CRASH_RUNS", 20, 500) as usize;
    let started = Instant::now();
    let mut total = CrashTally::default();
    for step in STEPS {
        let mut t = CrashTally::default();
        for run in 0..runs {
            crash_run(step, run, &mut t);
        }
        println!(
            "crash-sweep step {step:<16} runs {} aborted-at-step {} claimed-left {} dead-lock-seen {} \
             | after recovery: stuck {} lost {} duplicated {}",
            t.runs,
            t.aborted_at_step,
            t.left_claimed_seen,
            t.dead_locks_seen,
            t.stuck_after,
            t.lost,
            t.duplicated
        );
        total.runs += t.runs;
        total.stuck_after += t.stuck_after;
        total.lost += t.lost;
        total.duplicated += t.duplicated;
    }
    println!(
        "crash-sweep total: {} steps x {runs} runs = {} crashes; stuck {} lost {} duplicated {} ({:.1} s)",
        STEPS.len(),
        total.runs,
        total.stuck_after,
        total.lost,
        total.duplicated,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(total.runs, STEPS.len() * runs);
    assert_eq!((total.stuck_after, total.lost, total.duplicated), (0, 0, 0));
}

// ---- (3) frozen writer ----------------------------------------------------------

const FNS: &str = "frozen";
const HOT: usize = 64;

/// A writer that `PROCREG_PAUSE_AT` stops (SIGSTOP) inside one write.
/// A writer killed while recording its change in the change ring (record
/// half-written): its registration stands, the next writer records its own
/// change without waiting, and a watcher reports the half-written revision
/// as `Lost` (after a bounded wait) and then the next change, with no gap.
#[test]
fn writer_killed_mid_change_record_leaves_a_lost_event_and_blocks_nothing() {
    let me = std::process::id();
    let url = shm_url("crash-ring");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().capacity(64).create(&url).unwrap();
    let start = reg.revision().unwrap();
    let mut w = reg.watch(Some(NS), start).unwrap();
    let mut kid = Kid::spawn(
        "child_crash_at_step",
        "crash-step",
        &url,
        &format!("RingWritten {me}"),
        &[("PROCREG_CRASH_AT", "RingWritten")],
    );
    kid.expect("go");
    let st = kid.wait_exit();
    assert_eq!(st.signal(), Some(libc::SIGABRT), "{st:?}");
    // The registration itself was committed before the record.
    assert_eq!(reg.lookup_pid(NS, VICTIM).unwrap(), Some(me));
    let t = Instant::now();
    reg.register_self(NS, "after", b"").unwrap();
    let took = t.elapsed();
    let lost = w.next(Duration::from_secs(5)).unwrap();
    assert_eq!(
        (lost.revision, lost.kind),
        (start + 1, procreg::EventKind::Lost),
        "{lost:?}"
    );
    let next = w.next(Duration::from_secs(5)).unwrap();
    assert_eq!(
        (next.revision, next.kind, next.name.as_str()),
        (start + 2, procreg::EventKind::Registered, "after")
    );
    assert!(
        took < Duration::from_millis(100),
        "the next write waited {took:?}"
    );
    println!(
        "next write after a writer killed mid-record took {took:?}; its record reported as Lost"
    );
}

#[test]
fn child_frozen_writer() {
    let Some((url, step)) = child_role("frozen") else {
        return;
    };
    let reg = Registry::builder().open(&url).unwrap();
    say("ready");
    assert_eq!(hear().as_deref(), Some("go"));
    let r = match step.as_str() {
        "InsertWritten" => reg.register_self(FNS, "new", &meta("new", 7)),
        "UpdateWritten" => reg.update_metadata(FNS, "hot0", &meta("hot0", 7)),
        other => panic!("unknown step {other}"),
    };
    say(&format!("done {}", r.is_ok()));
    assert_eq!(hear().as_deref(), Some("exit"));
}

/// Lookups from this (another) process for `dur`: latencies in ns and errors.
fn read_for(reg: &Registry, dur: Duration, kid_pid: u32, step: &str) -> (Vec<u64>, usize) {
    let mut lat = Vec::with_capacity(1 << 20);
    let mut errors = 0;
    let end = Instant::now() + dur;
    let mut i = 0usize;
    while Instant::now() < end {
        i += 1;
        let k = format!("hot{}", i % HOT);
        let t = Instant::now();
        let r = reg.lookup(FNS, &k);
        let ns = t.elapsed().as_nanos() as u64;
        lat.push(ns);
        match r {
            Ok(Some(e)) if check_meta(&k, &e.metadata).is_ok() => {}
            other => {
                errors += 1;
                eprintln!("frozen {step}: lookup {k}: {other:?}");
            }
        }
        if i.is_multiple_of(16) {
            // The frozen writer's own entry, and (insert) its unpublished key.
            let t = Instant::now();
            let own = reg.lookup_checked(FNS, "own");
            let fresh = reg.lookup(FNS, "new");
            lat.push(t.elapsed().as_nanos() as u64 / 2);
            if !matches!(&own, Ok(Some(e)) if e.pid == kid_pid) || fresh.is_err() {
                errors += 1;
                eprintln!("frozen {step}: own {own:?} new {fresh:?}");
            }
        }
    }
    (lat, errors)
}

#[test]
fn reader_never_waits_for_a_frozen_writer_and_its_entries_survive_sweep() {
    let freeze = Duration::from_millis(knob("FREEZE_MS", 1500, 5000));
    for step in ["UpdateWritten", "InsertWritten"] {
        let url = shm_url(&format!("frozen-{step}"));
        let _g = SegGuard::new(&url);
        let reg = Registry::builder()
            .capacity(1024)
            .lock_timeout(Duration::from_millis(100))
            .create(&url)
            .unwrap();
        for i in 0..HOT {
            let k = format!("hot{i}");
            reg.register_self(FNS, &k, &meta(&k, 1)).unwrap();
        }
        let mut kid = Kid::spawn(
            "child_frozen_writer",
            "frozen",
            &url,
            step,
            &[("PROCREG_PAUSE_AT", step)],
        );
        kid.expect("ready");
        let kid_pid = kid.pid();
        // The frozen process owns an entry: it is alive, so never reclaimed.
        reg.register(FNS, "own", kid_pid, &meta("own", 1)).unwrap();
        let (mut base, base_err) = read_for(&reg, Duration::from_millis(300), kid_pid, step);
        assert_eq!(base_err, 0);
        kid.send("go");
        assert!(
            wait_stopped(kid_pid, Duration::from_secs(10)),
            "{step}: the writer did not stop at the step"
        );
        let frozen_at = Instant::now();
        let (lat, errors, swept, other_ok, other_busy) = std::thread::scope(|s| {
            let reader = s.spawn(|| read_for(&reg, freeze, kid_pid, step));
            // Meanwhile, from this process: sweep, and writes of other keys.
            let swept = reg.sweep().unwrap();
            let (mut ok, mut busy) = (0, Vec::new());
            for i in 0..32 {
                let k = format!("other{i}");
                match reg.register_self(FNS, &k, &meta(&k, 1)) {
                    Ok(_) => ok += 1,
                    // Only a key of the frozen writer's neighbourhood may wait.
                    Err(Error::Busy(_)) => busy.push(k),
                    Err(e) => panic!("{step}: {k}: {e}"),
                }
            }
            let (lat, errors) = reader.join().unwrap();
            (lat, errors, swept, ok, busy)
        });
        let mut lat = lat;
        let stopped_for = frozen_at.elapsed();
        assert_eq!(proc_state(kid_pid), Some('T'), "{step}: still frozen");
        let h = reg.health_check().unwrap();
        let own = reg.lookup_checked(FNS, "own").unwrap();
        // Resume: the write completes.
        signal(kid_pid, libc::SIGCONT);
        let done = kid.expect("done");
        assert_eq!(done, "true", "{step}: the resumed write failed");
        match step {
            "UpdateWritten" => {
                let e = reg.lookup(FNS, "hot0").unwrap().unwrap();
                assert_eq!(check_meta("hot0", &e.metadata), Ok(7));
            }
            _ => {
                let e = reg.lookup(FNS, "new").unwrap().unwrap();
                assert_eq!((e.pid, check_meta("new", &e.metadata)), (kid_pid, Ok(7)));
            }
        }
        kid.send("exit");
        kid.assert_success();
        // The keys that waited for the frozen neighbourhood go through now.
        for k in &other_busy {
            reg.register_self(FNS, k, &meta(k, 1))
                .unwrap_or_else(|e| panic!("{step}: {k} after SIGCONT: {e}"));
        }
        let n = lat.len();
        let (p50, p99, max) = (
            percentile(&mut lat, 50.0),
            percentile(&mut lat, 99.0),
            *lat.iter().max().unwrap(),
        );
        let (bp99, bmax) = (percentile(&mut base, 99.0), *base.iter().max().unwrap());
        println!(
            "frozen-writer step {step}: stopped {:.1} s; {n} lookups during the freeze, errors {errors}; \
             latency p50 {p50} ns p99 {p99} ns max {max} ns (before the freeze: p99 {bp99} ns max {bmax} ns); \
             sweep during freeze reclaimed {swept}; other keys registered {other_ok} ok / busy {other_busy:?}; \
             health: alive {} dead {} stuck {}",
            stopped_for.as_secs_f64(),
            h.alive_owners,
            h.dead_owners,
            h.table().unwrap().stuck_slots
        );
        assert_eq!(errors, 0, "{step}: readers failed during the freeze");
        assert!(n > 1000, "{step}: readers made only {n} lookups");
        // A reader that waited for the writer would take the whole freeze;
        // the bound leaves room for scheduling noise on a loaded machine.
        assert!(
            max < 250_000_000,
            "{step}: a lookup took {max} ns during the freeze (readers must never wait)"
        );
        assert_eq!(
            swept, 0,
            "{step}: sweep reclaimed something of a live (stopped) writer"
        );
        assert_eq!(
            own.map(|e| e.pid),
            Some(kid_pid),
            "{step}: the stopped process's entry"
        );
        assert_eq!(
            (h.dead_owners, h.table().unwrap().stuck_slots),
            (0, 0),
            "{step}: a stopped writer is alive: {h:?}"
        );
        assert!(
            other_ok >= 24,
            "{step}: only {other_ok} of 32 other keys registered"
        );
    }
}
