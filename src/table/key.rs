//! How a `(namespace, name)` key is laid out in a row and hashed.
//!
//! A key is stored as one *lens word* (`ns_len | name_len << 16`) followed by
//! the bytes of the namespace and then the name, packed little-endian into
//! `u64` words with zero padding in the last word. Lookups build the same words
//! once on the stack and compare word by word; the hash is computed over them.
//! The hash must never change between builds: it places keys in persistent
//! segments (a change needs a new layout version).

use std::mem::MaybeUninit;

/// Keys up to this many packed words (256 bytes of namespace + name) are
/// encoded on the stack; longer ones (possible only with raised limits) use the heap.
pub(crate) const INLINE_KEY_WORDS: usize = 32;

/// A key packed into words, ready to hash and compare.
pub(crate) struct KeyWords {
    lens: u64,
    len: usize,
    inline: [MaybeUninit<u64>; INLINE_KEY_WORDS],
    heap: Vec<u64>,
    hash: u64,
}

/// Number of packed words for `bytes` key bytes.
#[inline]
pub(crate) const fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(8)
}

impl KeyWords {
    /// Packs `ns` and `name`. Lengths must already be validated (< 65536 each).
    #[inline]
    pub(crate) fn new(ns: &[u8], name: &[u8]) -> Self {
        debug_assert!(ns.len() <= u16::MAX as usize && name.len() <= u16::MAX as usize);
        let total = ns.len() + name.len();
        let n = words_for(total);
        let mut k = KeyWords {
            lens: ns.len() as u64 | (name.len() as u64) << 16,
            len: n,
            inline: [MaybeUninit::uninit(); INLINE_KEY_WORDS],
            heap: Vec::new(),
            hash: 0,
        };
        let mut h = SEED ^ k.lens.wrapping_mul(K1);
        if n <= INLINE_KEY_WORDS {
            for i in 0..n {
                let w = packed_word(ns, name, i);
                h = mix(h, w);
                k.inline[i] = MaybeUninit::new(w);
            }
        } else {
            k.heap.reserve_exact(n);
            for i in 0..n {
                let w = packed_word(ns, name, i);
                h = mix(h, w);
                k.heap.push(w);
            }
        }
        k.hash = finish(h);
        k
    }

    /// The lens word (`ns_len | name_len << 16`).
    #[inline]
    pub(crate) fn lens(&self) -> u64 {
        self.lens
    }

    /// The 64-bit hash of the key.
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// The packed key words.
    #[inline]
    pub(crate) fn words(&self) -> &[u64] {
        if self.len <= INLINE_KEY_WORDS {
            // SAFETY: `new` initialised exactly the first `self.len` inline words
            // when `len <= INLINE_KEY_WORDS`, and `MaybeUninit<u64>` has the layout of `u64`.
            unsafe { std::slice::from_raw_parts(self.inline.as_ptr().cast::<u64>(), self.len) }
        } else {
            &self.heap
        }
    }
}

/// Byte `i` of the concatenation `ns ++ name`, or 0 past its end.
#[inline(always)]
fn byte_at(ns: &[u8], name: &[u8], i: usize) -> u8 {
    if i < ns.len() {
        ns[i]
    } else {
        name.get(i - ns.len()).copied().unwrap_or(0)
    }
}

/// Word `i` of the packed key.
#[inline(always)]
fn packed_word(ns: &[u8], name: &[u8], i: usize) -> u64 {
    let start = i * 8;
    // Fast path: the whole word lies inside one of the two slices.
    if start + 8 <= ns.len() {
        return u64::from_le_bytes(ns[start..start + 8].try_into().unwrap());
    }
    if start >= ns.len() && start - ns.len() + 8 <= name.len() {
        let s = start - ns.len();
        return u64::from_le_bytes(name[s..s + 8].try_into().unwrap());
    }
    let mut b = [0u8; 8];
    for (j, slot) in b.iter_mut().enumerate() {
        *slot = byte_at(ns, name, start + j);
    }
    u64::from_le_bytes(b)
}

/// Unpacks `len` key bytes from packed words (the inverse of the packing).
pub(crate) fn unpack(words: &[u64], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.truncate(len);
    out
}

const SEED: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xd6e8_feb8_6659_fd93;

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline(always)]
fn mix(h: u64, w: u64) -> u64 {
    fold_mul(h ^ w, K1)
}

#[inline(always)]
fn finish(h: u64) -> u64 {
    fold_mul(h ^ (h >> 29), K2)
}

/// A stable 64-bit hash of arbitrary bytes (used for header checksums).
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = SEED ^ (bytes.len() as u64).wrapping_mul(K1);
    for chunk in bytes.chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        h = mix(h, u64::from_le_bytes(b));
    }
    finish(h)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_across_word_boundaries() {
        for nl in 1..20 {
            for ml in 1..20 {
                let ns: Vec<u8> = (0..nl).map(|i| b'a' + i as u8).collect();
                let name: Vec<u8> = (0..ml).map(|i| b'A' + i as u8).collect();
                let k = KeyWords::new(&ns, &name);
                let bytes = unpack(k.words(), nl + ml);
                assert_eq!(&bytes[..nl], &ns[..]);
                assert_eq!(&bytes[nl..], &name[..]);
                assert_eq!(k.lens(), nl as u64 | (ml as u64) << 16);
            }
        }
    }

    #[test]
    fn split_point_changes_the_hash() {
        // ("ab","c") and ("a","bc") pack to the same bytes; the lens word tells them apart.
        let a = KeyWords::new(b"ab", b"c");
        let b = KeyWords::new(b"a", b"bc");
        assert_eq!(a.words(), b.words());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn long_keys_use_the_heap_and_match_inline_hashing_rules() {
        let ns = vec![b'n'; 200];
        let name = vec![b'x'; 300];
        let k = KeyWords::new(&ns, &name);
        assert_eq!(k.words().len(), words_for(500));
        assert_eq!(unpack(k.words(), 500)[..200], ns[..]);
    }

    #[test]
    fn hash_is_stable_across_builds() {
        // Segments persist keys placed by this hash: these values must never
        // change without a LAYOUT_VERSION bump.
        assert_eq!(KeyWords::new(b"svc", b"db").hash(), PINNED_KEY_HASH);
        assert_eq!(hash_bytes(b"procreg"), PINNED_BYTES_HASH);
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"b"));
    }
    const PINNED_KEY_HASH: u64 = 0x5b8b_10bc_b5d0_ee41;
    const PINNED_BYTES_HASH: u64 = 0xc63e_498b_0d2b_3978;
}
