//! Sleeping on a word of shared memory until another process changes it.
//!
//! The futex is shared (never `FUTEX_PRIVATE_FLAG`): the word may live in a
//! mapping shared by processes. It waits on the low 32 bits of a 64-bit word.
//! Under `cfg(procreg_loom)` there are no sleeps: a waiter yields and the
//! caller re-checks, as after any spurious wake-up.

use crate::sync::AtomicU64;
use std::time::Duration;

#[cfg(not(procreg_loom))]
mod imp {
    use crate::sync::AtomicU64;
    use rustix::thread::futex;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    /// The low 32 bits of `w` (little-endian: its first 4 bytes), as the
    /// address the kernel keys the futex on.
    fn low32(w: &AtomicU64) -> &AtomicU32 {
        #[cfg(target_endian = "big")]
        compile_error!("procreg's futex word assumes a little-endian target");
        // SAFETY: the first 4 bytes of an 8-aligned AtomicU64 are a valid,
        // 4-aligned AtomicU32 for as long as `w` lives. The reference is only
        // handed to the kernel as a futex address: no Rust code loads or stores
        // through it, so the bytes are never accessed with two widths.
        unsafe { &*w.as_ptr().cast::<AtomicU32>() }
    }

    pub(super) fn wait(w: &AtomicU64, expected: u32, timeout: Duration) {
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        // EAGAIN (the word moved), EINTR and ETIMEDOUT all mean "re-check".
        let _ = futex::wait(low32(w), futex::Flags::empty(), expected, Some(&ts));
    }

    pub(super) fn wake_all(w: &AtomicU64) {
        let _ = futex::wake(low32(w), futex::Flags::empty(), i32::MAX as u32);
    }
}

#[cfg(procreg_loom)]
mod imp {
    use crate::sync::AtomicU64;
    use std::time::Duration;

    pub(super) fn wait(_: &AtomicU64, _: u32, _: Duration) {
        crate::sync::yield_now();
    }

    pub(super) fn wake_all(_: &AtomicU64) {}
}

/// Sleeps while the low 32 bits of `w` equal `expected`, at most `timeout`.
/// May return early for no reason; the caller re-checks its condition.
#[inline]
pub(crate) fn wait(w: &AtomicU64, expected: u32, timeout: Duration) {
    imp::wait(w, expected, timeout);
}

/// Wakes every sleeper on `w` (in any process).
#[inline]
pub(crate) fn wake_all(w: &AtomicU64) {
    imp::wake_all(w);
}
