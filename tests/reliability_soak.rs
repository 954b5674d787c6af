//! Reliability suite, part 2: writers SIGKILLed at random moments (with a
//! checker after every round), and a torn-read hunt. Quick by default; the
//! long versions run with `PROCREG_SOAK=1`. See RELIABILITY.md.
//!
//! ```text
//! cargo test --release --test reliability_soak -- --nocapture --test-threads=1
//! PROCREG_SOAK=1 cargo test --release --test reliability_soak -- --nocapture --test-threads=1
//! ```

mod common;
mod reliability_support;

use common::{SegGuard, shm_url};
use procreg::{Error, Registry};
use reliability_support::*;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

// ---- (2) SIGKILL soak -----------------------------------------------------------

const SNS: &str = "soak";
const WORKERS: usize = 8;
/// Keys only worker `w` writes: `w{w}-k{j}`.
const OWN_KEYS: u64 = 16;
/// Keys every worker competes for: `s{j}`.
const SHARED_KEYS: u64 = 8;

/// A writer doing random register / update / unregister until killed. It
/// acknowledges every completed operation on stdout (buffered: only a paused
/// worker's acknowledgements are complete, and only those are checked).
#[test]
fn child_soak_worker() {
    let Some((url, args)) = child_role("soak-worker") else {
        return;
    };
    let (idx, seed) = args.split_once(' ').unwrap();
    let idx: u64 = idx.parse().unwrap();
    let mut rng = Rng::new(seed.parse().unwrap());
    let me = std::process::id();
    let reg = Registry::builder().open(&url).unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        while let Some(cmd) = hear() {
            if tx.send(cmd).is_err() {
                break;
            }
        }
    });
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    writeln!(out, "\n{MARK}ready").unwrap();
    out.flush().unwrap();
    // Starts paused.
    if rx.recv().ok().as_deref() != Some("resume") {
        return;
    }
    // key -> seq of the entries this process registered.
    let mut mine: HashMap<String, u64> = HashMap::new();
    let mut seq = 0u64;
    let mut busy = 0u64;
    loop {
        if let Ok(cmd) = rx.try_recv() {
            assert_eq!(cmd, "pause");
            writeln!(out, "{MARK}P {busy}").unwrap();
            out.flush().unwrap();
            match rx.recv() {
                Ok(c) if c == "resume" => continue,
                _ => return,
            }
        }
        seq += 1;
        let shared = rng.below(4) == 0;
        let key = if shared {
            format!("s{}", rng.below(SHARED_KEYS))
        } else {
            format!("w{idx}-k{}", rng.below(OWN_KEYS))
        };
        let held = mine.contains_key(&key);
        if !held {
            match reg.register_self(SNS, &key, &meta(&key, seq)) {
                Ok(_) => {
                    writeln!(out, "{MARK}R {key} {seq}").unwrap();
                    mine.insert(key, seq);
                }
                Err(Error::AlreadyExists { pid, .. }) => {
                    assert!(shared, "own key {key} held by pid {pid}");
                    assert_ne!(pid, me, "{key} refused as already ours");
                }
                Err(Error::Busy(_)) => busy += 1,
                Err(e) => panic!("worker {idx}: register {key}: {e}"),
            }
        } else if rng.below(2) == 0 {
            match reg.update_metadata(SNS, &key, &meta(&key, seq)) {
                Ok(_) => {
                    writeln!(out, "{MARK}U {key} {seq}").unwrap();
                    mine.insert(key, seq);
                }
                Err(Error::Busy(_)) => busy += 1,
                Err(e) => panic!("worker {idx}: update {key}: {e}"),
            }
        } else {
            match reg.unregister_if_owner(SNS, &key, me) {
                Ok(true) => {
                    writeln!(out, "{MARK}D {key}").unwrap();
                    mine.remove(&key);
                }
                Ok(false) => panic!("worker {idx}: {key} registered by us is gone"),
                Err(Error::Busy(_)) => busy += 1,
                Err(e) => panic!("worker {idx}: unregister {key}: {e}"),
            }
        }
    }
}

struct Worker {
    kid: Kid,
    /// Acknowledged entries: key -> seq.
    acked: HashMap<String, u64>,
}

fn spawn_worker(url: &str, idx: usize, rng: &mut Rng) -> Worker {
    let mut kid = Kid::spawn(
        "child_soak_worker",
        "soak-worker",
        url,
        &format!("{idx} {}", rng.next()),
        &[],
    );
    kid.expect("ready");
    Worker {
        kid,
        acked: HashMap::new(),
    }
}

/// Pauses a worker and applies its acknowledgements; returns its Busy count.
fn pause(w: &mut Worker) -> u64 {
    w.kid.send("pause");
    loop {
        let (tag, data) = w
            .kid
            .next(TIMEOUT)
            .unwrap_or_else(|| panic!("worker {} died", w.kid.what));
        let mut parts = data.split(' ');
        match tag.as_str() {
            "R" | "U" => {
                let k = parts.next().unwrap().to_owned();
                let seq = parts.next().unwrap().parse().unwrap();
                w.acked.insert(k, seq);
            }
            "D" => {
                w.acked.remove(parts.next().unwrap());
            }
            "P" => return data.parse().unwrap(),
            other => panic!("worker said {other} {data}"),
        }
    }
}

#[derive(Default, Debug)]
struct SoakTally {
    rounds: u64,
    kills: u64,
    acked_checked: u64,
    lost: u64,
    corrupt: u64,
    phantom: u64,
    duplicated: u64,
    dead_left_after_sweep: u64,
    stuck_after_sweep: u64,
    reclaimed: u64,
    busy: u64,
}

/// The checker: all survivors are paused, so their acknowledged state is exact.
fn check_round(reg: &Registry, workers: &[Worker], t: &mut SoakTally) {
    let entries = reg.list(SNS).unwrap();
    let names: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    t.duplicated += (entries.len() - names.len()) as u64;
    let by_name: HashMap<&str, &procreg::Entry> =
        entries.iter().map(|e| (e.name.as_str(), e)).collect();
    for e in &entries {
        if let Err(why) = check_meta(&e.name, &e.metadata) {
            t.corrupt += 1;
            eprintln!("soak: corrupt entry {e:?}: {why}");
        }
    }
    let survivors: HashMap<u32, &Worker> = workers.iter().map(|w| (w.kid.pid(), w)).collect();
    for w in workers {
        for (k, &seq) in &w.acked {
            t.acked_checked += 1;
            match by_name.get(k.as_str()) {
                Some(e) if e.pid == w.kid.pid() && check_meta(k, &e.metadata) == Ok(seq) => {}
                other => {
                    t.lost += 1;
                    eprintln!(
                        "soak: acknowledged {k} seq {seq} of pid {} is {other:?}",
                        w.kid.pid()
                    );
                }
            }
        }
    }
    for e in &entries {
        if let Some(w) = survivors.get(&e.pid) {
            if !w.acked.contains_key(&e.name) {
                t.phantom += 1;
                eprintln!("soak: entry never acknowledged: {e:?}");
            }
        }
    }
    t.reclaimed += reg.sweep().unwrap() as u64;
    let after = reg.list(SNS).unwrap();
    for e in &after {
        if !survivors.contains_key(&e.pid) {
            t.dead_left_after_sweep += 1;
            eprintln!("soak: after sweep, entry of a dead process: {e:?}");
        }
    }
    let s = reg.stats().unwrap();
    let h = reg.health_check().unwrap();
    t.stuck_after_sweep +=
        (s.table().unwrap().claimed + h.table().unwrap().stuck_slots + h.dead_owners) as u64;
    if s.table().unwrap().claimed + h.table().unwrap().stuck_slots + h.dead_owners != 0 {
        eprintln!("soak: after sweep {s:?} {h:?}");
    }
}

#[test]
fn writers_sigkilled_at_random_moments_lose_nothing_acknowledged() {
    let want_kills = knob("KILLS", 240, 100_000);
    let url = shm_url("soak");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().capacity(1024).create(&url).unwrap();
    let mut rng = Rng::from_time();
    let seed = rng.0;
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|i| spawn_worker(&url, i, &mut rng))
        .collect();
    let mut t = SoakTally::default();
    let started = Instant::now();
    while t.kills < want_kills {
        // Run, killing 1-3 workers at random moments, respawning each at once.
        for w in &mut workers {
            w.kid.send("resume");
        }
        std::thread::sleep(Duration::from_micros(rng.below(5_000)));
        if rng.below(4) == 0 {
            t.reclaimed += reg.sweep().unwrap() as u64; // concurrent with writers
        }
        for _ in 0..1 + rng.below(3) {
            std::thread::sleep(Duration::from_micros(rng.below(3_000)));
            let i = rng.below(WORKERS as u64) as usize;
            workers[i].kid.kill();
            t.kills += 1;
            workers[i] = spawn_worker(&url, i, &mut rng);
            workers[i].kid.send("resume");
        }
        std::thread::sleep(Duration::from_micros(rng.below(3_000)));
        for w in &mut workers {
            t.busy += pause(w);
        }
        check_round(&reg, &workers, &mut t);
        t.rounds += 1;
        let bad = t.lost
            + t.corrupt
            + t.phantom
            + t.duplicated
            + t.dead_left_after_sweep
            + t.stuck_after_sweep;
        assert_eq!(
            bad, 0,
            "soak failed in round {} (seed {seed}): {t:?}",
            t.rounds
        );
        if t.rounds.is_multiple_of(1000) {
            println!(
                "sigkill-soak progress: {t:?} {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    for w in &mut workers {
        w.kid.kill();
    }
    let s = reg.stats().unwrap();
    println!(
        "sigkill-soak: {} kills in {} rounds ({:.1} s, seed {seed}); acknowledged entries checked {}; \
         lost {} corrupt {} phantom {} duplicated {} dead-after-sweep {} stuck-after-sweep {}; \
         reclaimed by sweep {}; busy {}; table: registers {} updates {} unregisters {} reclaimed {} \
         stuck-recovered {} locks-stolen {}",
        t.kills,
        t.rounds,
        started.elapsed().as_secs_f64(),
        t.acked_checked,
        t.lost,
        t.corrupt,
        t.phantom,
        t.duplicated,
        t.dead_left_after_sweep,
        t.stuck_after_sweep,
        t.reclaimed,
        t.busy,
        s.table().unwrap().registers,
        s.table().unwrap().updates,
        s.table().unwrap().unregisters,
        s.table().unwrap().reclaimed,
        s.table().unwrap().stuck_recovered,
        s.table().unwrap().locks_stolen
    );
    assert!(t.kills >= want_kills);
    assert!(t.acked_checked > 0);
}

// ---- (4) torn-read hunt -------------------------------------------------------------

const TNS: &str = "torn";
const TKEYS: u64 = 64;

fn tkey(i: u64) -> String {
    format!("t{i}")
}

/// Rewrites metadata of random keys as fast as it can until the deadline.
#[test]
fn child_torn_writer() {
    let Some((url, args)) = child_role("torn-writer") else {
        return;
    };
    let (idx, ms) = args.split_once(' ').unwrap();
    let idx: u64 = idx.parse().unwrap();
    let ms: u64 = ms.parse().unwrap();
    let reg = Registry::builder().open(&url).unwrap();
    let mut rng = Rng::from_time();
    say("ready");
    assert_eq!(hear().as_deref(), Some("go"));
    let end = Instant::now() + Duration::from_millis(ms);
    let (mut ok, mut busy, mut n) = (0u64, 0u64, 0u64);
    while !n.is_multiple_of(256) || Instant::now() < end {
        n += 1;
        let k = tkey(rng.below(TKEYS));
        // seq: unique per writer (odd / even), varying lengths.
        match reg.update_metadata(TNS, &k, &meta(&k, n * 2 + idx)) {
            Ok(_) => ok += 1,
            Err(Error::Busy(_)) => busy += 1,
            Err(e) => panic!("torn writer {idx}: {k}: {e}"),
        }
    }
    say(&format!("done {ok} {busy}"));
}

/// Reads random keys until the deadline, validating every read.
#[test]
fn child_torn_reader() {
    let Some((url, ms)) = child_role("torn-reader") else {
        return;
    };
    let ms: u64 = ms.parse().unwrap();
    let reg = Registry::builder().open(&url).unwrap();
    let mut rng = Rng::from_time();
    let mut last_version = vec![0u64; TKEYS as usize];
    say("ready");
    assert_eq!(hear().as_deref(), Some("go"));
    let end = Instant::now() + Duration::from_millis(ms);
    let (mut reads, mut torn, mut missing, mut busy, mut backwards) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    while !reads.is_multiple_of(256) || Instant::now() < end {
        let i = rng.below(TKEYS);
        let k = tkey(i);
        match reg.lookup(TNS, &k) {
            Ok(Some(e)) => {
                reads += 1;
                if e.name != k || e.namespace != TNS {
                    torn += 1;
                } else if let Err(why) = check_meta(&k, &e.metadata) {
                    torn += 1;
                    if torn < 10 {
                        eprintln!("torn read of {k}: {why}");
                    }
                }
                // Per-slot versions only grow (32-bit, wrapping).
                let v = e.version;
                let last = last_version[i as usize];
                if last != 0 && v != last && (v.wrapping_sub(last) & 0xFFFF_FFFF) > 0x8000_0000 {
                    backwards += 1;
                }
                last_version[i as usize] = v;
            }
            Ok(None) => {
                reads += 1;
                missing += 1;
            }
            Err(Error::Busy(_)) => busy += 1,
            Err(e) => panic!("torn reader: {k}: {e}"),
        }
    }
    say(&format!("done {reads} {torn} {missing} {busy} {backwards}"));
}

#[test]
fn readers_never_see_torn_metadata_while_two_writers_rewrite_it() {
    let ms = knob("TORN_MS", 10_000, 600_000);
    let url = shm_url("torn");
    let _g = SegGuard::new(&url);
    let reg = Registry::builder().capacity(1024).create(&url).unwrap();
    for i in 0..TKEYS {
        reg.register_self(TNS, &tkey(i), &meta(&tkey(i), 0))
            .unwrap();
    }
    let mut kids: Vec<Kid> = (0..2)
        .map(|i| {
            Kid::spawn(
                "child_torn_writer",
                "torn-writer",
                &url,
                &format!("{i} {ms}"),
                &[],
            )
        })
        .chain((0..2).map(|_| {
            Kid::spawn(
                "child_torn_reader",
                "torn-reader",
                &url,
                &ms.to_string(),
                &[],
            )
        }))
        .collect();
    for k in &mut kids {
        k.expect("ready");
    }
    let t = Instant::now();
    for k in &mut kids {
        k.send("go");
    }
    let mut w = (0u64, 0u64);
    let mut r = [0u64; 5];
    for (i, k) in kids.iter_mut().enumerate() {
        let n: Vec<u64> = k
            .expect_within("done", Duration::from_millis(ms) + TIMEOUT)
            .split(' ')
            .map(|x| x.parse().unwrap())
            .collect();
        if i < 2 {
            w.0 += n[0];
            w.1 += n[1];
        } else {
            for j in 0..5 {
                r[j] += n[j];
            }
        }
        k.assert_success();
    }
    let secs = t.elapsed().as_secs_f64();
    let [reads, torn, missing, busy, backwards] = r;
    // Every key still intact at the end.
    for i in 0..TKEYS {
        let e = reg.lookup(TNS, &tkey(i)).unwrap().unwrap();
        check_meta(&tkey(i), &e.metadata).unwrap();
    }
    println!(
        "torn-read hunt: {:.1} s, 2 writers {} updates ({:.0}/s, busy {}), 2 readers {} reads \
         ({:.0} reads/s); torn {torn} missing {missing} version-backwards {backwards}; \
         busy {busy} ({:.2e} of lookups; each Busy is after {} internal retries)",
        secs,
        w.0,
        w.0 as f64 / secs,
        w.1,
        reads,
        reads as f64 / secs,
        busy as f64 / (reads + busy) as f64,
        1000
    );
    assert_eq!((torn, missing, backwards), (0, 0, 0));
    assert!(
        reads > 1000 && w.0 > 1000,
        "too little work to mean anything"
    );
}
