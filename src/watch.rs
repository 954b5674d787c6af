//! Watching and reaping: [`Watcher`] streams committed changes in revision
//! order from the segment's change ring, sleeping on the change counter's
//! futex; [`Reaper`] reclaims the entries of owners as they die.

use crate::backend::{Backend, ChangeRead};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::types::{Event, EventKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// How often the reaper looks for new owners to watch.
const REFRESH_EVERY: Duration = Duration::from_millis(20);

/// How long a watcher waits for the record of a revision whose writer has
/// not written it (died or frozen between commit and record) before it
/// reports the revision as [`EventKind::Lost`].
pub(crate) const LOST_AFTER: Duration = Duration::from_millis(200);

/// A stream of the registry's committed changes, in revision order; made by
/// [`Registry::watch`]. Writers never wait for watchers: one that falls more
/// than the history's length behind gets [`Error::Lagged`].
pub struct Watcher<'r> {
    reg: &'r Registry,
    ns: Option<String>,
    /// Next revision to deliver.
    next: u64,
    /// Every change after this revision is recorded (it was attached then).
    recorded_after: u64,
    /// Since when `next` has been committed but not recorded.
    stalled_since: Option<Instant>,
}

impl std::fmt::Debug for Watcher<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("ns", &self.ns)
            .field("next", &self.next)
            .finish()
    }
}

impl<'r> Watcher<'r> {
    pub(crate) fn new(reg: &'r Registry, ns: Option<String>, from_revision: u64) -> Self {
        let recorded_after = reg.backend().attach_watcher();
        Watcher {
            reg,
            ns,
            next: from_revision.saturating_add(1),
            recorded_after,
            stalled_since: None,
        }
    }

    /// The revision of the last change delivered (or skipped).
    pub fn revision(&self) -> u64 {
        self.next - 1
    }

    /// The next change (of the watched namespace), waiting at most `timeout`
    /// for it. Sleeps on a futex: a change in any process wakes it at once.
    ///
    /// # Errors
    /// `Timeout`; `Lagged { missed }` when changes were overwritten before
    /// they were read (or happened before the watcher was attached); the
    /// watcher then continues after the latest revision.
    pub fn next(&mut self, timeout: Duration) -> Result<Event> {
        let b = self.reg.backend();
        let started = Instant::now();
        let mut spins = 0u32;
        loop {
            let seen = b.change_token();
            let head = b.revision();
            if self.next <= head {
                match b.read_change(self.next) {
                    ChangeRead::Ready(e) => {
                        self.next += 1;
                        self.stalled_since = None;
                        if e.kind == EventKind::Lost
                            || self.ns.as_deref().is_none_or(|ns| ns == e.namespace)
                        {
                            return Ok(e);
                        }
                        continue;
                    }
                    ChangeRead::Overwritten => return Err(self.lagged(head)),
                    ChangeRead::NotYet if self.next <= self.recorded_after => {
                        // Committed before this watcher attached: never recorded.
                        return Err(self.lagged(head));
                    }
                    ChangeRead::NotYet => {
                        // Committed, being recorded right now (or its writer
                        // died in between): wait a little, then give it up.
                        let since = *self.stalled_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= LOST_AFTER {
                            let e = Event {
                                revision: self.next,
                                kind: EventKind::Lost,
                                namespace: String::new(),
                                name: String::new(),
                                pid: 0,
                                version: 0,
                                at: UNIX_EPOCH,
                            };
                            self.next += 1;
                            self.stalled_since = None;
                            return Ok(e);
                        }
                        spins += 1;
                        if spins < 64 {
                            std::hint::spin_loop();
                        } else {
                            std::thread::sleep(Duration::from_micros(50));
                        }
                    }
                }
            } else {
                let left = timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(Error::Timeout {
                        what: format!("a change after revision {}", self.next - 1),
                        waited: started.elapsed(),
                    });
                }
                // The next round reports the change, or the timeout.
                b.wait_change(seen, left);
            }
        }
    }

    fn lagged(&mut self, head: u64) -> Error {
        let missed = head + 1 - self.next;
        self.next = head + 1;
        self.stalled_since = None;
        Error::Lagged { missed }
    }
}

impl Drop for Watcher<'_> {
    fn drop(&mut self) {
        self.reg.backend().detach_watcher();
    }
}

impl Iterator for Watcher<'_> {
    type Item = Result<Event>;
    /// Blocks until the next change; never ends.
    fn next(&mut self) -> Option<Result<Event>> {
        loop {
            match Watcher::next(self, Duration::from_secs(3600)) {
                Err(Error::Timeout { .. }) => continue,
                other => return Some(other),
            }
        }
    }
}

/// A thread that reclaims the entries of owners as they die; made by
/// [`Registry::spawn_reaper`]. Stops (and joins) on [`Reaper::stop`] or drop.
pub struct Reaper {
    stop: Option<std::io::PipeWriter>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
    reclaimed: Arc<AtomicU64>,
}

impl std::fmt::Debug for Reaper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reaper")
            .field("reclaimed", &self.reclaimed())
            .finish()
    }
}

impl Reaper {
    pub(crate) fn spawn(reg: Registry, interval: Duration) -> Result<Reaper> {
        let (stop_rx, stop_tx) =
            std::io::pipe().map_err(|e| Error::io("cannot create the reaper's stop pipe", e))?;
        let reclaimed = Arc::new(AtomicU64::new(0));
        let count = reclaimed.clone();
        let thread = std::thread::Builder::new()
            .name("procreg-reaper".into())
            .spawn(move || reap(&reg, interval, &stop_rx, &count))
            .map_err(|e| Error::io("cannot start the reaper thread", e))?;
        Ok(Reaper {
            stop: Some(stop_tx),
            thread: Some(thread),
            reclaimed,
        })
    }

    /// Entries this reaper reclaimed so far.
    pub fn reclaimed(&self) -> u64 {
        self.reclaimed.load(Ordering::Relaxed)
    }

    /// Stops the thread and returns what ended it (`Ok` when stopped).
    ///
    /// # Errors
    /// The error that stopped the reaper early, if any.
    pub fn stop(mut self) -> Result<u64> {
        self.halt()?;
        Ok(self.reclaimed())
    }

    fn halt(&mut self) -> Result<()> {
        drop(self.stop.take()); // the reader sees end-of-file and returns
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Busy("the reaper thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// The reaper's loop: keeps a pidfd per distinct owner pid of the registry
/// (refreshed when the registry changed, checked every 20 ms), sleeps in
/// `poll` on them and the stop pipe, and sweeps when an owner exits, when a
/// pid could not be opened (already gone), and every `interval` anyway
/// (owners whose death a pidfd cannot report: other PID namespaces, kernels
/// without pidfd_open).
fn reap(
    reg: &Registry,
    interval: Duration,
    stop: &std::io::PipeReader,
    count: &AtomicU64,
) -> Result<()> {
    use crate::sys::{pidfd::PidWatch, poll::wait_readable};
    use std::collections::HashMap;
    use std::os::fd::AsFd;
    let b = reg.backend();
    let mut watched: HashMap<u32, PidWatch> = HashMap::new();
    let mut seen_changes = u64::MAX;
    let mut last_sweep = Instant::now();
    let mut sweep_now = true;
    loop {
        let token = b.change_token();
        if token >> 1 != seen_changes >> 1 {
            seen_changes = token;
            let mut pids = std::collections::HashSet::new();
            reg.visit(None, &mut |e| {
                pids.insert(e.info.pid);
                true
            })?;
            watched.retain(|pid, _| pids.contains(pid));
            for pid in pids {
                if let std::collections::hash_map::Entry::Vacant(v) = watched.entry(pid) {
                    match PidWatch::open(pid) {
                        Ok(Some(w)) => {
                            v.insert(w);
                        }
                        Ok(None) => sweep_now = true, // already gone
                        Err(_) => {}                  // no pidfd here: periodic sweeps
                    }
                }
            }
        }
        if sweep_now || last_sweep.elapsed() >= interval {
            let n = reg.sweep()?;
            count.fetch_add(n as u64, Ordering::Relaxed);
            last_sweep = Instant::now();
            sweep_now = false;
        }
        let order: Vec<u32> = watched.keys().copied().collect();
        let fds: Vec<_> = std::iter::once(stop.as_fd())
            .chain(order.iter().map(|p| watched[p].as_fd()))
            .collect();
        // Short naps: new owners (a moved change counter) get their pidfd
        // within one nap, which is also the bound on noticing them die.
        let wait = interval
            .saturating_sub(last_sweep.elapsed())
            .min(REFRESH_EVERY);
        let ready = wait_readable(&fds, wait)
            .map_err(|e| Error::io("poll on the reaper's pidfds failed", e))?;
        if ready.first() == Some(&0) {
            return Ok(()); // stop pipe: closed by Reaper::stop or drop
        }
        if !ready.is_empty() {
            sweep_now = true;
            // Exited processes stay readable: forget them now.
            for i in ready {
                if let Some(pid) = order.get(i - 1) {
                    watched.remove(pid);
                }
            }
        }
    }
}
