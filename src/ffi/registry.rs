//! The registry handle: `procreg`, `procreg_options`, open, close, destroy.

use super::error::{Fail, FfiResult, invalid};
use super::sized::{Extensible, caller_size, read_in, write_out};
use super::status::procreg_status;
use super::util::{non_null, out_ptr, put, text};
use crate::{Builder, Registry};
use std::ffi::{CStr, c_char, c_int};
use std::mem::offset_of;
use std::sync::OnceLock;
use std::time::Duration;

/// How `procreg_open` treats an existing or missing segment.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum procreg_create_mode {
    /// Open the segment, creating it when absent (the default).
    PROCREG_OPEN_OR_CREATE = 0,
    /// Create the segment; PROCREG_E_REGISTRY_EXISTS if it exists.
    PROCREG_CREATE = 1,
    /// Open an existing segment; PROCREG_E_NO_SUCH_REGISTRY if absent.
    PROCREG_OPEN = 2,
}

/// A `procreg_create_mode` received from C (any integer). Appears in the
/// header as `procreg_create_mode`.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateModeArg(pub c_int);

/// Opaque registry handle. One handle may be used from many threads at once;
/// close it once, after every other call on it has returned. Watchers and
/// reapers started from it hold their own reference to the registry and may
/// outlive it.
pub struct procreg {
    reg: Registry,
    /// The host of every entry, for a registry of one host (shm:, mem:),
    /// once an entry has been read through this handle: then procreg_lookup
    /// copies an entry out without allocating (see lookup.rs).
    local_host: OnceLock<&'static CStr>,
}

impl procreg {
    /// Whether every entry of this registry is of this host: true for the
    /// hash-table backends (shm:, mem:), the only ones with a fixed capacity
    /// (`Limits::capacity`), whose entries name this host (`Entry::host`).
    pub(crate) fn is_local(&self) -> bool {
        self.reg.limits().capacity.is_some()
    }

    /// The host every entry names, if known yet (see `local_host`).
    pub(crate) fn local_host(&self) -> Option<&'static CStr> {
        self.local_host.get().copied()
    }

    /// Remembers `host`, read from an entry, as the host of every entry of a
    /// local registry.
    pub(crate) fn learn_host(&self, host: &'static CStr) {
        if self.is_local() {
            let _ = self.local_host.set(host);
        }
    }

    /// The registry.
    pub(crate) fn registry(&self) -> &Registry {
        &self.reg
    }
}

/// Options for `procreg_open`. Set `struct_size` to `sizeof(procreg_options)`,
/// then fill the rest with `procreg_options_default`. A size or limit left
/// at 0 means "the default when creating, whatever the segment has when
/// opening". A non-zero limit that differs from an existing segment's fails
/// with PROCREG_E_INCOMPATIBLE_SEGMENT.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct procreg_options {
    /// sizeof(procreg_options) as the caller was compiled: set it first.
    /// Options added by later versions keep their defaults for a caller
    /// built against an older header.
    pub struct_size: usize,
    /// Slot capacity: a power of two, 16..=2^26 (default 4096).
    pub capacity: usize,
    /// Longest namespace in bytes, 1..=1024 (default 64).
    pub max_namespace_len: usize,
    /// Longest name in bytes, 1..=4096 (default 128).
    pub max_name_len: usize,
    /// Longest metadata in bytes, 0..=1 MiB (default 256); 0 keeps the default.
    pub max_metadata_len: usize,
    /// Processes that may write the segment at once, 1..=4095 (default 1024).
    pub max_writers: usize,
    /// File mode of a created segment, within 0777 (default 0600).
    pub mode: u32,
    /// Bound on waiting for another writer of the same neighbourhood, in
    /// milliseconds (0 = default, 500).
    pub lock_timeout_ms: u32,
    /// Create, open, or open-or-create (default).
    pub create: CreateModeArg,
    /// Accept a segment owned by another user (refused by default: a
    /// squatter could pre-create the name).
    pub allow_foreign_owner: bool,
    /// Accept a world-writable segment (refused by default).
    pub allow_world_writable: bool,
    // Version 1 ends here (64 bytes on LP64). Options appended later keep
    // 0 as "the default", so a caller built against an older header gets
    // the defaults.
    /// Largest segment file a create may reserve, in bytes (0 = the
    /// default, 1 GiB): creating a segment whose limits need more fails
    /// with PROCREG_E_INVALID_ARGUMENT, saying the size. Opening an existing
    /// segment is never bounded. (Version 2.)
    pub max_segment_bytes: u64,
}

// SAFETY: repr(C), struct_size first, integers and C bools only.
unsafe impl Extensible for procreg_options {
    const NAME: &'static str = "procreg_options";
    const MIN_SIZE: usize = offset_of!(procreg_options, allow_world_writable) + 1;
}

impl procreg_options {
    /// The defaults, for a struct of this library's size.
    const DEFAULT: procreg_options = procreg_options {
        struct_size: size_of::<procreg_options>(),
        capacity: 0,
        max_namespace_len: 0,
        max_name_len: 0,
        max_metadata_len: 0,
        max_writers: 0,
        mode: crate::DEFAULT_MODE,
        lock_timeout_ms: 0,
        create: CreateModeArg(procreg_create_mode::PROCREG_OPEN_OR_CREATE as c_int),
        allow_foreign_owner: false,
        allow_world_writable: false,
        max_segment_bytes: 0,
    };
}

/// The library's version, "MAJOR.MINOR.PATCH" (static string). Compare with
/// the PROCREG_VERSION_* macros of the header you compiled against.
#[unsafe(no_mangle)]
pub extern "C" fn procreg_version() -> *const c_char {
    ffi!(or std::ptr::null(), {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    })
}

/// Fills `*out` with the defaults (limits 0: the default or the segment's;
/// mode 0600; PROCREG_OPEN_OR_CREATE). `out->struct_size` must be set to
/// sizeof(procreg_options) before the call; it is left as it is.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_options_default(out: *mut procreg_options) -> procreg_status {
    ffi!({
        let out = out_ptr(out, "out")?;
        // SAFETY: non-NULL; the caller gives a procreg_options of struct_size bytes.
        unsafe {
            let size = caller_size(out)?;
            write_out(out, size, &procreg_options::DEFAULT);
        }
        Ok(())
    })
}

fn builder_of(o: &procreg_options) -> Builder {
    let mut b = Registry::builder()
        .mode(o.mode)
        .allow_foreign_owner(o.allow_foreign_owner)
        .allow_world_writable(o.allow_world_writable);
    if o.capacity != 0 {
        b = b.capacity(o.capacity);
    }
    if o.max_namespace_len != 0 {
        b = b.max_namespace_len(o.max_namespace_len);
    }
    if o.max_name_len != 0 {
        b = b.max_name_len(o.max_name_len);
    }
    if o.max_metadata_len != 0 {
        b = b.max_metadata_len(o.max_metadata_len);
    }
    if o.max_writers != 0 {
        b = b.max_writers(o.max_writers);
    }
    if o.max_segment_bytes != 0 {
        b = b.max_segment_bytes(o.max_segment_bytes);
    }
    if o.lock_timeout_ms != 0 {
        b = b.lock_timeout(Duration::from_millis(u64::from(o.lock_timeout_ms)));
    }
    b
}

/// Opens (or creates, per `opts->create`) the registry at `url`: "shm:NAME"
/// (or a bare NAME), "file:/path", "mem:[NAME]" (in this process only), or
/// "etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?ttl=10s&timeout=5s&...]" (keys
/// under /PREFIX/ of an etcd v3 cluster, shared across hosts; the url's
/// options are listed in the README). etcd:// needs a library built with
/// the cargo feature `etcd` (otherwise PROCREG_E_INVALID_ARGUMENT says so);
/// its limits are fixed, so leave the sizes, limits and mode of `opts` at
/// their defaults for it; a cluster that does not answer within the url's
/// timeout gives PROCREG_E_UNAVAILABLE.
/// `opts` may be NULL for the defaults; otherwise its struct_size must be
/// set (PROCREG_E_INVALID_ARGUMENT if it is too small). On success `*out`
/// holds a handle to release with procreg_close.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_open(
    url: *const c_char,
    opts: *const procreg_options,
    out: *mut *mut procreg,
) -> procreg_status {
    ffi!({
        // SAFETY: by this function's contract `url` is NULL or NUL-terminated.
        let url = unsafe { text(url, "url") }?;
        let out = out_ptr(out, "out")?;
        let o = if opts.is_null() {
            procreg_options::DEFAULT
        } else {
            // SAFETY: non-NULL; the caller gives a procreg_options of struct_size bytes.
            unsafe { read_in(opts, caller_size(opts)?, procreg_options::DEFAULT) }?
        };
        let b = builder_of(&o);
        let reg = match o.create.0 {
            0 => b.open_or_create(url),
            1 => b.create(url),
            2 => b.open(url),
            other => {
                return Err(invalid(format!(
                    "opts->create is {other}; use PROCREG_OPEN_OR_CREATE, PROCREG_CREATE or PROCREG_OPEN"
                )));
            }
        }?;
        let handle = Box::into_raw(Box::new(procreg {
            reg,
            local_host: OnceLock::new(),
        }));
        // SAFETY: checked non-NULL; the caller gives a writable pointer place.
        unsafe { put(out, handle) };
        Ok(())
    })
}

/// Closes a handle from procreg_open; NULL is a no-op. Entries stay
/// registered: they belong to processes, not handles. Watchers and reapers
/// started from the handle keep working until they are closed or stopped.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_close(reg: *mut procreg) {
    ffi!(or(), {
        if !reg.is_null() {
            // SAFETY: a handle from procreg_open, closed once (the caller's contract).
            drop(unsafe { Box::from_raw(reg) });
        }
    })
}

/// Removes the segment at `url` (only a procreg segment, only by its creator's
/// user). Handles still open elsewhere keep working on the unlinked file.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_destroy(url: *const c_char) -> procreg_status {
    ffi!({
        // SAFETY: NULL or NUL-terminated by contract.
        let url = unsafe { text(url, "url") }?;
        Registry::destroy(url)?;
        Ok(())
    })
}

/// The registry behind a handle.
///
/// # Safety
/// `reg` is NULL or a live handle from procreg_open.
#[inline(always)]
pub(crate) unsafe fn registry<'a>(reg: *const procreg) -> Result<&'a Registry, Fail> {
    // SAFETY: forwarded.
    Ok(&unsafe { handle(reg) }?.reg)
}

/// The handle itself.
///
/// # Safety
/// As [`registry`].
#[inline(always)]
pub(crate) unsafe fn handle<'a>(reg: *const procreg) -> Result<&'a procreg, Fail> {
    // SAFETY: forwarded.
    unsafe { non_null(reg, "reg") }
}

/// A handle and a key, the first arguments of most calls.
///
/// # Safety
/// As [`registry`] and [`text`].
#[inline(always)]
pub(crate) unsafe fn reg_key<'a>(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
) -> Result<(&'a Registry, &'a str, &'a str), Fail> {
    // SAFETY: forwarded from the exported function's contract.
    unsafe { Ok((registry(reg)?, text(ns, "ns")?, text(name, "name")?)) }
}

/// `PROCREG_E_NOT_FOUND` unless `found`.
pub(crate) fn found_or(found: bool, ns: &str, name: &str) -> FfiResult {
    if found {
        Ok(())
    } else {
        Err(super::error::not_found(ns, name))
    }
}
