//! Process-watching system calls for the reaper: pidfds and `poll`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// A pidfd: readable once its process has exited.
#[derive(Debug)]
pub(crate) struct PidWatch(OwnedFd);

impl PidWatch {
    /// A pidfd for `pid`; `Ok(None)` if no such process exists (any more).
    ///
    /// # Errors
    /// The kernel's error when pidfds are unsupported or not permitted.
    pub(crate) fn open(pid: u32) -> io::Result<Option<PidWatch>> {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return Ok(None);
        };
        // SAFETY: pidfd_open takes two integers and returns a new descriptor
        // or -1; it touches no memory of ours.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::ESRCH) {
                Ok(None)
            } else {
                Err(e)
            };
        }
        // SAFETY: a descriptor the kernel just returned; we are its only owner.
        Ok(Some(PidWatch(unsafe { OwnedFd::from_raw_fd(fd as i32) })))
    }
}

impl AsFd for PidWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Waits until at least one of `fds` is readable (or hung up), at most
/// `timeout`; returns the indices of those that are. EINTR counts as a
/// timeout with none ready.
pub(crate) fn wait_readable(fds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<Vec<usize>> {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `polls` is a valid array of `polls.len()` pollfd structs that
    // outlives the call; the descriptors are borrowed, hence open.
    let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(Vec::new())
        } else {
            Err(e)
        };
    }
    Ok(polls
        .iter()
        .enumerate()
        .filter(|(_, p)| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0)
        .map(|(i, _)| i)
        .collect())
}

/// Nanoseconds on clock `id` (0 for a time before its epoch), or `None` if
/// the kernel refuses the clock.
fn clock_ns(id: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which we own.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return None;
    }
    Some(u64::try_from(ts.tv_sec).map_or(0, |s| s * 1_000_000_000 + ts.tv_nsec as u64))
}

/// Milliseconds on the boot clock (`CLOCK_BOOTTIME`): one clock for every
/// process of the host, never set back, counting suspend. Leases use it.
pub(crate) fn boot_ms() -> u64 {
    let ns = clock_ns(libc::CLOCK_BOOTTIME);
    debug_assert!(ns.is_some(), "CLOCK_BOOTTIME is always available on Linux");
    ns.unwrap_or(0) / 1_000_000
}

/// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`; 0 before 1970).
pub(crate) fn realtime_ns() -> u64 {
    let ns = clock_ns(libc::CLOCK_REALTIME);
    debug_assert!(ns.is_some(), "CLOCK_REALTIME is always available");
    ns.unwrap_or(0)
}

/// Nanoseconds since the Unix epoch from `CLOCK_REALTIME_COARSE`: the time of
/// the last tick (a few milliseconds of resolution), for a fraction of the
/// cost of [`realtime_ns`]. Change records use it.
pub(crate) fn coarse_realtime_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME_COARSE).unwrap_or_else(realtime_ns)
}
