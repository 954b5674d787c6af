//! procreg: a process registry for OS processes.
//!
//! Many unrelated processes on one host register services under a namespaced
//! key `(namespace, name)` and find each other's pid and metadata by name in
//! nanoseconds, with no daemon: the registry is a fixed-capacity hash table of
//! atomic slots in a memory-mapped file. Lookups are lock-free loads; entries
//! of dead processes are detected (pid + start time) and reclaimed.
//!
//! ```
//! use procreg::Registry;
//! let reg = Registry::open("mem:")?; // or "shm:my-app" to share between processes
//! reg.register_self("billing", "db-writer", b"port=5432")?;
//! assert_eq!(reg.lookup_pid("billing", "db-writer")?, Some(std::process::id()));
//! let e = reg.lookup("billing", "db-writer")?.unwrap();
//! assert_eq!(e.metadata, b"port=5432");
//! assert!(reg.unregister("billing", "db-writer")?);
//! # Ok::<(), procreg::Error>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// Under loom only the table is built (backends need real atomics over mappings).
#![cfg_attr(procreg_loom, allow(dead_code))]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "procreg supports Linux only: it relies on OFD locks, futexes, pidfds and /proc; build it for a Linux target"
);

mod error;
#[cfg(not(procreg_loom))]
mod groups;
mod sync;
mod sys;
pub(crate) mod table;

#[cfg(not(procreg_loom))]
mod backend;
#[cfg(not(procreg_loom))]
pub mod ffi;
#[cfg(not(procreg_loom))]
mod host;
#[cfg(not(procreg_loom))]
mod key;
#[cfg(not(procreg_loom))]
mod liveness;
#[cfg(not(procreg_loom))]
mod registry;
#[cfg(not(procreg_loom))]
mod segment;
#[cfg(not(procreg_loom))]
mod service;
#[cfg(not(procreg_loom))]
mod telemetry;
#[cfg(not(procreg_loom))]
mod types;
#[cfg(not(procreg_loom))]
mod watch;

/// The etcd engine (feature `etcd`) under the `etcd://` backend: its
/// session, formats and fault hooks, for tests of the engine itself.
#[cfg(all(feature = "etcd", not(procreg_loom)))]
#[doc(hidden)]
pub use backend::etcd;
#[cfg(not(procreg_loom))]
pub use backend::shm::files::{SegmentFile, SegmentState, list_segments, remove_stale_creating};
#[cfg(not(procreg_loom))]
pub use backend::{
    DEFAULT_CAPACITY, DEFAULT_LOCK_TIMEOUT, DEFAULT_MAX_METADATA_LEN, DEFAULT_MAX_NAME_LEN,
    DEFAULT_MAX_NAMESPACE_LEN, DEFAULT_MAX_SEGMENT_BYTES, DEFAULT_MAX_WRITERS, DEFAULT_MODE,
};
pub use error::{Error, Liveness, Result};
#[cfg(not(procreg_loom))]
pub use key::Key;
#[cfg(not(procreg_loom))]
pub use registry::{Builder, Registry};
#[cfg(not(procreg_loom))]
pub use service::Service;
#[cfg(not(procreg_loom))]
pub use types::{
    BackendHealth, BackendStats, Entry, EntryInfo, EntryRef, Event, EventKind, Health, Lease,
    Limits, LivenessMode, ProcessCounters, Stats, TableHealth, TableStats,
};
#[cfg(all(feature = "etcd", not(procreg_loom)))]
pub use types::{EtcdHealth, EtcdStats};
#[cfg(not(procreg_loom))]
pub use watch::{Reaper, Watcher};

/// Nanoseconds since the Unix epoch (one `clock_gettime`, without
/// `SystemTime`'s conversions: this stamps every registration and change).
#[cfg(not(procreg_loom))]
pub(crate) fn now_ns() -> u64 {
    sys::clock::realtime_ns()
}

#[cfg(test)]
mod compile_checks {
    #[cfg(not(procreg_loom))]
    #[test]
    fn registry_is_send_and_sync() {
        fn is<T: Send + Sync>() {}
        is::<crate::Registry>();
    }
}

/// Compiles and runs the README's examples as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
