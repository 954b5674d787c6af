//! Cached service references: a name resolved once and re-checked in a load
//! or two per call while nothing changes.

use crate::backend::{Backend, Proof};
use crate::error::Result;
use crate::key::Key;
use crate::registry::Registry;
use crate::types::Entry;

/// A cached reference to one service `(namespace, name)` of one registry,
/// from [`Registry::service`].
///
/// [`pid`](Self::pid) and [`entry`](Self::entry) answer from the cache while
/// the entry is unchanged, which they prove on `shm:` and `mem:` by loading
/// the entry's control word (any register, update, unregister or reclaim of
/// the slot moves its version) and the registry's change counter (which
/// shows the 32-bit version cannot have wrapped). When anything changed, or
/// the key was not registered, they look it up again through the prepared
/// key. So an answer is never older than the call: a `Service` never returns
/// the pid of an entry that was unregistered, replaced or reclaimed before
/// the call began.
///
/// * On `etcd://` there is no shared memory to re-check: every call is a
///   lookup (one linearizable read).
/// * An entry with a lease is never answered from the cache by
///   [`entry`](Self::entry): a renewal does not change its version, and the
///   lease's time left is as of the read. [`pid`](Self::pid) is cached.
/// * A `Service` keeps a clone of its registry handle, so it answers from
///   the registry that handle opened, like the handle itself: if that
///   segment is destroyed and another created under the same name, a
///   `Service` of the old handle keeps answering from the old segment.
/// * Cached answers are not counted in [`ProcessCounters`](crate::ProcessCounters);
///   the lookups behind them are.
/// * Like a lookup, the answer says nothing of the owner's liveness: see
///   [`Registry::lookup_checked`] and `sweep`.
///
/// ```
/// # use procreg::Registry;
/// let reg = Registry::open("mem:")?;
/// let mut db = reg.service("billing", "db")?;
/// assert_eq!(db.pid()?, None);
/// reg.register_self("billing", "db", b"port=5432")?;
/// assert_eq!(db.pid()?, Some(std::process::id()));
/// assert_eq!(db.entry()?.map(|e| e.metadata.clone()), Some(b"port=5432".to_vec()));
/// reg.unregister("billing", "db")?;
/// assert_eq!(db.pid()?, None);
/// # Ok::<(), procreg::Error>(())
/// ```
#[derive(Clone)]
pub struct Service {
    reg: Registry,
    key: Key,
    /// The cached pid and its proof; `Proof::NEVER` (which never holds)
    /// when nothing is cached, so `pid` tests no `Option` first.
    pid: (u32, Proof),
    /// The entry and, where the backend gives one, its proof.
    entry: Option<(Entry, Option<Proof>)>,
}

impl Service {
    pub(crate) fn new(reg: Registry, key: Key) -> Service {
        Service {
            reg,
            key,
            pid: (0, Proof::NEVER),
            entry: None,
        }
    }

    /// The owner pid, or `None` if the key is not registered.
    ///
    /// # Errors
    /// `Busy` (a writer kept changing the slot), `Unavailable` (etcd).
    #[inline]
    pub fn pid(&mut self) -> Result<Option<u32>> {
        let (pid, proof) = &self.pid;
        if self.reg.backend_ref().proof_holds(proof) {
            return Ok(Some(*pid));
        }
        self.resolve_pid()
    }

    #[inline(never)]
    fn resolve_pid(&mut self) -> Result<Option<u32>> {
        self.pid = (0, Proof::NEVER);
        // A miss has nothing to cache: the prepared key's fast lookup says
        // so; only a hit reads again, with what it rests on.
        if self.reg.lookup_pid_key(&self.key)?.is_none() {
            return Ok(None);
        }
        Ok(match self.reg.lookup_pid_proved(&self.key)? {
            Some((pid, proof)) => {
                self.pid = (pid, proof.unwrap_or(Proof::NEVER));
                Some(pid)
            }
            None => None,
        })
    }

    /// The entry, or `None` if the key is not registered. Borrowed from the
    /// cache: it allocates only when the entry changed.
    ///
    /// # Errors
    /// As [`pid`](Self::pid).
    pub fn entry(&mut self) -> Result<Option<&Entry>> {
        let fresh = match &self.entry {
            Some((_, Some(proof))) => self.reg.backend_ref().proof_holds(proof),
            // Nothing to re-check it by (etcd), or nothing cached.
            _ => false,
        };
        if !fresh {
            self.entry = self.reg.lookup_proved(&self.key)?;
        }
        Ok(self.entry.as_ref().map(|(e, _)| e))
    }

    /// The prepared key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The registry handle this service answers from.
    pub fn registry(&self) -> &Registry {
        &self.reg
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("registry", &self.reg.url())
            .field("namespace", &self.key.namespace())
            .field("name", &self.key.name())
            .finish_non_exhaustive()
    }
}
