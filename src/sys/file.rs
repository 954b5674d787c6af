//! The segment file's calls: exclusive creation, reopening, `fstat` checks,
//! `fchmod`, reservation, positioned I/O and whole-file `flock`s.
//!
//! std covers open, fstat, fchmod and pread/pwrite; rustix adds `fallocate`,
//! `flock` and the `O_NOFOLLOW` flag. (std's `File::lock` needs Rust 1.89;
//! the crate keeps 1.87, since raising it changes clippy's advice crate-wide.)

use rustix::fs::{FallocateFlags, FlockOperation, OFlags, fallocate, flock};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

fn read_write() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    o
}

/// `O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW` with `mode` (before the umask):
/// fails with EEXIST when anything, a symbolic link included, is at `path`.
pub(crate) fn create_exclusive(path: &Path, mode: u32) -> io::Result<File> {
    read_write()
        .create_new(true)
        .mode(mode)
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Opens an existing file read-write, never following a symbolic link
/// (ELOOP if `path` is one).
pub(crate) fn open_existing(path: &Path) -> io::Result<File> {
    read_write()
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// A new open file description of the same file as `f` (not a dup: its
/// record locks are its own). Fails if the reopened file is another inode.
pub(crate) fn reopen(f: &File) -> io::Result<File> {
    // /proc/self/fd/N is a magic link to the open inode itself, so it must be
    // followed (no O_NOFOLLOW here); the inode check below guards the result.
    let fresh = read_write().open(format!("/proc/self/fd/{}", f.as_raw_fd()))?;
    let (a, b) = (f.metadata()?, fresh.metadata()?);
    if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
        return Err(io::Error::other("reopened descriptor names another file"));
    }
    Ok(fresh)
}

/// What `fstat` says of an open file, as far as the trust checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// A regular file (not a device, FIFO, directory...).
    pub(crate) regular: bool,
    /// Owner uid.
    pub(crate) uid: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub(crate) mode: u32,
    /// Size in bytes.
    pub(crate) len: u64,
}

/// `fstat` of `f`.
pub(crate) fn stat(f: &File) -> io::Result<Stat> {
    let m = f.metadata()?;
    Ok(Stat {
        regular: m.file_type().is_file(),
        uid: m.uid(),
        mode: m.mode() & 0o7777,
        len: m.len(),
    })
}

/// `fchmod`: sets the permission bits exactly (the umask does not apply).
pub(crate) fn set_mode(f: &File, mode: u32) -> io::Result<()> {
    f.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// Reserves `len` bytes from offset 0 (zero-filled), so that later page
/// faults on a mapping of them cannot fail: a full tmpfs fails here with
/// ENOSPC, not with SIGBUS later.
pub(crate) fn reserve(f: &File, len: u64) -> io::Result<()> {
    loop {
        match fallocate(f, FallocateFlags::empty(), 0, len) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            // A filesystem without fallocate: write the zeros ourselves, as
            // posix_fallocate(3) does.
            Err(rustix::io::Errno::OPNOTSUPP) => return write_zeros(f, len),
            Err(e) => return Err(e.into()),
        }
    }
}

fn write_zeros(f: &File, len: u64) -> io::Result<()> {
    let have = f.metadata()?.len();
    let zeros = vec![0u8; 64 * 1024];
    let mut at = have;
    while at < len {
        let n = (len - at).min(zeros.len() as u64) as usize;
        f.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// `pwrite` of all of `buf` at `off` (retried on EINTR and short writes).
pub(crate) fn write_all_at(f: &File, buf: &[u8], off: u64) -> io::Result<()> {
    f.write_all_at(buf, off)
}

/// Reads up to `buf.len()` bytes at `off`; returns how many were read (fewer
/// only at the end of the file).
pub(crate) fn read_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// `flock(op)`, retried on EINTR.
fn flock_retry(f: &File, op: FlockOperation) -> io::Result<()> {
    loop {
        match flock(f, op) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(Into::into),
        }
    }
}

/// Whole-file exclusive `flock` (blocks).
pub(crate) fn lock_exclusive(f: &File) -> io::Result<()> {
    flock_retry(f, FlockOperation::LockExclusive)
}

/// Whole-file shared `flock` (blocks).
pub(crate) fn lock_shared(f: &File) -> io::Result<()> {
    flock_retry(f, FlockOperation::LockShared)
}

/// Drops this description's `flock`.
pub(crate) fn unlock(f: &File) {
    let _ = flock_retry(f, FlockOperation::Unlock);
}
