//! Row word offsets.
//!
//! The words a hit needs (lens, pid, key) come first, so that a hit on a key
//! of up to 48 bytes touches one cache line of the row. The rest follows the
//! key at `tail = KEY + key_words`. Two row words have their own encodings:
//! [`meta_lens`] and [`lease`].

use super::HOT_WORDS;
use super::key::HEAD_WORDS;

const _: () = assert!(
    KEY + HEAD_WORDS == HOT_WORDS,
    "a key's head words fill the hot line"
);

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
/// see [`meta_lens`]).
pub(super) const META_LENS: usize = 5;
/// Metadata buffer A, then buffer B.
pub(super) const META: usize = 6;
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
