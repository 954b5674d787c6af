//! The error type every fallible procreg operation returns.

use std::fmt;

/// What procreg knows about whether a process is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// The process runs and is the one that was registered (same start time).
    Alive,
    /// The process is gone, is a zombie, or its pid now belongs to another process.
    Dead,
    /// It cannot be told from here (for example the pid lives in another PID
    /// namespace). procreg never reclaims an entry whose owner is `Unknown`.
    Unknown,
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Liveness::Alive => "alive",
            Liveness::Dead => "dead",
            Liveness::Unknown => "unknown",
        })
    }
}

/// Every error procreg returns. Messages say what happened and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is registered already by a process that is alive (or whose
    /// liveness cannot be told from here).
    #[error(
        "key {name:?} in namespace {namespace:?} is already registered by pid {pid} ({alive}); \
         unregister it first or pick another name"
    )]
    AlreadyExists {
        /// Namespace of the key.
        namespace: String,
        /// Name of the key.
        name: String,
        /// Pid of the current owner.
        pid: u32,
        /// Liveness of the current owner when the registration was refused.
        alive: Liveness,
    },
    /// The namespace or name is empty, too long, or contains a NUL byte.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The metadata is larger than the segment allows.
    #[error(
        "metadata is {len} bytes but this registry allows at most {max}; \
         store less, or create the registry with a larger max_metadata_len"
    )]
    MetadataTooLarge {
        /// Length that was given.
        len: usize,
        /// Maximum recorded in the segment.
        max: usize,
    },
    /// The pid given as owner is not a running process (or is 0).
    #[error("process {0} is not alive; only running processes can own a registration")]
    ProcessNotAlive(u32),
    /// The key is not registered.
    #[error("key {name:?} in namespace {namespace:?} is not registered")]
    NotFound {
        /// Namespace of the key.
        namespace: String,
        /// Name of the key.
        name: String,
    },
    /// No free slot within the probe window of the key.
    #[error(
        "registry is full (capacity {capacity} slots); run sweep() to reclaim dead owners, \
         unregister unused keys, or create the registry with a larger capacity"
    )]
    Full {
        /// Slot capacity of the segment.
        capacity: usize,
    },
    /// A bounded wait ran out: a concurrent writer kept changing the slot, or a
    /// live writer (possibly frozen) holds the lock of this key's neighbourhood.
    #[error("registry is busy: {0}; retry the operation")]
    Busy(String),
    /// The segment file exists but is not one this build can use.
    #[error("incompatible segment: {0}")]
    IncompatibleSegment(String),
    /// The file's owner, mode or permissions forbid using it.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// An argument other than the key is out of range (a builder option, a url).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The segment does not exist and the call does not create it.
    #[error(
        "no registry at {0}; create it first (opening in open-or-create or create mode creates it)"
    )]
    NoSuchRegistry(String),
    /// The segment exists and the call demanded to create it.
    #[error("a registry already exists at {0}; open it, or destroy it first")]
    RegistryExists(String),
    /// A wait ended before what it waited for happened.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the call waited.
        waited: std::time::Duration,
    },
    /// A watcher fell more than the change ring's length behind: `missed`
    /// changes are gone from the ring. Re-read the state with `list`; the
    /// watcher continues with the changes after it.
    #[error(
        "watcher lagged: {missed} changes were overwritten before it read them; \
         re-read the registry with list() and keep watching"
    )]
    Lagged {
        /// How many changes the watcher skipped.
        missed: u64,
    },
    /// A networked backend (etcd) could not be reached or gave no answer in
    /// time, or the handle's lease may have expired so its writes are fenced.
    /// The message names the endpoints tried and says what to do.
    #[error("registry unavailable: {0}")]
    Unavailable(String),
    /// An operating system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What procreg was doing.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

#[cfg_attr(procreg_loom, allow(dead_code))]
impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
