//! The home word of a group: its lock, which serialises the writers of the
//! keys whose home the group is, and its step bits, which say where readers
//! of those keys must look.

use super::control::{
    LOW32, STEP_BITS, SlotState, TOMB, bump, disp_of, state_of, step_bit, token_of,
};
use super::{GROUP, MAX_TOKEN, Table, TableError, WriteContext, hdr};
use crate::error::Liveness;
use crate::sync::{AtomicU64, Ordering, spin_hint, yield_now};

/// Holds a home-group lock; unlocks on drop (also when a panic unwinds).
pub(super) struct HomeLock<'t, S: AsRef<[AtomicU64]>> {
    t: &'t Table<S>,
    group: usize,
    token: u32,
    armed: bool,
}

impl<S: AsRef<[AtomicU64]>> HomeLock<'_, S> {
    /// Simulated crash: keep the lock held forever, as a killed writer would.
    pub(super) fn abandon(mut self) -> TableError {
        self.armed = false;
        TableError::Crashed
    }
}

impl<S: AsRef<[AtomicU64]>> Drop for HomeLock<'_, S> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.t
            .update_home_if_held(self.group, self.token, |h| h & LOW32);
    }
}

impl<S: AsRef<[AtomicU64]>> Table<S> {
    /// Takes a token lock word (`holder token << 32 | low bits`): spins,
    /// steals it from a dead holder (returned), gives up with `Busy` when
    /// `env` says so. The home locks use it.
    fn acquire<E: WriteContext>(&self, w: &AtomicU64, env: &E) -> Result<Option<u32>, TableError> {
        let me = env.token() as u64;
        let mut spins = 0u64;
        loop {
            // Acquire/AcqRel: whoever reads a token here also sees the owner
            // record its writer published before using it.
            let h = w.load(Ordering::Acquire);
            let holder = h >> 32;
            if holder == 0 {
                if w.compare_exchange_weak(
                    h,
                    me << 32 | (h & LOW32),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
                {
                    return Ok(None);
                }
                continue;
            }
            spins += 1;
            // Another process (or thread) holds it: check now and then whether it died.
            if holder != me
                && spins % 64 == 1
                && env.writer_liveness(holder as u32) == Liveness::Dead
            {
                if w.compare_exchange(
                    h,
                    me << 32 | (h & LOW32),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
                {
                    return Ok(Some(holder as u32));
                }
                continue;
            }
            if env.give_up(spins) {
                return Err(TableError::Busy(
                    "a live writer holds the lock of this key's neighbourhood",
                ));
            }
            if spins < 128 {
                spin_hint();
            } else {
                yield_now();
            }
        }
    }

    pub(super) fn lock_home<E: WriteContext>(
        &self,
        group: usize,
        env: &E,
    ) -> Result<HomeLock<'_, S>, TableError> {
        debug_assert!(env.token() != 0 && env.token() <= MAX_TOKEN);
        let stolen = self.acquire(self.home(group), env)?;
        let lock = HomeLock {
            t: self,
            group,
            token: env.token(),
            armed: true,
        };
        if let Some(dead) = stolen {
            self.bump_counter(hdr::LOCKS_STOLEN);
            self.recover_home(group, dead, env);
        }
        Ok(lock)
    }

    /// Replaces home word `group` by `new(current)` only while `me` holds its
    /// lock (a lock taken over from us is never overwritten).
    fn update_home_if_held(&self, group: usize, me: u32, new: impl Fn(u64) -> u64) {
        let w = self.home(group);
        let mut cur = w.load(Ordering::Relaxed);
        while cur >> 32 == me as u64 {
            match w.compare_exchange_weak(cur, new(cur), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
    }

    /// Test hook: marks the home lock of `key` as held by `token`.
    #[cfg(all(test, not(procreg_loom)))]
    pub(crate) fn hold_home_lock_for_test(&self, key: &super::key::KeyWords, token: u32) {
        let (home, _) = self.place(key.hash());
        self.home(home)
            .fetch_or((token as u64) << 32, Ordering::AcqRel);
    }

    /// Takes the lock of `group` only if it is free right now.
    pub(super) fn try_lock_home<E: WriteContext>(
        &self,
        group: usize,
        env: &E,
    ) -> Option<HomeLock<'_, S>> {
        let me = env.token() as u64;
        let w = self.home(group);
        let h = w.load(Ordering::Acquire);
        (h >> 32 == 0
            && w.compare_exchange(
                h,
                me << 32 | (h & LOW32),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok())
        .then_some(HomeLock {
            t: self,
            group,
            token: me as u32,
            armed: true,
        })
    }

    /// After stealing the lock of `group` from a dead writer: frees the slots
    /// it claimed nearby and recomputes the reach of the home.
    fn recover_home<E: WriteContext>(&self, group: usize, dead: u32, env: &E) {
        for d in 0..=self.g.disp_limit() {
            let grp = self.probe_group(group, d);
            for j in 0..GROUP {
                self.free_if_claimed_by(grp * GROUP + j, |t| t == dead);
            }
        }
        self.recompute_steps(group, env.token(), true);
    }

    /// Frees `slot` if it is CLAIMED by a writer `is_dead` says is dead.
    pub(super) fn free_if_claimed_by(
        &self,
        slot: usize,
        mut is_dead: impl FnMut(u32) -> bool,
    ) -> bool {
        let c = self.ctrl(slot).load(Ordering::Acquire);
        if state_of(c) == SlotState::Claimed && is_dead(token_of(c)) {
            let ok = self
                .ctrl(slot)
                .compare_exchange(c, bump(c, TOMB), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok();
            if ok {
                self.bump_counter(hdr::STUCK_RECOVERED);
            }
            return ok;
        }
        false
    }

    /// After a key of home `group` at probe step `d` was removed: only bit
    /// `d` of the home's steps can have changed, so only that step's group is
    /// scanned (steps 31 and beyond share a bit: those go through
    /// [`recompute_steps`](Self::recompute_steps)). Caller holds the group's lock.
    pub(super) fn recompute_step(&self, group: usize, d: usize, me: u32) {
        if d == 0 {
            // Readers always scan the home group; its bit is never consulted.
            return;
        }
        if d >= 31 {
            return self.recompute_steps(group, me, false);
        }
        let grp = self.probe_group(group, d);
        let still = (0..GROUP).any(|j| {
            let c = self.ctrl(grp * GROUP + j).load(Ordering::Relaxed);
            state_of(c) == SlotState::Live && disp_of(c) == d
        });
        if !still && self.home(group).load(Ordering::Relaxed) & step_bit(d) != 0 {
            self.update_home_if_held(group, me, |h| h & !step_bit(d));
        }
    }

    /// Sets the home word's step bits to exactly the steps that hold live keys
    /// of `group` (`full`: look at every step, not only those marked). Caller
    /// holds the group's lock.
    fn recompute_steps(&self, group: usize, me: u32, full: bool) {
        let old = self.home(group).load(Ordering::Relaxed) & STEP_BITS;
        let limit = self.g.disp_limit();
        let mut bits = 0u64;
        let mut check = |d: usize| {
            let grp = self.probe_group(group, d);
            for j in 0..GROUP {
                let c = self.ctrl(grp * GROUP + j).load(Ordering::Relaxed);
                if state_of(c) == SlotState::Live && disp_of(c) == d {
                    bits |= step_bit(d);
                }
            }
        };
        if full || old & step_bit(31) != 0 {
            (0..=limit).for_each(&mut check);
        } else {
            // Only the marked steps can hold keys of this home.
            let mut rest = old;
            while rest != 0 {
                let d = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if d <= limit {
                    check(d);
                }
            }
        }
        if bits != old {
            // Only while we still hold the lock (never resurrect a lock that
            // was taken over from us).
            self.update_home_if_held(group, me, |h| (h & !STEP_BITS) | bits);
        }
    }
}
