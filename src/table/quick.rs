//! The pid lookups' fast path: a leaf function's worth of the reader in
//! `read.rs` (home group, step groups' tag words, one compare) that answers
//! in a register, and its ways out of line. Loads only.

use super::control::{MATCH_MASK, STEP_BITS, match_tag_bytes};
use super::key::{HEAD_WORDS, Packed};
use super::read::{Probe, Quick, pid_of};
use super::{GROUP, Table};
use crate::sync::{AtomicU64, Ordering};

impl<S: AsRef<[AtomicU64]>> Table<S> {
    /// The pid of `key`'s owner when the fast path can tell:
    /// `Some(Some(pid))` a hit, `Some(None)` a miss, `None` when only the
    /// full search ([`lookup_pid`](Self::lookup_pid)) can. Small enough to
    /// return in a register; loads only.
    ///
    /// `hit` and `miss` run on the answer (the caller's counters; usually
    /// zero-sized, so they cost no argument); either returning false turns
    /// the answer into `None`. A miss is only reported for a key the
    /// segment admits (lengths, no NUL); any other goes the full path,
    /// which refuses it. A hit needs neither check: a stored key passed
    /// them. What is not the common case is out of line and reached
    /// by tail calls, so the caller of this, made a function of its own,
    /// is a leaf that saves no register.
    #[inline(always)]
    pub(crate) fn lookup_pid_quick<K: Packed>(
        &self,
        key: &K,
        hit: impl Fn() -> bool + Copy,
        miss: impl Fn() -> bool + Copy,
    ) -> Option<Option<u32>> {
        if !K::SHORT && key.word_count() > HEAD_WORDS {
            return self.lookup_pid_quick_long(key, hit, miss);
        }
        self.lookup_pid_quick_with(
            key,
            hit,
            miss,
            || self.lookup_pid_quick_rest(key, hit, miss),
            |home, steps| self.lookup_pid_quick_away(key, hit, miss, home, steps),
        )
    }

    /// [`lookup_pid_quick`](Self::lookup_pid_quick) of a key of at most
    /// [`HEAD_WORDS`] words, with the caller's ways out of line: `rest()`
    /// when the home group's first candidate has the key's full tag but is
    /// not the key (or changed under the read), or the group has more than
    /// one candidate; `away(home, steps)` from the first step group whose
    /// tag word names a candidate (or a step past 30). A caller whose key
    /// lives in registers passes ways that pack it again out of line, so
    /// that the key never needs an address on the common path.
    #[inline(always)]
    pub(crate) fn lookup_pid_quick_with<K: Packed>(
        &self,
        key: &K,
        hit: impl Fn() -> bool,
        miss: impl Fn() -> bool,
        rest: impl FnOnce() -> Option<Option<u32>>,
        away: impl FnOnce(usize, u64) -> Option<Option<u32>>,
    ) -> Option<Option<u32>> {
        debug_assert!(key.word_count() <= HEAD_WORDS);
        let (home, _) = self.place(key.hash());
        let cands = match_tag_bytes(self.tags(home).load(Ordering::Acquire), key.tag_bytes());
        if cands != 0 {
            let slot = home * GROUP + (cands.trailing_zeros() / 8) as usize;
            let c = self.ctrl(slot).load(Ordering::Acquire);
            if c & MATCH_MASK == key.home_want() {
                if let Probe::Hit(pid) = self.probe::<K, u32, false>(slot, c, key, &mut pid_of) {
                    return hit().then_some(Some(pid));
                }
                return rest();
            }
            if cands & (cands - 1) != 0 {
                return rest();
            }
            // The one candidate is another key's slot (its tag byte matched,
            // its full tag does not): on to the steps, still inline.
        }
        let mut steps = self.home(home).load(Ordering::Acquire) & STEP_BITS & !1;
        // The step groups' tag words, inline: a miss usually finds no
        // candidate in them, and then needs no call. The first group with a
        // candidate (or a step past 30) goes out of line, from that group.
        let bytes = key.tag_bytes();
        while steps != 0 {
            let d = steps.trailing_zeros() as usize;
            if d >= 31 {
                break;
            }
            let grp = self.probe_group(home, d);
            if match_tag_bytes(self.tags(grp).load(Ordering::Acquire), bytes) != 0 {
                break;
            }
            steps &= steps - 1;
        }
        if steps == 0 {
            return self.quick_miss(key, miss);
        }
        away(home, steps)
    }

    /// A miss of the fast path, if `key`'s parts are neither empty nor
    /// longer than the segment's limits and hold no NUL (`None` otherwise:
    /// the full path refuses the key).
    #[inline(always)]
    fn quick_miss<K: Packed>(&self, key: &K, miss: impl Fn() -> bool) -> Option<Option<u32>> {
        let fits = if K::SHORT && self.short_fits {
            true
        } else if K::NONEMPTY {
            // Both lengths against both limits in one subtraction: a part
            // past its limit borrows, setting bit 31 or 63 (fields of 32
            // bits holding values below 2^16).
            self.limit_pair.wrapping_sub(key.len_pair()) & (1 << 31 | 1 << 63) == 0
        } else {
            // Each part 1..=its limit (an empty part wraps to the largest).
            let lens = key.lens();
            let (ns, name) = ((lens & 0xFFFF) as usize, (lens >> 16 & 0xFFFF) as usize);
            ns.wrapping_sub(1) < self.g.max_ns_len && name.wrapping_sub(1) < self.g.max_name_len
        };
        (fits && key.nul_free() && miss()).then_some(None)
    }

    /// [`lookup_pid_quick`](Self::lookup_pid_quick) of a key longer than
    /// the hot line (out of line, so the short keys' path makes no call
    /// to compare the cold part).
    #[inline(never)]
    fn lookup_pid_quick_long<K: Packed>(
        &self,
        key: &K,
        hit: impl Fn() -> bool,
        miss: impl Fn() -> bool,
    ) -> Option<Option<u32>> {
        match self.find_quick::<K, u32, false>(key, &mut pid_of) {
            Quick::Hit(_, _, pid) => hit().then_some(Some(pid)),
            Quick::Miss => self.quick_miss(key, miss),
            Quick::Slow => None,
        }
    }

    /// [`lookup_pid_quick`](Self::lookup_pid_quick) past its first
    /// candidate (out of line).
    #[inline(never)]
    fn lookup_pid_quick_rest<K: Packed>(
        &self,
        key: &K,
        hit: impl Fn() -> bool,
        miss: impl Fn() -> bool,
    ) -> Option<Option<u32>> {
        self.lookup_pid_quick_rest_inline(key, hit, miss)
    }

    /// [`lookup_pid_quick_rest`](Self::lookup_pid_quick_rest), inline (for
    /// a caller's own out-of-line way).
    #[inline(always)]
    pub(crate) fn lookup_pid_quick_rest_inline<K: Packed>(
        &self,
        key: &K,
        hit: impl Fn() -> bool,
        miss: impl Fn() -> bool,
    ) -> Option<Option<u32>> {
        match self.find_quick_steps::<K, u32, false>(key, &mut pid_of) {
            Quick::Hit(_, _, pid) => hit().then_some(Some(pid)),
            Quick::Miss => self.quick_miss(key, miss),
            Quick::Slow => None,
        }
    }

    /// [`lookup_pid_quick`](Self::lookup_pid_quick) with no candidate in
    /// the home group and keys of this home further away (out of line).
    #[inline(never)]
    fn lookup_pid_quick_away<K: Packed>(
        &self,
        key: &K,
        hit: impl Fn() -> bool,
        miss: impl Fn() -> bool,
        home: usize,
        steps: u64,
    ) -> Option<Option<u32>> {
        self.lookup_pid_quick_away_inline(key, hit, miss, home, steps)
    }

    /// [`lookup_pid_quick_away`](Self::lookup_pid_quick_away), inline (for
    /// a caller's own out-of-line way).
    #[inline(always)]
    pub(crate) fn lookup_pid_quick_away_inline<K: Packed>(
        &self,
        key: &K,
        hit: impl Fn() -> bool,
        miss: impl Fn() -> bool,
        home: usize,
        steps: u64,
    ) -> Option<Option<u32>> {
        match self.find_quick_away_inline::<K, u32, false>(key, &mut pid_of, home, steps) {
            Quick::Hit(_, _, pid) => hit().then_some(Some(pid)),
            Quick::Miss => self.quick_miss(key, miss),
            Quick::Slow => None,
        }
    }
}
