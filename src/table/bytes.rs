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

/// A chunk of 1 to 16 bytes of a key part as its pair of packed words
/// (layout version 7): for 8 to 16 bytes, the word at its start and the
/// word ending at its end (overlapping, so no shift and no padding); for
/// fewer, [`pack8`] twice. Every byte of both words is a byte of the
/// chunk (or a fill byte of 1), so the words hold a zero byte exactly
/// when the chunk holds a NUL; and given the chunk's length they tell
/// its bytes apart ([`unpack16`]).
#[inline(always)]
pub(super) fn pack16(b: &[u8]) -> (u64, u64) {
    let l = b.len();
    debug_assert!((1..=16).contains(&l));
    if l >= 8 {
        (load8(b, 0), load8(b, l - 8))
    } else {
        let w = pack8(b);
        (w, w)
    }
}

/// Fill of [`pack8`]'s word for a chunk of 1 to 3 bytes: its bytes 3 to 7.
const FILL: u64 = 0x0101_0101_0100_0000;

/// A chunk of 1 to 7 bytes as one word with no zero byte of its own: the
/// 4 bytes at each end (overlapping) for 4 to 7 bytes; for 1 to 3, the
/// first, middle and last byte and a fill of 1s.
#[inline(always)]
fn pack8(b: &[u8]) -> u64 {
    let l = b.len();
    if l >= 4 {
        let lo = u32::from_le_bytes(b[..4].try_into().unwrap()) as u64;
        let hi = u32::from_le_bytes(b[l - 4..].try_into().unwrap()) as u64;
        lo | hi << 32
    } else {
        b[0] as u64 | (b[l / 2] as u64) << 8 | (b[l - 1] as u64) << 16 | FILL
    }
}

/// The bytes of a chunk of `out.len()` (1 to 16) bytes from its pair of
/// packed words (the inverse of [`pack16`]).
pub(super) fn unpack16(a: u64, b: u64, out: &mut [u8]) {
    let l = out.len();
    debug_assert!((1..=16).contains(&l));
    let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
    if l >= 8 {
        out[..8].copy_from_slice(&a);
        // `b` holds bytes l - 8 .. l.
        out[8..].copy_from_slice(&b[16 - l..]);
    } else if l >= 4 {
        out[..4].copy_from_slice(&a[..4]);
        out[4..].copy_from_slice(&a[8 - (l - 4)..]);
    } else {
        out[0] = a[0];
        out[l / 2] = a[1];
        out[l - 1] = a[2];
    }
}
