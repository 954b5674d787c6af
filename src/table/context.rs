//! What a write operation needs from its surroundings.

use super::Owner;
use super::ring::Change;
use crate::error::Liveness;

/// Named points in the writers where a crash can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Insert: home lock taken.
    InsertLocked,
    /// Insert: slot claimed, row not written.
    InsertClaimed,
    /// Insert: row written, not published.
    InsertWritten,
    /// Remove: tombstoned, reach of the home not recomputed.
    RemoveTombstoned,
    /// Update: the inactive buffer's write sequence turned odd, the buffer
    /// half written.
    UpdateWriting,
    /// Update: inactive buffer written, not flipped.
    UpdateWritten,
    /// Reclaim: home lock taken, entry not yet tombstoned.
    ReclaimLocked,
    /// Change ring: record written, not yet published (ring lock held).
    RingWritten,
}

/// What a writer needs from its surroundings.
pub(crate) trait Env {
    /// This writer's token (non-zero, at most [`MAX_TOKEN`](super::MAX_TOKEN)).
    fn token(&self) -> u32;
    /// Whether the writer holding `token` still runs.
    fn writer_liveness(&self, token: u32) -> Liveness;
    /// Whether an entry's owner still runs.
    fn owner_liveness(&self, owner: &Owner) -> Liveness;
    /// Fault injection: return true to stop the writer here, as if killed.
    fn crash_at(&self, _step: Step) -> bool {
        false
    }
    /// Called while waiting for a home lock; true gives up with `Busy`.
    fn give_up(&self, spins: u64) -> bool;
    /// Wall-clock time for change records, ns since the Unix epoch.
    fn now(&self) -> u64 {
        0
    }
    /// Told of every change this writer committed (with its home lock
    /// still held: record it, do not call out).
    fn on_commit(&self, _revision: u64, _change: &Change<'_>) {}
    /// Now on the boot clock, in milliseconds, for leases (0: leases never expire).
    fn now_ms(&self) -> u64 {
        0
    }
}
