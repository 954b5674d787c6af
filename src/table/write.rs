//! The writers: insert, remove, update and renew, each under the home lock
//! of its key.

use super::control::{
    ACTIVE_BIT, CLAIMED, DISP_SHIFT, LIVE, LOW32, STEP_BITS, SlotState, TOMB, bump, disp_of,
    state_of, step_bit, tag8, version,
};
use super::key::{HEAD_WORDS, KeyWords};
use super::reclaim::gone_kind;
use super::ring::{Change, ChangeKey, ChangeKind};
use super::{GROUP, Owner, Step, Table, TableError, WriteContext, hdr, lease, meta_lens, row};
use crate::error::Liveness;
use crate::sync::{AtomicU64, Ordering, fence};

impl<S: AsRef<[AtomicU64]>> Table<S> {
    /// Finds `key` among the live keys of its home; caller holds the home lock,
    /// so those slots cannot change under it.
    fn find_locked(&self, key: &KeyWords) -> Result<Option<(usize, u64)>, TableError> {
        Ok(self.find(key, |_, _, _| ())?.map(|(s, c, ())| (s, c)))
    }

    pub(super) fn tombstone(&self, slot: usize, c: u64) -> bool {
        self.ctrl(slot)
            .compare_exchange(c, bump(c, TOMB), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Registers `key`. An existing entry whose owner is dead is replaced; any
    /// other existing entry gives `Exists`. Returns the new entry's version.
    #[cfg_attr(not(any(test, procreg_loom)), allow(dead_code))] // the backend passes a lease word
    pub(crate) fn insert<E: WriteContext>(
        &self,
        key: &KeyWords,
        owner: &Owner,
        registered_at: u64,
        metadata: &[u8],
        env: &E,
    ) -> Result<u32, TableError> {
        self.insert_with_lease(key, owner, registered_at, metadata, 0, env)
    }

    /// [`insert`](Self::insert) with a lease word (see [`lease`]; 0 = none).
    pub(crate) fn insert_with_lease<E: WriteContext>(
        &self,
        key: &KeyWords,
        owner: &Owner,
        registered_at: u64,
        metadata: &[u8],
        lease: u64,
        env: &E,
    ) -> Result<u32, TableError> {
        // Checked before anything is locked or claimed (a panic later would leak a claim).
        assert!(
            metadata.len() <= self.g.max_meta_len,
            "metadata longer than the segment's limit"
        );
        let (home, tag) = self.place(key.hash());
        let lock = self.lock_home(home, env)?;
        if env.crash_at(Step::InsertLocked) {
            return Err(lock.abandon());
        }
        if let Some((slot, c)) = self.find_locked(key)? {
            let existing = self.read_owner(slot);
            // An expired lease makes the entry gone whatever its owner does.
            let kind = gone_kind(self.read_lease(slot), env);
            if kind != ChangeKind::Expired {
                let alive = env.owner_liveness(&existing);
                if alive != Liveness::Dead {
                    return Err(TableError::Exists {
                        pid: existing.pid,
                        alive,
                    });
                }
            }
            if !self.tombstone(slot, c) {
                // Only possible if our lock was taken over: stop here.
                return Err(TableError::Busy(
                    "this writer's neighbourhood lock was revoked",
                ));
            }
            let ch = Change {
                kind,
                key: ChangeKey::Key(key),
                pid: existing.pid,
                version: version(c) as u32,
                at: 0, // taken only if recorded
            };
            self.committed(hdr::RECLAIMED, ch, env);
        }
        // Claim a free slot: first in a step that misses of this home scan
        // already (the home group, or a step marked in the home word), else
        // the first free slot of the probe sequence.
        let me = env.token() as u64;
        let marked = (self.home(home).load(Ordering::Relaxed) & STEP_BITS) | 1;
        let limit = self.g.disp_limit();
        let try_step = |d: usize| {
            self.claim_in(self.probe_group(home, d), me)
                .map(|(s, cl)| (s, d, cl))
        };
        // Walk the marked steps by their bits rather than testing each of
        // the 31 steps: an insert pays only for the steps its home uses.
        let mut rest = marked & ((1u64 << (limit.min(30) + 1)) - 1);
        let mut claimed = None;
        while rest != 0 && claimed.is_none() {
            let d = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            claimed = try_step(d);
        }
        let claimed = claimed.or_else(|| (0..=limit).find_map(try_step));
        let Some((slot, d, cl)) = claimed else {
            return Err(TableError::Full);
        };
        // Readers look at a slot only when its tag byte matches; the commit
        // below (Release) publishes this byte with the row.
        self.set_tag(slot, tag8(key.hash()));
        // Seqlock writer: the claim (version bump) is ordered before the row stores.
        fence(Ordering::Release);
        if env.crash_at(Step::InsertClaimed) {
            return Err(lock.abandon());
        }
        self.write_row(slot, key, owner, registered_at, metadata, lease);
        if env.crash_at(Step::InsertWritten) {
            return Err(lock.abandon());
        }
        // Readers must be able to reach the slot before it turns live.
        if self.home(home).load(Ordering::Relaxed) & step_bit(d) == 0 {
            self.home(home).fetch_or(step_bit(d), Ordering::Release);
        }
        let live = bump(cl, LIVE | (d as u64) << DISP_SHIFT | tag);
        if self
            .ctrl(slot)
            .compare_exchange(cl, live, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // Someone judged us dead and freed the claim; nothing was published.
            return Err(TableError::Busy("this writer's claim was revoked"));
        }
        let ch = Change {
            kind: ChangeKind::Registered,
            key: ChangeKey::Key(key),
            pid: owner.pid,
            version: version(live) as u32,
            at: registered_at,
        };
        self.committed(hdr::REGISTERS, ch, env);
        drop(lock);
        Ok(version(live) as u32)
    }

    /// Sets `slot`'s byte of its group's tag word (other slots of the group
    /// have other claimers: a CAS keeps their bytes).
    pub(super) fn set_tag(&self, slot: usize, tag8: u64) {
        let shift = 8 * (slot % GROUP);
        let w = self.tags(slot / GROUP);
        let mut cur = w.load(Ordering::Relaxed);
        loop {
            let new = cur & !(0xFF << shift) | tag8 << shift;
            if new == cur {
                return;
            }
            match w.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Claims a free (empty or tombstone) slot of group `grp` for writer `me`.
    fn claim_in(&self, grp: usize, me: u64) -> Option<(usize, u64)> {
        for j in 0..GROUP {
            let slot = grp * GROUP + j;
            let mut c = self.ctrl(slot).load(Ordering::Relaxed);
            while matches!(state_of(c), SlotState::Empty | SlotState::Tombstone) {
                let cl = bump(c, CLAIMED | me);
                match self
                    .ctrl(slot)
                    .compare_exchange(c, cl, Ordering::AcqRel, Ordering::Relaxed)
                {
                    Ok(_) => return Some((slot, cl)),
                    Err(now) => c = now,
                }
            }
        }
        None
    }

    fn write_row(
        &self,
        slot: usize,
        key: &KeyWords,
        owner: &Owner,
        at: u64,
        metadata: &[u8],
        lease: u64,
    ) {
        let st = |i: usize, v: u64| self.rw(slot, i).store(v, Ordering::Relaxed);
        st(self.tail + row::HASH, key.hash());
        st(row::LENS, key.lens());
        // Every head word, zero past the key: a reader compares the whole hot
        // line without a branch on the key's length.
        for (i, &w) in key.head().iter().enumerate() {
            st(row::KEY + i, w);
        }
        for i in HEAD_WORDS..key.word_count() {
            st(row::KEY + i, key.word(i));
        }
        st(row::PID, owner.pid as u64);
        st(self.tail + row::START_TIME, owner.start_time);
        st(self.tail + row::PIDNS, owner.pidns);
        st(self.tail + row::REGISTERED_AT, at);
        st(self.tail + row::LEASE, lease);
        st(self.tail + row::META_LENS, metadata.len() as u64);
        self.write_meta(slot, 0, metadata);
    }

    fn write_meta(&self, slot: usize, buf: usize, metadata: &[u8]) {
        assert!(
            metadata.len() <= self.g.max_meta_len,
            "metadata longer than the segment's limit"
        );
        let base = self.tail + row::META + buf * self.g.meta_words();
        // Whole words as single loads; only the last partial word is copied.
        let words = metadata.chunks_exact(8);
        let rest = words.remainder();
        let full = metadata.len() / 8;
        for (i, w) in words.enumerate() {
            self.rw(slot, base + i)
                .store(u64::from_le_bytes(w.try_into().unwrap()), Ordering::Relaxed);
        }
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.rw(slot, base + full)
                .store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
    }

    /// Removes `key` if present (and, with `only_pid`, only if owned by that pid).
    pub(crate) fn remove<E: WriteContext>(
        &self,
        key: &KeyWords,
        only_pid: Option<u32>,
        env: &E,
    ) -> Result<bool, TableError> {
        let (home, _) = self.place(key.hash());
        let lock = self.lock_home(home, env)?;
        let Some((slot, c)) = self.find_locked(key)? else {
            return Ok(false);
        };
        let owner = self.read_owner(slot).pid;
        if only_pid.is_some_and(|pid| pid != owner) {
            return Ok(false);
        }
        if !self.tombstone(slot, c) {
            return Err(TableError::Busy("the slot changed under its home lock"));
        }
        if env.crash_at(Step::RemoveTombstoned) {
            return Err(lock.abandon());
        }
        self.recompute_step(home, disp_of(c), env.token());
        let ch = Change {
            kind: ChangeKind::Unregistered,
            key: ChangeKey::Key(key),
            pid: owner,
            version: version(c) as u32,
            at: 0, // taken only if recorded
        };
        self.committed(hdr::UNREGISTERS, ch, env);
        drop(lock);
        Ok(true)
    }

    /// Replaces the metadata of `key`; readers keep reading the old buffer
    /// until the flip. Returns the new version.
    pub(crate) fn update<E: WriteContext>(
        &self,
        key: &KeyWords,
        metadata: &[u8],
        env: &E,
    ) -> Result<u32, TableError> {
        assert!(
            metadata.len() <= self.g.max_meta_len,
            "metadata longer than the segment's limit"
        );
        let (home, _) = self.place(key.hash());
        let lock = self.lock_home(home, env)?;
        let Some((slot, c)) = self.find_locked(key)? else {
            return Err(TableError::NotFound);
        };
        let inactive = (c & ACTIVE_BIT == 0) as usize;
        // A reader that saw an older version may still read this buffer: its
        // sequence turns odd first (a seqlock per buffer), and the Release
        // fence orders that before our stores of the buffer.
        let lens_w = self.rw(slot, self.tail + row::META_LENS);
        let writing = meta_lens::begin_write(lens_w.load(Ordering::Relaxed), inactive);
        lens_w.store(writing, Ordering::Relaxed);
        fence(Ordering::Release);
        if env.crash_at(Step::UpdateWriting) {
            // Half the buffer, as a writer killed in the middle leaves it.
            self.write_meta(slot, inactive, &metadata[..metadata.len() / 2]);
            return Err(lock.abandon());
        }
        self.write_meta(slot, inactive, metadata);
        let done = meta_lens::with_len(
            meta_lens::end_write(writing, inactive),
            inactive,
            metadata.len(),
        );
        lens_w.store(done, Ordering::Release);
        if env.crash_at(Step::UpdateWritten) {
            return Err(lock.abandon());
        }
        let flipped = bump(c, (c ^ ACTIVE_BIT) & LOW32);
        if self
            .ctrl(slot)
            .compare_exchange(c, flipped, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            return Err(TableError::Busy("the slot changed under its home lock"));
        }
        let ch = Change {
            kind: ChangeKind::Updated,
            key: ChangeKey::Key(key),
            pid: self.read_owner(slot).pid,
            version: version(flipped) as u32,
            at: 0, // taken only if recorded
        };
        self.committed(hdr::UPDATES, ch, env);
        drop(lock);
        Ok(version(flipped) as u32)
    }

    /// Renews the lease of `key` (writes its deadline again; no new version,
    /// no change record). `Ok(false)`: the entry has no lease. `NotFound`:
    /// absent, or its lease already ran out (a sweep reclaims it).
    pub(crate) fn renew<E: WriteContext>(
        &self,
        key: &KeyWords,
        env: &E,
    ) -> Result<bool, TableError> {
        let (home, _) = self.place(key.hash());
        let _lock = self.lock_home(home, env)?;
        let Some((slot, _)) = self.find_locked(key)? else {
            return Err(TableError::NotFound);
        };
        let l = self.read_lease(slot);
        if l == 0 {
            return Ok(false);
        }
        if lease::expired(l, env.now_ms()) {
            return Err(TableError::NotFound);
        }
        self.rw(slot, self.tail + row::LEASE)
            .store(lease::renewed(l, env.now_ms()), Ordering::Relaxed);
        Ok(true)
    }
}
