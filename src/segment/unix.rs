//! The OS calls the segment needs (Linux/Unix), each wrapped once.

use crate::sync::AtomicU64;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU64 as StdAtomicU64, Ordering};

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn open_with(path: &Path, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    let c = cpath(path)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let fd =
        check(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW, mode) })?;
    // SAFETY: `open` returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `O_CREAT | O_EXCL`: fails with EEXIST when the file exists (or is a link).
pub(crate) fn create_exclusive(path: &Path, mode: u32) -> io::Result<OwnedFd> {
    open_with(path, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, mode)
}

/// A new open file description of the same file as `f` (not a dup: its
/// record locks are its own). Fails if the reopened file is another inode.
pub(crate) fn reopen(f: &OwnedFd) -> io::Result<OwnedFd> {
    // /proc/self/fd/N is a magic link to the open inode itself, so it must be
    // followed (no O_NOFOLLOW here); the inode check below guards the result.
    let c = CString::new(format!("/proc/self/fd/{}", f.as_raw_fd())).expect("no NUL in a number");
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let fd = check(unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) })?;
    // SAFETY: `open` returned a fresh descriptor that nothing else owns.
    let fresh = unsafe { OwnedFd::from_raw_fd(fd) };
    let (a, b) = (fstat(f)?, fstat(&fresh)?);
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
        return Err(io::Error::other("reopened descriptor names another file"));
    }
    Ok(fresh)
}

/// Opens an existing file read-write, never following a symbolic link.
pub(crate) fn open_existing(path: &Path) -> io::Result<OwnedFd> {
    open_with(path, libc::O_RDWR, 0)
}

pub(crate) fn fstat(f: &OwnedFd) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a valid out-pointer for one `stat`; fstat fills it on success.
    check(unsafe { libc::fstat(f.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat returned 0, so it initialised `st`.
    Ok(unsafe { st.assume_init() })
}

pub(crate) fn fchmod(f: &OwnedFd, mode: u32) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor we own.
    check(unsafe { libc::fchmod(f.as_raw_fd(), mode as libc::mode_t) }).map(drop)
}

/// Reserves `len` bytes (zero-filled) so that later page faults cannot fail.
pub(crate) fn fallocate(f: &OwnedFd, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor we own.
    let r = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, len as libc::off_t) };
    if r != 0 {
        Err(io::Error::from_raw_os_error(r))
    } else {
        Ok(())
    }
}

pub(crate) fn pwrite_all(f: &OwnedFd, mut buf: &[u8], mut off: u64) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for `buf.len()` bytes of reading.
        let n = unsafe {
            libc::pwrite(
                f.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                off as libc::off_t,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
        off += n as u64;
    }
    Ok(())
}

/// Reads up to `buf.len()` bytes at `off`; returns how many were read.
pub(crate) fn pread(f: &OwnedFd, buf: &mut [u8], off: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is valid for `rest.len()` bytes of writing.
        let n = unsafe {
            libc::pread(
                f.as_raw_fd(),
                rest.as_mut_ptr().cast(),
                rest.len(),
                (off + done as u64) as libc::off_t,
            )
        };
        match n {
            0 => break,
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            n => done += n as usize,
        }
    }
    Ok(done)
}

fn flock(f: &OwnedFd, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: plain syscall on a descriptor we own.
        match check(unsafe { libc::flock(f.as_raw_fd(), op) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(drop),
        }
    }
}
pub(crate) fn lock_exclusive(f: &OwnedFd) -> io::Result<()> {
    flock(f, libc::LOCK_EX)
}
pub(crate) fn lock_shared(f: &OwnedFd) -> io::Result<()> {
    flock(f, libc::LOCK_SH)
}
pub(crate) fn unlock(f: &OwnedFd) {
    let _ = flock(f, libc::LOCK_UN);
}

fn ofd(f: &OwnedFd, cmd: libc::c_int, typ: libc::c_short, at: i64) -> io::Result<libc::flock> {
    // SAFETY: an all-zero `flock` is a valid value of this plain C struct.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = at as libc::off_t;
    fl.l_len = 1;
    // SAFETY: `fl` is a valid, initialised flock the kernel may read and write.
    check(unsafe { libc::fcntl(f.as_raw_fd(), cmd, &mut fl) })?;
    Ok(fl)
}

/// Tries to take an open-file-description write lock on byte `at`.
pub(crate) fn ofd_try_lock(f: &OwnedFd, at: i64) -> io::Result<bool> {
    match ofd(f, libc::F_OFD_SETLK, libc::F_WRLCK as libc::c_short, at) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether another open file description holds a lock on byte `at`.
pub(crate) fn ofd_is_locked(f: &OwnedFd, at: i64) -> io::Result<bool> {
    let fl = ofd(f, libc::F_OFD_GETLK, libc::F_WRLCK as libc::c_short, at)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Fault injection: stops the calling process with SIGSTOP (it resumes on SIGCONT).
#[cfg(feature = "fault-injection")]
pub(crate) fn stop_self() {
    // SAFETY: raise has no memory preconditions; SIGSTOP cannot be caught, it
    // only suspends this process until someone sends SIGCONT.
    unsafe { libc::raise(libc::SIGSTOP) };
}

pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

/// A shared read-write mapping of a whole file, seen as `u64` atomics.
pub(crate) struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is only accessed through `&[AtomicU64]`, which is Sync;
// the raw pointer is never handed out mutably.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub(crate) fn new(f: &OwnedFd, len: usize) -> io::Result<Mapping> {
        assert!(len.is_multiple_of(8) && len > 0);
        // SAFETY: mapping a descriptor we own, with a length the caller checked
        // against the file size; the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr, len })
    }

    /// The whole mapping as atomic words.
    pub(crate) fn words(&self) -> &[AtomicU64] {
        // SAFETY: `ptr` is page-aligned (so 8-aligned) and valid for `len`
        // bytes until `self` is dropped; the bytes are only ever accessed as
        // `AtomicU64` (by every process), which has the size and alignment of
        // u64 and permits concurrent access through shared references.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<AtomicU64>(), self.len / 8) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping we created and nobody uses
        // after drop (all borrows of `words()` end with `self`).
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Bumped in the child after every fork: writer tokens cached before it
/// belong to the parent and must not be used by the child.
pub(crate) static FORK_GENERATION: StdAtomicU64 = StdAtomicU64::new(0);

/// Owner-lock descriptors the child must close after fork, so that the
/// parent's owner record is released when the parent dies (OFD locks are
/// shared by every descriptor of the open file description).
static FORK_CLOSE: [AtomicI32; 64] = [const { AtomicI32::new(-1) }; 64];

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
    for slot in &FORK_CLOSE {
        let fd = slot.swap(-1, Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: `fd` was registered as an owner-lock descriptor; closing it in
            // the child only drops the child's reference (async-signal-safe).
            unsafe { libc::close(fd) };
        }
    }
}

/// The number of forks this process descends from since procreg was first
/// used in it: a cheap way (no getpid syscall) to notice "I am a forked child".
pub(crate) fn fork_generation() -> u64 {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registering a handler that only does async-signal-safe work.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    FORK_GENERATION.load(Ordering::Acquire)
}

/// Makes the child of a fork close `fd` (best effort: 64 descriptors at most;
/// past that the child's first write still takes its own record).
pub(crate) fn register_fork_close(fd: RawFd) -> bool {
    fork_generation();
    for slot in &FORK_CLOSE {
        if slot
            .compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return true;
        }
    }
    false
}

/// Forgets `fd` (it is about to be closed by its owner).
pub(crate) fn unregister_fork_close(fd: RawFd) {
    for slot in &FORK_CLOSE {
        if slot
            .compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
}
