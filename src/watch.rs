//! Watching and reaping: [`Registry::watch`] and [`Registry::spawn_reaper`].
//! A [`Watcher`] streams committed changes in revision order from its
//! backend's stream; a [`Reaper`] reclaims the entries of owners as they die.
//! Both hold a clone of the [`Registry`].

use crate::backend::Backend;
use crate::backend::{EventStream, reap};
use crate::error::{Error, Result};
use crate::registry::{Registry, check_part};
use crate::types::Event;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

impl Registry {
    /// Watches the changes of namespace `ns` (or of all, with `None`) after
    /// revision `from_revision`: `watch(None, reg.revision()?)` sees every
    /// change from now on. The watcher holds a clone of this registry. On
    /// `shm:`/`mem:` changes are recorded only while a watcher is attached,
    /// and the history holds the segment's capacity in changes (at least
    /// 256, at most 65,536); an older `from_revision` first gives `Lagged`
    /// (then resynchronise with `list`). Joins and leaves of group members
    /// come as events with `member == true` and `name` = the group.
    ///
    /// # Errors
    /// `InvalidKey` for a bad namespace; the backend's.
    pub fn watch(&self, ns: Option<&str>, from_revision: u64) -> Result<Watcher> {
        if let Some(ns) = ns {
            check_part("namespace", ns, self.limits().max_namespace_len)?;
        }
        let stream = self.backend_ref().watch(ns, from_revision)?;
        Ok(Watcher::new(self.clone(), stream))
    }

    /// Starts a thread that reclaims the entries of owners soon after they
    /// die: it holds a pidfd per owner of this host and sweeps when one
    /// exits (within milliseconds), and sweeps every `interval` anyway
    /// (owners in other PID namespaces, kernels without pidfds). Several
    /// reapers in several processes may run at once; each entry is reclaimed
    /// (and reported) once. The reaper holds a clone of this registry.
    ///
    /// # Errors
    /// `InvalidArgument` for a zero interval; `Io`.
    pub fn spawn_reaper(&self, interval: Duration) -> Result<Reaper> {
        if interval.is_zero() {
            return Err(Error::InvalidArgument(
                "the reaper's interval must be positive".into(),
            ));
        }
        Reaper::spawn(self.clone(), interval)
    }
}

/// A stream of the registry's committed changes, in revision order; made by
/// [`Registry::watch`]. Writers never wait for watchers: one that falls too
/// far behind gets [`Error::Lagged`].
pub struct Watcher {
    stream: Box<dyn EventStream>,
    /// Keeps the registry (its mapping or connection) alive.
    _reg: Registry,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("revision", &self.stream.revision())
            .finish()
    }
}

impl Watcher {
    pub(crate) fn new(reg: Registry, stream: Box<dyn EventStream>) -> Self {
        Watcher { stream, _reg: reg }
    }

    /// The revision of the last change delivered (or skipped).
    pub fn revision(&self) -> u64 {
        self.stream.revision()
    }

    /// The next change (of the watched namespace), waiting at most `timeout`
    /// for it. Never polls: a change in any process wakes it at once.
    ///
    /// # Errors
    /// `Timeout`; `Lagged { missed }` when changes were lost before they
    /// were read (or happened before the watcher was attached); the watcher
    /// then continues after the latest revision.
    pub fn next(&mut self, timeout: Duration) -> Result<Event> {
        self.stream.next(timeout).map(crate::groups::decode_event)
    }
}

impl Iterator for Watcher {
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
            .spawn(move || reap::run(reg.backend_ref(), interval, &stop_rx, &count))
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

    /// Stops the thread and returns how many entries it reclaimed.
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
