//! The control word of a slot and its encodings (see the module docs of
//! [`table`](super)), the step bits of a home word, and the group match
//! readers use to find candidate slots.

use super::bytes::{LO_BYTES, zero_bytes};

pub(super) const STATE_SHIFT: u32 = 30;
pub(super) const STATE_MASK: u64 = 0b11 << STATE_SHIFT;
pub(super) const EMPTY: u64 = 0;
pub(super) const CLAIMED: u64 = 1 << STATE_SHIFT;
pub(super) const LIVE: u64 = 2 << STATE_SHIFT;
pub(super) const TOMB: u64 = 3 << STATE_SHIFT;
pub(super) const ACTIVE_BIT: u64 = 1 << 29;
pub(super) const DISP_SHIFT: u32 = 21;
pub(super) const TAG_MASK: u64 = (1 << DISP_SHIFT) - 1;
/// Bits compared by a reader looking for a key: state, disp and tag.
pub(super) const MATCH_MASK: u64 = STATE_MASK | (0xFF << DISP_SHIFT) | TAG_MASK;
/// Largest writer token (29 bits).
pub(crate) const MAX_TOKEN: u32 = (1 << 29) - 1;
pub(super) const LOW32: u64 = 0xFFFF_FFFF;
/// The step bitmap in a home word.
pub(super) const STEP_BITS: u64 = LOW32;

#[inline]
pub(super) fn step_bit(d: usize) -> u64 {
    1 << d.min(31)
}

#[inline]
pub(super) fn version(c: u64) -> u64 {
    c >> 32
}
#[inline]
pub(super) fn with_version(c_low: u64, v: u64) -> u64 {
    (v << 32) | (c_low & LOW32)
}
#[inline]
pub(super) fn bump(c: u64, new_low: u64) -> u64 {
    with_version(new_low, version(c).wrapping_add(1) & LOW32)
}
#[inline]
pub(super) fn disp_of(c: u64) -> usize {
    ((c >> DISP_SHIFT) & 0xFF) as usize
}
#[inline]
pub(super) fn token_of(c: u64) -> u32 {
    (c & MAX_TOKEN as u64) as u32
}

/// A slot's byte in its group's tag word: 7 bits of the hash that neither
/// the home group (high bits) nor the control word's tag (low 21) use, and
/// the high bit set, so a never-claimed slot (0) matches no key.
#[inline(always)]
pub(super) fn tag8(hash: u64) -> u64 {
    (hash >> 24) & 0x7F | 0x80
}

/// [`tag8`] of `hash` in every byte lane (what [`match_tag_bytes`] takes).
#[inline(always)]
pub(super) fn tag_bytes(hash: u64) -> u64 {
    tag8(hash).wrapping_mul(LO_BYTES)
}

/// [`match_tags`] with the tag already in every byte lane ([`tag_bytes`]).
#[inline(always)]
pub(super) fn match_tag_bytes(tags: u64, bytes: u64) -> u64 {
    zero_bytes(tags ^ bytes)
}

/// The byte lanes of tag word `tags` equal to `tag8` (as [`tag8`] made
/// it), as a mask with bit 7 of each matching byte set: zero bytes of the
/// XOR, found 8 at a time. It can also flag bytes above a match (the
/// borrow runs up through bytes that differ from it in bit 0 only), never
/// miss one: candidates are checked anyway.
#[inline(always)]
pub(super) fn match_tags(tags: u64, tag8: u64) -> u64 {
    match_tag_bytes(tags, tag8.wrapping_mul(LO_BYTES))
}

/// State of a slot as seen by a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    Empty,
    Claimed,
    Live,
    Tombstone,
}

pub(super) fn state_of(c: u64) -> SlotState {
    match c & STATE_MASK {
        EMPTY => SlotState::Empty,
        CLAIMED => SlotState::Claimed,
        LIVE => SlotState::Live,
        _ => SlotState::Tombstone,
    }
}
