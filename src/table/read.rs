//! The readers: lookups (scans and the census are in `scan.rs`, the pid
//! lookups' leaf fast path in `quick.rs`). Readers
//! only load; every reader loop is bounded, and past the bound it reports
//! [`TableError::Busy`].

use super::control::{
    ACTIVE_BIT, DISP_SHIFT, LIVE, LOW32, MATCH_MASK, STEP_BITS, TAG_MASK, bump, match_tag_bytes,
    match_tags, tag8, version,
};
use super::key::{HEAD_WORDS, Packed, unpack_into};
use super::{
    EntryHead, GROUP, HOT_WORDS, Owner, READ_RETRIES, RawEntry, Table, TableError, hdr, meta_lens,
    row,
};
use crate::sync::{AtomicU64, Ordering, fence, spin_hint};

/// What a cached answer rests on: the slot's control word as the answer's
/// read validated it, and the change counter loaded before that read (kept
/// as the bound the counter must stay below). Only meaningful to the table
/// that made it, or [`Seen::NEVER`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    word: usize,
    c: u64,
    /// The change counter at the read plus [`WRAP_GUARD`].
    limit: u64,
}

impl Seen {
    /// Holds for no table (no counter is below 0): a cache's "nothing
    /// cached", checked like any other, so its reader tests no `Option`.
    pub(crate) const NEVER: Seen = Seen {
        word: hdr::CHANGES,
        c: 0,
        limit: 0,
    };
}

/// How far the change counter (2 per change) may move before a [`Seen`] no
/// longer holds whatever its control word shows.
pub(crate) const WRAP_GUARD: u64 = 1 << 30;

/// The pid word of a row (what the pid lookups copy).
#[inline(always)]
pub(super) fn pid_of<S: AsRef<[AtomicU64]>>(t: &Table<S>, slot: usize, _c: u64) -> u32 {
    t.rw(slot, row::PID).load(Ordering::Relaxed) as u32
}

/// Outcome of a search's fast path.
pub(super) enum Quick<R> {
    Hit(usize, u64, R),
    Miss,
    Slow,
}

/// Outcome of one validated read of a candidate slot.
pub(super) enum Probe<R> {
    Hit(R),
    Mismatch,
    Changed,
}

impl<S: AsRef<[AtomicU64]>> Table<S> {
    /// Finds `key` and runs `f` on its row inside the slot's seqlock window;
    /// `f`'s result is returned only if the slot did not change meanwhile.
    /// `f` must only copy (it may see a torn row that is then discarded).
    #[inline]
    pub(super) fn find<K: Packed, R>(
        &self,
        key: &K,
        f: impl FnMut(&Self, usize, u64) -> R,
    ) -> Result<Option<(usize, u64, R)>, TableError> {
        self.find_in::<K, R, false>(key, f)
    }

    /// [`find`](Self::find) for copies that include the metadata: a copy
    /// also stands when one metadata update committed during it (see
    /// [`still_valid`](Self::still_valid)), so a reader keeps up with an
    /// updater that rewrites the entry back to back. Costs one more load
    /// (the row's `META_LENS` word) per candidate.
    #[inline]
    fn find_meta<K: Packed, R>(
        &self,
        key: &K,
        f: impl FnMut(&Self, usize, u64) -> R,
    ) -> Result<Option<(usize, u64, R)>, TableError> {
        self.find_in::<K, R, true>(key, f)
    }

    /// A search: the fast path ([`find_quick`](Self::find_quick)), else
    /// the full search.
    #[inline(always)]
    fn find_in<K: Packed, R, const META: bool>(
        &self,
        key: &K,
        mut f: impl FnMut(&Self, usize, u64) -> R,
    ) -> Result<Option<(usize, u64, R)>, TableError> {
        match self.find_quick::<K, R, META>(key, &mut f) {
            Quick::Hit(slot, c, r) => Ok(Some((slot, c, r))),
            Quick::Miss => Ok(None),
            Quick::Slow => self.find_slow::<K, R, META>(key, f),
        }
    }

    /// The fast path of a search: every candidate of every step, each read
    /// once. A slot changing under the read, or keys of this home 31 or more
    /// steps away, make it [`Quick::Slow`]: the caller runs the full search,
    /// [`find_slow`](Self::find_slow), which retries.
    ///
    /// The common cases stay inline and small: a hit on the first candidate
    /// of the home group, and a miss with no candidate there and no key of
    /// this home elsewhere. The rest is out of line.
    #[inline(always)]
    pub(super) fn find_quick<K: Packed, R, const META: bool>(
        &self,
        key: &K,
        f: &mut impl FnMut(&Self, usize, u64) -> R,
    ) -> Quick<R> {
        let (home, tag) = self.place(key.hash());
        let cands = match_tags(self.tags(home).load(Ordering::Acquire), tag8(key.hash()));
        if cands != 0 {
            let slot = home * GROUP + (cands.trailing_zeros() / 8) as usize;
            let c = self.ctrl(slot).load(Ordering::Acquire);
            if c & MATCH_MASK == LIVE | tag {
                if let Probe::Hit(r) = self.probe::<K, R, META>(slot, c, key, f) {
                    return Quick::Hit(slot, c, r);
                }
            }
            // Another candidate, a changed slot or a tag collision: rare.
            return self.find_quick_steps::<K, R, META>(key, f);
        }
        let steps = self.home(home).load(Ordering::Acquire) & STEP_BITS & !1;
        if steps == 0 {
            return Quick::Miss;
        }
        self.find_quick_away::<K, R, META>(key, f, home, steps)
    }

    /// [`find_quick`](Self::find_quick) past its first candidate: every
    /// candidate of every step (the first one again; out of line, so the
    /// common case stays small).
    #[inline(never)]
    pub(super) fn find_quick_steps<K: Packed, R, const META: bool>(
        &self,
        key: &K,
        f: &mut impl FnMut(&Self, usize, u64) -> R,
    ) -> Quick<R> {
        let (home, tag) = self.place(key.hash());
        let t8 = tag8(key.hash());
        let mut cands = match_tags(self.tags(home).load(Ordering::Acquire), t8);
        while cands != 0 {
            let slot = home * GROUP + (cands.trailing_zeros() / 8) as usize;
            cands &= cands - 1;
            let c = self.ctrl(slot).load(Ordering::Acquire);
            if c & MATCH_MASK == LIVE | tag {
                match self.probe::<K, R, META>(slot, c, key, f) {
                    Probe::Hit(r) => return Quick::Hit(slot, c, r),
                    Probe::Mismatch => {}
                    Probe::Changed => return Quick::Slow,
                }
            }
        }
        // Only now learn which steps hold keys of this home: most hits end
        // in the home group without touching the home word.
        let steps = self.home(home).load(Ordering::Acquire) & STEP_BITS & !1;
        if steps == 0 {
            return Quick::Miss;
        }
        self.find_quick_away::<K, R, META>(key, f, home, steps)
    }

    /// [`find_quick_away_inline`](Self::find_quick_away_inline), out of line.
    #[inline(never)]
    fn find_quick_away<K: Packed, R, const META: bool>(
        &self,
        key: &K,
        f: &mut impl FnMut(&Self, usize, u64) -> R,
        home: usize,
        steps: u64,
    ) -> Quick<R> {
        self.find_quick_away_inline::<K, R, META>(key, f, home, steps)
    }

    /// The fast path's walk of the groups away from `key`'s home, at the
    /// probe steps of `steps` (the home word's step bits, home excluded).
    #[inline(always)]
    pub(super) fn find_quick_away_inline<K: Packed, R, const META: bool>(
        &self,
        key: &K,
        f: &mut impl FnMut(&Self, usize, u64) -> R,
        home: usize,
        mut steps: u64,
    ) -> Quick<R> {
        let bytes = key.tag_bytes();
        let tag = key.hash() & TAG_MASK;
        loop {
            let d = steps.trailing_zeros() as usize;
            if d >= 31 {
                // Keys 31 or more steps away: the full search walks those.
                return Quick::Slow;
            }
            steps &= steps - 1;
            let grp = self.probe_group(home, d);
            let mut cands = match_tag_bytes(self.tags(grp).load(Ordering::Acquire), bytes);
            while cands != 0 {
                let slot = grp * GROUP + (cands.trailing_zeros() / 8) as usize;
                cands &= cands - 1;
                let c = self.ctrl(slot).load(Ordering::Acquire);
                if c & MATCH_MASK == LIVE | (d as u64) << DISP_SHIFT | tag {
                    match self.probe::<K, R, META>(slot, c, key, f) {
                        Probe::Hit(r) => return Quick::Hit(slot, c, r),
                        Probe::Mismatch => {}
                        Probe::Changed => return Quick::Slow,
                    }
                }
            }
            if steps == 0 {
                return Quick::Miss;
            }
        }
    }

    /// The full search: every candidate of every step of the key's home.
    #[inline(never)]
    fn find_slow<K: Packed, R, const META: bool>(
        &self,
        key: &K,
        mut f: impl FnMut(&Self, usize, u64) -> R,
    ) -> Result<Option<(usize, u64, R)>, TableError> {
        let (home, tag) = self.place(key.hash());
        let t8 = tag8(key.hash());
        let mut steps: Option<u64> = None;
        let mut retries = 0u32;
        let mut d = 0usize;
        loop {
            let grp = self.probe_group(home, d);
            // The tag word names the candidates: usually none on a miss, the
            // key's own slot on a hit.
            let mut cands = match_tags(self.tags(grp).load(Ordering::Acquire), t8);
            if cands != 0 {
                let want = LIVE | (d as u64) << DISP_SHIFT | tag;
                while cands != 0 {
                    let slot = grp * GROUP + (cands.trailing_zeros() / 8) as usize;
                    cands &= cands - 1;
                    let mut c = self.ctrl(slot).load(Ordering::Acquire);
                    while c & MATCH_MASK == want {
                        match self.probe::<K, R, META>(slot, c, key, &mut f) {
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
            if d > self.disp_limit {
                return Ok(None);
            }
        }
    }

    /// Compares the key of `slot` (seen with control word `c`) and runs `f`.
    /// A key longer than the rows hold never matches.
    #[inline(always)]
    pub(super) fn probe<K: Packed, R, const META: bool>(
        &self,
        slot: usize,
        c: u64,
        key: &K,
        f: &mut impl FnMut(&Self, usize, u64) -> R,
    ) -> Probe<R> {
        // The lens word and the key's head words fill the slot's hot line,
        // zero past the key on both sides: equal lens words mean equal word
        // counts, so only the words the key has need comparing. Past the
        // head, the cold part.
        let head = |i: usize| key.head_word(i);
        let n = key.word_count();
        let row = |i: usize| self.hot(slot, i).load(Ordering::Relaxed);
        // One word at a time into `diff`: one temporary register.
        let mut diff = row(row::LENS) ^ key.lens();
        diff |= row(row::KEY) ^ head(0);
        diff |= row(row::KEY + 1) ^ head(1);
        // A pair at a time (a short key has at least two pairs).
        if K::SHORT || n > 2 {
            diff |= row(row::KEY + 2) ^ head(2);
            diff |= row(row::KEY + 3) ^ head(3);
            if n > 4 {
                diff |= row(row::KEY + 4) ^ head(4);
                diff |= row(row::KEY + 5) ^ head(5);
            }
        }
        const _: () = assert!(HEAD_WORDS == 6, "the compare above spells out 6 head words");
        let same = diff == 0 && (K::SHORT || n <= HEAD_WORDS || self.cold_key_matches(slot, key));
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

    /// Whether the key words of `slot` past the hot line equal `key`'s (the
    /// row's cold part starts with them), compared word by word.
    #[inline(never)]
    fn cold_key_matches<K: Packed>(&self, slot: usize, key: &K) -> bool {
        if key.word_count() > self.key_words {
            // Longer than any row holds: never stored (and the row words
            // are accessed unchecked).
            return false;
        }
        let first = self.cold_base + slot * self.cold_words;
        let mut diff = 0;
        for i in HEAD_WORDS..key.word_count() {
            diff |= self
                .w(first + row::KEY + i - HOT_WORDS)
                .load(Ordering::Relaxed)
                ^ key.word(i);
        }
        diff == 0
    }

    /// The `META_LENS` word of `slot`, loaded before a copy of the slot's
    /// metadata (`Acquire`: the copy's loads stay after it).
    #[inline]
    pub(super) fn meta_lens_word(&self, slot: usize) -> u64 {
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
    pub(super) fn still_valid(&self, slot: usize, c: u64, m0: Option<u64>) -> bool {
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
    pub(crate) fn lookup_pid<K: Packed>(&self, key: &K) -> Result<Option<u32>, TableError> {
        Ok(self
            .find(key, |t, s, _| {
                t.rw(s, row::PID).load(Ordering::Relaxed) as u32
            })?
            .map(|(_, _, pid)| pid))
    }

    /// The pid of `key`'s owner and, on a hit, what the answer rests on (see
    /// [`unchanged`](Self::unchanged)). Loads only; allocates nothing.
    pub(crate) fn lookup_pid_seen<K: Packed>(
        &self,
        key: &K,
    ) -> Result<Option<(u32, Seen)>, TableError> {
        let changes = self.w(hdr::CHANGES).load(Ordering::Acquire);
        Ok(self
            .find(key, |t, s, _| {
                t.rw(s, row::PID).load(Ordering::Relaxed) as u32
            })?
            .map(|(slot, c, pid)| (pid, self.seen(slot, c, changes))))
    }

    /// A full copy of `key`'s entry and what it rests on.
    pub(crate) fn lookup_seen<K: Packed>(
        &self,
        key: &K,
    ) -> Result<Option<(RawEntry, Seen)>, TableError> {
        let changes = self.w(hdr::CHANGES).load(Ordering::Acquire);
        Ok(self
            .lookup_at(key)?
            .map(|(slot, c, e)| (e, self.seen(slot, c, changes))))
    }

    fn seen(&self, slot: usize, c: u64, changes: u64) -> Seen {
        Seen {
            word: self.ctrl_base + slot,
            c,
            // The counter moves up by 2 per committed change (bit 0, the
            // sleeper flag, may drop back by 1: the control word's compare
            // is what proves the entry unchanged), so `now < limit` stands
            // for `now - changes < WRAP_GUARD`. Wrapping: a counter read
            // from shared memory may be anything; near 2^64 the bound wraps
            // to a small value and the proof never holds.
            limit: changes.wrapping_add(WRAP_GUARD),
        }
    }

    /// Whether an answer read at `seen` still holds: one load of the slot's
    /// control word (any change to the entry bumps its 32-bit version) and
    /// one of the change counter, which proves the version cannot have
    /// wrapped back. Loads only.
    ///
    /// The wrap bound: a slot's version moves at most twice per committed
    /// change (a claim, then the commit); the counter moves by 2 per
    /// committed change. Bumps without a count each need a writer's death:
    /// a dead writer's claim freed, a writer that died between its
    /// tombstone and its count, a claim revoked after a (false) verdict of
    /// death; a live writer cannot repeat one. While the counter moved by
    /// less than [`WRAP_GUARD`], fewer than 2^29 changes committed anywhere,
    /// so the version moved by less than 2^30 plus such deaths, far from
    /// the 2^32 that would bring it back.
    #[inline(always)]
    pub(crate) fn unchanged(&self, seen: &Seen) -> bool {
        // Both words from one load of `base` (the `Acquire` below would
        // make the compiler load it again).
        let (c, changes) = (self.w(seen.word), self.w(hdr::CHANGES));
        c.load(Ordering::Acquire) == seen.c && changes.load(Ordering::Relaxed) < seen.limit
    }

    /// The recorded owner of `key`. Loads only; allocates nothing.
    pub(crate) fn lookup_owner<K: Packed>(&self, key: &K) -> Result<Option<Owner>, TableError> {
        Ok(self
            .find(key, |t, s, _| t.read_owner(s))?
            .map(|(_, _, o)| o))
    }

    /// A full copy of `key`'s entry.
    pub(crate) fn lookup<K: Packed>(&self, key: &K) -> Result<Option<RawEntry>, TableError> {
        Ok(self.lookup_at(key)?.map(|(_, _, e)| e))
    }

    /// Like [`lookup`](Self::lookup) but also returns the slot and control word seen.
    ///
    /// The copy's buffers live across the reader's retries: after the first
    /// attempt, one allocates only if it sees a longer entry. An allocation
    /// inside the seqlock window would make the window longer than the
    /// period of a process updating the entry in a loop, and the reader
    /// would run out of retries.
    pub(crate) fn lookup_at<K: Packed>(
        &self,
        key: &K,
    ) -> Result<Option<(usize, u64, RawEntry)>, TableError> {
        let (mut kbuf, mut mbuf) = (Vec::new(), Vec::new());
        let found = self.find_meta(key, |t, s, c| t.copy_entry_into(s, c, &mut kbuf, &mut mbuf))?;
        Ok(found.map(|(s, c, (h, lease))| (s, c, RawEntry::new(h, lease, kbuf, mbuf))))
    }

    pub(super) fn read_lease(&self, slot: usize) -> u64 {
        self.rw(slot, self.tail + row::LEASE)
            .load(Ordering::Relaxed)
    }

    pub(super) fn read_owner(&self, slot: usize) -> Owner {
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
    pub(super) fn copy_head(&self, slot: usize, c: u64) -> EntryHead {
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
    pub(super) fn copy_entry_into(
        &self,
        slot: usize,
        c: u64,
        key: &mut Vec<u8>,
        meta: &mut Vec<u8>,
    ) -> (EntryHead, u64) {
        let h = self.copy_head(slot, c);
        key.resize(h.ns_len + h.name_len, 0);
        self.read_key(slot, &h, key);
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
    pub(super) fn copy_into(
        &self,
        slot: usize,
        c: u64,
        key: &mut [u8],
        meta: &mut [u8],
    ) -> EntryHead {
        let h = self.copy_meta_into(slot, c, meta);
        self.read_key(slot, &h, &mut key[..h.ns_len + h.name_len]);
        h
    }

    /// Fills `out` (`ns_len + name_len` bytes) with the key of `slot`: the
    /// namespace, then the name (each part starts a word pair of its own).
    fn read_key(&self, slot: usize, h: &EntryHead, out: &mut [u8]) {
        unpack_into(out, h.ns_len, |i| {
            self.rw(slot, row::KEY + i).load(Ordering::Relaxed)
        });
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
        // Whole words as single stores, not a `memcpy` call per chunk, which
        // keeps a reader's window short; only the last partial word is
        // copied byte-wise.
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
    pub(crate) fn lookup_into<K: Packed>(
        &self,
        key: &K,
        meta: &mut [u8],
    ) -> Result<Option<EntryHead>, TableError> {
        Ok(self
            .find_meta(key, |t, s, c| t.copy_meta_into(s, c, meta))?
            .map(|(_, _, h)| h))
    }
}
