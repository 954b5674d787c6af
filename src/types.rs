//! Values the registry hands out: entries, statistics, health.

use crate::error::Liveness;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One registration, copied out of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// Namespace of the key.
    pub namespace: String,
    /// Name of the key.
    pub name: String,
    /// Pid of the owner process (on [`host`](Self::host)).
    pub pid: u32,
    /// Name of the host the owner runs on (for `shm:` and `mem:`, this host).
    pub host: String,
    /// Metadata bytes (at most the registry's `max_metadata_len`).
    pub metadata: Vec<u8>,
    /// When the entry was registered.
    pub registered_at: SystemTime,
    /// Changes on every update of this entry (and differs between registrations).
    pub version: u64,
    /// The entry's own lease, when it has one (registered with
    /// [`register_with_lease`](crate::Registry::register_with_lease), or on
    /// `etcd://` where every entry lives under a lease).
    pub lease: Option<Lease>,
    /// True for a member of a process group (see
    /// [`Registry::join`](crate::Registry::join)): then `name` is the group
    /// and `pid` the member. False for a unique entry.
    pub member: bool,
}

/// The lease an [`Entry`] lives under: it expires unless renewed in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// What each renewal grants (`None` where the entry does not record it:
    /// on `etcd://` the ttl belongs to the lease, not to the entry).
    pub ttl: Option<Duration>,
    /// Time left before it runs out, as of the read (`None` when not known
    /// without another request: `etcd://`). Zero once it ran out.
    pub remaining: Option<Duration>,
    /// The backend's lease id (`etcd://`), else `None`.
    pub id: Option<i64>,
}

/// The fixed-size part of an entry, filled by
/// [`Registry::lookup_into`](crate::Registry::lookup_into) without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryInfo {
    /// Pid of the owner process.
    pub pid: u32,
    /// When the entry was registered, in nanoseconds since the Unix epoch.
    pub registered_at_ns: u64,
    /// The entry's version.
    pub version: u64,
    /// Length of the entry's metadata (which may exceed the caller's buffer).
    pub metadata_len: usize,
}

/// One entry lent to a visitor by [`Registry::visit`](crate::Registry::visit);
/// the views are valid during the call only. `namespace` and `name` are raw
/// bytes: valid UTF-8 without NUL unless a hostile process wrote the segment.
#[derive(Debug)]
#[non_exhaustive]
pub struct EntryRef<'a> {
    /// Namespace of the key.
    pub namespace: &'a [u8],
    /// Name of the key.
    pub name: &'a [u8],
    /// Name of the owner's host.
    pub host: &'a str,
    /// Pid, time, version and metadata length.
    pub info: EntryInfo,
    /// The metadata.
    pub metadata: &'a [u8],
}

/// What a change did to an entry (see [`Event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// The key was registered.
    Registered,
    /// The key was unregistered by a process.
    Unregistered,
    /// The entry's metadata was replaced.
    Updated,
    /// The owner died and the entry was reclaimed (by a sweep, a reaper, a
    /// checked lookup, or a new registration of the key).
    Reclaimed,
    /// The entry's lease ran out and it was reclaimed.
    Expired,
    /// A change happened at this revision, but its writer died (or was
    /// frozen) before recording it: resynchronise with `list` if it matters.
    Lost,
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EventKind::Registered => "registered",
            EventKind::Unregistered => "unregistered",
            EventKind::Updated => "updated",
            EventKind::Reclaimed => "reclaimed",
            EventKind::Expired => "expired",
            EventKind::Lost => "lost",
        })
    }
}

/// One committed change of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Position of the change in the registry's history: revisions increase
    /// by one per committed change, across all processes.
    pub revision: u64,
    /// What happened.
    pub kind: EventKind,
    /// Namespace of the key (empty for `Lost`).
    pub namespace: String,
    /// Name of the key (empty for `Lost`).
    pub name: String,
    /// Owner of the entry the change concerns (0 for `Lost`).
    pub pid: u32,
    /// Host of that owner (empty for `Lost`).
    pub host: String,
    /// Version of the entry after the change (for `Unregistered`,
    /// `Reclaimed` and `Expired`: of the entry that was removed).
    pub version: u64,
    /// When the change was committed.
    pub at: SystemTime,
    /// True when the change concerns a member of a process group: then
    /// `name` is the group and `pid` the member (`Registered` is a join,
    /// `Unregistered` a leave, `Reclaimed`/`Expired` a dead member removed).
    pub member: bool,
}

/// Operations of this process on any registry (all handles, all threads),
/// since it started. Part of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessCounters {
    /// Successful registrations.
    pub registers: u64,
    /// Lookups (`lookup`, `lookup_pid`, `lookup_checked`) that found the key.
    pub lookup_hits: u64,
    /// Lookups that did not.
    pub lookup_misses: u64,
    /// Successful unregistrations.
    pub unregisters: u64,
    /// Successful metadata updates.
    pub updates: u64,
    /// Entries this process reclaimed (dead owner or expired lease).
    pub reclaimed: u64,
    /// Operations that gave up with `Busy`.
    pub busy: u64,
}

/// Converts nanoseconds since the Unix epoch.
pub(crate) fn time_from_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// Limits of a registry, reported by its backend; the facade validates
/// keys, metadata and lease ttls against them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Entries the registry can hold, when the backend has a fixed capacity
    /// (`shm:`, `mem:`); `None` when it has none (`etcd:`).
    pub capacity: Option<usize>,
    /// Longest namespace, in bytes.
    pub max_namespace_len: usize,
    /// Longest name, in bytes.
    pub max_name_len: usize,
    /// Longest metadata, in bytes.
    pub max_metadata_len: usize,
    /// Shortest lease ttl the backend honours.
    pub min_lease_ttl: Duration,
    /// Longest lease ttl the backend can record.
    pub max_lease_ttl: Duration,
}

/// Counters and sizes of a registry at one moment: a part every backend
/// has, and a backend-specific part in [`detail`](Self::detail).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Backend kind: `"shm"`, `"mem"` or `"etcd"`.
    pub backend: &'static str,
    /// Live entries.
    pub live: usize,
    /// The latest committed revision.
    pub revision: u64,
    /// The registry's limits.
    pub limits: Limits,
    /// Operations of the calling process (all registries, all threads).
    pub process: ProcessCounters,
    /// What only this kind of backend knows.
    pub detail: BackendStats,
}

impl Stats {
    /// The hash-table part (`shm:` and `mem:`), if this backend has one.
    pub fn table(&self) -> Option<&TableStats> {
        match &self.detail {
            BackendStats::Table(t) => Some(t),
            #[allow(unreachable_patterns)] // without the etcd feature
            _ => None,
        }
    }

    /// `live / capacity`, or 0 for a backend without a fixed capacity.
    pub fn load_factor(&self) -> f64 {
        match self.limits.capacity {
            Some(c) if c > 0 => self.live as f64 / c as f64,
            _ => 0.0,
        }
    }
}

/// The backend-specific part of [`Stats`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BackendStats {
    /// A hash table of atomic slots (`shm:`, `mem:`).
    Table(TableStats),
    /// An etcd cluster (`etcd://`).
    #[cfg(feature = "etcd")]
    Etcd(EtcdStats),
}

/// What an etcd-backed registry (`etcd://`) reports of itself. It has no
/// capacity, slots or tombstones: those figures are not made up for it.
#[cfg(feature = "etcd")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EtcdStats {
    /// The members, as `host:port`.
    pub endpoints: Vec<String>,
    /// The key prefix of this registry.
    pub prefix: String,
    /// This handle's session lease id.
    pub lease: i64,
    /// The session lease's ttl.
    pub ttl: Duration,
    /// Entries registered through this handle's session.
    pub own_entries: usize,
}

/// Sizes and counters of a hash-table backend (`shm:`, `mem:`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TableStats {
    /// Slot capacity.
    pub capacity: usize,
    /// Deleted slots awaiting reuse.
    pub tombstones: usize,
    /// Slots claimed by a writer that has not published yet (or died).
    pub claimed: usize,
    /// Largest probe distance of a live key, in groups of 8 slots past its home.
    pub max_probe_distance: usize,
    /// Groups of 8 slots a lookup miss reads on average (1.0 = only the home group).
    pub mean_miss_groups: f64,
    /// Bytes of the segment (or heap table).
    pub segment_bytes: usize,
    /// When the segment was created.
    pub created_at: SystemTime,
    /// Registrations committed since creation (all processes).
    pub registers: u64,
    /// Unregistrations committed since creation (all processes).
    pub unregisters: u64,
    /// Metadata updates committed since creation (all processes).
    pub updates: u64,
    /// Entries reclaimed because their owner died (all processes).
    pub reclaimed: u64,
    /// Slots left claimed by dead writers and freed again.
    pub stuck_recovered: u64,
    /// Neighbourhood locks taken over from dead writers.
    pub locks_stolen: u64,
}

/// How owner liveness is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LivenessMode {
    /// pid + start time from `/proc`, for owners in this PID namespace.
    ProcStartTime,
    /// The caller's PID namespace differs from the segment creator's: owners
    /// registered elsewhere report `Unknown` and are never reclaimed from here.
    ForeignPidNamespace,
    /// In-process registry: owners are checked through `/proc` as well.
    InProcess,
    /// A networked registry: an entry lives while its owner's lease is kept
    /// alive; owners on this host are also checked through `/proc`.
    Lease,
}

/// Result of [`Registry::health_check`](crate::Registry::health_check): a
/// part every backend has, and a backend-specific part in
/// [`detail`](Self::detail).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Health {
    /// True when nothing below needs attention.
    pub healthy: bool,
    /// Live entries.
    pub live: usize,
    /// Live entries whose owner is alive.
    pub alive_owners: usize,
    /// Live entries whose owner is dead (a `sweep` reclaims them).
    pub dead_owners: usize,
    /// Live entries whose owner cannot be judged from here.
    pub unknown_owners: usize,
    /// Live entries whose lease ran out (a `sweep` reclaims them); counted
    /// here instead of by their owner's liveness.
    pub expired_leases: usize,
    /// How liveness is judged.
    pub liveness_mode: LivenessMode,
    /// Human-readable reasons when not healthy.
    pub problems: Vec<String>,
    /// What only this kind of backend knows.
    pub detail: BackendHealth,
}

impl Health {
    /// The hash-table part (`shm:` and `mem:`), if this backend has one.
    pub fn table(&self) -> Option<&TableHealth> {
        match &self.detail {
            BackendHealth::Table(t) => Some(t),
            #[allow(unreachable_patterns)] // without the etcd feature
            _ => None,
        }
    }
}

/// The backend-specific part of [`Health`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BackendHealth {
    /// A hash table of atomic slots (`shm:`, `mem:`).
    Table(TableHealth),
    /// An etcd cluster (`etcd://`).
    #[cfg(feature = "etcd")]
    Etcd(EtcdHealth),
}

/// Health of an etcd-backed registry's handle and cluster.
#[cfg(feature = "etcd")]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EtcdHealth {
    /// This handle's session lease id.
    pub lease: i64,
    /// Time left before the handle's local lease deadline (zero once lost).
    pub lease_left: Duration,
    /// Why the session (and every entry under it) is lost, if it is.
    pub session_lost: Option<String>,
    /// Each member and whether it answered a status request.
    pub endpoints: Vec<(String, bool)>,
}

/// Health of a hash-table backend (`shm:`, `mem:`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TableHealth {
    /// Header validated on open (a segment that fails validation never opens).
    pub header_valid: bool,
    /// `live / capacity`.
    pub load_factor: f64,
    /// Slots or locks held by writers that died (a `sweep` frees them).
    pub stuck_slots: usize,
}

/// Owner liveness counts, used by health checks.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OwnerCounts {
    pub(crate) alive: usize,
    pub(crate) dead: usize,
    pub(crate) unknown: usize,
}

impl OwnerCounts {
    pub(crate) fn add(&mut self, l: Liveness) {
        match l {
            Liveness::Alive => self.alive += 1,
            Liveness::Dead => self.dead += 1,
            Liveness::Unknown => self.unknown += 1,
        }
    }
}
