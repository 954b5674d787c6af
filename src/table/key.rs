//! How a `(namespace, name)` key is laid out in a row and hashed.
//!
//! A key is stored as one *lens word* (`ns_len | name_len << 16`, plus
//! [`MEMBER`] for a group member's key) followed by
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

/// Number of packed words for `bytes` key bytes.
#[inline]
pub(crate) const fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(8)
}

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
        debug_assert!(ns.len() <= u16::MAX as usize && name.len() <= u16::MAX as usize);
        debug_assert!(kind == 0 || kind == MEMBER);
        let lens = lens_of(ns.len(), name.len(), kind);
        let len = words_for(ns.len() + name.len());
        // The head words are packed once and kept (zero past the key). The
        // struct is built once at the end, from locals: no copy of it.
        let mut head = [0u64; HEAD_WORDS];
        let hash = if len <= HEAD_WORDS {
            pack_short(ns, name, &mut head);
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
    fn lens(&self) -> u64;
    fn word_count(&self) -> usize;
    fn hash(&self) -> u64;
    /// The first `HEAD_WORDS` packed words, zero past the key.
    fn head(&self) -> &[u64; HEAD_WORDS];
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
        if self.len <= HEAD_WORDS {
            words_nul_free(&self.head, self.len, self.ns.len() + self.name.len())
        } else {
            !has_nul(self.ns) && !has_nul(self.name)
        }
    }
    #[inline(always)]
    fn head(&self) -> &[u64; HEAD_WORDS] {
        &self.head
    }
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        KeyWords::word(self, i)
    }
}

/// Keys of up to this many packed words are packed whole on the stack
/// for a lookup ([`StackKey`]); longer ones word by word as compared.
pub(crate) const STACK_WORDS: usize = 32;

/// A key longer than the head packed whole on the stack, so that neither
/// the hash nor the compare packs a word twice.
pub(crate) struct StackKey {
    lens: u64,
    len: usize,
    hash: u64,
    words: [u64; STACK_WORDS],
}

impl StackKey {
    /// Packs `ns` and `name` (`kind` as for [`KeyWords::with_kind`]) if they
    /// fit [`STACK_WORDS`].
    #[inline(always)]
    pub(crate) fn new(ns: &[u8], name: &[u8], kind: u64) -> Option<StackKey> {
        let len = words_for(ns.len() + name.len());
        if len > STACK_WORDS {
            return None;
        }
        let lens = lens_of(ns.len(), name.len(), kind);
        let mut words = [0u64; STACK_WORDS];
        for (i, w) in words.iter_mut().enumerate().take(len) {
            *w = packed_word(ns, name, i);
        }
        Some(StackKey {
            lens,
            len,
            hash: hash_words(lens, &words[..len]),
            words,
        })
    }
}

impl Packed for StackKey {
    stored_fields!();
    #[inline(always)]
    fn nul_free(&self) -> bool {
        words_nul_free(
            &self.words,
            self.len,
            (self.lens & 0xFFFF) as usize + (self.lens >> 16 & 0xFFFF) as usize,
        )
    }
    #[inline(always)]
    fn head(&self) -> &[u64; HEAD_WORDS] {
        self.words[..HEAD_WORDS].try_into().unwrap()
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
    len: usize,
    hash: u64,
    tags: u64,
    head: [u64; HEAD_WORDS],
    rest: Box<[u64]>,
}

impl PackedKey {
    /// Packs `ns` and `name` (lengths already validated, < 65536 each).
    pub(crate) fn new(ns: &[u8], name: &[u8]) -> Self {
        let k = KeyWords::new(ns, name);
        PackedKey {
            lens: k.lens,
            len: k.len,
            hash: k.hash,
            tags: super::control::tag_bytes(k.hash),
            head: k.head,
            rest: (HEAD_WORDS..k.len).map(|i| k.word(i)).collect(),
        }
    }
}

impl Packed for PackedKey {
    stored_fields!();
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
    fn head(&self) -> &[u64; HEAD_WORDS] {
        &self.head
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

const LO_BYTES: u64 = 0x0101_0101_0101_0101;
const HI_BYTES: u64 = 0x8080_8080_8080_8080;

/// Whether none of the `bytes` key bytes packed in `words[..n]` is NUL:
/// a zero-byte test of each word, the padding past the key (zero) made
/// non-zero first.
#[inline(always)]
fn words_nul_free(words: &[u64], n: usize, bytes: usize) -> bool {
    debug_assert!(n == words_for(bytes) && n <= words.len());
    let mut found = 0;
    for (i, &w) in words.iter().enumerate().take(n) {
        let pad = if (i + 1) * 8 > bytes {
            !0u64 << ((bytes % 8) * 8)
        } else {
            0
        };
        let x = w | pad;
        found |= x.wrapping_sub(LO_BYTES) & !x & HI_BYTES;
    }
    found == 0
}

/// Whether `b` holds a NUL byte (8 bytes at a time).
fn has_nul(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(8);
    let mut found = 0u64;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        found |= w.wrapping_sub(LO_BYTES) & !w & HI_BYTES;
    }
    found != 0 || chunks.remainder().contains(&0)
}

/// The last `b.len() % 8` bytes of `b` (at least 8 long) as a
/// little-endian word, zero above them: one load of the last 8 bytes and
/// a shift (0 when `b.len()` is a multiple of 8).
#[inline(always)]
fn load_tail(b: &[u8]) -> u64 {
    let l = b.len();
    debug_assert!(l >= 8);
    let r = l % 8;
    let w = u64::from_le_bytes(b[l - 8..].try_into().unwrap());
    // Shifted by 64 - 8r, in two steps so that r = 0 gives 0.
    (w >> 1) >> (63 - r * 8)
}

/// Up to 8 bytes of `b` as a little-endian word, zero above them, in at
/// most three loads and no loop (the overlapping-load trick of wyhash).
#[inline(always)]
pub(crate) fn load_partial(b: &[u8]) -> u64 {
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

/// The hash of a key from its lens word and packed words. Two words per
/// multiply (wyhash style): the hash is on the critical path before the
/// first load of a lookup, so its chain is kept short.
#[inline(always)]
fn hash_words(lens: u64, words: &[u64]) -> u64 {
    let mut h = SEED ^ lens.wrapping_mul(K1);
    let mut pairs = words.chunks_exact(2);
    for p in &mut pairs {
        h = fold_mul(p[0] ^ h ^ K2, p[1] ^ K1);
    }
    if let [w] = pairs.remainder() {
        h = mix(h, *w);
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
    let len = words_for(ns.len() + name.len());
    let word = |i: usize| {
        if i < HEAD_WORDS {
            head[i]
        } else {
            packed_word(ns, name, i)
        }
    };
    let mut h = SEED ^ lens.wrapping_mul(K1);
    let mut i = 0;
    while i + 1 < len {
        h = fold_mul(word(i) ^ h ^ K2, word(i + 1) ^ K1);
        i += 2;
    }
    if i < len {
        h = mix(h, word(i));
    }
    finish(h)
}

/// Packs a key of at most `HEAD_WORDS * 8` bytes into `out` (zero past it):
/// the namespace's whole words, then the name's words shifted in after the
/// namespace's last partial word; no byte loop, no `memcpy` call. A part of
/// at least 8 bytes has its last partial word read as one load ending at
/// its end ([`load_tail`]).
#[inline(always)]
fn pack_short(ns: &[u8], name: &[u8], out: &mut [u64; HEAD_WORDS]) {
    let q = ns.len() / 8;
    for (i, w) in out.iter_mut().enumerate().take(q) {
        *w = u64::from_le_bytes(ns[i * 8..i * 8 + 8].try_into().unwrap());
    }
    let r = ns.len() % 8;
    let mut carry = if ns.len() >= 8 {
        load_tail(ns)
    } else {
        load_partial(ns)
    };
    // Bits of a name word that go to the next packed word: `v >> 64 - s`
    // in two steps (0 when s is 0).
    let (s, back) = (r * 8, 63 - r * 8);
    let mut j = q;
    let mut words = name.chunks_exact(8);
    for c in &mut words {
        let v = u64::from_le_bytes(c.try_into().unwrap());
        out[j] = carry | v << s;
        carry = (v >> 1) >> back;
        j += 1;
    }
    let v = if name.len() >= 8 {
        load_tail(name)
    } else {
        load_partial(name)
    };
    if let Some(w) = out.get_mut(j) {
        *w = carry | v << s;
    }
    if let Some(w) = out.get_mut(j + 1) {
        *w = (v >> 1) >> back;
    }
}

/// Word `i` of the packed key: one load when it lies inside one of the two
/// slices, else a partial load from each.
#[inline(always)]
fn packed_word(ns: &[u8], name: &[u8], i: usize) -> u64 {
    let start = i * 8;
    let n = ns.len();
    if start + 8 <= n {
        return u64::from_le_bytes(ns[start..start + 8].try_into().unwrap());
    }
    if start >= n {
        return load_partial(&name[start - n..]);
    }
    // The word straddles the end of the namespace.
    let k = n - start;
    load_partial(&ns[start..]) | load_partial(&name[..name.len().min(8 - k)]) << (k * 8)
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
