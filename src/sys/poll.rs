//! Waiting for several descriptors at once (rustix's `poll`).

use rustix::event::{PollFd, PollFlags, poll};
use rustix::time::Timespec;
use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// Waits until at least one of `fds` is readable (or hung up), at most
/// `timeout`; returns the indices of those that are. EINTR counts as a
/// timeout with none ready.
pub(crate) fn wait_readable(fds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<Vec<usize>> {
    let mut polls: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN))
        .collect();
    // Whole milliseconds, as poll(2) took them: a sub-millisecond rest is
    // dropped rather than turned into a busy loop of tiny sleeps.
    let ms = timeout.as_millis().min(i32::MAX as u128) as u64;
    let ts = Timespec {
        tv_sec: (ms / 1000) as i64,
        tv_nsec: ((ms % 1000) * 1_000_000) as i64,
    };
    match poll(&mut polls, Some(&ts)) {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    }
    let ready = PollFlags::IN | PollFlags::HUP | PollFlags::ERR;
    Ok(polls
        .iter()
        .enumerate()
        .filter(|(_, p)| p.revents().intersects(ready))
        .map(|(i, _)| i)
        .collect())
}
