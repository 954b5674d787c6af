//! The change ring and the change counter: how readers learn of changes
//! without polling.
//!
//! # Change counter (`hdr::CHANGES`)
//! Every committed change adds 2 to the counter under its home lock, so
//! `CHANGES >> 1` is the *revision* of the latest change and two changes of
//! one key get revisions in the order they happened. Bit 0 says "someone
//! sleeps on this word": a waiter sets it, re-checks its condition, and
//! sleeps with a shared futex on the low 32 bits; a writer that finds the bit
//! set clears it and wakes every sleeper. A dead waiter leaves at most one
//! needless wake behind.
//!
//! # Change ring
//! While at least one watcher is attached (`hdr::WATCHERS` > 0), a writer
//! also copies its change (kind, key, pid, version, time) into record
//! `revision % ring_len` of a fixed ring, with no lock and no
//! read-modify-write: each record has a seqlock word `revision << 1` (bit 0:
//! being written) and a checksum of its revision and fields. A reader can
//! tell a record that is not written yet (`< revision`), one that is ready
//! (`== revision` and the checksum matches), and one already overwritten by
//! a newer change (`> revision`: the reader fell a whole ring behind,
//! *lagged*). Two writers meet on one record only if one of them lags a
//! whole ring behind; their mixed stores then fail the checksum and the
//! record reads as not written (reported lost), never as a wrong change. A
//! writer killed mid-record leaves it "being written"; the next change for
//! that record simply overwrites it.
//!
//! The attach protocol is Dekker's: a writer adds to `CHANGES` then loads
//! `WATCHERS`; a watcher adds to `WATCHERS` then loads `CHANGES` (all SeqCst),
//! so every change after a watcher's starting revision is recorded. A writer
//! that dies (or is frozen) between its revision and its record leaves a
//! hole; watchers report it as a lost change after a bounded wait.

use super::{
    EntryHead, Geometry, LOW32, Table, WriteHooks, hdr,
    key::{KeyWords, key_words_of, unpack, unpack_into},
};
use crate::sync::{AtomicU64, Ordering, fence};
use crate::sys::futex;

/// Fixed words of a ring record before the key words.
pub(crate) const REC_HEAD: usize = 5;
mod rec {
    /// `revision << 1 | writing`.
    pub(super) const REV: usize = 0;
    /// `kind | lens << 8` (lens = ns_len | name_len << 16).
    pub(super) const META: usize = 1;
    /// `pid | version << 32`.
    pub(super) const OWNER: usize = 2;
    /// Time of the change, ns since the Unix epoch.
    pub(super) const AT: usize = 3;
    /// Checksum of the revision and every other word of the record.
    pub(super) const SUM: usize = 4;
}

/// The checksum of a record: `Σ word_i × c_i` (mod 2^64) with a distinct odd
/// multiplier per position, seeded by the revision. The multiplies are
/// independent (no dependency chain through the sum), so it costs a few
/// cycles; a mix of two writers' words matches only if their differences
/// cancel exactly under these multipliers.
struct Sum {
    acc: u64,
    c: u64,
}
impl Sum {
    fn new(rev: u64) -> Sum {
        Sum {
            acc: rev.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5851_F42D_4C95_7F2D,
            c: 0xBF58_476D_1CE4_E5B9,
        }
    }
    #[inline(always)]
    fn add(&mut self, w: u64) {
        self.acc = self.acc.wrapping_add(w.wrapping_mul(self.c));
        self.c = self.c.wrapping_add(0x94D0_49BB_1331_11EA); // stays odd
    }
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ChangeKind {
    /// A record whose writer died before writing it (or that a ring-lock
    /// thief found half-written).
    Lost = 0,
    Registered = 1,
    Unregistered = 2,
    Updated = 3,
    /// The owner died; a sweep, a checked lookup or a register replaced it.
    Reclaimed = 4,
    /// The entry's lease ran out.
    Expired = 5,
}

impl ChangeKind {
    fn from_u8(k: u8) -> ChangeKind {
        match k {
            1 => ChangeKind::Registered,
            2 => ChangeKind::Unregistered,
            3 => ChangeKind::Updated,
            4 => ChangeKind::Reclaimed,
            5 => ChangeKind::Expired,
            _ => ChangeKind::Lost,
        }
    }
}

/// The key of a change: the caller's key, or words copied from a row.
pub(crate) enum ChangeKey<'a> {
    Key(&'a KeyWords<'a>),
    Row { lens: u64, words: Vec<u64> },
}

impl ChangeKey<'_> {
    /// Namespace and name bytes (zero where the words fall short).
    pub(crate) fn bytes(&self) -> (Vec<u8>, Vec<u8>) {
        match self {
            ChangeKey::Key(k) => {
                let (ns, name) = k.parts();
                (ns.to_vec(), name.to_vec())
            }
            ChangeKey::Row { lens, words } => {
                let ns_len = (*lens & 0xFFFF) as usize;
                let name_len = (*lens >> 16 & 0xFFFF) as usize;
                let mut all = unpack(words, ns_len, name_len);
                let name = all.split_off(ns_len.min(all.len()));
                (all, name)
            }
        }
    }
}

/// One committed change, as handed to [`Table::committed`].
pub(crate) struct Change<'a> {
    pub(crate) kind: ChangeKind,
    pub(crate) key: ChangeKey<'a>,
    pub(crate) pid: u32,
    pub(crate) version: u32,
    /// ns since the Unix epoch; 0 = "now", read from the clock only if the
    /// change is recorded or reported.
    pub(crate) at: u64,
}

/// A change read back from the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawChange {
    pub(crate) revision: u64,
    pub(crate) kind: ChangeKind,
    pub(crate) ns_len: usize,
    /// Namespace then name.
    pub(crate) key: Vec<u8>,
    pub(crate) pid: u32,
    pub(crate) version: u32,
    pub(crate) at: u64,
}

/// Result of reading one revision from the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RingRead {
    Ready(RawChange),
    /// Not written yet (or never will be: its writer died).
    NotYet,
    /// Overwritten: the ring's record now holds revision `newer`.
    Overwritten {
        newer: u64,
    },
}

impl Geometry {
    /// Records in the change ring: the capacity, within 256..=65536. (Under
    /// loom: 2, so that a model can wrap the ring.)
    pub(crate) fn ring_len(&self) -> usize {
        if cfg!(procreg_loom) {
            2
        } else {
            self.capacity.clamp(256, 1 << 16)
        }
    }
    /// Words per ring record, in whole cache lines: a record starts a line,
    /// so recording a change with a key of up to 32 bytes writes one line.
    pub(crate) fn rec_words(&self) -> usize {
        (REC_HEAD + self.key_words()).next_multiple_of(8)
    }
}

impl<S: AsRef<[AtomicU64]>> Table<S> {
    /// The latest committed revision.
    pub(crate) fn revision(&self) -> u64 {
        self.w(hdr::CHANGES).load(Ordering::SeqCst) >> 1
    }

    /// Records a committed change: bumps `counter` and the change counter,
    /// appends the change to the ring while watchers are attached, and wakes
    /// sleepers. Called with the key's home lock held. Returns the revision.
    pub(crate) fn committed<E: WriteHooks>(&self, counter: usize, ch: Change<'_>, env: &E) -> u64 {
        self.bump_counter(counter);
        let old = self.w(hdr::CHANGES).fetch_add(2, Ordering::SeqCst);
        let rev = (old >> 1) + 1;
        if self.w(hdr::WATCHERS).load(Ordering::SeqCst) != 0 {
            self.append(rev, &ch, env);
        }
        if old & 1 != 0 {
            self.wake_all();
        }
        env.on_commit(rev, &ch);
        rev
    }

    /// Clears the sleeper bit and wakes every sleeper of the change counter.
    fn wake_all(&self) {
        let w = self.w(hdr::CHANGES);
        w.fetch_and(!1, Ordering::SeqCst);
        futex::wake_all(w);
    }

    /// First word of the record of `rev`.
    #[inline]
    fn rec_base(&self, rev: u64) -> usize {
        self.ring_base + (rev as usize & self.ring_mask) * self.rec_words
    }

    /// Writes the record of `rev` (no lock, no read-modify-write). A record
    /// already holding a newer revision is left alone: this writer lagged a
    /// whole ring behind and its change goes unrecorded (reported lost).
    fn append<E: WriteHooks>(&self, rev: u64, ch: &Change<'_>, env: &E) {
        let base = self.rec_base(rev);
        let head = self.w(base + rec::REV);
        if head.load(Ordering::Relaxed) >> 1 > rev {
            return;
        }
        head.store(rev << 1 | 1, Ordering::Relaxed);
        // Seqlock writer: "being written" is ordered before the fields.
        fence(Ordering::Release);
        let mut sum = Sum::new(rev);
        let key = base + REC_HEAD;
        let lens = match &ch.key {
            ChangeKey::Key(k) => {
                k.for_each_word(|i, w| {
                    sum.add(w);
                    self.w(key + i).store(w, Ordering::Relaxed);
                });
                k.lens()
            }
            ChangeKey::Row { lens, words } => {
                for (i, w) in words.iter().enumerate() {
                    sum.add(*w);
                    self.w(key + i).store(*w, Ordering::Relaxed);
                }
                *lens
            }
        };
        let meta = ch.kind as u64 | (lens & LOW32) << 8;
        let owner = ch.pid as u64 | (ch.version as u64) << 32;
        let at = if ch.at != 0 { ch.at } else { env.now() };
        for w in [meta, owner, at] {
            sum.add(w);
        }
        self.w(base + rec::META).store(meta, Ordering::Relaxed);
        self.w(base + rec::OWNER).store(owner, Ordering::Relaxed);
        self.w(base + rec::AT).store(at, Ordering::Relaxed);
        self.w(base + rec::SUM).store(sum.acc, Ordering::Relaxed);
        if env.crash_at(super::Step::RingWritten) {
            return; // simulated death: the record stays "being written"
        }
        head.store(rev << 1, Ordering::Release);
    }

    /// Copies the record of revision `rev` if it holds that revision.
    pub(crate) fn read_change(&self, rev: u64) -> RingRead {
        let base = self.rec_base(rev);
        let head = self.w(base + rec::REV);
        let h = head.load(Ordering::Acquire);
        if h >> 1 > rev {
            return RingRead::Overwritten { newer: h >> 1 };
        }
        if h != rev << 1 {
            return RingRead::NotYet;
        }
        let meta = self.w(base + rec::META).load(Ordering::Relaxed);
        let lens = meta >> 8 & LOW32;
        let ns_len = ((lens & 0xFFFF) as usize).min(self.g.max_ns_len);
        let name_len = ((lens >> 16 & 0xFFFF) as usize).min(self.g.max_name_len);
        let mut sum = Sum::new(rev);
        let mut key = vec![0; ns_len + name_len];
        unpack_into(&mut key, ns_len, |i| {
            let w = self.w(base + REC_HEAD + i).load(Ordering::Relaxed);
            sum.add(w);
            w
        });
        let owner = self.w(base + rec::OWNER).load(Ordering::Relaxed);
        let at = self.w(base + rec::AT).load(Ordering::Relaxed);
        let stored_sum = self.w(base + rec::SUM).load(Ordering::Relaxed);
        for w in [meta, owner, at] {
            sum.add(w);
        }
        fence(Ordering::Acquire);
        let again = head.load(Ordering::Relaxed);
        if again != h {
            return if again >> 1 > rev {
                RingRead::Overwritten { newer: again >> 1 }
            } else {
                RingRead::NotYet
            };
        }
        if sum.acc != stored_sum {
            // Two writers met on this record (one lagged a whole ring): its
            // words are a mix; report it as not written, never as a change.
            return RingRead::NotYet;
        }
        RingRead::Ready(RawChange {
            revision: rev,
            kind: ChangeKind::from_u8(meta as u8),
            ns_len,
            key,
            pid: owner as u32,
            version: (owner >> 32) as u32,
            at,
        })
    }

    /// Announces a watcher; returns the revision from which every change is
    /// recorded in the ring (the latest revision at attach time).
    pub(crate) fn attach_watcher(&self) -> u64 {
        self.w(hdr::WATCHERS).fetch_add(1, Ordering::SeqCst);
        self.revision()
    }

    /// Withdraws a watcher announced by [`attach_watcher`](Self::attach_watcher).
    pub(crate) fn detach_watcher(&self) {
        // Never below zero, even if a hostile process zeroed the word.
        let _ = self
            .w(hdr::WATCHERS)
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// Sleeps until the change counter moves past `seen` (a value returned
    /// by [`changes_word`](Self::changes_word)), or `timeout` passes, or a
    /// spurious wake-up. The caller re-checks its condition after every
    /// return. `seen` must have been read *before* the caller checked its
    /// condition.
    pub(crate) fn sleep_on_changes(&self, seen: u64, timeout: std::time::Duration) {
        let w = self.w(hdr::CHANGES);
        let mut cur = w.load(Ordering::SeqCst);
        // Announce a sleeper; if the word moved meanwhile there is news.
        loop {
            if cur >> 1 != seen >> 1 {
                return;
            }
            if cur & 1 == 1 {
                break;
            }
            match w.compare_exchange(cur, cur | 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    cur |= 1;
                    break;
                }
                Err(now) => cur = now,
            }
        }
        futex::wait(w, cur as u32, timeout);
    }

    /// The change counter, for [`sleep_on_changes`](Self::sleep_on_changes).
    pub(crate) fn changes_word(&self) -> u64 {
        self.w(hdr::CHANGES).load(Ordering::SeqCst)
    }

    /// The key words and lens of the live row in `slot` (read under its
    /// home lock, before the row may be freed), for a change record.
    pub(crate) fn row_key(&self, slot: usize, head: &EntryHead) -> ChangeKey<'static> {
        let words = (0..key_words_of(head.ns_len, head.name_len))
            .map(|i| self.rw(slot, super::row::KEY + i).load(Ordering::Relaxed))
            .collect();
        ChangeKey::Row {
            lens: (head.ns_len | head.name_len << 16) as u64,
            words,
        }
    }
}
