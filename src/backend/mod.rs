//! The one storage interface. The [`Registry`](crate::Registry) facade calls
//! nothing else: every operation goes through [`Backend`].
//!
//! The trait speaks of keys, owners, entries, revisions, leases and watch
//! streams, nothing of how a backend stores them, so a networked backend
//! implements it without the hash table, the segment or the OS layer.
//! `shm` and `mem` are the same hash table over different storage (a mapped
//! file, or heap memory) and share [`table_backend::TableBackend`].
//!
//! Adding a backend: one folder under `src/backend/`, one variant of
//! [`AnyBackend`] (and its arm in `dispatch!`), one scheme in [`open`], and
//! the compliance suite (`tests/compliance.rs`) run against it.

#[cfg(feature = "etcd")]
pub mod etcd;
pub(crate) mod mem;
mod open;
pub(crate) mod reap;
pub(crate) mod shm;
pub(crate) mod table_backend;

pub use open::{
    DEFAULT_CAPACITY, DEFAULT_LOCK_TIMEOUT, DEFAULT_MAX_METADATA_LEN, DEFAULT_MAX_NAME_LEN,
    DEFAULT_MAX_NAMESPACE_LEN, DEFAULT_MAX_SEGMENT_BYTES, DEFAULT_MAX_WRITERS, DEFAULT_MODE,
};
pub(crate) use open::{OpenMode, Options, Secret, destroy, open, redact_url, shm_dir};

use crate::error::{Liveness, Result};
use crate::types::{Entry, EntryInfo, EntryRef, Event, Health, Limits, Stats};
use std::sync::Arc;
use std::time::Duration;

/// A key the facade validated against the backend's [`Limits`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<'a> {
    pub(crate) ns: &'a str,
    /// A unique name, or a group member's stored name (`GROUP\0PID`, see
    /// `groups`) when `member` is set.
    pub(crate) name: &'a str,
    /// A group member's key. Members and unique keys are separate
    /// keyspaces: a unique key never finds a member, whatever its bytes.
    pub(crate) member: bool,
}

impl<'a> Key<'a> {
    /// A unique key.
    #[inline(always)]
    pub(crate) fn unique(ns: &'a str, name: &'a str) -> Self {
        Key {
            ns,
            name,
            member: false,
        }
    }

    /// A group member's key: `name` is its stored name, `GROUP\0PID`.
    #[inline]
    pub(crate) fn member(ns: &'a str, name: &'a str) -> Self {
        Key {
            ns,
            name,
            member: true,
        }
    }
}

/// What a cached answer rests on: made by a backend whose state it can
/// re-check in a load or two (`shm`, `mem`), opaque to everyone else.
pub(crate) type Proof = crate::table::Seen;

/// What the facade counts of a fast-path answer (`lookup_pid_quick`), as
/// a type: a backend calls it inline, with no argument at run time. Each
/// returns false when it cannot count here; the backend then answers
/// `None` and the facade takes (and counts) the full path.
pub(crate) trait Tally {
    fn hit() -> bool;
    fn miss() -> bool;
}

/// Who is to own an entry: the calling process, or a process of this host
/// by pid. "The caller" needs no pid, so the backend can use what it knows
/// of this process without a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    Me,
    Pid(u32),
}

/// A user's `on_event` callback.
pub(crate) type Hook = Arc<dyn Fn(&Event) + Send + Sync>;

/// A stream of committed changes in revision order, made by
/// [`Backend::watch`].
pub(crate) trait EventStream: Send {
    /// The next change (of the watched namespace), waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout`; `Lagged { missed }` when changes were lost to the stream
    /// (it then continues after the latest revision); the backend's errors.
    fn next(&mut self, timeout: Duration) -> Result<Event>;
    /// The revision of the last change delivered (or skipped).
    fn revision(&self) -> u64;
}

/// Every storage operation of the registry.
///
/// Allocation: `lookup_pid`, `lookup_into` and `visit` allocate nothing per
/// call (per entry, for `visit`) on `shm` and `mem`; the etcd backend
/// allocates for its requests. Every call is bounded in time.
pub(crate) trait Backend: Send + Sync {
    /// `"shm"`, `"mem"`, ...
    fn kind(&self) -> &'static str;
    /// Limits the facade validates against; fixed for the handle's life.
    fn limits(&self) -> Limits;
    /// Registers `key` for `who`, a process of this host (the backend
    /// records its identity and judges its liveness). An entry whose owner
    /// is dead is replaced. With a `lease`, the entry expires unless renewed
    /// within it.
    fn register(
        &self,
        key: Key<'_>,
        who: Who,
        metadata: &[u8],
        lease: Option<Duration>,
    ) -> Result<u64>;
    /// Renews the lease of `key`.
    fn keepalive(&self, key: Key<'_>) -> Result<()>;
    fn lookup(&self, key: Key<'_>) -> Result<Option<Entry>>;
    fn lookup_pid(&self, key: Key<'_>) -> Result<Option<u32>>;
    /// The answer of `lookup_pid` of the unique key `(ns, name)` when the
    /// backend has it at once, without any error: `Some(Some(pid))`,
    /// `Some(None)` (a miss), or `None`, which sends the facade down the
    /// full path (`lookup_pid`). The two parts come as they are, not as a
    /// [`Key`], so that they arrive in registers. The key is not
    /// validated: a key with a NUL byte, an empty part or one longer than
    /// the limits may come here and must not give `Some(None)`.
    /// `T` counts the answer (`None` when it cannot). Loads only; allocates
    /// nothing.
    fn lookup_pid_quick<T: Tally>(&self, ns: &str, name: &str) -> Option<Option<u32>>
    where
        Self: Sized,
    {
        let _ = (ns, name);
        None
    }
    /// `lookup_pid_quick` of a prepared key (not checked against the
    /// limits either).
    fn lookup_pid_key_quick<T: Tally>(&self, key: &crate::Key) -> Option<Option<u32>>
    where
        Self: Sized,
    {
        let _ = key;
        None
    }
    /// `lookup_pid` of a prepared key (whose lengths the facade checked).
    fn lookup_pid_key(&self, key: &crate::Key) -> Result<Option<u32>> {
        self.lookup_pid(key.as_key())
    }
    /// `lookup` of a prepared key.
    fn lookup_key(&self, key: &crate::Key) -> Result<Option<Entry>> {
        self.lookup(key.as_key())
    }
    /// `lookup_pid_key`, with what a hit rests on where the backend can
    /// later prove cheaply that it still holds ([`proof_holds`](Self::proof_holds)).
    fn lookup_pid_proved(&self, key: &crate::Key) -> Result<Option<(u32, Option<Proof>)>> {
        Ok(self.lookup_pid_key(key)?.map(|pid| (pid, None)))
    }
    /// `lookup_key`, with what a hit rests on (as `lookup_pid_proved`).
    fn lookup_proved(&self, key: &crate::Key) -> Result<Option<(Entry, Option<Proof>)>> {
        Ok(self.lookup_key(key)?.map(|e| (e, None)))
    }
    /// Whether an answer resting on `proof` (made by this backend) still
    /// holds: nothing changed the entry since. Loads only, allocates nothing.
    fn proof_holds(&self, proof: &Proof) -> bool {
        let _ = proof;
        false
    }
    /// Like `lookup` without allocating: the metadata goes to
    /// `meta[..metadata_len]` only when it fits; the caller compares
    /// `metadata_len` with its buffer. `meta` may be scribbled on also when
    /// nothing is found.
    fn lookup_into(&self, key: Key<'_>, meta: &mut [u8]) -> Result<Option<EntryInfo>>;
    /// The liveness of `key`'s owner, judged now; changes nothing.
    fn owner_liveness(&self, key: Key<'_>) -> Result<Option<Liveness>>;
    /// Like `lookup`, but an entry whose owner is dead is reclaimed and missed.
    fn lookup_checked(&self, key: Key<'_>) -> Result<Option<Entry>>;
    fn unregister(&self, key: Key<'_>, only_pid: Option<u32>) -> Result<bool>;
    fn update_metadata(&self, key: Key<'_>, metadata: &[u8]) -> Result<u64>;
    /// Every entry, or those of one namespace, sorted by (namespace, name).
    fn list(&self, ns: Option<&str>) -> Result<Vec<Entry>>;
    /// [`list`](Self::list) with each owner's liveness as
    /// [`owner_liveness`](Self::owner_liveness) would judge it now. This
    /// default judges entry by entry (local and cheap on `shm`/`mem`); a
    /// backend whose `owner_liveness` is a round trip judges the listed
    /// records instead, so the whole costs one read.
    fn list_judged(&self, ns: Option<&str>) -> Result<Vec<(Entry, Liveness)>> {
        let mut out = Vec::new();
        for e in self.list(ns)? {
            let key = Key {
                ns: &e.namespace,
                name: &e.name,
                member: crate::groups::is_member_name(e.name.as_bytes()),
            };
            // Gone since the list: judged dead, as a reclaimed owner is.
            let l = self.owner_liveness(key)?.unwrap_or(Liveness::Dead);
            out.push((e, l));
        }
        Ok(out)
    }
    /// Calls `f` with a borrowed copy of every entry (of `ns`, or all), in no
    /// particular order, until it returns false.
    fn visit(&self, ns: Option<&str>, f: &mut dyn FnMut(&EntryRef<'_>) -> bool) -> Result<()>;
    fn clear_namespace(&self, ns: &str) -> Result<usize>;
    /// The latest committed revision.
    fn revision(&self) -> Result<u64>;
    /// Waits until `key` is registered by a live owner, without polling;
    /// `None` when `timeout` passes first.
    fn wait_for(&self, key: Key<'_>, timeout: Duration) -> Result<Option<Entry>>;
    /// The changes of `ns` (or of all) after `from_revision`.
    fn watch(&self, ns: Option<&str>, from_revision: u64) -> Result<Box<dyn EventStream>>;
    fn stats(&self) -> Result<Stats>;
    fn health(&self) -> Result<Health>;
    /// Cleanup: reclaims entries of dead owners (and leftovers of dead
    /// writers, where the backend has such); returns how many.
    fn sweep(&self) -> Result<usize>;
    /// Cleanup, for a reaper: the sorted distinct pids of this host that
    /// own entries, with an opaque mark of the state they were read at;
    /// `None` when nothing changed since the mark `since`.
    fn local_owners(&self, since: Option<u64>) -> Result<Option<(Vec<u32>, u64)>>;
    /// Called with every change this handle commits, after the operation.
    fn set_hook(&self, hook: Option<Hook>);
}

/// The backends this build has, dispatched statically: the facade still goes
/// through [`Backend`] for every operation, but a lookup can be inlined whole
/// (no indirect call on the hit path). A clone is another view of the same
/// registry (same writer identity, hook and connection).
#[derive(Clone)]
pub(crate) enum AnyBackend {
    Shm(shm::ShmBackend),
    Mem(mem::MemBackend),
    #[cfg(feature = "etcd")]
    Etcd(etcd::registry::EtcdRegistry),
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            AnyBackend::Shm($b) => $e,
            AnyBackend::Mem($b) => $e,
            #[cfg(feature = "etcd")]
            AnyBackend::Etcd($b) => $e,
        }
    };
}

impl Backend for AnyBackend {
    fn kind(&self) -> &'static str {
        dispatch!(self, b => b.kind())
    }
    fn limits(&self) -> Limits {
        dispatch!(self, b => b.limits())
    }
    fn register(
        &self,
        key: Key<'_>,
        who: Who,
        metadata: &[u8],
        lease: Option<Duration>,
    ) -> Result<u64> {
        dispatch!(self, b => b.register(key, who, metadata, lease))
    }
    fn keepalive(&self, key: Key<'_>) -> Result<()> {
        dispatch!(self, b => b.keepalive(key))
    }
    fn lookup(&self, key: Key<'_>) -> Result<Option<Entry>> {
        dispatch!(self, b => b.lookup(key))
    }
    #[inline(always)]
    fn lookup_pid(&self, key: Key<'_>) -> Result<Option<u32>> {
        dispatch!(self, b => b.lookup_pid(key))
    }
    fn lookup_into(&self, key: Key<'_>, meta: &mut [u8]) -> Result<Option<EntryInfo>> {
        dispatch!(self, b => b.lookup_into(key, meta))
    }
    #[inline(always)]
    fn lookup_pid_quick<T: Tally>(&self, ns: &str, name: &str) -> Option<Option<u32>> {
        dispatch!(self, b => b.lookup_pid_quick::<T>(ns, name))
    }
    #[inline(always)]
    fn lookup_pid_key_quick<T: Tally>(&self, key: &crate::Key) -> Option<Option<u32>> {
        dispatch!(self, b => b.lookup_pid_key_quick::<T>(key))
    }
    fn lookup_pid_key(&self, key: &crate::Key) -> Result<Option<u32>> {
        dispatch!(self, b => b.lookup_pid_key(key))
    }
    fn lookup_key(&self, key: &crate::Key) -> Result<Option<Entry>> {
        dispatch!(self, b => b.lookup_key(key))
    }
    fn lookup_pid_proved(&self, key: &crate::Key) -> Result<Option<(u32, Option<Proof>)>> {
        dispatch!(self, b => b.lookup_pid_proved(key))
    }
    fn lookup_proved(&self, key: &crate::Key) -> Result<Option<(Entry, Option<Proof>)>> {
        dispatch!(self, b => b.lookup_proved(key))
    }
    #[inline(always)]
    fn proof_holds(&self, proof: &Proof) -> bool {
        dispatch!(self, b => b.proof_holds(proof))
    }
    fn owner_liveness(&self, key: Key<'_>) -> Result<Option<Liveness>> {
        dispatch!(self, b => b.owner_liveness(key))
    }
    fn lookup_checked(&self, key: Key<'_>) -> Result<Option<Entry>> {
        dispatch!(self, b => b.lookup_checked(key))
    }
    fn unregister(&self, key: Key<'_>, only_pid: Option<u32>) -> Result<bool> {
        dispatch!(self, b => b.unregister(key, only_pid))
    }
    fn update_metadata(&self, key: Key<'_>, metadata: &[u8]) -> Result<u64> {
        dispatch!(self, b => b.update_metadata(key, metadata))
    }
    fn list_judged(&self, ns: Option<&str>) -> Result<Vec<(Entry, Liveness)>> {
        dispatch!(self, b => b.list_judged(ns))
    }
    fn list(&self, ns: Option<&str>) -> Result<Vec<Entry>> {
        dispatch!(self, b => b.list(ns))
    }
    fn visit(&self, ns: Option<&str>, f: &mut dyn FnMut(&EntryRef<'_>) -> bool) -> Result<()> {
        dispatch!(self, b => b.visit(ns, f))
    }
    fn clear_namespace(&self, ns: &str) -> Result<usize> {
        dispatch!(self, b => b.clear_namespace(ns))
    }
    fn revision(&self) -> Result<u64> {
        dispatch!(self, b => b.revision())
    }
    fn wait_for(&self, key: Key<'_>, timeout: Duration) -> Result<Option<Entry>> {
        dispatch!(self, b => b.wait_for(key, timeout))
    }
    fn watch(&self, ns: Option<&str>, from_revision: u64) -> Result<Box<dyn EventStream>> {
        dispatch!(self, b => b.watch(ns, from_revision))
    }
    fn stats(&self) -> Result<Stats> {
        dispatch!(self, b => b.stats())
    }
    fn health(&self) -> Result<Health> {
        dispatch!(self, b => b.health())
    }
    fn sweep(&self) -> Result<usize> {
        dispatch!(self, b => b.sweep())
    }
    fn local_owners(&self, since: Option<u64>) -> Result<Option<(Vec<u32>, u64)>> {
        dispatch!(self, b => b.local_owners(since))
    }
    fn set_hook(&self, hook: Option<Hook>) {
        dispatch!(self, b => b.set_hook(hook))
    }
}
