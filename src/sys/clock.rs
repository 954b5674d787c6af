//! Clocks (rustix's `clock_gettime`, served by the vDSO: no syscall).

use rustix::time::{ClockId, Timespec, clock_gettime};

/// Nanoseconds of `ts` (0 for a time before the clock's epoch).
fn ns(ts: Timespec) -> u64 {
    u64::try_from(ts.tv_sec).map_or(0, |s| s * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Milliseconds on the boot clock (`CLOCK_BOOTTIME`): one clock for every
/// process of the host, never set back, counting suspend. Leases use it.
pub(crate) fn boot_ms() -> u64 {
    ns(clock_gettime(ClockId::Boottime)) / 1_000_000
}

/// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`; 0 before 1970).
pub(crate) fn realtime_ns() -> u64 {
    ns(clock_gettime(ClockId::Realtime))
}

/// Nanoseconds since the Unix epoch from `CLOCK_REALTIME_COARSE`: the time of
/// the last tick (a few milliseconds of resolution), for a fraction of the
/// cost of [`realtime_ns`]. Change records use it.
pub(crate) fn coarse_realtime_ns() -> u64 {
    ns(clock_gettime(ClockId::RealtimeCoarse))
}
