//! A watch stream over the table's change ring: revisions are dense, so the
//! stream walks them one by one; a revision committed but never recorded
//! (its writer died or froze in between) is reported as `Lost` after a
//! bounded wait.

use super::convert::event_of;
use crate::backend::EventStream;
use crate::error::{Error, Result};
use crate::sync::AtomicU64;
use crate::table::Table;
use crate::table::ring::RingRead;
use crate::types::{Event, EventKind};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// How long a stream waits for the record of a revision whose writer has
/// not written it (died or frozen between commit and record) before it
/// reports the revision as [`EventKind::Lost`].
pub(crate) const LOST_AFTER: Duration = Duration::from_millis(200);

pub(super) struct RingStream<S: AsRef<[AtomicU64]>> {
    table: Table<S>,
    ns: Option<String>,
    /// Next revision to deliver.
    next: u64,
    /// Every change after this revision is recorded (it was attached then).
    recorded_after: u64,
    /// Since when `next` has been committed but not recorded.
    stalled_since: Option<Instant>,
}

impl<S: AsRef<[AtomicU64]>> RingStream<S> {
    pub(super) fn new(table: Table<S>, ns: Option<String>, from_revision: u64) -> Self {
        let recorded_after = table.attach_watcher();
        RingStream {
            table,
            ns,
            next: from_revision.saturating_add(1),
            recorded_after,
            stalled_since: None,
        }
    }

    fn lagged(&mut self, head: u64) -> Error {
        let missed = head + 1 - self.next;
        self.next = head + 1;
        self.stalled_since = None;
        Error::Lagged { missed }
    }

    fn lost(&mut self) -> Event {
        let e = Event {
            revision: self.next,
            kind: EventKind::Lost,
            namespace: String::new(),
            name: String::new(),
            pid: 0,
            host: String::new(),
            version: 0,
            at: UNIX_EPOCH,
            member: false,
        };
        self.next += 1;
        self.stalled_since = None;
        e
    }
}

impl<S: AsRef<[AtomicU64]>> Drop for RingStream<S> {
    fn drop(&mut self) {
        self.table.detach_watcher();
    }
}

impl<S: AsRef<[AtomicU64]> + Send> EventStream for RingStream<S> {
    fn revision(&self) -> u64 {
        self.next - 1
    }

    fn next(&mut self, timeout: Duration) -> Result<Event> {
        let started = Instant::now();
        let mut spins = 0u32;
        loop {
            let seen = self.table.changes_word();
            let head = self.table.revision();
            if self.next > head {
                let left = timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(Error::Timeout {
                        what: format!("a change after revision {}", self.next - 1),
                        waited: started.elapsed(),
                    });
                }
                // The next round reports the change, or the timeout.
                self.table.sleep_on_changes(seen, left);
                continue;
            }
            match self.table.read_change(self.next) {
                RingRead::Ready(c) => {
                    let e = event_of(c);
                    self.next += 1;
                    self.stalled_since = None;
                    if e.kind == EventKind::Lost
                        || self.ns.as_deref().is_none_or(|ns| ns == e.namespace)
                    {
                        return Ok(e);
                    }
                }
                RingRead::Overwritten { .. } => return Err(self.lagged(head)),
                // Committed before this stream attached: never recorded.
                RingRead::NotYet if self.next <= self.recorded_after => {
                    return Err(self.lagged(head));
                }
                RingRead::NotYet => {
                    // Committed, being recorded right now (or its writer
                    // died in between): wait a little, then give it up.
                    let since = *self.stalled_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= LOST_AFTER {
                        return Ok(self.lost());
                    }
                    spins += 1;
                    if spins < 64 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
            }
        }
    }
}
