//! The slot protocol: a fixed-capacity open-addressed hash table of atomic
//! words, shared by many processes, with lock-free readers.
//!
//! # Layout (all `u64` words, see [`Geometry`])
//! ```text
//! [ header words | ctrl[capacity] | home[groups] | tags[groups] | hot[capacity][8] | cold[capacity][cold_words] ]
//! ```
//! * Slots form groups of [`GROUP`] (8 control words = one cache line). A key's
//!   *home group* comes from the high bits of its hash; it lives in the first
//!   free slot of the groups `home, home+1, home+3, home+6, …` (triangular
//!   probing; at most [`MAX_DISP`] steps away).
//! * A **control word** describes one slot:
//!   `version:32 | state:2 | active:1 | disp:8 | tag:21` (LIVE, TOMBSTONE), or
//!   `version:32 | state:2 | 0 | writer token:29` (CLAIMED). Every transition
//!   bumps the version, which is what readers validate (a seqlock per slot).
//! * A **home word** per group: `lock holder token:32 | steps:32`. The lock
//!   serialises the writers (insert, remove, update, reclaim) of keys whose
//!   home is this group, so two inserts of one key never race; writers of other
//!   groups only ever compete for *free* slots with a CAS. Bit `i` of `steps`
//!   says a live key of this home sits at probe step `i` (bit 31: at step 31 or
//!   later); readers scan only those groups, so a miss never walks tombstones
//!   and churn cannot lengthen it much: a delete recomputes the bits, and an
//!   insert prefers a step its home already has to scan.
//! * A **tag word** per group: byte `j` holds 8 bits of the hash (high bit
//!   set) of the key last claimed into slot `j`, written by the claimer
//!   before its commit. A reader matches all 8 bytes at once (SWAR) and
//!   loads only the control words of matching slots; a stale byte costs a
//!   control word load, never a miss (the control word decides).
//! * A **row** holds the key, owner and two metadata buffers. Its first 8
//!   words (lens, pid, first 48 key bytes) live in a dense *hot* array, one
//!   cache line per slot, so hits touch a small, TLB-friendly region; the rest
//!   lives in the *cold* array. A metadata
//!   update writes the inactive buffer and flips `active` with the version, so
//!   readers never wait for an updater.
//!
//! Readers only load. Every reader loop is bounded; past the bound it reports
//! [`TableError::Busy`].
//!
//! # Files
//! This file holds [`Table`], its header counters and its [`Geometry`]; the
//! `impl Table` blocks are spread over one file per concern:
//! * `control`: the control word encoding, [`SlotState`](control::SlotState)
//!   and the branch-free group match;
//! * `row`: row word offsets, the metadata lengths word and the lease word;
//! * `types`: the values handed out ([`Owner`], [`RawEntry`], [`EntryHead`],
//!   [`TableError`], [`Census`](types::Census));
//! * `context`: what a write needs from its caller ([`WriteContext`]) and the crash
//!   points ([`Step`]);
//! * `read`: lookups, scans, the census;
//! * `home`: the home word: its lock ([`HomeLock`](home::HomeLock), stealing
//!   from a dead holder) and its step bits;
//! * `write`: insert, remove, update, renew;
//! * `reclaim`: removing what dead owners and dead writers left (reclaim,
//!   sweep, stuck);
//! * `ring`: the change counter and the change ring;
//! * `key`: keys packed into row words, and their hash.

mod bytes;
mod context;
mod control;
mod home;
pub(crate) mod key;
mod quick;
mod read;
mod reclaim;
pub(crate) mod ring;
mod row;
mod scan;
mod types;
mod write;

pub(crate) use context::{Step, WriteContext, WriteHooks};
// The table backend implements these; the loom models do not need them here.
#[cfg_attr(procreg_loom, allow(unused_imports))]
pub(crate) use context::{LivenessJudge, Writer};
pub(crate) use control::MAX_TOKEN;
// The backends and groups use these; the loom build leaves those out.
#[cfg_attr(procreg_loom, allow(unused_imports))]
pub(crate) use key::MEMBER;
#[cfg_attr(procreg_loom, allow(unused_imports))]
pub(crate) use read::Seen;
pub(crate) use row::{lease, meta_lens};
pub(crate) use types::{EntryHead, Owner, RawEntry, TableError};

use crate::sync::{AtomicU64, Ordering};
use control::{LOW32, TAG_MASK};
use key::words_for;

/// Slots per group (one cache line of control words).
pub(crate) const GROUP: usize = 8;
/// Largest displacement, in groups, of a key from its home group.
pub(crate) const MAX_DISP: usize = 255;
/// Row words kept in the dense hot array (one cache line per slot): lens,
/// pid and the first 6 key words, all a hit on a key of up to 48 bytes reads.
pub(crate) const HOT_WORDS: usize = 8;
/// Words at the start of the table region reserved for counters.
pub(crate) const HEADER_WORDS: usize = 16;
/// How many times a reader re-reads a slot that keeps changing before `Busy`.
pub(crate) const READ_RETRIES: u32 = 1_000;

/// Table header word indices (counters; written by writers only).
pub(crate) mod hdr {
    /// Bumped by every committed change (register, unregister, update, reclaim).
    pub(crate) const CHANGES: usize = 0;
    pub(crate) const REGISTERS: usize = 1;
    pub(crate) const UNREGISTERS: usize = 2;
    pub(crate) const UPDATES: usize = 3;
    pub(crate) const RECLAIMED: usize = 4;
    pub(crate) const STUCK_RECOVERED: usize = 5;
    pub(crate) const LOCKS_STOLEN: usize = 6;
    /// Watchers attached to the change ring (see `ring`).
    pub(crate) const WATCHERS: usize = 7;
}

/// Sizes of one table, validated and held in process memory (never re-read
/// from shared memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) capacity: usize,
    pub(crate) max_ns_len: usize,
    pub(crate) max_name_len: usize,
    pub(crate) max_meta_len: usize,
}

impl Geometry {
    pub(crate) fn groups(&self) -> usize {
        self.capacity / GROUP
    }
    pub(crate) fn key_words(&self) -> usize {
        key::key_words_of(self.max_ns_len, self.max_name_len)
    }
    pub(crate) fn meta_words(&self) -> usize {
        words_for(self.max_meta_len)
    }
    /// Words per row: one hot line plus the cold part, in whole cache lines.
    pub(crate) fn row_words(&self) -> usize {
        HOT_WORDS + self.cold_words()
    }
    /// Cold words per row (everything past the first [`HOT_WORDS`]).
    fn cold_words(&self) -> usize {
        (self.row_tail() + row::META + 2 * self.meta_words() - HOT_WORDS).next_multiple_of(8)
    }
    /// Row word where the fields after the key start. A row always has
    /// room for [`HEAD_WORDS`](key::HEAD_WORDS) key words (the whole hot
    /// line), zero past its key, so a reader compares the hot line whole.
    fn row_tail(&self) -> usize {
        row::KEY + self.key_words().max(key::HEAD_WORDS)
    }
    fn ctrl_base(&self) -> usize {
        HEADER_WORDS
    }
    fn home_base(&self) -> usize {
        HEADER_WORDS + self.capacity
    }
    fn tags_base(&self) -> usize {
        self.home_base() + self.groups()
    }
    fn hot_base(&self) -> usize {
        (self.tags_base() + self.groups()).next_multiple_of(8)
    }
    fn cold_base(&self) -> usize {
        self.hot_base() + self.capacity * HOT_WORDS
    }
    fn ring_base(&self) -> usize {
        self.cold_base() + self.capacity * self.cold_words()
    }
    /// Total words of the table region (change ring included).
    pub(crate) fn total_words(&self) -> usize {
        self.ring_base() + self.ring_len() * self.rec_words()
    }
    /// Largest displacement, in groups, an insert may use.
    pub(crate) fn disp_limit(&self) -> usize {
        MAX_DISP.min(self.groups() - 1)
    }
}

/// The table over some storage of atomic words.
pub(crate) struct Table<S> {
    /// Owns the storage; `base`/`len` point into it (only kept alive here).
    #[allow(dead_code)]
    words: S,
    /// `words.as_ref()` taken once, so that a word access on the lookup path
    /// is a pointer add, not a fresh `as_ref()`; sound because the storage
    /// types (a boxed slice, a mapping) never move their words.
    base: *const AtomicU64,
    len: usize,
    g: Geometry,
    gmask: usize,
    ctrl_base: usize,
    /// `base` advanced to the control words, tag words, home words and hot
    /// rows: a reader's word address is one add, not two.
    ctrl_ptr: *const AtomicU64,
    tags_ptr: *const AtomicU64,
    home_ptr: *const AtomicU64,
    hot_ptr: *const AtomicU64,
    /// `key::key_words_of` the longest key: a reader's bound.
    key_words: usize,
    /// `max_ns_len | max_name_len << 32` (see `Packed::len_pair`).
    limit_pair: u64,
    /// Whether every key of the short shape (`key::is_short`) is within
    /// the limits: then a short key's miss checks no length.
    short_fits: bool,
    /// `g.groups()` and `g.disp_limit()`, kept for the readers.
    groups: u64,
    disp_limit: usize,
    cold_base: usize,
    cold_words: usize,
    /// Row word where the fields after the key start.
    tail: usize,
    /// First word of the change ring.
    ring_base: usize,
    /// Records in the ring minus one (a power of two minus one).
    ring_mask: usize,
    /// Words per ring record.
    rec_words: usize,
}

// SAFETY: `base` only aliases `words`, which is shared through `&[AtomicU64]`
// (Sync) and owned by the table; Table is Send/Sync exactly when S is.
unsafe impl<S: Send> Send for Table<S> {}
// SAFETY: as above; all access goes through atomics.
unsafe impl<S: Sync> Sync for Table<S> {}

/// Another view of the same words (the storage is shared, e.g. an `Arc`).
impl<S: AsRef<[AtomicU64]> + Clone> Clone for Table<S> {
    fn clone(&self) -> Self {
        Table::new(self.words.clone(), self.g)
    }
}

impl<S: AsRef<[AtomicU64]>> Table<S> {
    /// Wraps storage of exactly `g.total_words()` words (zeroed = empty table).
    /// `words.as_ref()` must return the same slice for as long as `words`
    /// lives (true of a `Vec`, an `Arc<Box<[_]>>` and a mapping). Not a bare
    /// `Box`: moving a `Box` re-asserts unique access to its contents, which
    /// invalidates the cached pointer under Stacked Borrows.
    pub(crate) fn new(words: S, g: Geometry) -> Self {
        assert!(g.capacity.is_power_of_two() && g.capacity >= 2 * GROUP);
        assert_eq!(words.as_ref().len(), g.total_words(), "storage size");
        let (base, len) = (words.as_ref().as_ptr(), words.as_ref().len());
        // In bounds: every region lies inside the `total_words()` words
        // (asserted above).
        let at = |i: usize| base.wrapping_add(i);
        Table {
            base,
            ctrl_ptr: at(g.ctrl_base()),
            tags_ptr: at(g.tags_base()),
            home_ptr: at(g.home_base()),
            hot_ptr: at(g.hot_base()),
            len,
            gmask: g.groups() - 1,
            ctrl_base: g.ctrl_base(),
            key_words: g.key_words(),
            limit_pair: key::len_pair(g.max_ns_len.min(0xFFFF), g.max_name_len.min(0xFFFF)),
            short_fits: g.max_ns_len >= key::SHORT_NS && g.max_name_len >= key::SHORT_NAME,
            groups: g.groups() as u64,
            disp_limit: g.disp_limit(),
            cold_base: g.cold_base(),
            cold_words: g.cold_words(),
            tail: g.row_tail(),
            ring_base: g.ring_base(),
            ring_mask: g.ring_len() - 1,
            rec_words: g.rec_words(),
            words,
            g,
        }
    }

    pub(crate) fn geometry(&self) -> &Geometry {
        &self.g
    }

    #[inline(always)]
    fn w(&self, i: usize) -> &AtomicU64 {
        // Every index comes from process-local geometry (slot < capacity, row
        // word < row_words, masked groups), never raw from shared memory; the
        // debug build checks it, the release build skips the check.
        debug_assert!(i < self.len, "word {i} of {}", self.len);
        // SAFETY: `base` points at `len` atomics owned by `self.words`, whose
        // storage never moves (see `Table::new`), and `i < len` as asserted.
        unsafe { &*self.base.add(i) }
    }

    /// Word `i` of a region starting at `region` (one of the `*_ptr`
    /// fields), `i` below the region's length.
    #[inline(always)]
    fn at(&self, region: *const AtomicU64, i: usize) -> &AtomicU64 {
        debug_assert!(region.wrapping_add(i) < self.base.wrapping_add(self.len));
        // SAFETY: `region` is `base` advanced to a region of the table's
        // words, and the callers pass an index inside that region (checked
        // in debug builds), so the word lies inside the `len` atomics
        // owned by `self.words` (see `w`).
        unsafe { &*region.add(i) }
    }

    #[inline(always)]
    fn ctrl(&self, slot: usize) -> &AtomicU64 {
        debug_assert!(slot < self.g.capacity);
        self.at(self.ctrl_ptr, slot)
    }
    #[inline(always)]
    fn home(&self, group: usize) -> &AtomicU64 {
        debug_assert!(group <= self.gmask);
        self.at(self.home_ptr, group)
    }
    /// The tag word of `group`: byte `j` is the [`tag8`](control::tag8) of
    /// the key last claimed into slot `j` of the group (0: never claimed).
    #[inline(always)]
    fn tags(&self, group: usize) -> &AtomicU64 {
        debug_assert!(group <= self.gmask);
        self.at(self.tags_ptr, group)
    }
    /// Word `i` (< [`HOT_WORDS`]) of `slot`'s hot line.
    #[inline(always)]
    fn hot(&self, slot: usize, i: usize) -> &AtomicU64 {
        debug_assert!(slot < self.g.capacity && i < HOT_WORDS);
        self.at(self.hot_ptr, slot * HOT_WORDS + i)
    }
    #[inline(always)]
    fn rw(&self, slot: usize, i: usize) -> &AtomicU64 {
        debug_assert!(slot < self.g.capacity && i < HOT_WORDS + self.cold_words);
        if i < HOT_WORDS {
            self.hot(slot, i)
        } else {
            self.w(self.cold_base + slot * self.cold_words + i - HOT_WORDS)
        }
    }
    /// A header counter.
    pub(crate) fn counter(&self, i: usize) -> u64 {
        self.w(i).load(Ordering::Relaxed)
    }
    fn bump_counter(&self, i: usize) {
        self.w(i).fetch_add(1, Ordering::Relaxed);
    }

    /// Group `d` of the probe sequence of `home`: triangular steps (home, +1,
    /// +3, +6, …) visit every group of a power-of-two table and avoid the
    /// primary clustering that makes linear probing degrade under churn.
    #[inline(always)]
    fn probe_group(&self, home: usize, d: usize) -> usize {
        (home + d * (d + 1) / 2) & self.gmask
    }

    #[inline(always)]
    fn place(&self, hash: u64) -> (usize, u64) {
        let group = ((hash as u128 * self.groups as u128) >> 64) as usize;
        (group, hash & TAG_MASK)
    }
}

/// Heap storage: the `mem` backend and loom use it.
pub(crate) fn heap_storage(g: &Geometry) -> Box<[AtomicU64]> {
    (0..g.total_words()).map(|_| AtomicU64::new(0)).collect()
}

#[cfg(all(test, not(procreg_loom)))]
mod tests;

#[cfg(all(test, procreg_loom))]
mod loom_tests;
