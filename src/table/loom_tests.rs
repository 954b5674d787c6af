//! loom model checks of the slot protocol (run by `scripts/test-all`):
//! `RUSTFLAGS="--cfg procreg_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --lib loom`
//!
//! A crash is modelled as a thread that stops at an injection point (its lock
//! and claim stay behind) and only then is known dead to the others.

use super::key::KeyWords;
use super::*;
use crate::error::Liveness;
use loom::sync::Arc;
use loom::sync::atomic::AtomicBool;
use loom::thread;

const G: Geometry = Geometry {
    capacity: 16,
    max_ns_len: 4,
    max_name_len: 4,
    max_meta_len: 16,
};

struct LEnv {
    token: u32,
    crash: Option<Step>,
    dead: Arc<[AtomicBool; 4]>,
}

impl Writer for LEnv {
    fn token(&self) -> u32 {
        self.token
    }
    fn give_up(&self, _spins: u64) -> bool {
        false
    }
}

impl LivenessJudge for LEnv {
    fn writer_liveness(&self, t: u32) -> Liveness {
        if self.dead[t as usize].load(Ordering::Acquire) {
            Liveness::Dead
        } else {
            Liveness::Alive
        }
    }
    fn owner_liveness(&self, o: &Owner) -> Liveness {
        // Owner pids are writer tokens here.
        self.writer_liveness(o.pid)
    }
}

impl WriteHooks for LEnv {
    fn crash_at(&self, step: Step) -> bool {
        self.crash == Some(step)
    }
}

type T = Table<Vec<AtomicU64>>;

fn setup() -> (Arc<T>, Arc<[AtomicBool; 4]>) {
    let dead = Arc::new([
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicBool::new(false),
    ]);
    (Arc::new(Table::new(heap_storage(&G).into_vec(), G)), dead)
}

fn env(token: u32, dead: &Arc<[AtomicBool; 4]>) -> LEnv {
    LEnv {
        token,
        crash: None,
        dead: dead.clone(),
    }
}

fn owner(pid: u32) -> Owner {
    Owner {
        pid,
        start_time: 1,
        pidns: 1,
    }
}

fn meta(b: u8) -> [u8; 16] {
    [b; 16]
}

/// Two names whose keys share a home group (so they compete for its slots).
fn same_home_names() -> (&'static str, &'static str) {
    let g = |n: &str| {
        let h = KeyWords::new(b"n", n.as_bytes()).hash();
        ((h as u128 * G.groups() as u128) >> 64) as usize
    };
    const NAMES: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for x in NAMES {
        for y in NAMES {
            if x != y && g(x) == g(y) {
                return (x, y);
            }
        }
    }
    unreachable!("8 names in 2 groups always collide")
}

fn k(name: &str) -> KeyWords<'_> {
    KeyWords::new(b"n", name.as_bytes())
}

/// Waiting writers spin on the home lock, which costs loom many branches;
/// three such threads need a lower preemption bound to finish in CI time.
fn model_spinning(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.max_branches = 50_000;
    b.preemption_bound = Some(preemptions);
    b.check(f);
}

#[test]
fn loom_two_inserts_of_one_key_exactly_one_wins() {
    model_spinning(2, || inserts_of_one_key(2));
}

#[test]
fn loom_three_inserts_of_one_key_exactly_one_wins() {
    model_spinning(1, || inserts_of_one_key(3));
}

fn inserts_of_one_key(threads: u32) {
    {
        let (t, dead) = setup();
        let hs: Vec<_> = (1..=threads)
            .map(|tok| {
                let (t, e) = (t.clone(), env(tok, &dead));
                thread::spawn(move || {
                    t.insert(&k("x"), &owner(tok), 0, &meta(tok as u8), &e)
                        .is_ok()
                })
            })
            .collect();
        let wins: Vec<bool> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
        let winner = wins.iter().position(|w| *w).unwrap() as u32 + 1;
        assert_eq!(t.lookup_pid(&k("x")).unwrap(), Some(winner));
        assert_eq!(t.census().live, 1);
    }
}

#[test]
fn loom_insert_remove_lookup_never_tear_and_end_consistent() {
    loom::model(|| {
        let (t, dead) = setup();
        t.insert(&k("x"), &owner(1), 0, &meta(1), &env(1, &dead))
            .unwrap();
        let (t1, e1) = (t.clone(), env(1, &dead));
        let remover = thread::spawn(move || t1.remove(&k("x"), None, &e1).unwrap());
        let (t2, e2) = (t.clone(), env(2, &dead));
        let inserter =
            thread::spawn(move || t2.insert(&k("x"), &owner(2), 0, &meta(2), &e2).is_ok());
        // Reader: whatever it sees is one whole registration.
        if let Some(e) = t.lookup(&k("x")).unwrap() {
            assert!(
                (e.owner.pid == 1 && e.metadata == meta(1))
                    || (e.owner.pid == 2 && e.metadata == meta(2)),
                "torn: {e:?}"
            );
        }
        let removed = remover.join().unwrap();
        let inserted = inserter.join().unwrap();
        assert!(removed);
        let now = t.lookup_pid(&k("x")).unwrap();
        assert_eq!(now, if inserted { Some(2) } else { None });
        assert_eq!(t.census().live, inserted as usize);
    });
}

/// The metadata committed with `version`, counting from the insert's `v0`:
/// v0 → A, v0 + 1 → B, v0 + 2 → C.
fn committed_meta(v0: u32, version: u32) -> [u8; 16] {
    match version.wrapping_sub(v0) {
        0 => meta(b'A'),
        1 => meta(b'B'),
        2 => meta(b'C'),
        d => panic!("version {version} is {d} past the insert's {v0}"),
    }
}

/// Inserts `x` with metadata A (returns its version) and starts a thread
/// that updates it to B and then to C; the second update stops at `crash`
/// if given (a writer killed there, with its own token).
fn updated_in_background(crash: Option<Step>) -> (Arc<T>, u32, thread::JoinHandle<()>) {
    let (t, dead) = setup();
    let v0 = t
        .insert(&k("x"), &owner(1), 0, &meta(b'A'), &env(1, &dead))
        .unwrap();
    let t1 = t.clone();
    let updater = thread::spawn(move || {
        t1.update(&k("x"), &meta(b'B'), &env(1, &dead)).unwrap();
        let second = LEnv {
            crash,
            ..env(2, &dead)
        };
        let r = t1.update(&k("x"), &meta(b'C'), &second);
        assert_eq!(r.is_err(), crash.is_some(), "{r:?}");
    });
    (t, v0, updater)
}

#[test]
fn loom_metadata_update_is_never_torn() {
    // Every copy pairs a version with the metadata committed at it (a torn
    // copy, or one update's metadata under another's version, fails).
    loom::model(|| {
        let (t, v0, updater) = updated_in_background(None);
        for _ in 0..2 {
            let e = t.lookup(&k("x")).unwrap().unwrap();
            assert_eq!(
                e.metadata[..],
                committed_meta(v0, e.version)[..],
                "version {} (insert {v0})",
                e.version
            );
        }
        updater.join().unwrap();
        assert_eq!(t.lookup(&k("x")).unwrap().unwrap().metadata, meta(b'C'));
    });
}

#[test]
fn loom_metadata_of_an_update_that_died_before_its_flip_is_never_seen() {
    // The second update writes the buffer the reader may be copying, then
    // dies before it flips: its metadata was never committed.
    loom::model(|| {
        let (t, v0, updater) = updated_in_background(Some(Step::UpdateWritten));
        let e = t.lookup(&k("x")).unwrap().unwrap();
        assert_ne!(e.metadata, meta(b'C'), "never committed");
        assert_eq!(e.metadata[..], committed_meta(v0, e.version)[..]);
        updater.join().unwrap();
    });
}

#[test]
fn loom_scan_during_metadata_updates_is_never_torn() {
    // The scan's copies, like lookups, survive one concurrent update (it
    // wrote the other buffer) but never a second (it rewrites the copied one).
    loom::model(|| {
        let (t, v0, updater) = updated_in_background(None);
        let mut seen = 0;
        t.for_each_live(|_, _, e| {
            assert_eq!(e.metadata[..], committed_meta(v0, e.version)[..]);
            seen += 1;
            true
        })
        .unwrap();
        assert_eq!(seen, 1);
        updater.join().unwrap();
    });
}

#[test]
fn loom_reused_slot_never_returns_another_keys_data() {
    let (x, y) = same_home_names();
    loom::model(move || {
        let (t, dead) = setup();
        t.insert(&k(x), &owner(1), 0, &meta(1), &env(1, &dead))
            .unwrap();
        let (t1, e1) = (t.clone(), env(1, &dead));
        let writer = thread::spawn(move || {
            assert!(t1.remove(&k(x), None, &e1).unwrap());
            // Same home group: it takes the slot x just left.
            t1.insert(&k(y), &owner(2), 0, &meta(2), &e1).unwrap();
        });
        if let Some(e) = t.lookup(&k(x)).unwrap() {
            assert_eq!(
                (e.owner.pid, &e.metadata[..], &e.key[..]),
                (1, &meta(1)[..], format!("n{x}").as_bytes())
            );
        }
        if let Some(e) = t.lookup(&k(y)).unwrap() {
            assert_eq!((e.owner.pid, &e.metadata[..]), (2, &meta(2)[..]));
        }
        writer.join().unwrap();
        assert_eq!(t.lookup_pid(&k(x)).unwrap(), None);
        assert_eq!(t.lookup_pid(&k(y)).unwrap(), Some(2));
    });
}

/// A writer stops forever at `step`; another writer of the same key still
/// gets through (after learning the first is dead), readers never block, and
/// a sweep leaves nothing stuck.
fn crashed_writer_model(step: Step) {
    loom::model(move || {
        let (t, dead) = setup();
        let pre_existing = matches!(
            step,
            Step::RemoveTombstoned | Step::UpdateWriting | Step::UpdateWritten
        );
        if pre_existing {
            t.insert(&k("x"), &owner(3), 0, &meta(3), &env(1, &dead))
                .unwrap();
        }
        let (t1, dead1) = (t.clone(), dead.clone());
        let crasher = thread::spawn(move || {
            let e = LEnv {
                token: 1,
                crash: Some(step),
                dead: dead1.clone(),
            };
            let r = match step {
                Step::RemoveTombstoned => t1.remove(&k("x"), None, &e).map(|_| ()),
                Step::UpdateWriting | Step::UpdateWritten => {
                    t1.update(&k("x"), &meta(4), &e).map(|_| ())
                }
                _ => t1.insert(&k("x"), &owner(1), 0, &meta(1), &e).map(|_| ()),
            };
            // The survivor may have registered first: then there is nothing to crash in.
            assert!(
                matches!(
                    r,
                    Err(TableError::Crashed) | Err(TableError::Exists { pid: 2, .. })
                ),
                "{r:?}"
            );
            dead1[1].store(true, Ordering::Release);
        });
        let (t2, e2) = (t.clone(), env(2, &dead));
        let survivor =
            thread::spawn(
                move || match t2.insert(&k("x"), &owner(2), 0, &meta(2), &e2) {
                    Ok(_) => true,
                    Err(TableError::Exists { pid: 3, .. }) => false, // the key was there, alive
                    Err(e) => panic!("{e:?}"),
                },
            );
        // An update that never flipped was never committed: its metadata
        // (4) is never seen, whole or in part.
        if let Some(e) = t.lookup(&k("x")).unwrap() {
            assert!(e.metadata == meta(e.owner.pid as u8), "torn: {e:?}");
        }
        crasher.join().unwrap();
        let won = survivor.join().unwrap();
        let sweeper = env(2, &dead);
        t.sweep(&sweeper).unwrap();
        let c = t.census();
        assert_eq!(
            (c.claimed, c.locked_groups),
            (0, 0),
            "{step:?} left something stuck"
        );
        if won {
            assert_eq!(t.lookup_pid(&k("x")).unwrap(), Some(2));
        }
        assert!(c.live <= 1);
    });
}

#[test]
fn loom_writer_crashed_after_locking_does_not_block_others() {
    crashed_writer_model(Step::InsertLocked);
}

#[test]
fn loom_writer_crashed_after_claiming_does_not_block_others() {
    crashed_writer_model(Step::InsertClaimed);
}

#[test]
fn loom_writer_crashed_before_publishing_does_not_block_others() {
    crashed_writer_model(Step::InsertWritten);
}

#[test]
fn loom_writer_crashed_mid_remove_does_not_block_others() {
    crashed_writer_model(Step::RemoveTombstoned);
}

#[test]
fn loom_writer_crashed_while_writing_an_update_does_not_block_others() {
    crashed_writer_model(Step::UpdateWriting);
}

#[test]
fn loom_writer_crashed_mid_update_does_not_block_others() {
    crashed_writer_model(Step::UpdateWritten);
}

// ---- change ring ------------------------------------------------------------

use super::ring::{Change, ChangeKey, ChangeKind, RingRead};

/// A change whose every field derives from `id`, so a torn copy is detectable.
fn change(id: u8) -> Change<'static> {
    // Namespace and name of 2 bytes each, a word pair each, packed as a
    // row holds them.
    let mut words = Vec::new();
    KeyWords::new(&[id; 2], &[id; 2]).for_each_word(|_, w| words.push(w));
    assert_eq!(words.len(), 4);
    Change {
        kind: ChangeKind::Registered,
        key: ChangeKey::Row {
            lens: 2 | 2 << 16,
            words,
        },
        pid: id as u32,
        version: id as u32 * 10,
        at: id as u64 * 100,
    }
}

/// A record read back must be exactly one writer's change.
fn check_consistent(r: &RingRead) {
    if let RingRead::Ready(c) = r {
        let id = c.pid as u8;
        assert_eq!(c.kind, ChangeKind::Registered, "{c:?}");
        assert_eq!(c.key, vec![id; 4], "{c:?}");
        assert_eq!(
            (c.version, c.at),
            (id as u32 * 10, id as u64 * 100),
            "{c:?}"
        );
    }
}

/// Two writers append concurrently while a reader reads both revisions:
/// every record it accepts is whole, and both end up readable in order.
#[test]
fn loom_ring_append_vs_read() {
    loom::model(|| {
        let (t, dead) = setup();
        assert_eq!(t.attach_watcher(), 0);
        let writers: Vec<_> = [1u8, 2]
            .into_iter()
            .map(|id| {
                let (t, dead) = (t.clone(), dead.clone());
                thread::spawn(move || {
                    t.committed(hdr::REGISTERS, change(id), &env(id as u32, &dead))
                })
            })
            .collect();
        for rev in 1..=2 {
            check_consistent(&t.read_change(rev));
        }
        let revs: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let mut sorted = revs.clone();
        sorted.sort();
        assert_eq!(sorted, [1, 2], "distinct consecutive revisions");
        for (id, rev) in [1u8, 2].into_iter().zip(revs) {
            match t.read_change(rev) {
                RingRead::Ready(c) => assert_eq!(c.pid, id as u32),
                other => panic!("revision {rev} not readable: {other:?}"),
            }
        }
        assert_eq!(t.revision(), 2);
    });
}

/// A writer overwrites the oldest record (ring of 2) while a reader copies
/// it: the reader gets the old record whole, or learns it was overwritten.
#[test]
fn loom_ring_overwrite_vs_read() {
    loom::model(|| {
        let (t, dead) = setup();
        t.attach_watcher();
        t.committed(hdr::REGISTERS, change(1), &env(1, &dead));
        t.committed(hdr::REGISTERS, change(2), &env(1, &dead));
        let w = {
            let (t, dead) = (t.clone(), dead.clone());
            thread::spawn(move || t.committed(hdr::REGISTERS, change(3), &env(2, &dead)))
        };
        let r = t.read_change(1);
        check_consistent(&r);
        match &r {
            RingRead::Ready(c) => assert_eq!(c.pid, 1),
            RingRead::Overwritten { newer } => assert_eq!(*newer, 3),
            RingRead::NotYet => panic!("revision 1 was written before"),
        }
        assert_eq!(w.join().unwrap(), 3);
        assert!(matches!(
            t.read_change(1),
            RingRead::Overwritten { newer: 3 }
        ));
    });
}

/// A writer dies with its record half-written: the next writer appends its
/// own record regardless (no lock to wait for); the half-written one never
/// reads as a change, and is overwritten by the next change for its record.
#[test]
fn loom_ring_writer_crashed_mid_record_does_not_block_others() {
    loom::model(|| {
        let (t, dead) = setup();
        t.attach_watcher();
        let mut victim = env(1, &dead);
        victim.crash = Some(Step::RingWritten);
        assert_eq!(t.committed(hdr::REGISTERS, change(1), &victim), 1);
        let w = {
            let (t, dead) = (t.clone(), dead.clone());
            thread::spawn(move || t.committed(hdr::REGISTERS, change(2), &env(2, &dead)))
        };
        dead[1].store(true, Ordering::Release);
        assert_eq!(w.join().unwrap(), 2);
        assert_eq!(
            t.read_change(1),
            RingRead::NotYet,
            "half-written: never a change"
        );
        // Revision 3 lands on the record of 1 (a ring of 2) and replaces it.
        assert_eq!(t.committed(hdr::REGISTERS, change(3), &env(2, &dead)), 3);
        match t.read_change(3) {
            RingRead::Ready(c) => assert_eq!(c.pid, 3),
            other => panic!("{other:?}"),
        }
        match t.read_change(2) {
            RingRead::Ready(c) => assert_eq!(c.pid, 2),
            other => panic!("{other:?}"),
        }
    });
}

/// Three changes on a ring of two records: a writer that got revision 1 can
/// still be writing while another writes revision 3 into the same record.
/// Whatever the interleaving, a record that reads as ready is one writer's
/// change whole (the checksum rejects a mix).
#[test]
fn loom_ring_writers_meeting_on_one_record_never_show_a_mixed_change() {
    loom::model(|| {
        let (t, dead) = setup();
        t.attach_watcher();
        let a = {
            let (t, dead) = (t.clone(), dead.clone());
            thread::spawn(move || t.committed(hdr::REGISTERS, change(1), &env(1, &dead)))
        };
        let b = env(2, &dead);
        let r1 = t.committed(hdr::REGISTERS, change(2), &b);
        let r2 = t.committed(hdr::REGISTERS, change(3), &b);
        let ra = a.join().unwrap();
        let mut revs = vec![ra, r1, r2];
        revs.sort();
        assert_eq!(revs, [1, 2, 3]);
        for rev in 1..=3 {
            let r = t.read_change(rev);
            check_consistent(&r);
            if let RingRead::Ready(c) = &r {
                assert_eq!(c.revision, rev);
            }
        }
        // Revision 2 has its record to itself: always readable. Revision 3
        // may be lost when the writer of 1 was still writing (by design: a
        // writer a whole ring behind may spoil a record, never fake one).
        assert!(matches!(t.read_change(2), RingRead::Ready(_)));
    });
}

/// Writers of different homes claim slots of one group at once: each sets
/// its byte of the group's tag word with a CAS, so neither byte is lost
/// (a lost byte would make readers miss a committed key).
#[test]
fn loom_tag_bytes_set_at_once_are_both_kept() {
    loom::model(|| {
        let (t, _) = setup();
        let t1 = t.clone();
        let a = thread::spawn(move || t1.set_tag(0, 0x81));
        let t2 = t.clone();
        let b = thread::spawn(move || t2.set_tag(1, 0x92));
        t.set_tag(2, 0xA3);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(t.tags(0).load(Ordering::Relaxed), 0xA3_92_81);
    });
}

/// A cached answer (`Seen`) never outlives a change to its entry: once a
/// removal and a re-registration by another owner finished, `unchanged`
/// is false; while they run, an answer the proof still backs is the old
/// registration's, and a fresh read is one of the two registrations.
#[test]
fn loom_a_seen_answer_never_outlives_its_entry() {
    loom::model(|| {
        let (t, dead) = setup();
        t.insert(&k("x"), &owner(1), 0, &meta(1), &env(1, &dead))
            .unwrap();
        let (pid, seen) = t.lookup_pid_seen(&k("x")).unwrap().unwrap();
        assert_eq!(pid, 1);
        let done = Arc::new(AtomicBool::new(false));
        let (t1, e1, d1) = (t.clone(), env(2, &dead), done.clone());
        let writer = thread::spawn(move || {
            assert!(t1.remove(&k("x"), None, &e1).unwrap());
            t1.insert(&k("x"), &owner(2), 0, &meta(2), &e1).unwrap();
            d1.store(true, Ordering::Release);
        });
        let finished = done.load(Ordering::Acquire);
        if t.unchanged(&seen) {
            assert!(!finished, "a proof held after its entry was replaced");
        } else if let Some((p, _)) = t.lookup_pid_seen(&k("x")).unwrap() {
            assert!(p == 1 || p == 2);
        }
        writer.join().unwrap();
        assert!(!t.unchanged(&seen));
        assert_eq!(t.lookup_pid(&k("x")).unwrap(), Some(2));
    });
}

/// Groups: a member is a key of kind [`MEMBER`] under the same protocol. Two
/// joins of one (group, pid) race with the insert of a unique key of the same
/// bytes and a scan (what `members` reads): exactly one join wins, the unique
/// key is a key of its own beside it, and the scan sees each entry whole or
/// not at all.
#[test]
fn loom_two_joins_of_one_member_exactly_one_wins_beside_a_unique_key() {
    model_spinning(1, || {
        let (t, dead) = setup();
        let member = || KeyWords::with_kind(b"n", b"g\x001", MEMBER);
        let joins: Vec<_> = (1..=2)
            .map(|tok| {
                let (t, e) = (t.clone(), env(tok, &dead));
                thread::spawn(move || {
                    t.insert(&member(), &owner(tok), 0, &meta(tok as u8), &e)
                        .is_ok()
                })
            })
            .collect();
        t.insert(&k("g\x001"), &owner(3), 0, &meta(3), &env(3, &dead))
            .unwrap();
        t.for_each_live(|_, _, e| {
            assert_eq!(e.metadata[..], meta(e.owner.pid as u8)[..], "torn: {e:?}");
            true
        })
        .unwrap();
        let wins: Vec<bool> = joins.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
        let winner = wins.iter().position(|w| *w).unwrap() as u32 + 1;
        assert_eq!(t.lookup_pid(&member()).unwrap(), Some(winner));
        assert_eq!(t.lookup_pid(&k("g\x001")).unwrap(), Some(3));
        assert_eq!(t.census().live, 2);
    });
}
