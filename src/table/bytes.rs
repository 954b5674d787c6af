//! Key bytes read as little-endian words, without a loop where the length
//! allows: overlapping loads at both ends of a slice, and the zero-byte
//! test that finds a NUL (or a tag byte, in `control`) eight bytes at once.

pub(super) const LO_BYTES: u64 = 0x0101_0101_0101_0101;
const HI_BYTES: u64 = 0x8080_8080_8080_8080;

/// The zero-byte test of a word: its lowest set bit marks the word's first
/// zero byte (bits above it may be false); 0 when it has none.
#[inline(always)]
pub(super) fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LO_BYTES) & !x & HI_BYTES
}

/// The zero-byte bits of a part of 1 to 32 bytes (0 when it holds no NUL):
/// words loaded at both ends (overlapping) cover its bytes exactly, with no
/// padding to mask.
#[inline(always)]
pub(super) fn short_part_zeros(b: &[u8]) -> u64 {
    let l = b.len();
    debug_assert!((1..=32).contains(&l));
    if l >= 8 {
        let mut z = zero_bytes(load8(b, 0)) | zero_bytes(load8(b, l - 8));
        if l > 16 {
            z |= zero_bytes(load8(b, 8)) | zero_bytes(load8(b, l - 16));
        }
        z
    } else if l >= 4 {
        let lo = u32::from_le_bytes(b[..4].try_into().unwrap()) as u64;
        let hi = u32::from_le_bytes(b[l - 4..].try_into().unwrap()) as u64;
        zero_bytes(lo | hi << 32)
    } else {
        // The first, middle and last byte, the other five bytes 1.
        let w = b[0] as u64 | (b[l / 2] as u64) << 8 | (b[l - 1] as u64) << 16;
        zero_bytes(w | 0x0101_0101_0100_0000)
    }
}

/// Whether a part holds a NUL: 8 bytes at a time, the last word loaded
/// ending at the part's end (overlapping), so no byte is tested alone.
#[inline(always)]
pub(super) fn part_has_nul(b: &[u8]) -> bool {
    let l = b.len();
    if l <= 32 {
        return l != 0 && short_part_zeros(b) != 0;
    }
    let mut chunks = b.chunks_exact(8);
    let mut z = zero_bytes(load8(b, l - 8));
    for c in &mut chunks {
        z |= zero_bytes(u64::from_le_bytes(c.try_into().unwrap()));
    }
    z != 0
}

/// The 8 bytes of `b` from `at` as a little-endian word.
#[inline(always)]
pub(super) fn load8(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Up to 16 bytes of `b` as two little-endian words, zero above them: two
/// overlapping loads for 9 to 16 bytes (the second ends at the end of `b`
/// and is shifted down), [`load_partial`] for fewer.
#[inline(always)]
pub(super) fn load16(b: &[u8]) -> (u64, u64) {
    let l = b.len();
    debug_assert!(l <= 16);
    if l > 8 {
        (load8(b, 0), load8(b, l - 8) >> ((16 - l) * 8))
    } else {
        (load_partial(b), 0)
    }
}

/// Up to 8 bytes of `b` as a little-endian word, zero above them, in at
/// most three loads and no loop (the overlapping-load trick of wyhash).
#[inline(always)]
pub(super) fn load_partial(b: &[u8]) -> u64 {
    let l = b.len();
    if l >= 8 {
        u64::from_le_bytes(b[..8].try_into().unwrap())
    } else if l >= 4 {
        let lo = u32::from_le_bytes(b[..4].try_into().unwrap()) as u64;
        let hi = u32::from_le_bytes(b[l - 4..l].try_into().unwrap()) as u64;
        lo | hi << ((l - 4) * 8)
    } else if l > 0 {
        b[0] as u64 | (b[l / 2] as u64) << (l / 2 * 8) | (b[l - 1] as u64) << ((l - 1) * 8)
    } else {
        0
    }
}
