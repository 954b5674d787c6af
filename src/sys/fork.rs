//! Fork tracking: a generation number that the child of every fork bumps,
//! and descriptors the child closes at once.
//!
//! A forked child inherits the parent's memory (cached identities, writer
//! tokens) and descriptors (whose OFD locks would then outlive the parent).
//! Both are handled in a `pthread_atfork` child handler, which runs in the
//! child before `fork` returns there and does only async-signal-safe work.
//!
//! Raw libc: neither std nor rustix offers `pthread_atfork` (a libc, not a
//! kernel, facility); `close` in the handler must be the plain call too.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// Bumped in the child after every fork.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Descriptors the child of a fork closes (-1 = free entry).
static CLOSE_IN_CHILD: [AtomicI32; 64] = [const { AtomicI32::new(-1) }; 64];

extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
    for slot in &CLOSE_IN_CHILD {
        let fd = slot.swap(-1, Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: `fd` was registered by a live `CloseOnFork`, which never
            // closes it in this (child) process itself; closing only drops the
            // child's reference to the description (async-signal-safe).
            unsafe { libc::close(fd) };
        }
    }
}

/// The number of forks this process descends from since procreg was first
/// used in it: a cheap way (no getpid syscall) to notice "I am a forked
/// child". Installs the fork handler on first use.
#[inline]
pub(crate) fn generation() -> u64 {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a child handler that only does async-signal-safe
        // work (atomic operations and close).
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    GENERATION.load(Ordering::Acquire)
}

fn register(fd: RawFd) -> bool {
    generation();
    CLOSE_IN_CHILD.iter().any(|slot| {
        slot.compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

fn unregister(fd: RawFd) {
    for slot in &CLOSE_IN_CHILD {
        if slot
            .compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
}

/// A descriptor that the child of a fork closes as it starts, so the child
/// never keeps alive a lock held through it (an OFD lock is shared by every
/// descriptor of its open file description, inherited ones included).
///
/// At most 64 such descriptors per process are closed in the child; past
/// that (best effort) the child keeps its copy until it drops this value.
#[derive(Debug)]
pub(crate) struct CloseOnFork {
    fd: Option<OwnedFd>,
    /// The fork generation in which `fd` was registered.
    generation: u64,
    registered: bool,
}

impl CloseOnFork {
    /// Registers `fd` to be closed in the child of any later fork. Call it
    /// before taking any lock through `fd`, so no fork in another thread can
    /// leave a child holding the lock unknowingly.
    pub(crate) fn new(fd: OwnedFd) -> CloseOnFork {
        let registered = register(fd.as_raw_fd());
        CloseOnFork {
            fd: Some(fd),
            generation: generation(),
            registered,
        }
    }

    /// Whether a forked child closes this descriptor by itself.
    #[cfg(test)]
    pub(crate) fn closes_on_fork(&self) -> bool {
        self.registered
    }
}

impl AsFd for CloseOnFork {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("present until drop").as_fd()
    }
}

impl Drop for CloseOnFork {
    fn drop(&mut self) {
        let Some(fd) = self.fd.take() else { return };
        if self.registered && generation() != self.generation {
            // We are a forked child: the fork handler already closed this
            // number, which may since name another file. Never close it again.
            std::mem::forget(fd);
        } else {
            if self.registered {
                unregister(fd.as_raw_fd());
            }
            drop(fd);
        }
    }
}

/// Test support: runs `child` in a forked child process and returns what it
/// returned (false if the child died first).
///
/// # Safety
/// The calling process must be able to run `child` after a fork: `child` may
/// only use what a forked child of a multi-threaded process may (no locks
/// another thread might hold, such as the allocator's, in the worst case).
#[cfg(test)]
pub(crate) unsafe fn in_forked_child(child: impl FnOnce() -> bool) -> bool {
    use std::io::{Read, Write};
    let (mut rx, mut tx) = std::io::pipe().expect("pipe");
    // SAFETY: the caller vouches for `child`; the child leaves with `_exit`,
    // never returning into the parent's stack or test harness. Raw libc:
    // neither std nor rustix (outside its own runtime) offers fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = child();
        let _ = tx.write_all(&[ok as u8]);
        // SAFETY: ends the child at once, without running the parent's
        // atexit handlers or destructors (raw libc: std's exit runs them).
        unsafe { libc::_exit(0) };
    }
    drop(tx);
    let mut b = [0u8];
    let got = rx.read(&mut b).unwrap_or(0);
    let pid = rustix::process::Pid::from_raw(pid).expect("a child pid is positive");
    let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
    got == 1 && b[0] == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forked_child_sees_a_new_generation_and_its_close_on_fork_fd_closed() {
        let before = generation();
        let fd = CloseOnFork::new(std::fs::File::open("/proc/self/stat").unwrap().into());
        assert!(fd.closes_on_fork());
        let raw = fd.as_fd().as_raw_fd();
        let child = || {
            // SAFETY: fcntl(F_GETFD) on a bare number touches no memory; EBADF
            // (the expected answer) is an error value. Raw libc: a closed
            // number cannot be a BorrowedFd, which rustix would need.
            let r = unsafe { libc::fcntl(raw, libc::F_GETFD) };
            let closed =
                r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
            generation() == before + 1 && closed
        };
        // SAFETY: the child only loads atomics and makes one fcntl call.
        let ok = unsafe { in_forked_child(child) };
        assert!(ok, "the child must bump the generation and close the fd");
        assert_eq!(generation(), before, "the parent's generation is unchanged");
        assert!(
            rustix::io::fcntl_getfd(&fd).is_ok(),
            "the parent keeps its fd"
        );
    }
}
