//! Reclaiming what dead processes left: entries of dead owners or expired
//! leases, and the claims and home locks of dead writers.

use super::control::{SlotState, disp_of, state_of, token_of, version};
use super::ring::{Change, ChangeKind};
use super::{GROUP, Owner, Step, Table, TableError, WriteContext, WriteHooks, hdr, lease};
use crate::error::Liveness;
use crate::sync::{AtomicU64, Ordering};

impl<S: AsRef<[AtomicU64]>> Table<S> {
    /// Counts claimed slots and held home locks whose writer `is_dead` says is dead.
    pub(crate) fn stuck(&self, mut is_dead: impl FnMut(u32) -> bool) -> usize {
        let mut n = 0;
        for slot in 0..self.g.capacity {
            let c = self.ctrl(slot).load(Ordering::Relaxed);
            if state_of(c) == SlotState::Claimed && is_dead(token_of(c)) {
                n += 1;
            }
        }
        for g in 0..self.g.groups() {
            let h = (self.home(g).load(Ordering::Relaxed) >> 32) as u32;
            if h != 0 && is_dead(h) {
                n += 1;
            }
        }
        n
    }

    /// Removes the entry in `slot` if it still is exactly what `seen` says (a
    /// control word observed by a reader that judged its owner dead).
    pub(crate) fn reclaim<E: WriteContext>(
        &self,
        slot: usize,
        seen: u64,
        env: &E,
    ) -> Result<bool, TableError> {
        self.reclaim_with(slot, seen, env, true)
    }

    /// Like [`reclaim`](Self::reclaim) but never waits: if another writer
    /// holds the neighbourhood lock, it does nothing (for readers).
    pub(crate) fn try_reclaim<E: WriteContext>(&self, slot: usize, seen: u64, env: &E) -> bool {
        self.reclaim_with(slot, seen, env, false).unwrap_or(false)
    }

    fn reclaim_with<E: WriteContext>(
        &self,
        slot: usize,
        seen: u64,
        env: &E,
        wait: bool,
    ) -> Result<bool, TableError> {
        if state_of(seen) != SlotState::Live {
            return Ok(false);
        }
        // `disp` comes from shared memory: wrap, never underflow.
        let d = disp_of(seen);
        let home = (slot / GROUP).wrapping_sub(d * (d + 1) / 2) & self.gmask;
        let lock = if wait {
            self.lock_home(home, env)?
        } else {
            match self.try_lock_home(home, env) {
                Some(l) => l,
                None => return Ok(false),
            }
        };
        if env.crash_at(Step::ReclaimLocked) {
            return Err(lock.abandon());
        }
        // The row may be reused as soon as it is tombstoned: copy the key first.
        let head = self.copy_head(slot, seen);
        let key = self.row_key(slot, &head);
        if !self.tombstone(slot, seen) {
            return Ok(false);
        }
        self.recompute_step(home, d, env.token());
        let ch = Change {
            kind: gone_kind(self.read_lease(slot), env),
            key,
            pid: head.owner.pid,
            version: version(seen) as u32,
            at: 0, // taken only if recorded
        };
        self.committed(hdr::RECLAIMED, ch, env);
        drop(lock);
        Ok(true)
    }

    /// Reclaims every entry whose owner is dead and every slot or lock left by
    /// a dead writer. Returns how many entries and slots were reclaimed.
    pub(crate) fn sweep<E: WriteContext>(&self, env: &E) -> Result<usize, TableError> {
        let mut n = 0;
        // 1. Locks held by dead writers: steal, which also frees their claims.
        for g in 0..self.g.groups() {
            let holder = (self.home(g).load(Ordering::Relaxed) >> 32) as u32;
            if holder != 0 && holder != env.token() && env.writer_liveness(holder) == Liveness::Dead
            {
                // A live writer may have taken it meanwhile: skip, don't fail.
                drop(self.lock_home(g, env));
            }
        }
        // 2. Claims of dead writers elsewhere.
        let mut verdicts: Vec<(u32, Liveness)> = Vec::new();
        for slot in 0..self.g.capacity {
            let freed = self.free_if_claimed_by(slot, |t| {
                if t == env.token() {
                    return false;
                }
                let v = match verdicts.iter().find(|(tk, _)| *tk == t) {
                    Some((_, v)) => *v,
                    None => {
                        let v = env.writer_liveness(t);
                        verdicts.push((t, v));
                        v
                    }
                };
                v == Liveness::Dead
            });
            n += freed as usize;
        }
        // 3. Entries of dead owners.
        // A slot that keeps changing, or a neighbourhood held by a live
        // writer, is skipped: the rest is still swept (the next sweep retries).
        // Each owner is judged once per sweep (a /proc read each), however
        // many entries it holds.
        let mut dead = Vec::new();
        let mut judged: std::collections::HashMap<Owner, Liveness> = Default::default();
        let now = env.now_ms();
        let scanned = self.for_each_live(|slot, c, e| {
            let gone = lease::expired(e.lease, now)
                || *judged
                    .entry(e.owner)
                    .or_insert_with(|| env.owner_liveness(&e.owner))
                    == Liveness::Dead;
            if gone {
                dead.push((slot, c));
            }
            true
        });
        for (slot, c) in dead {
            n += self.reclaim(slot, c, env).unwrap_or(false) as usize;
        }
        scanned.map(|()| n)
    }
}

/// The kind of a reclaim: `Expired` when the lease ran out, else `Reclaimed`.
pub(super) fn gone_kind<E: WriteHooks>(lease: u64, env: &E) -> ChangeKind {
    if lease::expired(lease, env.now_ms()) {
        ChangeKind::Expired
    } else {
        ChangeKind::Reclaimed
    }
}
