//! What a write operation needs from its caller, and where it can be made
//! to crash.

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

/// The context of one write operation as the table sees it: who writes
/// ([`Writer`]), how it judges who is dead ([`LivenessJudge`]), and its
/// clocks, crash points and commit notice ([`WriteHooks`]). Every type with
/// the three parts is one; the writers take `&impl WriteContext`.
pub(crate) trait WriteContext: Writer + LivenessJudge + WriteHooks {}

impl<T: Writer + LivenessJudge + WriteHooks> WriteContext for T {}

/// The writer of one operation: its identity, and how long it may wait.
pub(crate) trait Writer {
    /// This writer's token (non-zero, at most [`MAX_TOKEN`](super::MAX_TOKEN)):
    /// the holder recorded in the home locks it takes and the slots it claims.
    fn token(&self) -> u32;
    /// Called while waiting for a home lock; true gives up with `Busy`.
    fn give_up(&self, spins: u64) -> bool;
}

/// How a writer judges liveness: a lock or claim of a dead writer may be
/// taken over, and an entry of a dead owner may be replaced or reclaimed.
pub(crate) trait LivenessJudge {
    /// Whether the writer holding `token` still runs.
    fn writer_liveness(&self, token: u32) -> Liveness;
    /// Whether an entry's owner still runs.
    fn owner_liveness(&self, owner: &Owner) -> Liveness;
}

/// The clocks a write reads, the points where a crash can be injected, and
/// the notice of each commit. The defaults read no clock (leases never
/// expire, records carry time 0), never crash and record nothing.
pub(crate) trait WriteHooks {
    /// Wall-clock time for change records, ns since the Unix epoch.
    fn now(&self) -> u64 {
        0
    }
    /// Now on the boot clock, in milliseconds, for leases (0: leases never expire).
    fn now_ms(&self) -> u64 {
        0
    }
    /// Fault injection: return true to stop the writer here, as if killed.
    fn crash_at(&self, _step: Step) -> bool {
        false
    }
    /// Told of every change this writer committed (with its home lock
    /// still held: record it, do not call out).
    fn on_commit(&self, _revision: u64, _change: &Change<'_>) {}
}
