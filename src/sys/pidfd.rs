//! pidfds (rustix's `pidfd_open`): a descriptor that becomes readable when
//! its process exits, so the reaper sleeps in `poll` instead of polling /proc.

use rustix::process::{Pid, PidfdFlags, pidfd_open};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// A pidfd: readable once its process has exited.
#[derive(Debug)]
pub(crate) struct PidWatch(OwnedFd);

impl PidWatch {
    /// A pidfd for `pid`; `Ok(None)` if no such process exists (any more).
    ///
    /// # Errors
    /// The kernel's error when pidfds are unsupported or not permitted.
    pub(crate) fn open(pid: u32) -> io::Result<Option<PidWatch>> {
        let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
            return Ok(None);
        };
        match pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => Ok(Some(PidWatch(fd))),
            Err(rustix::io::Errno::SRCH) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl AsFd for PidWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
