//! The one storage interface. The [`Registry`](crate::Registry) facade calls
//! nothing else: every operation goes through [`Backend`].
//!
//! `shm` and `mem` are the same table over different storage (a mapped file,
//! or heap memory); they share [`TableBackend`] and differ only in where the
//! words live and in how writer identity and liveness are known ([`Writers`]).
//! The trait itself speaks of keys, owners and entries only, so a networked
//! backend (etcd, with leases) can implement it too.

pub(crate) mod mem;
pub(crate) mod shm;

use crate::error::{Error, Liveness, Result};
use crate::liveness;
use crate::sync::AtomicU64;
use crate::table::ring::{Change, ChangeKind, RawChange, RingRead};
use crate::table::{self, EntryHead, Env, Owner, RawEntry, Step, Table, TableError, key::KeyWords};
use crate::telemetry::{self, Op};
use crate::types::{
    Entry, Event, EventKind, Health, LivenessMode, OwnerCounts, Stats, time_from_ns,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A validated key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<'a> {
    pub(crate) ns: &'a str,
    pub(crate) name: &'a str,
}

/// Limits of a backend, for validation in the facade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Capacity in entries.
    pub capacity: usize,
    /// Longest namespace, in bytes.
    pub max_namespace_len: usize,
    /// Longest name, in bytes.
    pub max_name_len: usize,
    /// Longest metadata, in bytes.
    pub max_metadata_len: usize,
}

/// The fixed-size part of an entry, for copies into caller buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryInfo {
    pub(crate) pid: u32,
    pub(crate) registered_at_ns: u64,
    pub(crate) version: u64,
    /// Length of the entry's metadata (which may exceed the caller's buffer).
    pub(crate) metadata_len: usize,
}

/// One entry lent to a visitor; the views are valid during the call only.
/// `namespace` and `name` are raw bytes: valid UTF-8 without NUL unless a
/// hostile process wrote the segment.
#[derive(Debug)]
pub(crate) struct EntryRef<'a> {
    pub(crate) namespace: &'a [u8],
    pub(crate) name: &'a [u8],
    pub(crate) info: EntryInfo,
    pub(crate) metadata: &'a [u8],
}

/// Every storage operation of the registry.
pub(crate) trait Backend: Send + Sync {
    fn kind(&self) -> &'static str;
    fn limits(&self) -> Limits;
    /// Registers `key` for `owner` (already known alive). An entry whose owner
    /// is dead is replaced.
    /// `lease_ms` > 0: the entry expires unless renewed within that time.
    fn register(&self, key: Key<'_>, owner: &Owner, metadata: &[u8], lease_ms: u64) -> Result<u64>;
    /// Renews the lease of `key`.
    fn keepalive(&self, key: Key<'_>) -> Result<()>;
    fn lookup(&self, key: Key<'_>) -> Result<Option<Entry>>;
    /// Must not allocate.
    fn lookup_pid(&self, key: Key<'_>) -> Result<Option<u32>>;
    /// The liveness of `key`'s owner, judged now; changes nothing.
    fn owner_liveness(&self, key: Key<'_>) -> Result<Option<Liveness>>;
    /// Like `lookup`, but an entry whose owner is dead is reclaimed and missed.
    fn lookup_checked(&self, key: Key<'_>) -> Result<Option<Entry>>;
    fn unregister(&self, key: Key<'_>, only_pid: Option<u32>) -> Result<bool>;
    fn update_metadata(&self, key: Key<'_>, metadata: &[u8]) -> Result<u64>;
    /// Like `lookup` without allocating: the metadata goes to
    /// `meta[..metadata_len]` only when it fits; the caller compares
    /// `metadata_len` with its buffer. `meta` may be scribbled on also when
    /// nothing is found.
    fn lookup_into(&self, key: Key<'_>, meta: &mut [u8]) -> Result<Option<EntryInfo>>;
    /// Every entry, or those of one namespace.
    fn list(&self, ns: Option<&str>) -> Result<Vec<Entry>>;
    /// Calls `f` with a borrowed copy of every entry (of `ns`, or all), in no
    /// particular order, until it returns false. Allocates at most a few
    /// buffers per call, nothing per entry.
    fn visit(&self, ns: Option<&str>, f: &mut dyn FnMut(&EntryRef<'_>) -> bool) -> Result<()>;
    fn clear_namespace(&self, ns: &str) -> Result<usize>;
    fn sweep(&self) -> Result<usize>;
    fn stats(&self) -> Stats;
    fn health(&self) -> Result<Health>;
    /// The latest committed revision.
    fn revision(&self) -> u64;
    /// An opaque value that changes with every committed change, for
    /// `wait_change`. Read it *before* checking the awaited condition.
    fn change_token(&self) -> u64;
    /// Sleeps until a change after `seen` (a `change_token`), at most `timeout`.
    fn wait_change(&self, seen: u64, timeout: Duration);
    /// Starts recording changes for a watcher; returns the revision after
    /// which every change is recorded.
    fn attach_watcher(&self) -> u64;
    fn detach_watcher(&self);
    /// The change of revision `rev`.
    fn read_change(&self, rev: u64) -> ChangeRead;
    /// Called with every change this handle commits, after the operation.
    fn set_hook(&mut self, hook: Option<Hook>);
}

/// A user's `on_event` callback.
pub(crate) type Hook = Arc<dyn Fn(&Event) + Send + Sync>;

/// Result of reading one revision of the history.
#[derive(Debug)]
pub(crate) enum ChangeRead {
    Ready(Event),
    NotYet,
    /// Gone from the history: overwritten by a newer change.
    Overwritten,
}

/// How a table-backed backend knows writers.
pub(crate) trait Writers: Send + Sync {
    /// This process's writer token.
    fn token(&self) -> Result<u32>;
    /// This process's token if it has one already (never claims one).
    fn current_token(&self) -> Option<u32>;
    /// Whether the writer holding `token` runs.
    fn liveness(&self, token: u32) -> Liveness;
    fn mode(&self) -> LivenessMode;
}

/// The shared implementation of `shm` and `mem`.
pub(crate) struct TableBackend<S: AsRef<[AtomicU64]>, W: Writers> {
    pub(crate) table: Table<S>,
    pub(crate) writers: W,
    pub(crate) kind: &'static str,
    pub(crate) created_at_ns: u64,
    pub(crate) bytes: usize,
    pub(crate) lock_timeout: Duration,
    pub(crate) hook: Option<Hook>,
}

/// The environment of one write operation.
struct OpEnv<'a, W: Writers> {
    writers: &'a W,
    token: u32,
    timeout: Duration,
    /// Set on the first wait only: an uncontended write reads no clock.
    deadline: std::cell::Cell<Option<Instant>>,
    /// Changes committed, kept for the hook (only when one is set).
    events: Option<std::cell::RefCell<Vec<Event>>>,
}

fn text(b: Vec<u8>) -> String {
    // Keys are validated UTF-8 when written; a hostile writer's bytes are replaced.
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn event_kind(k: ChangeKind) -> EventKind {
    match k {
        ChangeKind::Registered => EventKind::Registered,
        ChangeKind::Unregistered => EventKind::Unregistered,
        ChangeKind::Updated => EventKind::Updated,
        ChangeKind::Reclaimed => EventKind::Reclaimed,
        ChangeKind::Expired => EventKind::Expired,
        ChangeKind::Lost => EventKind::Lost,
    }
}

fn event_of(c: RawChange) -> Event {
    let mut ns = c.key;
    let name = ns.split_off(c.ns_len.min(ns.len()));
    Event {
        revision: c.revision,
        kind: event_kind(c.kind),
        namespace: text(ns),
        name: text(name),
        pid: c.pid,
        version: u64::from(c.version),
        at: time_from_ns(c.at),
    }
}

impl<W: Writers> Env for OpEnv<'_, W> {
    fn token(&self) -> u32 {
        self.token
    }
    fn writer_liveness(&self, token: u32) -> Liveness {
        self.writers.liveness(token)
    }
    fn owner_liveness(&self, owner: &Owner) -> Liveness {
        liveness::check(owner)
    }
    fn crash_at(&self, step: Step) -> bool {
        fault::crash_at(step)
    }
    fn now(&self) -> u64 {
        // Change records of removals and updates: tick resolution is enough.
        crate::sys::clock::coarse_realtime_ns()
    }
    fn now_ms(&self) -> u64 {
        crate::sys::clock::boot_ms()
    }
    fn on_commit(&self, revision: u64, ch: &Change<'_>) {
        telemetry::count(match ch.kind {
            ChangeKind::Registered => Op::Register,
            ChangeKind::Unregistered => Op::Unregister,
            ChangeKind::Updated => Op::Update,
            ChangeKind::Reclaimed | ChangeKind::Expired | ChangeKind::Lost => Op::Reclaimed,
        });
        if let Some(events) = &self.events {
            let (ns, name) = ch.key.bytes();
            events.borrow_mut().push(Event {
                revision,
                kind: event_kind(ch.kind),
                namespace: text(ns),
                name: text(name),
                pid: ch.pid,
                version: u64::from(ch.version),
                at: time_from_ns(if ch.at != 0 { ch.at } else { crate::now_ns() }),
            });
        }
    }
    fn give_up(&self, spins: u64) -> bool {
        if spins % 32 != 1 {
            return false;
        }
        let now = Instant::now();
        match self.deadline.get() {
            Some(deadline) => now > deadline,
            None => {
                self.deadline.set(Some(now + self.timeout));
                false
            }
        }
    }
}

#[cfg(feature = "fault-injection")]
mod fault {
    use crate::table::Step;
    use std::sync::OnceLock;
    /// `PROCREG_CRASH_AT=<Step name>` aborts the process at that step;
    /// `PROCREG_PAUSE_AT=<Step name>` stops it there with SIGSTOP (a frozen
    /// writer: it goes on where it stopped when it gets SIGCONT).
    pub(super) fn crash_at(step: Step) -> bool {
        static AT: OnceLock<(Option<String>, Option<String>)> = OnceLock::new();
        let (crash, pause) = AT.get_or_init(|| {
            (
                std::env::var("PROCREG_CRASH_AT").ok(),
                std::env::var("PROCREG_PAUSE_AT").ok(),
            )
        });
        if crash.is_none() && pause.is_none() {
            return false;
        }
        let name = format!("{step:?}");
        if crash.as_deref() == Some(name.as_str()) {
            std::process::abort();
        }
        if pause.as_deref() == Some(name.as_str()) {
            crate::sys::process::stop_self();
        }
        false
    }
}

#[cfg(not(feature = "fault-injection"))]
mod fault {
    #[inline(always)]
    pub(super) fn crash_at(_: crate::table::Step) -> bool {
        false
    }
}

fn entry_of(e: RawEntry) -> Entry {
    let mut ns = e.key;
    let name = ns.split_off(e.ns_len.min(ns.len()));
    // Keys are validated UTF-8 when written; a hostile writer's bytes are replaced.
    let text = |b: Vec<u8>| {
        String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    };
    Entry {
        namespace: text(ns),
        name: text(name),
        pid: e.owner.pid,
        metadata: e.metadata,
        registered_at: time_from_ns(e.registered_at),
        version: e.version as u64,
    }
}

/// Whether an entry is gone: its lease ran out or its owner is dead.
fn gone(e: &RawEntry) -> bool {
    table::lease::expired(e.lease, crate::sys::clock::boot_ms())
        || liveness::check(&e.owner) == Liveness::Dead
}

fn info_of(h: &EntryHead) -> EntryInfo {
    EntryInfo {
        pid: h.owner.pid,
        registered_at_ns: h.registered_at,
        version: u64::from(h.version),
        metadata_len: h.meta_len,
    }
}

impl<S: AsRef<[AtomicU64]>, W: Writers> TableBackend<S, W> {
    fn env(&self) -> Result<OpEnv<'_, W>> {
        Ok(OpEnv {
            writers: &self.writers,
            token: self.writers.token()?,
            timeout: self.lock_timeout,
            deadline: std::cell::Cell::new(None),
            events: self.hook.as_ref().map(|_| Default::default()),
        })
    }

    /// Hands the changes `env` committed to the hook, after the operation.
    fn fire(&self, env: &OpEnv<'_, W>) {
        if let (Some(hook), Some(events)) = (&self.hook, &env.events) {
            for e in events.take() {
                hook(&e);
            }
        }
    }

    fn err(&self, e: TableError, key: Key<'_>) -> Error {
        match e {
            TableError::Exists { pid, alive } => Error::AlreadyExists {
                namespace: key.ns.to_owned(),
                name: key.name.to_owned(),
                pid,
                alive,
            },
            TableError::NotFound => Error::NotFound {
                namespace: key.ns.to_owned(),
                name: key.name.to_owned(),
            },
            TableError::Full => Error::Full {
                capacity: self.table.geometry().capacity,
            },
            TableError::Busy(why) => Error::Busy(format!(
                "{why} (key {:?} in namespace {:?})",
                key.name, key.ns
            )),
            TableError::Crashed => Error::Busy("writer stopped by fault injection".into()),
        }
    }

    fn scan_err(&self, e: TableError) -> Error {
        match e {
            TableError::Busy(why) => Error::Busy(format!("{why} (during a scan of the table)")),
            e => self.err(e, Key { ns: "", name: "" }),
        }
    }

    #[inline(always)]
    fn keywords(key: Key<'_>) -> KeyWords<'_> {
        KeyWords::new(key.ns.as_bytes(), key.name.as_bytes())
    }
}

impl<S, W> Backend for TableBackend<S, W>
where
    S: AsRef<[AtomicU64]> + Send + Sync,
    W: Writers,
{
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn limits(&self) -> Limits {
        let g = self.table.geometry();
        Limits {
            capacity: g.capacity,
            max_namespace_len: g.max_ns_len,
            max_name_len: g.max_name_len,
            max_metadata_len: g.max_meta_len,
        }
    }

    fn register(&self, key: Key<'_>, owner: &Owner, metadata: &[u8], lease_ms: u64) -> Result<u64> {
        let env = self.env()?;
        let lease = if lease_ms == 0 {
            0
        } else {
            table::lease::new(env.now_ms(), lease_ms)
        };
        let r = self
            .table
            .insert_with_lease(
                &Self::keywords(key),
                owner,
                // The tick clock: CLOCK_REALTIME cost ~40 ns here (a VM's
                // clock source), a fifth of a registration.
                crate::sys::clock::coarse_realtime_ns(),
                metadata,
                lease,
                &env,
            )
            .map(u64::from)
            .map_err(|e| self.err(e, key));
        self.fire(&env);
        r
    }

    fn keepalive(&self, key: Key<'_>) -> Result<()> {
        let env = self.env()?;
        match self.table.renew(&Self::keywords(key), &env) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::InvalidArgument(format!(
                "key {:?} in namespace {:?} was registered without a lease; \
                 register it with register_with_lease to keep it alive",
                key.name, key.ns
            ))),
            Err(e) => Err(self.err(e, key)),
        }
    }

    fn lookup(&self, key: Key<'_>) -> Result<Option<Entry>> {
        Ok(self
            .table
            .lookup(&Self::keywords(key))
            .map_err(|e| self.err(e, key))?
            .map(entry_of))
    }

    #[inline]
    fn lookup_pid(&self, key: Key<'_>) -> Result<Option<u32>> {
        self.table
            .lookup_pid(&Self::keywords(key))
            .map_err(|e| self.err(e, key))
    }

    fn owner_liveness(&self, key: Key<'_>) -> Result<Option<Liveness>> {
        Ok(self
            .table
            .lookup_owner(&Self::keywords(key))
            .map_err(|e| self.err(e, key))?
            .map(|o| liveness::check(&o)))
    }

    fn lookup_checked(&self, key: Key<'_>) -> Result<Option<Entry>> {
        let kw = Self::keywords(key);
        let Some((slot, c, e)) = self.table.lookup_at(&kw).map_err(|e| self.err(e, key))? else {
            return Ok(None);
        };
        if !gone(&e) {
            return Ok(Some(entry_of(e)));
        }
        // A dead owner's entry is a miss whatever happens next. Reclaim it
        // only if that costs no wait (readers never wait); otherwise sweep will.
        if let Ok(env) = self.env() {
            self.table.try_reclaim(slot, c, &env);
            self.fire(&env);
        }
        Ok(None)
    }

    fn unregister(&self, key: Key<'_>, only_pid: Option<u32>) -> Result<bool> {
        let env = self.env()?;
        let r = self
            .table
            .remove(&Self::keywords(key), only_pid, &env)
            .map_err(|e| self.err(e, key));
        self.fire(&env);
        r
    }

    fn update_metadata(&self, key: Key<'_>, metadata: &[u8]) -> Result<u64> {
        let env = self.env()?;
        let r = self
            .table
            .update(&Self::keywords(key), metadata, &env)
            .map(u64::from)
            .map_err(|e| self.err(e, key));
        self.fire(&env);
        r
    }

    fn list(&self, ns: Option<&str>) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        self.table
            .for_each_live(|_, _, e| {
                if ns.is_none_or(|ns| e.ns_len == ns.len() && e.key.starts_with(ns.as_bytes())) {
                    out.push(entry_of(e));
                }
                true
            })
            .map_err(|e| self.scan_err(e))?;
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(out)
    }

    fn lookup_into(&self, key: Key<'_>, meta: &mut [u8]) -> Result<Option<EntryInfo>> {
        Ok(self
            .table
            .lookup_into(&Self::keywords(key), meta)
            .map_err(|e| self.err(e, key))?
            .map(|h| info_of(&h)))
    }

    fn visit(&self, ns: Option<&str>, f: &mut dyn FnMut(&EntryRef<'_>) -> bool) -> Result<()> {
        let g = self.table.geometry();
        let mut key = vec![0u8; g.max_ns_len + g.max_name_len];
        let mut meta = vec![0u8; g.max_meta_len];
        self.table
            .for_each_live_into(&mut key, &mut meta, |h, k, m| {
                let (namespace, name) = k.split_at(h.ns_len);
                if ns.is_some_and(|ns| ns.as_bytes() != namespace) {
                    return true;
                }
                f(&EntryRef {
                    namespace,
                    name,
                    info: info_of(h),
                    metadata: m,
                })
            })
            .map_err(|e| self.scan_err(e))
    }

    fn clear_namespace(&self, ns: &str) -> Result<usize> {
        let mut n = 0;
        for e in self.list(Some(ns))? {
            n += self.unregister(Key { ns, name: &e.name }, None)? as usize;
        }
        Ok(n)
    }

    fn sweep(&self) -> Result<usize> {
        let env = self.env()?;
        let r = self.table.sweep(&env).map_err(|e| self.scan_err(e));
        self.fire(&env);
        r
    }

    fn stats(&self) -> Stats {
        use table::hdr;
        let c = self.table.census();
        let g = self.table.geometry();
        Stats {
            backend: self.kind,
            capacity: g.capacity,
            live: c.live,
            tombstones: c.tombstones,
            claimed: c.claimed,
            max_probe_distance: c.max_probe,
            mean_miss_groups: c.mean_miss_groups,
            segment_bytes: self.bytes,
            created_at: time_from_ns(self.created_at_ns),
            max_namespace_len: g.max_ns_len,
            max_name_len: g.max_name_len,
            max_metadata_len: g.max_meta_len,
            registers: self.table.counter(hdr::REGISTERS),
            unregisters: self.table.counter(hdr::UNREGISTERS),
            updates: self.table.counter(hdr::UPDATES),
            reclaimed: self.table.counter(hdr::RECLAIMED),
            stuck_recovered: self.table.counter(hdr::STUCK_RECOVERED),
            locks_stolen: self.table.counter(hdr::LOCKS_STOLEN),
            changes: self.table.revision(),
            process: telemetry::snapshot(),
        }
    }

    fn revision(&self) -> u64 {
        self.table.revision()
    }
    fn change_token(&self) -> u64 {
        self.table.changes_word()
    }
    fn wait_change(&self, seen: u64, timeout: Duration) {
        self.table.sleep_on_changes(seen, timeout);
    }
    fn attach_watcher(&self) -> u64 {
        self.table.attach_watcher()
    }
    fn detach_watcher(&self) {
        self.table.detach_watcher();
    }
    fn read_change(&self, rev: u64) -> ChangeRead {
        match self.table.read_change(rev) {
            RingRead::Ready(c) => ChangeRead::Ready(event_of(c)),
            RingRead::NotYet => ChangeRead::NotYet,
            RingRead::Overwritten { .. } => ChangeRead::Overwritten,
        }
    }
    fn set_hook(&mut self, hook: Option<Hook>) {
        self.hook = hook;
    }

    fn health(&self) -> Result<Health> {
        let stats = self.stats();
        let mut owners = OwnerCounts::default();
        let mut expired = 0;
        let now = crate::sys::clock::boot_ms();
        self.table
            .for_each_live(|_, _, e| {
                if table::lease::expired(e.lease, now) {
                    expired += 1;
                } else {
                    owners.add(liveness::check(&e.owner));
                }
                true
            })
            .map_err(|e| self.scan_err(e))?;
        let me = self.writers.current_token();
        let stuck = self
            .table
            .stuck(|t| Some(t) != me && self.writers.liveness(t) == Liveness::Dead);
        let mut problems = Vec::new();
        if owners.dead > 0 {
            problems.push(format!(
                "{} entries have dead owners; run sweep",
                owners.dead
            ));
        }
        if expired > 0 {
            problems.push(format!(
                "{expired} entries have expired leases; run sweep (or a reaper)"
            ));
        }
        if stuck > 0 {
            problems.push(format!(
                "{stuck} slots or locks are held by dead writers; run sweep"
            ));
        }
        if stats.load_factor() > 0.9 {
            problems.push(format!(
                "load factor {:.2} is above 0.90; inserts get slower and may fail with Full",
                stats.load_factor()
            ));
        }
        Ok(Health {
            healthy: problems.is_empty(),
            header_valid: true,
            load_factor: stats.load_factor(),
            live: stats.live,
            alive_owners: owners.alive,
            dead_owners: owners.dead,
            unknown_owners: owners.unknown,
            expired_leases: expired,
            stuck_slots: stuck,
            liveness_mode: self.writers.mode(),
            problems,
        })
    }
}

/// The backends this build has, dispatched statically: the facade still goes
/// through [`Backend`] for every operation, but a lookup can be inlined whole
/// (no indirect call on the hit path). A new backend (etcd) adds a variant.
pub(crate) enum AnyBackend {
    Shm(shm::ShmBackend),
    Mem(mem::MemBackend),
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            AnyBackend::Shm($b) => $e,
            AnyBackend::Mem($b) => $e,
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
    fn register(&self, key: Key<'_>, owner: &Owner, metadata: &[u8], lease_ms: u64) -> Result<u64> {
        dispatch!(self, b => b.register(key, owner, metadata, lease_ms))
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
    fn lookup_into(&self, key: Key<'_>, meta: &mut [u8]) -> Result<Option<EntryInfo>> {
        dispatch!(self, b => b.lookup_into(key, meta))
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
    fn sweep(&self) -> Result<usize> {
        dispatch!(self, b => b.sweep())
    }
    fn stats(&self) -> Stats {
        dispatch!(self, b => b.stats())
    }
    fn health(&self) -> Result<Health> {
        dispatch!(self, b => b.health())
    }
    fn revision(&self) -> u64 {
        dispatch!(self, b => b.revision())
    }
    fn change_token(&self) -> u64 {
        dispatch!(self, b => b.change_token())
    }
    fn wait_change(&self, seen: u64, timeout: Duration) {
        dispatch!(self, b => b.wait_change(seen, timeout))
    }
    fn attach_watcher(&self) -> u64 {
        dispatch!(self, b => b.attach_watcher())
    }
    fn detach_watcher(&self) {
        dispatch!(self, b => b.detach_watcher())
    }
    fn read_change(&self, rev: u64) -> ChangeRead {
        dispatch!(self, b => b.read_change(rev))
    }
    fn set_hook(&mut self, hook: Option<Hook>) {
        dispatch!(self, b => b.set_hook(hook))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{Explicit, OpenMode};
    use crate::table::Geometry;

    /// Review finding: a checked lookup of a dead owner's entry waited for the
    /// neighbourhood lock (up to the lock timeout) and then failed with Busy.
    #[test]
    fn checked_lookup_of_a_dead_owner_never_waits_for_a_writer() {
        let g = Geometry {
            capacity: 64,
            max_ns_len: 8,
            max_name_len: 8,
            max_meta_len: 8,
        };
        let b = mem::open(
            "",
            OpenMode::Create,
            g,
            &Explicit::default(),
            Duration::from_secs(5),
        )
        .unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let owner = liveness::owner_of(child.id()).unwrap().unwrap();
        let key = Key {
            ns: "ns",
            name: "k",
        };
        b.register(key, &owner, b"", 0).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        // A live writer (token 2, alive in the mem backend) holds the lock.
        b.table
            .hold_home_lock_for_test(&KeyWords::new(b"ns", b"k"), 2);
        let t = Instant::now();
        assert_eq!(b.lookup_checked(key).unwrap(), None);
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "waited {:?}",
            t.elapsed()
        );
        assert_eq!(
            b.lookup_pid(key).unwrap(),
            Some(owner.pid),
            "left for sweep, not reclaimed"
        );
    }
}
