//! The slot protocol: a fixed-capacity open-addressed hash table of atomic
//! words, shared by many processes, with lock-free readers.
//!
//! # Layout (all `u64` words, see [`Geometry`])
//! ```text
//! [ header words | ctrl[capacity] | home[groups] | hot[capacity][8] | cold[capacity][cold_words] ]
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
//! * A **row** holds the key, owner and two metadata buffers. Its first 8
//!   words (lens, pid, first 48 key bytes) live in a dense *hot* array, one
//!   cache line per slot, so hits touch a small, TLB-friendly region; the rest
//!   lives in the *cold* array. A metadata
//!   update writes the inactive buffer and flips `active` with the version, so
//!   readers never wait for an updater.
//!
//! Readers only load. Every reader loop is bounded; past the bound it reports
//! [`TableError::Busy`].

pub(crate) mod key;
pub(crate) mod ring;

use crate::error::Liveness;
use crate::sync::{AtomicU64, Ordering, fence, spin_hint, yield_now};
use key::{HEAD_WORDS, KeyWords, words_for};

const _: () = assert!(
    row::KEY + HEAD_WORDS == HOT_WORDS,
    "a key's head words fill the hot line"
);
use ring::{Change, ChangeKey, ChangeKind};

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

// ---- control word -------------------------------------------------------

const STATE_SHIFT: u32 = 30;
const STATE_MASK: u64 = 0b11 << STATE_SHIFT;
const EMPTY: u64 = 0;
const CLAIMED: u64 = 1 << STATE_SHIFT;
const LIVE: u64 = 2 << STATE_SHIFT;
const TOMB: u64 = 3 << STATE_SHIFT;
const ACTIVE_BIT: u64 = 1 << 29;
const DISP_SHIFT: u32 = 21;
const TAG_MASK: u64 = (1 << DISP_SHIFT) - 1;
/// Bits compared by a reader looking for a key: state, disp and tag.
const MATCH_MASK: u64 = STATE_MASK | (0xFF << DISP_SHIFT) | TAG_MASK;
/// Largest writer token (29 bits).
pub(crate) const MAX_TOKEN: u32 = (1 << 29) - 1;
const LOW32: u64 = 0xFFFF_FFFF;
/// The step bitmap in a home word.
const STEP_BITS: u64 = LOW32;

#[inline]
fn step_bit(d: usize) -> u64 {
    1 << d.min(31)
}

#[inline]
fn version(c: u64) -> u64 {
    c >> 32
}
#[inline]
fn with_version(c_low: u64, v: u64) -> u64 {
    (v << 32) | (c_low & LOW32)
}
#[inline]
fn bump(c: u64, new_low: u64) -> u64 {
    with_version(new_low, version(c).wrapping_add(1) & LOW32)
}
#[inline]
fn disp_of(c: u64) -> usize {
    ((c >> DISP_SHIFT) & 0xFF) as usize
}
#[inline]
fn token_of(c: u64) -> u32 {
    (c & MAX_TOKEN as u64) as u32
}

/// Bit `j` set when control word `cs[j]` matches `want` under [`MATCH_MASK`].
/// Every matched bit lies in the low 32 bits, so on x86-64 the 8 words are
/// compared as 32-bit lanes of two SSE2 registers (the words were loaded
/// atomically one by one; only the copies are compared).
#[cfg(all(target_arch = "x86_64", not(loom)))]
#[inline(always)]
fn match_group(cs: &[u64; GROUP], want: u64) -> u32 {
    use core::arch::x86_64::*;
    const _: () = assert!(MATCH_MASK >> 32 == 0 && GROUP == 8);
    let lane = |j: usize| cs[j] as u32 as i32;
    // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics are
    // available on every CPU this code can run on; they only compute on
    // values (no memory access).
    unsafe {
        let lo = _mm_set_epi32(lane(3), lane(2), lane(1), lane(0));
        let hi = _mm_set_epi32(lane(7), lane(6), lane(5), lane(4));
        let mask = _mm_set1_epi32(MATCH_MASK as u32 as i32);
        let want = _mm_set1_epi32(want as u32 as i32);
        let a = _mm_cmpeq_epi32(_mm_and_si128(lo, mask), want);
        let b = _mm_cmpeq_epi32(_mm_and_si128(hi, mask), want);
        (_mm_movemask_ps(_mm_castsi128_ps(a)) | _mm_movemask_ps(_mm_castsi128_ps(b)) << 4) as u32
    }
}

/// Bit `j` set when control word `cs[j]` matches `want` under [`MATCH_MASK`].
#[cfg(not(all(target_arch = "x86_64", not(loom))))]
#[inline(always)]
fn match_group(cs: &[u64; GROUP], want: u64) -> u32 {
    match_group_scalar(cs, want)
}

/// The portable [`match_group`] (loom builds and other architectures; the
/// reference the SSE2 version is tested against).
#[cfg_attr(all(target_arch = "x86_64", not(loom), not(test)), allow(dead_code))]
#[inline(always)]
fn match_group_scalar(cs: &[u64; GROUP], want: u64) -> u32 {
    let mut hits = 0u32;
    for (j, &c) in cs.iter().enumerate() {
        hits |= ((c & MATCH_MASK == want) as u32) << j;
    }
    hits
}

/// State of a slot as seen by a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    Empty,
    Claimed,
    Live,
    Tombstone,
}

fn state_of(c: u64) -> SlotState {
    match c & STATE_MASK {
        EMPTY => SlotState::Empty,
        CLAIMED => SlotState::Claimed,
        LIVE => SlotState::Live,
        _ => SlotState::Tombstone,
    }
}

// ---- rows ---------------------------------------------------------------

/// Row word offsets.
///
/// The words a hit needs (lens, pid, key) come first, so that a hit on a key
/// of up to 48 bytes touches one cache line of the row. The rest follows the
/// key at `tail = KEY + key_words`.
mod row {
    /// `ns_len | name_len << 16`
    pub(super) const LENS: usize = 0;
    /// `pid:32 | 0:32`
    pub(super) const PID: usize = 1;
    pub(super) const KEY: usize = 2;
    // Offsets from `tail`:
    pub(super) const HASH: usize = 0;
    pub(super) const START_TIME: usize = 1;
    pub(super) const PIDNS: usize = 2;
    pub(super) const REGISTERED_AT: usize = 3;
    /// The lease word (see `lease`; 0 = none).
    pub(super) const LEASE: usize = 4;
    /// `seq_b:8 | len_b:24 | seq_a:8 | len_a:24` (high to low): each metadata buffer's
    /// length and write sequence (odd while an update writes that buffer;
    /// see [`meta_lens`](super::meta_lens)).
    pub(super) const META_LENS: usize = 5;
    /// Metadata buffer A, then buffer B.
    pub(super) const META: usize = 6;
}

/// Fields of the `META_LENS` row word: per metadata buffer (0 = A, 1 = B) a
/// 24-bit length and an 8-bit write sequence. An update bumps the sequence
/// of the buffer it writes before and after writing it; a reader that copied
/// buffer `X` while another update committed (which wrote the other buffer)
/// keeps its copy if `X`'s sequence did not move and is even (see
/// `Table::still_valid`). Within such a read at most one more update can
/// start (it writes `X`: the sequence moves by 1 or 2), so 8 bits never
/// wrap back.
pub(crate) mod meta_lens {
    /// Largest metadata length the 24-bit field holds.
    pub(crate) const MAX_LEN: usize = (1 << 24) - 1;
    const LEN_MASK: u64 = (1 << 24) - 1;

    #[inline]
    pub(crate) fn len(w: u64, buf: usize) -> usize {
        ((w >> (32 * buf)) & LEN_MASK) as usize
    }
    #[inline]
    pub(crate) fn seq(w: u64, buf: usize) -> u64 {
        (w >> (32 * buf + 24)) & 0xFF
    }
    fn with_seq(w: u64, buf: usize, seq: u64) -> u64 {
        let shift = 32 * buf + 24;
        (w & !(0xFF << shift)) | (seq & 0xFF) << shift
    }
    /// `w` with buffer `buf`'s sequence odd and changed: a write begins
    /// (+1, or +2 when a writer that died mid-write left it odd).
    #[inline]
    pub(crate) fn begin_write(w: u64, buf: usize) -> u64 {
        let s = seq(w, buf);
        with_seq(w, buf, s + 1 + (s & 1))
    }
    /// `w` (from [`begin_write`]) with buffer `buf`'s sequence even again.
    #[inline]
    pub(crate) fn end_write(w: u64, buf: usize) -> u64 {
        with_seq(w, buf, seq(w, buf) + 1)
    }
    /// `w` with buffer `buf`'s length set to `len`.
    #[inline]
    pub(crate) fn with_len(w: u64, buf: usize, len: usize) -> u64 {
        debug_assert!(len <= MAX_LEN);
        let shift = 32 * buf;
        (w & !(LEN_MASK << shift)) | (len as u64 & LEN_MASK) << shift
    }
}

/// The process that owns an entry, as recorded at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Owner {
    pub(crate) pid: u32,
    /// Start time of the process in clock ticks since boot (0 = unknown).
    pub(crate) start_time: u64,
    /// Inode of the PID namespace the pid is meaningful in (0 = unknown).
    pub(crate) pidns: u64,
}

/// One entry copied out of a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub(crate) key: Vec<u8>,
    pub(crate) ns_len: usize,
    pub(crate) owner: Owner,
    pub(crate) metadata: Vec<u8>,
    pub(crate) registered_at: u64,
    pub(crate) version: u32,
    /// The lease word (see [`lease`]); 0 = no lease.
    pub(crate) lease: u64,
}

impl RawEntry {
    fn new(h: EntryHead, lease: u64, key: Vec<u8>, metadata: Vec<u8>) -> RawEntry {
        RawEntry {
            key,
            ns_len: h.ns_len,
            owner: h.owner,
            metadata,
            registered_at: h.registered_at,
            version: h.version,
            lease,
        }
    }
}

/// Lease words: `deadline:40 | ttl:24`, both in milliseconds, the deadline
/// on the host's boot clock (shared by every process). 0 = no lease.
pub(crate) mod lease {
    /// Longest lease TTL in milliseconds (24 bits: about 4 h 39 min).
    pub(crate) const MAX_TTL_MS: u64 = (1 << 24) - 1;
    const DEADLINE_MASK: u64 = (1 << 40) - 1;
    /// A lease of `ttl_ms` starting at `now_ms`.
    pub(crate) fn new(now_ms: u64, ttl_ms: u64) -> u64 {
        debug_assert!((1..=MAX_TTL_MS).contains(&ttl_ms));
        ((now_ms + ttl_ms) & DEADLINE_MASK) | ttl_ms << 40
    }
    /// The same lease renewed at `now_ms`.
    pub(crate) fn renewed(lease: u64, now_ms: u64) -> u64 {
        new(now_ms, (lease >> 40).max(1))
    }
    /// Whether `lease` (non-zero) ran out before `now_ms`.
    pub(crate) fn expired(lease: u64, now_ms: u64) -> bool {
        lease != 0 && lease & DEADLINE_MASK < now_ms & DEADLINE_MASK
    }
}

/// The fixed-size part of an entry, copied out of a slot; its key and
/// metadata bytes go to caller buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryHead {
    pub(crate) owner: Owner,
    pub(crate) ns_len: usize,
    pub(crate) name_len: usize,
    pub(crate) meta_len: usize,
    /// First row word of the active metadata buffer.
    meta_first: usize,
    pub(crate) registered_at: u64,
    pub(crate) version: u32,
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
        words_for(self.max_ns_len + self.max_name_len)
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
    /// Row word where the fields after the key start.
    fn row_tail(&self) -> usize {
        row::KEY + self.key_words()
    }
    fn ctrl_base(&self) -> usize {
        HEADER_WORDS
    }
    fn home_base(&self) -> usize {
        HEADER_WORDS + self.capacity
    }
    fn hot_base(&self) -> usize {
        (self.home_base() + self.groups()).next_multiple_of(8)
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

/// Why a table operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TableError {
    /// The key is present and its owner is not dead.
    Exists {
        pid: u32,
        alive: Liveness,
    },
    NotFound,
    Full,
    Busy(&'static str),
    /// The fault-injection hook stopped this writer (a simulated crash).
    Crashed,
}

/// Named points in the writers where a crash can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Insert: home lock taken.
    InsertLocked,
    /// Insert: slot claimed, row not written.
    InsertClaimed,
    /// Insert: row written, not published.
    InsertWritten,
    /// Remove: tombstoned, reach of the home not recomputed.
    RemoveTombstoned,
    /// Update: the inactive buffer's write sequence turned odd, the buffer
    /// half written.
    UpdateWriting,
    /// Update: inactive buffer written, not flipped.
    UpdateWritten,
    /// Reclaim: home lock taken, entry not yet tombstoned.
    ReclaimLocked,
    /// Change ring: record written, not yet published (ring lock held).
    RingWritten,
}

/// What a writer needs from its surroundings.
pub(crate) trait Env {
    /// This writer's token (non-zero, at most [`MAX_TOKEN`]).
    fn token(&self) -> u32;
    /// Whether the writer holding `token` still runs.
    fn writer_liveness(&self, token: u32) -> Liveness;
    /// Whether an entry's owner still runs.
    fn owner_liveness(&self, owner: &Owner) -> Liveness;
    /// Fault injection: return true to stop the writer here, as if killed.
    fn crash_at(&self, _step: Step) -> bool {
        false
    }
    /// Called while waiting for a home lock; true gives up with `Busy`.
    fn give_up(&self, spins: u64) -> bool;
    /// Wall-clock time for change records, ns since the Unix epoch.
    fn now(&self) -> u64 {
        0
    }
    /// Told of every change this writer committed (with its home lock
    /// still held: record it, do not call out).
    fn on_commit(&self, _revision: u64, _change: &Change<'_>) {}
    /// Now on the boot clock, in milliseconds, for leases (0: leases never expire).
    fn now_ms(&self) -> u64 {
        0
    }
}

/// The table over some storage of atomic words.
pub(crate) struct Table<S> {
    /// Owns the storage; `base`/`len` point into it (only kept alive here).
    #[allow(dead_code)]
    words: S,
    /// `words.as_ref()` taken once: the storage types (a boxed slice, a
    /// mapping) never move their words, and re-deriving the slice on every
    /// access cost about 20 ns per lookup.
    base: *const AtomicU64,
    len: usize,
    g: Geometry,
    gmask: usize,
    ctrl_base: usize,
    home_base: usize,
    hot_base: usize,
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

/// Outcome of one validated read of a candidate slot.
enum Probe<R> {
    Hit(R),
    Mismatch,
    Changed,
}

/// Holds a home-group lock; unlocks on drop (also when a panic unwinds).
struct HomeLock<'t, S: AsRef<[AtomicU64]>> {
    t: &'t Table<S>,
    group: usize,
    token: u32,
    armed: bool,
}

impl<S: AsRef<[AtomicU64]>> HomeLock<'_, S> {
    /// Simulated crash: keep the lock held forever, as a killed writer would.
    fn abandon(mut self) -> TableError {
        self.armed = false;
        TableError::Crashed
    }
}

impl<S: AsRef<[AtomicU64]>> Drop for HomeLock<'_, S> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.t
            .update_home_if_held(self.group, self.token, |h| h & LOW32);
    }
}

impl<S: AsRef<[AtomicU64]>> Table<S> {
    /// Wraps storage of exactly `g.total_words()` words (zeroed = empty table).
    /// `words.as_ref()` must return the same slice for as long as `words`
    /// lives (true of a `Vec`, an `Arc<Box<[_]>>` and a mapping). Not a bare
    /// `Box`: moving a `Box` re-asserts unique access to its contents, which
    /// invalidates the cached pointer under Stacked Borrows (found by Miri).
    pub(crate) fn new(words: S, g: Geometry) -> Self {
        assert!(g.capacity.is_power_of_two() && g.capacity >= 2 * GROUP);
        assert_eq!(words.as_ref().len(), g.total_words(), "storage size");
        let (base, len) = (words.as_ref().as_ptr(), words.as_ref().len());
        Table {
            base,
            len,
            gmask: g.groups() - 1,
            ctrl_base: g.ctrl_base(),
            home_base: g.home_base(),
            hot_base: g.hot_base(),
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

    #[inline(always)]
    fn ctrl(&self, slot: usize) -> &AtomicU64 {
        debug_assert!(slot < self.g.capacity);
        self.w(self.ctrl_base + slot)
    }
    #[inline(always)]
    fn home(&self, group: usize) -> &AtomicU64 {
        debug_assert!(group <= self.gmask);
        self.w(self.home_base + group)
    }
    #[inline(always)]
    fn rw(&self, slot: usize, i: usize) -> &AtomicU64 {
        debug_assert!(slot < self.g.capacity && i < HOT_WORDS + self.cold_words);
        if i < HOT_WORDS {
            self.w(self.hot_base + slot * HOT_WORDS + i)
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
        let group = ((hash as u128 * (self.gmask as u128 + 1)) >> 64) as usize;
        (group, hash & TAG_MASK)
    }

    // ---- readers --------------------------------------------------------

    /// Finds `key` and runs `f` on its row inside the slot's seqlock window;
    /// `f`'s result is returned only if the slot did not change meanwhile.
    /// `f` must only copy (it may see a torn row that is then discarded).
    #[inline]
    fn find<R>(
        &self,
        key: &KeyWords,
        f: impl FnMut(&Self, usize, u64) -> R,
    ) -> Result<Option<(usize, u64, R)>, TableError> {
        self.find_in::<R, false>(key, f)
    }

    /// [`find`](Self::find) for copies that include the metadata: a copy
    /// also stands when one metadata update committed during it (see
    /// [`still_valid`](Self::still_valid)), so a reader keeps up with an
    /// updater that rewrites the entry back to back. Costs one more load
    /// (the row's `META_LENS` word) per candidate.
    #[inline]
    fn find_meta<R>(
        &self,
        key: &KeyWords,
        f: impl FnMut(&Self, usize, u64) -> R,
    ) -> Result<Option<(usize, u64, R)>, TableError> {
        self.find_in::<R, true>(key, f)
    }

    #[inline]
    fn find_in<R, const META: bool>(
        &self,
        key: &KeyWords,
        mut f: impl FnMut(&Self, usize, u64) -> R,
    ) -> Result<Option<(usize, u64, R)>, TableError> {
        // Row words are accessed unchecked: a key longer than the rows hold
        // must never get here (the facade validates; this keeps it sound).
        assert!(
            key.word_count() <= self.g.key_words(),
            "key longer than the segment's limits"
        );
        let (home, tag) = self.place(key.hash());
        let mut steps: Option<u64> = None;
        let mut retries = 0u32;
        let mut d = 0usize;
        loop {
            let grp = self.probe_group(home, d);
            let want = LIVE | (d as u64) << DISP_SHIFT | tag;
            // Match the whole group without branches, then probe the matches.
            let mut cs = [0u64; GROUP];
            for (j, c) in cs.iter_mut().enumerate() {
                *c = self.ctrl(grp * GROUP + j).load(Ordering::Acquire);
            }
            let mut hits = match_group(&cs, want);
            while hits != 0 {
                let slot = grp * GROUP + hits.trailing_zeros() as usize;
                hits &= hits - 1;
                let mut c = self.ctrl(slot).load(Ordering::Acquire);
                while c & MATCH_MASK == want {
                    match self.probe::<R, META>(slot, c, key, &mut f) {
                        Probe::Hit(r) => return Ok(Some((slot, c, r))),
                        Probe::Mismatch => break,
                        Probe::Changed => {
                            retries += 1;
                            if retries > READ_RETRIES {
                                return Err(TableError::Busy(
                                    "a slot kept changing during the read",
                                ));
                            }
                            spin_hint();
                            c = self.ctrl(slot).load(Ordering::Acquire);
                        }
                    }
                }
            }
            // Only now learn which steps hold keys of this home: most hits end
            // in the home group without touching the home word.
            let rest = steps
                .get_or_insert_with(|| self.home(home).load(Ordering::Acquire) & STEP_BITS & !1);
            d = if d >= 31 {
                d + 1
            } else if *rest == 0 {
                return Ok(None);
            } else {
                let next = rest.trailing_zeros() as usize;
                if next < 31 {
                    *rest &= *rest - 1;
                }
                next
            };
            if d > self.g.disp_limit() {
                return Ok(None);
            }
        }
    }

    /// Compares the key of `slot` (seen with control word `c`) and runs `f`.
    #[inline]
    fn probe<R, const META: bool>(
        &self,
        slot: usize,
        c: u64,
        key: &KeyWords,
        f: &mut impl FnMut(&Self, usize, u64) -> R,
    ) -> Probe<R> {
        // The lens word and the key's first words sit in the slot's hot line;
        // they are compared against the words packed when the key was built.
        let hot = self.hot_base + slot * HOT_WORDS;
        let mut same = self.w(hot + row::LENS).load(Ordering::Relaxed) == key.lens();
        if same {
            let n = key.word_count();
            let mut diff = 0u64;
            for (i, &kw) in key.head().iter().enumerate().take(n) {
                diff |= self.w(hot + row::KEY + i).load(Ordering::Relaxed) ^ kw;
            }
            same = diff == 0
                && (HEAD_WORDS..n)
                    .all(|i| self.rw(slot, row::KEY + i).load(Ordering::Relaxed) == key.word(i));
        }
        let mut m0 = None;
        if same && META {
            // The buffer's sequence, then the control word again: a sequence
            // newer than `c` (say an update after the next one already wrote
            // the copied buffer) would pass the check below; seen here, the
            // flips before it are visible to this reload, which then fails.
            m0 = Some(self.meta_lens_word(slot));
            if self.ctrl(slot).load(Ordering::Relaxed) != c {
                return Probe::Changed;
            }
        }
        let r = if same { Some(f(self, slot, c)) } else { None };
        fence(Ordering::Acquire);
        if !self.still_valid(slot, c, m0) {
            return Probe::Changed;
        }
        match r {
            Some(r) => Probe::Hit(r),
            None => Probe::Mismatch,
        }
    }

    /// The `META_LENS` word of `slot`, loaded before a copy of the slot's
    /// metadata (`Acquire`: the copy's loads stay after it).
    #[inline]
    fn meta_lens_word(&self, slot: usize) -> u64 {
        self.rw(slot, self.tail + row::META_LENS)
            .load(Ordering::Acquire)
    }

    /// After a copy of `slot` that began with control word `c` (and, for a
    /// copy of the metadata, `META_LENS` word `m0`, loaded after `c` and
    /// checked against a reload of it) and an `Acquire` fence: whether the
    /// copy is one consistent entry. It is if the control word did not
    /// change; a metadata copy also survives exactly one committed update
    /// (version + 1 and the active buffer flipped, nothing else: an update
    /// wrote the *other* buffer) as long as the copied buffer's write
    /// sequence neither moved nor was odd. A second update, which would
    /// write the copied buffer, moves that sequence before its first store.
    #[inline]
    fn still_valid(&self, slot: usize, c: u64, m0: Option<u64>) -> bool {
        if self.ctrl(slot).load(Ordering::Relaxed) == c {
            return true;
        }
        let Some(m0) = m0 else {
            return false;
        };
        // The sequence first, then the control word: if the sequence load
        // saw a late update (even one that wrapped the 8 bits back), its
        // flip and every earlier one are visible to the control word load.
        let m1 = self.meta_lens_word(slot);
        let c1 = self.ctrl(slot).load(Ordering::Relaxed);
        let copied = (c & ACTIVE_BIT != 0) as usize;
        let s0 = meta_lens::seq(m0, copied);
        c1 == bump(c, (c ^ ACTIVE_BIT) & LOW32) && s0 & 1 == 0 && meta_lens::seq(m1, copied) == s0
    }

    /// The pid of `key`'s owner. Loads only; allocates nothing.
    #[inline(always)]
    pub(crate) fn lookup_pid(&self, key: &KeyWords) -> Result<Option<u32>, TableError> {
        Ok(self
            .find(key, |t, s, _| {
                t.rw(s, row::PID).load(Ordering::Relaxed) as u32
            })?
            .map(|(_, _, pid)| pid))
    }

    /// The recorded owner of `key`. Loads only; allocates nothing.
    pub(crate) fn lookup_owner(&self, key: &KeyWords) -> Result<Option<Owner>, TableError> {
        Ok(self
            .find(key, |t, s, _| t.read_owner(s))?
            .map(|(_, _, o)| o))
    }

    /// A full copy of `key`'s entry.
    pub(crate) fn lookup(&self, key: &KeyWords) -> Result<Option<RawEntry>, TableError> {
        Ok(self.lookup_at(key)?.map(|(_, _, e)| e))
    }

    /// Like [`lookup`](Self::lookup) but also returns the slot and control word seen.
    ///
    /// The copy's buffers live across the reader's retries: after the first
    /// attempt, one allocates only if it sees a longer entry. (Allocating in every
    /// attempt made the window longer than the period of another process
    /// updating the entry in a loop, and the reader ran out of retries.)
    pub(crate) fn lookup_at(
        &self,
        key: &KeyWords,
    ) -> Result<Option<(usize, u64, RawEntry)>, TableError> {
        let (mut kbuf, mut mbuf) = (Vec::new(), Vec::new());
        let found = self.find_meta(key, |t, s, c| t.copy_entry_into(s, c, &mut kbuf, &mut mbuf))?;
        Ok(found.map(|(s, c, (h, lease))| (s, c, RawEntry::new(h, lease, kbuf, mbuf))))
    }

    fn read_lease(&self, slot: usize) -> u64 {
        self.rw(slot, self.tail + row::LEASE)
            .load(Ordering::Relaxed)
    }

    fn read_owner(&self, slot: usize) -> Owner {
        Owner {
            pid: self.rw(slot, row::PID).load(Ordering::Relaxed) as u32,
            start_time: self
                .rw(slot, self.tail + row::START_TIME)
                .load(Ordering::Relaxed),
            pidns: self
                .rw(slot, self.tail + row::PIDNS)
                .load(Ordering::Relaxed),
        }
    }

    /// The fixed-size part of a row. Every length read from shared memory is
    /// clamped to the segment's limits, so a torn or hostile row cannot make
    /// a copy read (or write) out of bounds.
    fn copy_head(&self, slot: usize, c: u64) -> EntryHead {
        let lens = self.rw(slot, row::LENS).load(Ordering::Relaxed);
        let ns_len = ((lens & 0xFFFF) as usize).min(self.g.max_ns_len);
        let name_len = ((lens >> 16 & 0xFFFF) as usize).min(self.g.max_name_len);
        let active = (c & ACTIVE_BIT != 0) as usize;
        let mlens = self
            .rw(slot, self.tail + row::META_LENS)
            .load(Ordering::Relaxed);
        let meta_len = meta_lens::len(mlens, active).min(self.g.max_meta_len);
        EntryHead {
            owner: self.read_owner(slot),
            ns_len,
            name_len,
            meta_len,
            meta_first: self.tail + row::META + active * self.g.meta_words(),
            registered_at: self
                .rw(slot, self.tail + row::REGISTERED_AT)
                .load(Ordering::Relaxed),
            version: version(c) as u32,
        }
    }

    /// Copies a row's key and metadata into `key` and `meta` (resized to
    /// the row's lengths; they allocate only when they must grow). Returns
    /// the head and the lease word.
    fn copy_entry_into(
        &self,
        slot: usize,
        c: u64,
        key: &mut Vec<u8>,
        meta: &mut Vec<u8>,
    ) -> (EntryHead, u64) {
        let h = self.copy_head(slot, c);
        key.resize(h.ns_len + h.name_len, 0);
        self.read_bytes(slot, row::KEY, key);
        meta.resize(h.meta_len, 0);
        self.read_bytes(slot, h.meta_first, meta);
        let lease = self
            .rw(slot, self.tail + row::LEASE)
            .load(Ordering::Relaxed);
        (h, lease)
    }

    /// Copies a row into caller buffers without allocating: the key into
    /// `key[..ns_len + name_len]` (`key` must hold the segment's longest key)
    /// and the metadata into `meta[..meta_len]` when it fits (it is left
    /// alone otherwise; the caller compares `meta_len` with its buffer).
    fn copy_into(&self, slot: usize, c: u64, key: &mut [u8], meta: &mut [u8]) -> EntryHead {
        let h = self.copy_meta_into(slot, c, meta);
        self.read_bytes(slot, row::KEY, &mut key[..h.ns_len + h.name_len]);
        h
    }

    /// [`copy_into`](Self::copy_into) without the key.
    fn copy_meta_into(&self, slot: usize, c: u64, meta: &mut [u8]) -> EntryHead {
        let h = self.copy_head(slot, c);
        if let Some(m) = meta.get_mut(..h.meta_len) {
            self.read_bytes(slot, h.meta_first, m);
        }
        h
    }

    /// Fills `out` with the bytes packed in the row words from `first` on.
    fn read_bytes(&self, slot: usize, first: usize, out: &mut [u8]) {
        // Whole words as single stores (a per-chunk `memcpy` call made a
        // 1 KiB copy several times slower, and a reader's window that long);
        // only the last partial word is copied byte-wise.
        let mut words = out.chunks_exact_mut(8);
        let mut i = 0;
        for chunk in &mut words {
            let w = self.rw(slot, first + i).load(Ordering::Relaxed);
            chunk.copy_from_slice(&w.to_le_bytes());
            i += 1;
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            let w = self
                .rw(slot, first + i)
                .load(Ordering::Relaxed)
                .to_le_bytes();
            rest.copy_from_slice(&w[..rest.len()]);
        }
    }

    /// `key`'s entry without allocating: the metadata goes to `meta[..meta_len]`
    /// when it fits (the caller compares `meta_len` with its buffer). `meta`
    /// may hold bytes of a discarded torn read afterwards, also on `Err`.
    pub(crate) fn lookup_into(
        &self,
        key: &KeyWords,
        meta: &mut [u8],
    ) -> Result<Option<EntryHead>, TableError> {
        Ok(self
            .find_meta(key, |t, s, c| t.copy_meta_into(s, c, meta))?
            .map(|(_, _, h)| h))
    }

    /// Visits every live entry like [`for_each_live`](Self::for_each_live),
    /// copying each into the caller's buffers (as [`copy_into`](Self::copy_into))
    /// instead of allocating. `f` gets the head, the key bytes and the metadata
    /// bytes of a consistent copy, and returns false to stop.
    pub(crate) fn for_each_live_into(
        &self,
        key: &mut [u8],
        meta: &mut [u8],
        mut f: impl FnMut(&EntryHead, &[u8], &[u8]) -> bool,
    ) -> Result<(), TableError> {
        let mut bufs = (key, meta);
        self.scan_live(
            &mut bufs,
            |t, s, c, (k, m)| t.copy_into(s, c, k, m),
            |_, _, h, (k, m)| {
                f(
                    &h,
                    &k[..h.ns_len + h.name_len],
                    m.get(..h.meta_len).unwrap_or(&[]),
                )
            },
        )
    }

    /// Visits every live entry (a consistent copy of each). `f` returns false
    /// to stop. Loads only.
    pub(crate) fn for_each_live(
        &self,
        mut f: impl FnMut(usize, u64, RawEntry) -> bool,
    ) -> Result<(), TableError> {
        // As in `lookup_at`: the buffers outlive the retries; each entry's
        // own vectors are cloned from them after the read validated.
        self.scan_live(
            &mut (Vec::new(), Vec::new()),
            |t, s, c, (k, m)| t.copy_entry_into(s, c, k, m),
            |s, c, (h, lease), (k, m)| f(s, c, RawEntry::new(h, lease, k.clone(), m.clone())),
        )
    }

    /// The scan behind the visitors: `copy` runs inside each live slot's
    /// seqlock window (with `bufs` to copy into); `f` sees only copies that
    /// were not torn.
    fn scan_live<B, T>(
        &self,
        bufs: &mut B,
        copy: impl Fn(&Self, usize, u64, &mut B) -> T,
        mut f: impl FnMut(usize, u64, T, &B) -> bool,
    ) -> Result<(), TableError> {
        for slot in 0..self.g.capacity {
            let mut retries = 0;
            loop {
                let c = self.ctrl(slot).load(Ordering::Acquire);
                if state_of(c) != SlotState::Live {
                    break;
                }
                // As in `probe`: the sequence, then the control word again.
                let m0 = self.meta_lens_word(slot);
                if self.ctrl(slot).load(Ordering::Relaxed) != c {
                    retries += 1;
                    if retries > READ_RETRIES {
                        return Err(TableError::Busy("a slot kept changing during the scan"));
                    }
                    continue;
                }
                let e = copy(self, slot, c, bufs);
                fence(Ordering::Acquire);
                if self.still_valid(slot, c, Some(m0)) {
                    if !f(slot, c, e, bufs) {
                        return Ok(());
                    }
                    break;
                }
                retries += 1;
                if retries > READ_RETRIES {
                    return Err(TableError::Busy("a slot kept changing during the scan"));
                }
                spin_hint();
            }
        }
        Ok(())
    }

    /// Counts slots by state and the largest reach of any home (in groups).
    pub(crate) fn census(&self) -> Census {
        let mut c = Census::default();
        for slot in 0..self.g.capacity {
            match state_of(self.ctrl(slot).load(Ordering::Relaxed)) {
                SlotState::Empty => c.empty += 1,
                SlotState::Claimed => c.claimed += 1,
                SlotState::Live => c.live += 1,
                SlotState::Tombstone => c.tombstones += 1,
            }
        }
        let mut scanned = 0usize;
        for g in 0..self.g.groups() {
            let h = self.home(g).load(Ordering::Relaxed);
            scanned += 1 + (h & STEP_BITS & !1).count_ones() as usize;
            if h >> 32 != 0 {
                c.locked_groups += 1;
            }
        }
        for slot in 0..self.g.capacity {
            let w = self.ctrl(slot).load(Ordering::Relaxed);
            if state_of(w) == SlotState::Live {
                c.max_probe = c.max_probe.max(disp_of(w));
            }
        }
        c.mean_miss_groups = scanned as f64 / self.g.groups() as f64;
        c
    }

    /// Counts claimed slots and held home locks whose writer `is_dead` says is dead.
    pub(crate) fn stuck(&self, mut is_dead: impl FnMut(u32) -> bool) -> usize {
        let mut n = 0;
        for slot in 0..self.g.capacity {
            let c = self.ctrl(slot).load(Ordering::Relaxed);
            if state_of(c) == SlotState::Claimed && is_dead(token_of(c)) {
                n += 1;
            }
        }
        for g in 0..self.g.groups() {
            let h = (self.home(g).load(Ordering::Relaxed) >> 32) as u32;
            if h != 0 && is_dead(h) {
                n += 1;
            }
        }
        n
    }

    // ---- writers --------------------------------------------------------

    /// Takes a token lock word (`holder token << 32 | low bits`): spins,
    /// steals it from a dead holder (returned), gives up with `Busy` when
    /// `env` says so. The home locks use it.
    fn acquire<E: Env>(&self, w: &AtomicU64, env: &E) -> Result<Option<u32>, TableError> {
        let me = env.token() as u64;
        let mut spins = 0u64;
        loop {
            // Acquire/AcqRel: whoever reads a token here also sees the owner
            // record its writer published before using it.
            let h = w.load(Ordering::Acquire);
            let holder = h >> 32;
            if holder == 0 {
                if w.compare_exchange_weak(
                    h,
                    me << 32 | (h & LOW32),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
                {
                    return Ok(None);
                }
                continue;
            }
            spins += 1;
            // Another process (or thread) holds it: check now and then whether it died.
            if holder != me
                && spins % 64 == 1
                && env.writer_liveness(holder as u32) == Liveness::Dead
            {
                if w.compare_exchange(
                    h,
                    me << 32 | (h & LOW32),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
                {
                    return Ok(Some(holder as u32));
                }
                continue;
            }
            if env.give_up(spins) {
                return Err(TableError::Busy(
                    "a live writer holds the lock of this key's neighbourhood",
                ));
            }
            if spins < 128 {
                spin_hint();
            } else {
                yield_now();
            }
        }
    }

    fn lock_home<E: Env>(&self, group: usize, env: &E) -> Result<HomeLock<'_, S>, TableError> {
        debug_assert!(env.token() != 0 && env.token() <= MAX_TOKEN);
        let stolen = self.acquire(self.home(group), env)?;
        let lock = HomeLock {
            t: self,
            group,
            token: env.token(),
            armed: true,
        };
        if let Some(dead) = stolen {
            self.bump_counter(hdr::LOCKS_STOLEN);
            self.recover_home(group, dead, env);
        }
        Ok(lock)
    }

    /// Replaces home word `group` by `new(current)` only while `me` holds its
    /// lock (a lock taken over from us is never overwritten).
    fn update_home_if_held(&self, group: usize, me: u32, new: impl Fn(u64) -> u64) {
        let w = self.home(group);
        let mut cur = w.load(Ordering::Relaxed);
        while cur >> 32 == me as u64 {
            match w.compare_exchange_weak(cur, new(cur), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
    }

    /// Test hook: marks the home lock of `key` as held by `token`.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn hold_home_lock_for_test(&self, key: &KeyWords, token: u32) {
        let (home, _) = self.place(key.hash());
        self.home(home)
            .fetch_or((token as u64) << 32, Ordering::AcqRel);
    }

    /// Takes the lock of `group` only if it is free right now.
    fn try_lock_home<E: Env>(&self, group: usize, env: &E) -> Option<HomeLock<'_, S>> {
        let me = env.token() as u64;
        let w = self.home(group);
        let h = w.load(Ordering::Acquire);
        (h >> 32 == 0
            && w.compare_exchange(
                h,
                me << 32 | (h & LOW32),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok())
        .then_some(HomeLock {
            t: self,
            group,
            token: me as u32,
            armed: true,
        })
    }

    /// After stealing the lock of `group` from a dead writer: frees the slots
    /// it claimed nearby and recomputes the reach of the home.
    fn recover_home<E: Env>(&self, group: usize, dead: u32, env: &E) {
        for d in 0..=self.g.disp_limit() {
            let grp = self.probe_group(group, d);
            for j in 0..GROUP {
                self.free_if_claimed_by(grp * GROUP + j, |t| t == dead);
            }
        }
        self.recompute_steps(group, env.token(), true);
    }

    /// Frees `slot` if it is CLAIMED by a writer `is_dead` says is dead.
    fn free_if_claimed_by(&self, slot: usize, mut is_dead: impl FnMut(u32) -> bool) -> bool {
        let c = self.ctrl(slot).load(Ordering::Acquire);
        if state_of(c) == SlotState::Claimed && is_dead(token_of(c)) {
            let ok = self
                .ctrl(slot)
                .compare_exchange(c, bump(c, TOMB), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok();
            if ok {
                self.bump_counter(hdr::STUCK_RECOVERED);
            }
            return ok;
        }
        false
    }

    /// Sets the home word's step bits to exactly the steps that hold live keys
    /// of `group` (`full`: look at every step, not only those marked). Caller
    /// holds the group's lock.
    /// After a key of home `group` at probe step `d` was removed: only bit
    /// `d` of the home's steps can have changed, so only that step's group is
    /// scanned (steps 31 and beyond share a bit: those rescan as before).
    fn recompute_step(&self, group: usize, d: usize, me: u32) {
        if d == 0 {
            // Readers always scan the home group; its bit is never consulted.
            return;
        }
        if d >= 31 {
            return self.recompute_steps(group, me, false);
        }
        let grp = self.probe_group(group, d);
        let still = (0..GROUP).any(|j| {
            let c = self.ctrl(grp * GROUP + j).load(Ordering::Relaxed);
            state_of(c) == SlotState::Live && disp_of(c) == d
        });
        if !still && self.home(group).load(Ordering::Relaxed) & step_bit(d) != 0 {
            self.update_home_if_held(group, me, |h| h & !step_bit(d));
        }
    }

    fn recompute_steps(&self, group: usize, me: u32, full: bool) {
        let old = self.home(group).load(Ordering::Relaxed) & STEP_BITS;
        let limit = self.g.disp_limit();
        let mut bits = 0u64;
        let mut check = |d: usize| {
            let grp = self.probe_group(group, d);
            for j in 0..GROUP {
                let c = self.ctrl(grp * GROUP + j).load(Ordering::Relaxed);
                if state_of(c) == SlotState::Live && disp_of(c) == d {
                    bits |= step_bit(d);
                }
            }
        };
        if full || old & step_bit(31) != 0 {
            (0..=limit).for_each(&mut check);
        } else {
            // Only the marked steps can hold keys of this home.
            let mut rest = old;
            while rest != 0 {
                let d = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if d <= limit {
                    check(d);
                }
            }
        }
        if bits != old {
            // Only while we still hold the lock (never resurrect a lock that
            // was taken over from us).
            self.update_home_if_held(group, me, |h| (h & !STEP_BITS) | bits);
        }
    }

    /// Finds `key` among the live keys of its home; caller holds the home lock,
    /// so those slots cannot change under it.
    fn find_locked(&self, key: &KeyWords) -> Result<Option<(usize, u64)>, TableError> {
        Ok(self.find(key, |_, _, _| ())?.map(|(s, c, ())| (s, c)))
    }

    fn tombstone(&self, slot: usize, c: u64) -> bool {
        self.ctrl(slot)
            .compare_exchange(c, bump(c, TOMB), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Registers `key`. An existing entry whose owner is dead is replaced; any
    /// other existing entry gives `Exists`. Returns the new entry's version.
    #[cfg_attr(not(any(test, loom)), allow(dead_code))] // the backend passes a lease word
    pub(crate) fn insert<E: Env>(
        &self,
        key: &KeyWords,
        owner: &Owner,
        registered_at: u64,
        metadata: &[u8],
        env: &E,
    ) -> Result<u32, TableError> {
        self.insert_with_lease(key, owner, registered_at, metadata, 0, env)
    }

    /// [`insert`](Self::insert) with a lease word (see [`lease`]; 0 = none).
    pub(crate) fn insert_with_lease<E: Env>(
        &self,
        key: &KeyWords,
        owner: &Owner,
        registered_at: u64,
        metadata: &[u8],
        lease: u64,
        env: &E,
    ) -> Result<u32, TableError> {
        // Checked before anything is locked or claimed (a panic later would leak a claim).
        assert!(
            metadata.len() <= self.g.max_meta_len,
            "metadata longer than the segment's limit"
        );
        let (home, tag) = self.place(key.hash());
        let lock = self.lock_home(home, env)?;
        if env.crash_at(Step::InsertLocked) {
            return Err(lock.abandon());
        }
        if let Some((slot, c)) = self.find_locked(key)? {
            let existing = self.read_owner(slot);
            // An expired lease makes the entry gone whatever its owner does.
            let kind = gone_kind(self.read_lease(slot), env);
            if kind != ChangeKind::Expired {
                let alive = env.owner_liveness(&existing);
                if alive != Liveness::Dead {
                    return Err(TableError::Exists {
                        pid: existing.pid,
                        alive,
                    });
                }
            }
            if !self.tombstone(slot, c) {
                // Only possible if our lock was taken over: stop here.
                return Err(TableError::Busy(
                    "this writer's neighbourhood lock was revoked",
                ));
            }
            let ch = Change {
                kind,
                key: ChangeKey::Key(key),
                pid: existing.pid,
                version: version(c) as u32,
                at: 0, // taken only if recorded
            };
            self.committed(hdr::RECLAIMED, ch, env);
        }
        // Claim a free slot: first in a step that misses of this home scan
        // already (the home group, or a step marked in the home word), else
        // the first free slot of the probe sequence.
        let me = env.token() as u64;
        let marked = (self.home(home).load(Ordering::Relaxed) & STEP_BITS) | 1;
        let limit = self.g.disp_limit();
        let try_step = |d: usize| {
            self.claim_in(self.probe_group(home, d), me)
                .map(|(s, cl)| (s, d, cl))
        };
        // Walk the marked steps by their bits (testing each of the 31 steps
        // cost ~150 instructions per insert).
        let mut rest = marked & ((1u64 << (limit.min(30) + 1)) - 1);
        let mut claimed = None;
        while rest != 0 && claimed.is_none() {
            let d = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            claimed = try_step(d);
        }
        let claimed = claimed.or_else(|| (0..=limit).find_map(try_step));
        let Some((slot, d, cl)) = claimed else {
            return Err(TableError::Full);
        };
        // Seqlock writer: the claim (version bump) is ordered before the row stores.
        fence(Ordering::Release);
        if env.crash_at(Step::InsertClaimed) {
            return Err(lock.abandon());
        }
        self.write_row(slot, key, owner, registered_at, metadata, lease);
        if env.crash_at(Step::InsertWritten) {
            return Err(lock.abandon());
        }
        // Readers must be able to reach the slot before it turns live.
        if self.home(home).load(Ordering::Relaxed) & step_bit(d) == 0 {
            self.home(home).fetch_or(step_bit(d), Ordering::Release);
        }
        let live = bump(cl, LIVE | (d as u64) << DISP_SHIFT | tag);
        if self
            .ctrl(slot)
            .compare_exchange(cl, live, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // Someone judged us dead and freed the claim; nothing was published.
            return Err(TableError::Busy("this writer's claim was revoked"));
        }
        let ch = Change {
            kind: ChangeKind::Registered,
            key: ChangeKey::Key(key),
            pid: owner.pid,
            version: version(live) as u32,
            at: registered_at,
        };
        self.committed(hdr::REGISTERS, ch, env);
        drop(lock);
        Ok(version(live) as u32)
    }

    /// Claims a free (empty or tombstone) slot of group `grp` for writer `me`.
    fn claim_in(&self, grp: usize, me: u64) -> Option<(usize, u64)> {
        for j in 0..GROUP {
            let slot = grp * GROUP + j;
            let mut c = self.ctrl(slot).load(Ordering::Relaxed);
            while matches!(state_of(c), SlotState::Empty | SlotState::Tombstone) {
                let cl = bump(c, CLAIMED | me);
                match self
                    .ctrl(slot)
                    .compare_exchange(c, cl, Ordering::AcqRel, Ordering::Relaxed)
                {
                    Ok(_) => return Some((slot, cl)),
                    Err(now) => c = now,
                }
            }
        }
        None
    }

    fn write_row(
        &self,
        slot: usize,
        key: &KeyWords,
        owner: &Owner,
        at: u64,
        metadata: &[u8],
        lease: u64,
    ) {
        let st = |i: usize, v: u64| self.rw(slot, i).store(v, Ordering::Relaxed);
        st(self.tail + row::HASH, key.hash());
        st(row::LENS, key.lens());
        key.for_each_word(|i, w| st(row::KEY + i, w));
        st(row::PID, owner.pid as u64);
        st(self.tail + row::START_TIME, owner.start_time);
        st(self.tail + row::PIDNS, owner.pidns);
        st(self.tail + row::REGISTERED_AT, at);
        st(self.tail + row::LEASE, lease);
        st(self.tail + row::META_LENS, metadata.len() as u64);
        self.write_meta(slot, 0, metadata);
    }

    fn write_meta(&self, slot: usize, buf: usize, metadata: &[u8]) {
        assert!(
            metadata.len() <= self.g.max_meta_len,
            "metadata longer than the segment's limit"
        );
        let base = self.tail + row::META + buf * self.g.meta_words();
        // Whole words as single loads; only the last partial word is copied.
        let words = metadata.chunks_exact(8);
        let rest = words.remainder();
        let full = metadata.len() / 8;
        for (i, w) in words.enumerate() {
            self.rw(slot, base + i)
                .store(u64::from_le_bytes(w.try_into().unwrap()), Ordering::Relaxed);
        }
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.rw(slot, base + full)
                .store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
    }

    /// Removes `key` if present (and, with `only_pid`, only if owned by that pid).
    pub(crate) fn remove<E: Env>(
        &self,
        key: &KeyWords,
        only_pid: Option<u32>,
        env: &E,
    ) -> Result<bool, TableError> {
        let (home, _) = self.place(key.hash());
        let lock = self.lock_home(home, env)?;
        let Some((slot, c)) = self.find_locked(key)? else {
            return Ok(false);
        };
        let owner = self.read_owner(slot).pid;
        if only_pid.is_some_and(|pid| pid != owner) {
            return Ok(false);
        }
        if !self.tombstone(slot, c) {
            return Err(TableError::Busy("the slot changed under its home lock"));
        }
        if env.crash_at(Step::RemoveTombstoned) {
            return Err(lock.abandon());
        }
        self.recompute_step(home, disp_of(c), env.token());
        let ch = Change {
            kind: ChangeKind::Unregistered,
            key: ChangeKey::Key(key),
            pid: owner,
            version: version(c) as u32,
            at: 0, // taken only if recorded
        };
        self.committed(hdr::UNREGISTERS, ch, env);
        drop(lock);
        Ok(true)
    }

    /// Replaces the metadata of `key`; readers keep reading the old buffer
    /// until the flip. Returns the new version.
    pub(crate) fn update<E: Env>(
        &self,
        key: &KeyWords,
        metadata: &[u8],
        env: &E,
    ) -> Result<u32, TableError> {
        assert!(
            metadata.len() <= self.g.max_meta_len,
            "metadata longer than the segment's limit"
        );
        let (home, _) = self.place(key.hash());
        let lock = self.lock_home(home, env)?;
        let Some((slot, c)) = self.find_locked(key)? else {
            return Err(TableError::NotFound);
        };
        let inactive = (c & ACTIVE_BIT == 0) as usize;
        // A reader that saw an older version may still read this buffer: its
        // sequence turns odd first (a seqlock per buffer), and the Release
        // fence orders that before our stores of the buffer.
        let lens_w = self.rw(slot, self.tail + row::META_LENS);
        let writing = meta_lens::begin_write(lens_w.load(Ordering::Relaxed), inactive);
        lens_w.store(writing, Ordering::Relaxed);
        fence(Ordering::Release);
        if env.crash_at(Step::UpdateWriting) {
            // Half the buffer, as a writer killed in the middle leaves it.
            self.write_meta(slot, inactive, &metadata[..metadata.len() / 2]);
            return Err(lock.abandon());
        }
        self.write_meta(slot, inactive, metadata);
        let done = meta_lens::with_len(
            meta_lens::end_write(writing, inactive),
            inactive,
            metadata.len(),
        );
        lens_w.store(done, Ordering::Release);
        if env.crash_at(Step::UpdateWritten) {
            return Err(lock.abandon());
        }
        let flipped = bump(c, (c ^ ACTIVE_BIT) & LOW32);
        if self
            .ctrl(slot)
            .compare_exchange(c, flipped, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            return Err(TableError::Busy("the slot changed under its home lock"));
        }
        let ch = Change {
            kind: ChangeKind::Updated,
            key: ChangeKey::Key(key),
            pid: self.read_owner(slot).pid,
            version: version(flipped) as u32,
            at: 0, // taken only if recorded
        };
        self.committed(hdr::UPDATES, ch, env);
        drop(lock);
        Ok(version(flipped) as u32)
    }

    /// Renews the lease of `key` (writes its deadline again; no new version,
    /// no change record). `Ok(false)`: the entry has no lease. `NotFound`:
    /// absent, or its lease already ran out (a sweep reclaims it).
    pub(crate) fn renew<E: Env>(&self, key: &KeyWords, env: &E) -> Result<bool, TableError> {
        let (home, _) = self.place(key.hash());
        let _lock = self.lock_home(home, env)?;
        let Some((slot, _)) = self.find_locked(key)? else {
            return Err(TableError::NotFound);
        };
        let l = self.read_lease(slot);
        if l == 0 {
            return Ok(false);
        }
        if lease::expired(l, env.now_ms()) {
            return Err(TableError::NotFound);
        }
        self.rw(slot, self.tail + row::LEASE)
            .store(lease::renewed(l, env.now_ms()), Ordering::Relaxed);
        Ok(true)
    }

    /// Removes the entry in `slot` if it still is exactly what `seen` says (a
    /// control word observed by a reader that judged its owner dead).
    pub(crate) fn reclaim<E: Env>(
        &self,
        slot: usize,
        seen: u64,
        env: &E,
    ) -> Result<bool, TableError> {
        self.reclaim_with(slot, seen, env, true)
    }

    /// Like [`reclaim`](Self::reclaim) but never waits: if another writer
    /// holds the neighbourhood lock, it does nothing (for readers).
    pub(crate) fn try_reclaim<E: Env>(&self, slot: usize, seen: u64, env: &E) -> bool {
        self.reclaim_with(slot, seen, env, false).unwrap_or(false)
    }

    fn reclaim_with<E: Env>(
        &self,
        slot: usize,
        seen: u64,
        env: &E,
        wait: bool,
    ) -> Result<bool, TableError> {
        if state_of(seen) != SlotState::Live {
            return Ok(false);
        }
        // `disp` comes from shared memory: wrap, never underflow.
        let d = disp_of(seen);
        let home = (slot / GROUP).wrapping_sub(d * (d + 1) / 2) & self.gmask;
        let lock = if wait {
            self.lock_home(home, env)?
        } else {
            match self.try_lock_home(home, env) {
                Some(l) => l,
                None => return Ok(false),
            }
        };
        if env.crash_at(Step::ReclaimLocked) {
            return Err(lock.abandon());
        }
        // The row may be reused as soon as it is tombstoned: copy the key first.
        let head = self.copy_head(slot, seen);
        let key = self.row_key(slot, &head);
        if !self.tombstone(slot, seen) {
            return Ok(false);
        }
        self.recompute_step(home, d, env.token());
        let ch = Change {
            kind: gone_kind(self.read_lease(slot), env),
            key,
            pid: head.owner.pid,
            version: version(seen) as u32,
            at: 0, // taken only if recorded
        };
        self.committed(hdr::RECLAIMED, ch, env);
        drop(lock);
        Ok(true)
    }

    /// Reclaims every entry whose owner is dead and every slot or lock left by
    /// a dead writer. Returns how many entries and slots were reclaimed.
    pub(crate) fn sweep<E: Env>(&self, env: &E) -> Result<usize, TableError> {
        let mut n = 0;
        // 1. Locks held by dead writers: steal, which also frees their claims.
        for g in 0..self.g.groups() {
            let holder = (self.home(g).load(Ordering::Relaxed) >> 32) as u32;
            if holder != 0 && holder != env.token() && env.writer_liveness(holder) == Liveness::Dead
            {
                // A live writer may have taken it meanwhile: skip, don't fail.
                drop(self.lock_home(g, env));
            }
        }
        // 2. Claims of dead writers elsewhere.
        let mut verdicts: Vec<(u32, Liveness)> = Vec::new();
        for slot in 0..self.g.capacity {
            let freed = self.free_if_claimed_by(slot, |t| {
                if t == env.token() {
                    return false;
                }
                let v = match verdicts.iter().find(|(tk, _)| *tk == t) {
                    Some((_, v)) => *v,
                    None => {
                        let v = env.writer_liveness(t);
                        verdicts.push((t, v));
                        v
                    }
                };
                v == Liveness::Dead
            });
            n += freed as usize;
        }
        // 3. Entries of dead owners.
        // A slot that keeps changing, or a neighbourhood held by a live
        // writer, is skipped: the rest is still swept (the next sweep retries).
        // Each owner is judged once per sweep (a /proc read each), however
        // many entries it holds.
        let mut dead = Vec::new();
        let mut judged: std::collections::HashMap<Owner, Liveness> = Default::default();
        let now = env.now_ms();
        let scanned = self.for_each_live(|slot, c, e| {
            let gone = lease::expired(e.lease, now)
                || *judged
                    .entry(e.owner)
                    .or_insert_with(|| env.owner_liveness(&e.owner))
                    == Liveness::Dead;
            if gone {
                dead.push((slot, c));
            }
            true
        });
        for (slot, c) in dead {
            n += self.reclaim(slot, c, env).unwrap_or(false) as usize;
        }
        scanned.map(|()| n)
    }
}

/// The kind of a reclaim: `Expired` when the lease ran out, else `Reclaimed`.
fn gone_kind<E: Env>(lease: u64, env: &E) -> ChangeKind {
    if lease::expired(lease, env.now_ms()) {
        ChangeKind::Expired
    } else {
        ChangeKind::Reclaimed
    }
}

/// Slot counts from one scan.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Census {
    pub(crate) empty: usize,
    pub(crate) claimed: usize,
    pub(crate) live: usize,
    pub(crate) tombstones: usize,
    /// Largest probe step of a live key (groups past its home, in steps).
    pub(crate) max_probe: usize,
    /// Groups a miss scans, averaged over homes (1 = only the home group).
    pub(crate) mean_miss_groups: f64,
    pub(crate) locked_groups: usize,
}

/// Heap storage: the `mem` backend and loom use it.
pub(crate) fn heap_storage(g: &Geometry) -> Box<[AtomicU64]> {
    (0..g.total_words()).map(|_| AtomicU64::new(0)).collect()
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
