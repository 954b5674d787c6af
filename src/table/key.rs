//! How a `(namespace, name)` key is laid out in a row and hashed.
//!
//! A key is stored as one *lens word* (`ns_len | name_len << 16`) followed by
//! the bytes of the namespace and then the name, packed little-endian into
//! `u64` words with zero padding in the last word. Lookups build the same words
//! once on the stack and compare word by word; the hash is computed over them.
//! The hash must never change between builds: it places keys in persistent
//! segments (a change needs a new layout version).

/// Packed words kept inline in a [`KeyWords`]: as many as a row's hot line
/// holds (keys of up to 48 bytes are compared from them alone). Even, so the
/// hash's word pairs never straddle it.
pub(crate) const HEAD_WORDS: usize = 6;
const _: () = assert!(HEAD_WORDS.is_multiple_of(2));

/// A key as packed words with its hash. The first [`HEAD_WORDS`] words are
/// packed once, when the key is built, and reused by the hash, the compare
/// and the row write; words past them are computed on demand from the two
/// byte slices (a word inside one slice is a single unaligned load). Borrowed,
/// so building it never allocates.
#[derive(Clone, Copy)]
pub(crate) struct KeyWords<'a> {
    ns: &'a [u8],
    name: &'a [u8],
    lens: u64,
    len: usize,
    hash: u64,
    head: [u64; HEAD_WORDS],
}

/// Number of packed words for `bytes` key bytes.
#[inline]
pub(crate) const fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(8)
}

impl<'a> KeyWords<'a> {
    /// Packs `ns` and `name`. Lengths must already be validated (< 65536 each).
    #[inline(always)]
    pub(crate) fn new(ns: &'a [u8], name: &'a [u8]) -> Self {
        debug_assert!(ns.len() <= u16::MAX as usize && name.len() <= u16::MAX as usize);
        let lens = ns.len() as u64 | (name.len() as u64) << 16;
        let len = words_for(ns.len() + name.len());
        // The first HEAD_WORDS words are packed once and kept. When the
        // namespace ends inside a word, every name word straddles two slices
        // and packing word by word is a byte loop: two copies into a zeroed
        // buffer are cheaper then (and dearer otherwise).
        let mut head = [0u64; HEAD_WORDS];
        let (n, m) = (ns.len(), name.len());
        let mut h = SEED ^ lens.wrapping_mul(K1);
        if n % 8 != 0 && n + m <= HEAD_WORDS * 8 {
            let mut b = [0u8; HEAD_WORDS * 8];
            b[..n].copy_from_slice(ns);
            b[n..n + m].copy_from_slice(name);
            for (w, c) in head.iter_mut().zip(b.chunks_exact(8)) {
                *w = u64::from_le_bytes(c.try_into().unwrap());
            }
            let mut i = 0;
            while i + 1 < len {
                h = fold_mul(head[i] ^ h ^ K2, head[i + 1] ^ K1);
                i += 2;
            }
            if i < len {
                h = mix(h, head[i]);
            }
        } else {
            // Two words per multiply (wyhash style): the hash is on the
            // critical path before the first load of a lookup, so its chain
            // is kept short. (The same sequence as above.)
            let mut i = 0;
            while i + 1 < len {
                let (a, b) = (packed_word(ns, name, i), packed_word(ns, name, i + 1));
                if i + 1 < HEAD_WORDS {
                    head[i] = a;
                    head[i + 1] = b;
                }
                h = fold_mul(a ^ h ^ K2, b ^ K1);
                i += 2;
            }
            if i < len {
                let a = packed_word(ns, name, i);
                if i < HEAD_WORDS {
                    head[i] = a;
                }
                h = mix(h, a);
            }
        }
        KeyWords {
            ns,
            name,
            lens,
            len,
            hash: finish(h),
            head,
        }
    }

    /// The first `min(word_count, HEAD_WORDS)` packed words (zero after them).
    #[inline(always)]
    pub(crate) fn head(&self) -> &[u64; HEAD_WORDS] {
        &self.head
    }

    /// Packed word `i` (`i < word_count`).
    #[inline(always)]
    pub(crate) fn word(&self, i: usize) -> u64 {
        if i < HEAD_WORDS {
            self.head[i]
        } else {
            packed_word(self.ns, self.name, i)
        }
    }

    /// The namespace and name bytes.
    pub(crate) fn parts(&self) -> (&'a [u8], &'a [u8]) {
        (self.ns, self.name)
    }

    /// Number of packed words.
    #[inline]
    pub(crate) fn word_count(&self) -> usize {
        self.len
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

    /// The packed key words, in order.
    #[cfg(test)]
    pub(crate) fn words(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len).map(|i| self.word(i))
    }

    /// Calls `f(i, word)` for every packed word.
    #[inline]
    pub(crate) fn for_each_word(&self, mut f: impl FnMut(usize, u64)) {
        for (i, &w) in self.head.iter().enumerate().take(self.len) {
            f(i, w);
        }
        for i in HEAD_WORDS..self.len {
            f(i, packed_word(self.ns, self.name, i));
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
#[cfg(test)]
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

#[cfg(all(test, not(procreg_loom)))]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_across_word_boundaries() {
        for nl in 1..20 {
            for ml in 1..20 {
                let ns: Vec<u8> = (0..nl).map(|i| b'a' + i as u8).collect();
                let name: Vec<u8> = (0..ml).map(|i| b'A' + i as u8).collect();
                let k = KeyWords::new(&ns, &name);
                let bytes = unpack(&k.words().collect::<Vec<_>>(), nl + ml);
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
        assert!(a.words().eq(b.words()));
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn long_keys_pack_whole() {
        let ns = vec![b'n'; 200];
        let name = vec![b'x'; 300];
        let k = KeyWords::new(&ns, &name);
        let words: Vec<u64> = k.words().collect();
        assert_eq!(words.len(), words_for(500));
        assert_eq!(unpack(&words, 500)[..200], ns[..]);
    }

    #[test]
    fn hash_is_stable_across_builds() {
        // Segments persist keys placed by this hash: these values must never
        // change without a LAYOUT_VERSION bump.
        assert_eq!(KeyWords::new(b"svc", b"db").hash(), PINNED_KEY_HASH);
        assert_eq!(hash_bytes(b"procreg"), PINNED_BYTES_HASH);
        // A 24-byte key exercises the two-words-per-multiply path.
        let long = KeyWords::new(b"bench-ns", b"0123456789abcdef").hash();
        assert_eq!(long, PINNED_LONG_KEY_HASH);
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"b"));
    }
    const PINNED_KEY_HASH: u64 = 0x5b8b_10bc_b5d0_ee41;
    const PINNED_LONG_KEY_HASH: u64 = 0x7661_90a4_c1e8_5834;
    const PINNED_BYTES_HASH: u64 = 0xc63e_498b_0d2b_3978;
}
