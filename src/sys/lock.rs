//! Open-file-description byte-range locks (`F_OFD_SETLK`, `F_OFD_GETLK`):
//! a one-byte lock is a token the kernel releases when the last descriptor
//! of its open file description closes, i.e. when its process dies.
//!
//! Raw libc: rustix wraps `flock` and the per-process `F_GETLK`, but not the
//! OFD commands, whose owner is the description rather than the process.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// One `fcntl` OFD lock command on byte `at`; returns the kernel's answer.
fn ofd(f: impl AsFd, cmd: libc::c_int, typ: libc::c_short, at: u64) -> io::Result<libc::flock> {
    let at = libc::off_t::try_from(at)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "lock offset too large"))?;
    // SAFETY: an all-zero `flock` is a valid value of this plain C struct
    // (l_pid must be 0 for the OFD commands).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = at;
    fl.l_len = 1;
    // SAFETY: the descriptor is borrowed, hence open; `fl` is a valid,
    // initialised flock that the kernel may read and write during the call.
    let r = unsafe { libc::fcntl(f.as_fd().as_raw_fd(), cmd, &mut fl) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl)
}

/// Tries to take an OFD write lock on byte `at` of `f`'s description:
/// `Ok(false)` if another description holds it. Never blocks.
pub(crate) fn try_lock_byte(f: impl AsFd, at: u64) -> io::Result<bool> {
    match ofd(f, libc::F_OFD_SETLK, libc::F_WRLCK as libc::c_short, at) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether a description other than `f`'s holds a lock on byte `at`.
pub(crate) fn byte_is_locked(f: impl AsFd, at: u64) -> io::Result<bool> {
    let fl = ofd(f, libc::F_OFD_GETLK, libc::F_WRLCK as libc::c_short, at)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}
