//! The values the table hands out: owners, entries, errors, slot counts.

use crate::error::Liveness;

/// The process that owns an entry, as recorded at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Owner {
    pub(crate) pid: u32,
    /// Start time of the process in clock ticks since boot (0 = unknown).
    pub(crate) start_time: u64,
    /// Inode of the PID namespace the pid is meaningful in (0 = unknown).
    pub(crate) pidns: u64,
}

/// One entry copied out of a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub(crate) key: Vec<u8>,
    pub(crate) ns_len: usize,
    pub(crate) owner: Owner,
    pub(crate) metadata: Vec<u8>,
    pub(crate) registered_at: u64,
    pub(crate) version: u32,
    /// The lease word (see [`lease`](super::lease)); 0 = no lease.
    pub(crate) lease: u64,
}

impl RawEntry {
    pub(super) fn new(h: EntryHead, lease: u64, key: Vec<u8>, metadata: Vec<u8>) -> RawEntry {
        RawEntry {
            key,
            ns_len: h.ns_len,
            owner: h.owner,
            metadata,
            registered_at: h.registered_at,
            version: h.version,
            lease,
        }
    }
}

/// The fixed-size part of an entry, copied out of a slot; its key and
/// metadata bytes go to caller buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryHead {
    pub(crate) owner: Owner,
    pub(crate) ns_len: usize,
    pub(crate) name_len: usize,
    pub(crate) meta_len: usize,
    /// First row word of the active metadata buffer.
    pub(super) meta_first: usize,
    pub(crate) registered_at: u64,
    pub(crate) version: u32,
}

/// Why a table operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TableError {
    /// The key is present and its owner is not dead.
    Exists {
        pid: u32,
        alive: Liveness,
    },
    NotFound,
    Full,
    Busy(&'static str),
    /// The fault-injection hook stopped this writer (a simulated crash).
    Crashed,
}

/// Slot counts from one scan.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Census {
    pub(crate) empty: usize,
    pub(crate) claimed: usize,
    pub(crate) live: usize,
    pub(crate) tombstones: usize,
    /// Largest probe step of a live key (groups past its home, in steps).
    pub(crate) max_probe: usize,
    /// Groups a miss scans, averaged over homes (1 = only the home group).
    pub(crate) mean_miss_groups: f64,
    pub(crate) locked_groups: usize,
}
