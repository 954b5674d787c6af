//! Values the registry hands out: entries, statistics, health.

use crate::error::Liveness;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One registration, copied out of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Namespace of the key.
    pub namespace: String,
    /// Name of the key.
    pub name: String,
    /// Pid of the owner process.
    pub pid: u32,
    /// Metadata bytes (at most the registry's `max_metadata_len`).
    pub metadata: Vec<u8>,
    /// When the entry was registered.
    pub registered_at: SystemTime,
    /// Changes on every update of this entry (and differs between registrations).
    pub version: u64,
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
    /// Version of the entry after the change (for `Unregistered`,
    /// `Reclaimed` and `Expired`: of the entry that was removed).
    pub version: u64,
    /// When the change was committed.
    pub at: SystemTime,
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

/// Counters and sizes of a registry at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Backend kind: `"shm"` or `"mem"`.
    pub backend: &'static str,
    /// Slot capacity.
    pub capacity: usize,
    /// Live entries (a scan of every slot, so exact even after crashes).
    pub live: usize,
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
    /// Maximum namespace length in bytes.
    pub max_namespace_len: usize,
    /// Maximum name length in bytes.
    pub max_name_len: usize,
    /// Maximum metadata length in bytes.
    pub max_metadata_len: usize,
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
    /// Every committed change (all kinds).
    pub changes: u64,
    /// Operations of the calling process (all registries, all threads).
    pub process: ProcessCounters,
}

impl Stats {
    /// `live / capacity`.
    pub fn load_factor(&self) -> f64 {
        self.live as f64 / self.capacity as f64
    }
}

/// How owner liveness is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivenessMode {
    /// pid + start time from `/proc`, for owners in this PID namespace.
    ProcStartTime,
    /// The caller's PID namespace differs from the segment creator's: owners
    /// registered elsewhere report `Unknown` and are never reclaimed from here.
    ForeignPidNamespace,
    /// In-process registry: owners are checked through `/proc` as well.
    InProcess,
}

/// Result of [`Registry::health_check`](crate::Registry::health_check).
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// True when nothing below needs attention.
    pub healthy: bool,
    /// Header validated on open (a segment that fails validation never opens).
    pub header_valid: bool,
    /// `live / capacity`.
    pub load_factor: f64,
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
    /// Slots or locks held by writers that died (a `sweep` frees them).
    pub stuck_slots: usize,
    /// How liveness is judged.
    pub liveness_mode: LivenessMode,
    /// Human-readable reasons when not healthy.
    pub problems: Vec<String>,
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
