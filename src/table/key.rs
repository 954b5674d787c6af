//! How a `(namespace, name)` key is laid out in a row and hashed.
//!
//! A key is stored as one *lens word* (`ns_len | name_len << 16`, plus
//! [`MEMBER`] for a group member's key) followed by the namespace's words
//! and then the name's: each part cut into chunks of 16 bytes, each chunk
//! packed little-endian into a pair of `u64` words (see [`part_words`]); a
//! last chunk of fewer than 16 bytes as overlapping words with no padding
//! (`bytes::pack16`), so a word holds a zero byte only where the key holds
//! a NUL. Packing each part on its own lets a lookup build a part's words
//! from two loads at fixed offsets, with no shift, and lets the hash take
//! its word pairs part by part. Lookups build the same words once on the
//! stack and compare word by word; the hash is computed over them. The
//! packing and the hash must never change between builds: they place keys
//! in persistent segments (a change needs a new layout version).

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

/// Lens-word bit of a group member's key (see `Registry::join`). A member
/// key and a unique key never compare equal and hash apart, whatever their
/// bytes, so a lookup of a unique key never meets a member and needs no scan
/// of the key's bytes to tell them apart.
pub(crate) const MEMBER: u64 = 1 << 32;

/// The lens word of a key: `kind` is 0 or [`MEMBER`].
#[inline(always)]
const fn lens_of(ns: usize, name: usize, kind: u64) -> u64 {
    ns as u64 | (name as u64) << 16 | kind
}

/// Number of words holding `bytes` bytes (metadata).
#[inline]
pub(crate) const fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(8)
}

/// Number of packed words of one key part of `bytes` bytes: a pair per
/// chunk of 16 bytes, so that the hash's pairs never straddle the two parts.
#[inline(always)]
pub(crate) const fn part_words(bytes: usize) -> usize {
    bytes.div_ceil(16) * 2
}

/// Number of packed words of a key whose parts have these lengths.
#[inline(always)]
pub(crate) const fn key_words_of(ns_len: usize, name_len: usize) -> usize {
    part_words(ns_len) + part_words(name_len)
}

use super::bytes::{load8, pack16, part_has_nul, unpack16, zero_bytes};

/// Two part lengths (below 2^16) in one word, 32 bits each, so that one
/// subtraction compares both with the limits.
#[inline(always)]
pub(crate) const fn len_pair(ns_len: usize, name_len: usize) -> u64 {
    ns_len as u64 | (name_len as u64) << 32
}

/// Whether `(ns, name)` has the short shape that [`ShortKey::new`] packs
/// without a loop: a namespace of 1 to 16 bytes (words 0 and 1) and a name
/// of 1 to 32 (words 2 to 5).
#[inline(always)]
pub(crate) const fn is_short(ns_len: usize, name_len: usize) -> bool {
    // 1..=16 and 1..=32 (an empty part wraps to the largest): one compare.
    (ns_len.wrapping_sub(1) | name_len.wrapping_sub(1) >> 1) < 16
}

/// The longest namespace and name of the short shape ([`is_short`]).
pub(crate) const SHORT_NS: usize = 16;
pub(crate) const SHORT_NAME: usize = 32;

impl<'a> KeyWords<'a> {
    /// Packs the unique key `(ns, name)`. Lengths must already be validated
    /// (< 65536 each).
    #[inline(always)]
    pub(crate) fn new(ns: &'a [u8], name: &'a [u8]) -> Self {
        Self::with_kind(ns, name, 0)
    }

    /// Packs `(ns, name)` as a unique key (`kind` 0) or a group member's
    /// ([`MEMBER`]).
    #[inline(always)]
    pub(crate) fn with_kind(ns: &'a [u8], name: &'a [u8], kind: u64) -> Self {
        if is_short(ns.len(), name.len()) {
            Self::short(ns, name, kind)
        } else {
            Self::other(ns, name, kind)
        }
    }

    /// [`with_kind`](Self::with_kind) of a key of the short shape
    /// ([`is_short`]), packed by [`ShortKey::new`].
    #[inline(always)]
    pub(crate) fn short(ns: &'a [u8], name: &'a [u8], kind: u64) -> Self {
        let k = ShortKey::new(ns, name, kind);
        KeyWords {
            ns,
            name,
            lens: k.lens,
            len: k.word_count(),
            hash: k.hash,
            head: std::array::from_fn(|i| k.head_word(i)),
        }
    }

    /// [`with_kind`](Self::with_kind) of a key not of the short shape (out
    /// of line: such keys are rare and this keeps lookups small).
    #[inline(never)]
    fn other(ns: &'a [u8], name: &'a [u8], kind: u64) -> Self {
        debug_assert!(ns.len() <= u16::MAX as usize && name.len() <= u16::MAX as usize);
        debug_assert!(kind == 0 || kind == MEMBER);
        let lens = lens_of(ns.len(), name.len(), kind);
        let len = key_words_of(ns.len(), name.len());
        let mut head = [0u64; HEAD_WORDS];
        let hash = if len <= HEAD_WORDS {
            pack_into(ns, name, &mut head);
            hash_words(lens, &head[..len])
        } else {
            pack_long(ns, name, lens, &mut head)
        };
        KeyWords {
            ns,
            name,
            lens,
            len,
            hash,
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

    /// The lens word (`ns_len | name_len << 16 | kind`).
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

/// What a reader needs of a key: its lens word, packed words and hash.
/// Implemented by the borrowed [`KeyWords`] (packed per call) and the owned
/// [`PackedKey`] (packed once, for prepared keys).
pub(crate) trait Packed {
    /// Whether every key of this type has at most [`HEAD_WORDS`] words
    /// (readers then never compare a row's cold part).
    const SHORT: bool = false;
    /// Whether neither part of a key of this type is ever empty (a prepared
    /// key was validated, a short key has the short shape): a miss then
    /// checks the lengths with [`len_pair`](Self::len_pair) alone.
    const NONEMPTY: bool = false;
    /// The two lengths as [`len_pair`] packs them.
    #[inline(always)]
    fn len_pair(&self) -> u64 {
        let lens = self.lens();
        len_pair((lens & 0xFFFF) as usize, (lens >> 16 & 0xFFFF) as usize)
    }
    fn lens(&self) -> u64;
    fn word_count(&self) -> usize;
    fn hash(&self) -> u64;
    /// Packed word `i` of the head (`i < HEAD_WORDS`), zero past the key.
    fn head_word(&self, i: usize) -> u64;
    /// Packed word `i` (`i < word_count`).
    fn word(&self, i: usize) -> u64;
    /// Whether no byte of the key is NUL (what a miss reports only for such
    /// a key: one holding a NUL is refused). A prepared key is checked
    /// when made.
    fn nul_free(&self) -> bool;
    /// The key's tag byte in every byte lane (see `control::tag_bytes`):
    /// computed from the hash, or kept by a prepared key.
    #[inline(always)]
    fn tag_bytes(&self) -> u64 {
        super::control::tag_bytes(self.hash())
    }
    /// What the matching bits of the control word of this key's live row
    /// in its home group are (`LIVE`, step 0, the tag): computed from the
    /// hash, or kept by a prepared key.
    #[inline(always)]
    fn home_want(&self) -> u64 {
        super::control::LIVE | (self.hash() & super::control::TAG_MASK)
    }
}

/// The three stored fields every [`Packed`] key stores.
macro_rules! stored_fields {
    () => {
        #[inline(always)]
        fn lens(&self) -> u64 {
            self.lens
        }
        #[inline(always)]
        fn word_count(&self) -> usize {
            self.len
        }
        #[inline(always)]
        fn hash(&self) -> u64 {
            self.hash
        }
    };
}

impl Packed for KeyWords<'_> {
    stored_fields!();
    #[inline(always)]
    fn nul_free(&self) -> bool {
        !part_has_nul(self.ns) && !part_has_nul(self.name)
    }
    #[inline(always)]
    fn head_word(&self, i: usize) -> u64 {
        self.head[i]
    }
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        KeyWords::word(self, i)
    }
}

/// A key of the short shape ([`is_short`]) packed for one lookup: its
/// lens word, hash and six head words, and nothing else, so that a lookup
/// can keep it in registers. Its words never reach past the head.
#[derive(Clone, Copy)]
pub(crate) struct ShortKey<'a> {
    ns: &'a [u8],
    name: &'a [u8],
    lens: u64,
    hash: u64,
    /// 4 or 6: the name's words end at 4 when it has at most 16 bytes.
    len: usize,
    /// Words 0 to 3; words 4 and 5 (a name past 16 bytes) are loaded again
    /// when compared, so that they hold no register meanwhile.
    head: [u64; 4],
}

impl<'a> ShortKey<'a> {
    /// Packs `(ns, name)` (`kind` as for [`KeyWords::with_kind`]), which
    /// must have the short shape: each part from at most four loads, with no
    /// loop and no store to memory.
    #[inline(always)]
    pub(crate) fn new(ns: &'a [u8], name: &'a [u8], kind: u64) -> Self {
        debug_assert!(is_short(ns.len(), name.len()));
        debug_assert!(kind == 0 || kind == MEMBER);
        let lens = lens_of(ns.len(), name.len(), kind);
        let (n0, n1) = pack16(ns);
        let mut h = SEED ^ lens.wrapping_mul(K1);
        h = fold_mul(n0 ^ h ^ K2, n1 ^ K1);
        let (len, head) = if name.len() <= 16 {
            let (m0, m1) = pack16(name);
            h = fold_mul(m0 ^ h ^ K2, m1 ^ K1);
            (4, [n0, n1, m0, m1])
        } else {
            let (m0, m1) = (load8(name, 0), load8(name, 8));
            let (m2, m3) = pack16(&name[16..]);
            h = fold_mul(m0 ^ h ^ K2, m1 ^ K1);
            h = fold_mul(m2 ^ h ^ K2, m3 ^ K1);
            (6, [n0, n1, m0, m1])
        };
        ShortKey {
            ns,
            name,
            lens,
            hash: finish(h),
            len,
            head,
        }
    }
}

impl ShortKey<'_> {
    /// The name's third and fourth words (its second chunk), 0 for a name
    /// of at most 16 bytes.
    #[inline(always)]
    fn name_tail(&self) -> (u64, u64) {
        if self.name.len() > 16 {
            pack16(&self.name[16..])
        } else {
            (0, 0)
        }
    }
}

impl Packed for ShortKey<'_> {
    const SHORT: bool = true;
    const NONEMPTY: bool = true;
    stored_fields!();
    #[inline(always)]
    fn len_pair(&self) -> u64 {
        len_pair(self.ns.len(), self.name.len())
    }
    #[inline(always)]
    fn nul_free(&self) -> bool {
        // Packed words have a zero byte only where a part has a NUL (no
        // padding, see `pack16`): the test of the words in registers.
        let [n0, n1, m0, m1] = self.head;
        let mut z = zero_bytes(n0) | zero_bytes(n1) | zero_bytes(m0) | zero_bytes(m1);
        if self.len > 4 {
            let (m2, m3) = self.name_tail();
            z |= zero_bytes(m2) | zero_bytes(m3);
        }
        z == 0
    }
    #[inline(always)]
    fn head_word(&self, i: usize) -> u64 {
        match i {
            0..4 => self.head[i],
            // The name's third and fourth words, 0 for a name of at most
            // 16 bytes.
            _ => {
                let (m2, m3) = self.name_tail();
                if i == 4 { m2 } else { m3 }
            }
        }
    }
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        self.head_word(i)
    }
}

/// Keys of up to this many packed words are packed whole on the stack
/// for a lookup ([`StackKey`]); longer ones word by word as compared.
pub(crate) const STACK_WORDS: usize = 32;

/// A key longer than the head packed whole on the stack, so that neither
/// the hash nor the compare packs a word twice.
pub(crate) struct StackKey<'a> {
    ns: &'a [u8],
    name: &'a [u8],
    lens: u64,
    len: usize,
    hash: u64,
    words: [u64; STACK_WORDS],
}

impl<'a> StackKey<'a> {
    /// Packs `ns` and `name` (`kind` as for [`KeyWords::with_kind`]) if they
    /// fit [`STACK_WORDS`].
    #[inline(always)]
    pub(crate) fn new(ns: &'a [u8], name: &'a [u8], kind: u64) -> Option<StackKey<'a>> {
        let len = key_words_of(ns.len(), name.len());
        if len > STACK_WORDS {
            return None;
        }
        let lens = lens_of(ns.len(), name.len(), kind);
        let mut words = [0u64; STACK_WORDS];
        pack_into(ns, name, &mut words);
        Some(StackKey {
            ns,
            name,
            lens,
            len,
            hash: hash_words(lens, &words[..len]),
            words,
        })
    }
}

impl Packed for StackKey<'_> {
    stored_fields!();
    #[inline(always)]
    fn nul_free(&self) -> bool {
        !part_has_nul(self.ns) && !part_has_nul(self.name)
    }
    #[inline(always)]
    fn head_word(&self, i: usize) -> u64 {
        self.words[i]
    }
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        self.words[i]
    }
}

/// A key packed and hashed once and owned: the words past the head are
/// kept too, so a reader of a prepared key computes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PackedKey {
    lens: u64,
    hash: u64,
    tags: u64,
    pair: u64,
    // Two 32-bit fields in one word: the key stays 16 words (a `crate::Key`
    // with its strings), so an array of keys is indexed with one shift.
    len: u32,
    want: u32,
    head: [u64; HEAD_WORDS],
    rest: Box<[u64]>,
}

impl PackedKey {
    /// Packs `ns` and `name` (lengths already validated, < 65536 each).
    pub(crate) fn new(ns: &[u8], name: &[u8]) -> Self {
        let k = KeyWords::new(ns, name);
        PackedKey {
            lens: k.lens,
            len: k.len as u32,
            hash: k.hash,
            tags: super::control::tag_bytes(k.hash),
            want: (super::control::LIVE | (k.hash & super::control::TAG_MASK)) as u32,
            pair: len_pair(ns.len(), name.len()),
            head: k.head,
            rest: (HEAD_WORDS..k.len).map(|i| k.word(i)).collect(),
        }
    }
}

impl Packed for PackedKey {
    #[inline(always)]
    fn lens(&self) -> u64 {
        self.lens
    }
    #[inline(always)]
    fn word_count(&self) -> usize {
        self.len as usize
    }
    #[inline(always)]
    fn hash(&self) -> u64 {
        self.hash
    }
    // Made only by `crate::Key`, which refuses an empty part.
    const NONEMPTY: bool = true;
    #[inline(always)]
    fn len_pair(&self) -> u64 {
        self.pair
    }
    #[inline(always)]
    fn nul_free(&self) -> bool {
        // Made only by `crate::Key`, which refuses a NUL.
        true
    }
    #[inline(always)]
    fn tag_bytes(&self) -> u64 {
        self.tags
    }
    #[inline(always)]
    fn home_want(&self) -> u64 {
        self.want as u64
    }
    #[inline(always)]
    fn head_word(&self, i: usize) -> u64 {
        self.head[i]
    }
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        if i < HEAD_WORDS {
            self.head[i]
        } else {
            self.rest[i - HEAD_WORDS]
        }
    }
}

/// The hash of a key from its lens word and packed words. Two words per
/// multiply (wyhash style): the hash is on the critical path before the
/// first load of a lookup, so its chain is kept short.
#[inline(always)]
fn hash_words(lens: u64, words: &[u64]) -> u64 {
    // Every part has whole pairs of words (`part_words`).
    debug_assert!(words.len().is_multiple_of(2));
    let mut h = SEED ^ lens.wrapping_mul(K1);
    for p in words.chunks_exact(2) {
        h = fold_mul(p[0] ^ h ^ K2, p[1] ^ K1);
    }
    finish(h)
}

/// Packs the head words of a key longer than the head and returns its hash
/// (the same sequence as [`hash_words`], words past the head packed on the
/// fly). Out of line: long keys are rare and this keeps lookups small.
#[inline(never)]
fn pack_long(ns: &[u8], name: &[u8], lens: u64, head: &mut [u64; HEAD_WORDS]) -> u64 {
    for (i, w) in head.iter_mut().enumerate() {
        *w = packed_word(ns, name, i);
    }
    let len = key_words_of(ns.len(), name.len());
    let word = |i: usize| {
        if i < HEAD_WORDS {
            head[i]
        } else {
            packed_word(ns, name, i)
        }
    };
    let mut h = SEED ^ lens.wrapping_mul(K1);
    for i in (0..len).step_by(2) {
        h = fold_mul(word(i) ^ h ^ K2, word(i + 1) ^ K1);
    }
    finish(h)
}

/// Packs a key into `out`, which must hold its [`key_words_of`] words: each
/// part's chunks of 16 bytes as pairs of words ([`pack16`]).
fn pack_into(ns: &[u8], name: &[u8], out: &mut [u64]) {
    let at = pack_part(ns, out, 0);
    pack_part(name, out, at);
}

/// Packs one part into `out[at..]` and returns where the next part starts.
#[inline(always)]
fn pack_part(p: &[u8], out: &mut [u64], at: usize) -> usize {
    for (w, c) in out[at..].chunks_exact_mut(2).zip(p.chunks(16)) {
        (w[0], w[1]) = pack16(c);
    }
    at + part_words(p.len())
}

/// Word `i` of the packed key: one load when its chunk has 16 bytes,
/// else its half of the chunk's [`pack16`]; 0 past the key.
#[inline(always)]
fn packed_word(ns: &[u8], name: &[u8], i: usize) -> u64 {
    let nsw = part_words(ns.len());
    let (p, j) = if i < nsw { (ns, i) } else { (name, i - nsw) };
    let start = j / 2 * 16;
    if start + 16 <= p.len() {
        load8(p, j * 8)
    } else if start >= p.len() {
        0
    } else {
        let (a, b) = pack16(&p[start..]);
        if j % 2 == 0 { a } else { b }
    }
}

/// Fills `out` with a key's bytes, the namespace (`ns_len` bytes) then the
/// name, from its packed words (the inverse of [`pack_into`]): `word(i)`
/// gives packed word `i`, and is asked once for each, in order.
pub(crate) fn unpack_into(out: &mut [u8], ns_len: usize, mut word: impl FnMut(usize) -> u64) {
    let (ns, name) = out.split_at_mut(ns_len);
    let mut i = 0;
    for chunk in ns.chunks_mut(16).chain(name.chunks_mut(16)) {
        let (a, b) = (word(i), word(i + 1));
        unpack16(a, b, chunk);
        i += 2;
    }
}

/// Unpacks the namespace and name bytes (one buffer) from a key's packed
/// words (zero where the words fall short).
pub(crate) fn unpack(words: &[u64], ns_len: usize, name_len: usize) -> Vec<u8> {
    let mut out = vec![0; ns_len + name_len];
    unpack_into(&mut out, ns_len, |i| words.get(i).copied().unwrap_or(0));
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
        for nl in 1..40 {
            for ml in 1..40 {
                let ns: Vec<u8> = (0..nl).map(|i| b'a' + i as u8).collect();
                let name: Vec<u8> = (0..ml).map(|i| b'A' + i as u8).collect();
                let k = KeyWords::new(&ns, &name);
                let words: Vec<u64> = k.words().collect();
                assert_eq!(words.len(), part_words(nl) + part_words(ml));
                let bytes = unpack(&words, nl, ml);
                assert_eq!(&bytes[..nl], &ns[..]);
                assert_eq!(&bytes[nl..], &name[..]);
                assert_eq!(k.lens(), nl as u64 | (ml as u64) << 16);
                // The name starts a word pair of its own, after the
                // namespace's pairs, with its first bytes.
                let first = words[part_words(nl)].to_le_bytes();
                let k = match ml {
                    8.. => 8,
                    4..8 => 4,
                    _ => 1,
                };
                assert_eq!(first[..k], name[..k]);
                // No zero byte in any word: a NUL-free key has none to
                // test (`pack16`).
                assert!(words.iter().all(|&w| zero_bytes(w) == 0), "{nl} {ml}");
                assert_eq!(is_short(nl, ml), nl <= 16 && ml <= 32);
                assert!(!is_short(0, ml) && !is_short(nl, 0));
            }
        }
    }

    #[test]
    fn split_point_changes_the_words_and_the_hash() {
        // ("ab","c") and ("a","bc") hold the same bytes: each part is packed
        // on its own, and the lens word tells them apart too.
        let a = KeyWords::new(b"ab", b"c");
        let b = KeyWords::new(b"a", b"bc");
        assert!(!a.words().eq(b.words()));
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn nul_check_matches_a_byte_reference() {
        for nl in 1..40 {
            for ml in 1..90 {
                let ns = vec![b'n'; nl];
                let name = vec![b'm'; ml];
                // Every key type's check against a byte-wise reference.
                let free = |ns: &[u8], name: &[u8]| {
                    let words = KeyWords::new(ns, name);
                    let stack = StackKey::new(ns, name, 0).unwrap();
                    let want = !ns.contains(&0) && !name.contains(&0);
                    assert_eq!(words.nul_free(), want, "{nl} {ml}");
                    assert_eq!(stack.nul_free(), want, "{nl} {ml}");
                    if is_short(ns.len(), name.len()) {
                        let short = ShortKey::new(ns, name, 0);
                        assert_eq!(short.nul_free(), words.nul_free(), "{nl} {ml}");
                        assert_eq!(short.hash, words.hash());
                        let n = short.word_count();
                        assert!(words.words().eq((0..n).map(|i| short.head_word(i))));
                        for i in n..HEAD_WORDS {
                            assert_eq!(short.head_word(i), 0);
                        }
                    }
                    words.nul_free()
                };
                assert!(free(&ns, &name), "{nl} {ml}");
                for at in [0, nl / 2, nl.saturating_sub(9), nl - 1] {
                    let mut bad = ns.clone();
                    bad[at] = 0;
                    assert!(!free(&bad, &name), "ns {nl} {ml} {at}");
                }
                for at in [0, 8, 15, 16, ml / 2, ml.saturating_sub(9), ml - 1] {
                    if at >= ml {
                        continue;
                    }
                    let mut bad = name.clone();
                    bad[at] = 0;
                    assert!(!free(&ns, &bad), "name {nl} {ml} {at}");
                }
            }
        }
    }

    #[test]
    fn long_keys_pack_whole() {
        let ns = vec![b'n'; 200];
        let name = vec![b'x'; 300];
        let k = KeyWords::new(&ns, &name);
        let words: Vec<u64> = k.words().collect();
        assert_eq!(words.len(), part_words(200) + part_words(300));
        let bytes = unpack(&words, 200, 300);
        assert_eq!(bytes[..200], ns[..]);
        assert_eq!(bytes[200..], name[..]);
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
        // Not of the short shape: packed by the general path.
        let other = KeyWords::new(b"a-namespace-of-20-by", b"svc").hash();
        assert_eq!(other, PINNED_OTHER_KEY_HASH);
        assert_eq!(
            StackKey::new(b"a-namespace-of-20-by", b"svc", 0)
                .unwrap()
                .hash,
            other
        );
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"b"));
    }
    const PINNED_KEY_HASH: u64 = 0x5664_aba0_6379_5db9;
    const PINNED_LONG_KEY_HASH: u64 = 0x61e6_8244_16ee_0887;
    const PINNED_OTHER_KEY_HASH: u64 = 0x0309_80f2_5cfc_5775;
    const PINNED_BYTES_HASH: u64 = 0xc63e_498b_0d2b_3978;
}
