//! The one place atomics come from.
//!
//! Algorithm code (the table) imports atomics only from here, so that under
//! `--cfg procreg_loom` the very same code is model-checked with loom's atomics.
//! The cfg is crate-specific (as crossbeam's `crossbeam_loom`): a dependent
//! crate's own `--cfg loom` run keeps our real atomics.

#[cfg(procreg_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(not(procreg_loom))]
#[allow(unused_imports)]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// Called in every spin loop: a CPU hint normally, a scheduling point under loom
/// (loom requires spin loops to yield or it reports a livelock).
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(procreg_loom)]
    loom::thread::yield_now();
    #[cfg(not(procreg_loom))]
    core::hint::spin_loop();
}

/// Backs off harder than [`spin_hint`]: gives the core away (another process may
/// hold what we wait for on a 2-core machine).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(procreg_loom)]
    loom::thread::yield_now();
    #[cfg(not(procreg_loom))]
    std::thread::yield_now();
}
