//! The control word of a slot and its encodings (see the module docs of
//! [`table`](super)), the step bits of a home word, and the group match
//! readers use to find candidate slots.

use super::GROUP;

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

/// Bit `j` set when control word `cs[j]` matches `want` under [`MATCH_MASK`].
/// Every matched bit lies in the low 32 bits, so on x86-64 the 8 words are
/// compared as 32-bit lanes of two SSE2 registers (the words were loaded
/// atomically one by one; only the copies are compared).
#[cfg(all(target_arch = "x86_64", not(procreg_loom)))]
#[inline(always)]
pub(super) fn match_group(cs: &[u64; GROUP], want: u64) -> u32 {
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
#[cfg(not(all(target_arch = "x86_64", not(procreg_loom))))]
#[inline(always)]
pub(super) fn match_group(cs: &[u64; GROUP], want: u64) -> u32 {
    match_group_scalar(cs, want)
}

/// The portable [`match_group`] (loom builds and other architectures; the
/// reference the SSE2 version is tested against).
#[cfg_attr(
    all(target_arch = "x86_64", not(procreg_loom), not(test)),
    allow(dead_code)
)]
#[inline(always)]
pub(super) fn match_group_scalar(cs: &[u64; GROUP], want: u64) -> u32 {
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

pub(super) fn state_of(c: u64) -> SlotState {
    match c & STATE_MASK {
        EMPTY => SlotState::Empty,
        CLAIMED => SlotState::Claimed,
        LIVE => SlotState::Live,
        _ => SlotState::Tombstone,
    }
}
