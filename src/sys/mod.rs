//! The one Linux layer: every OS call procreg makes, each wrapped once.
//!
//! Built on std where std covers the call, on `rustix` for the Linux calls std
//! lacks, and on `memmap2` for the mapping. Raw `libc` appears only where
//! neither covers the call, with the reason beside it. Nothing here knows of
//! segments, tables or liveness: this module imports no other procreg module
//! except the `sync` facade.
//!
//! Under `cfg(procreg_loom)` only [`futex`] is built (with a loom fallback):
//! the model-checked table needs nothing else from the OS.

pub(crate) mod futex;

#[cfg(not(procreg_loom))]
pub(crate) mod clock;
#[cfg(not(procreg_loom))]
pub(crate) mod file;
#[cfg(not(procreg_loom))]
pub(crate) mod fork;
#[cfg(not(procreg_loom))]
pub(crate) mod lock;
#[cfg(not(procreg_loom))]
pub(crate) mod mmap;
#[cfg(not(procreg_loom))]
pub(crate) mod pidfd;
#[cfg(not(procreg_loom))]
pub(crate) mod poll;
#[cfg(not(procreg_loom))]
pub(crate) mod process;

/// What an OS error means to a caller that words it for the user.
#[cfg(not(procreg_loom))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// `ENOENT`: no such file.
    NotFound,
    /// `ELOOP`: the path is a symbolic link and we refused to follow it.
    SymbolicLink,
    /// `EACCES` or `EPERM`.
    PermissionDenied,
    /// `ESRCH`: no such process (any more).
    NoSuchProcess,
    /// Anything else: report the error as it is.
    Other,
}

/// Classifies `e` by its errno.
#[cfg(not(procreg_loom))]
pub(crate) fn cause(e: &std::io::Error) -> Cause {
    use rustix::io::Errno;
    match Errno::from_io_error(e) {
        Some(Errno::NOENT) => Cause::NotFound,
        Some(Errno::LOOP) => Cause::SymbolicLink,
        Some(Errno::ACCESS) | Some(Errno::PERM) => Cause::PermissionDenied,
        Some(Errno::SRCH) => Cause::NoSuchProcess,
        _ => Cause::Other,
    }
}
