//! The C ABI. `include/procreg.h` is generated from this file by cbindgen
//! (see `build.rs` and `cbindgen.toml`); the doc comments below become the
//! header's C comments, so they speak C.
//!
//! Rules every function here keeps:
//! * its body runs inside [`ffi!`], which catches panics (`PROCREG_E_PANIC`),
//!   so no panic ever unwinds into C;
//! * every pointer argument is checked for NULL (`PROCREG_E_NULL_ARGUMENT`);
//! * out-parameters are written only when `PROCREG_OK` is returned;
//! * strings are NUL-terminated UTF-8 (`PROCREG_E_INVALID_UTF8`), and lengths
//!   are checked against the segment's limits by the registry itself;
//! * a failure records a detailed message for `procreg_last_error_message`.
#![allow(non_camel_case_types)]
// The C names are the API; their docs are written for C readers.
#![allow(clippy::missing_safety_doc)]

use crate::error::Error;
use crate::registry::{Builder, Registry};
use crate::types::{Entry, EntryInfo, EntryRef, Event, EventKind, LivenessMode};
use crate::watch::{Reaper, Watcher};
use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::time::{Duration, UNIX_EPOCH};

/// Status of every procreg call. The numbers are stable: new values may be
/// added, existing ones never change meaning.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum procreg_status {
    /// Success.
    PROCREG_OK = 0,
    /// The key is registered already by a live process
    /// (procreg_last_error_pid() tells which).
    PROCREG_E_ALREADY_EXISTS = 1,
    /// The namespace or name is empty, too long for this registry, or holds a NUL.
    PROCREG_E_INVALID_KEY = 2,
    /// The metadata is larger than this registry allows.
    PROCREG_E_METADATA_TOO_LARGE = 3,
    /// The pid given as owner is not a running process.
    PROCREG_E_PROCESS_NOT_ALIVE = 4,
    /// The key is not registered.
    PROCREG_E_NOT_FOUND = 5,
    /// No free slot near the key's home: sweep, unregister, or use a larger capacity.
    PROCREG_E_FULL = 6,
    /// A concurrent writer kept the slot or its neighbourhood busy; retry.
    PROCREG_E_BUSY = 7,
    /// The segment file is not one this build can use (or its limits differ
    /// from the ones asked for).
    PROCREG_E_INCOMPATIBLE_SEGMENT = 8,
    /// The segment's owner, mode or permissions forbid using it.
    PROCREG_E_PERMISSION_DENIED = 9,
    /// An argument other than the key is out of range (an option, a url, pid 0).
    PROCREG_E_INVALID_ARGUMENT = 10,
    /// No registry exists at the url and the call does not create one.
    PROCREG_E_NO_SUCH_REGISTRY = 11,
    /// A registry exists at the url and the call demanded to create it.
    PROCREG_E_REGISTRY_EXISTS = 12,
    /// An operating-system call failed (the message names it).
    PROCREG_E_IO = 13,
    /// A wait ended before what it waited for happened.
    PROCREG_E_TIMEOUT = 14,
    /// A watcher fell behind the change history; re-read with procreg_list
    /// and keep watching.
    PROCREG_E_LAGGED = 15,
    /// A pointer argument was NULL.
    PROCREG_E_NULL_ARGUMENT = 100,
    /// A string argument is not valid UTF-8.
    PROCREG_E_INVALID_UTF8 = 101,
    /// The caller's buffer cannot hold the result (the message gives the size needed).
    PROCREG_E_BUFFER_TOO_SMALL = 102,
    /// procreg panicked: a bug. The registry stays consistent; please report it.
    PROCREG_E_PANIC = 103,
    /// An error this version of the header does not know (a newer library).
    PROCREG_E_UNKNOWN = 199,
}

use procreg_status::*;

/// A status received from C: any `int` (C may pass a value that is not a
/// `procreg_status`, which a Rust enum parameter could not soundly hold).
/// Appears in the header as `procreg_status`.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusArg(pub c_int);

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

/// How owner liveness is judged (see `procreg_health_t`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum procreg_liveness_mode {
    /// pid + start time from /proc, for owners in this PID namespace.
    PROCREG_LIVENESS_PROC_START_TIME = 0,
    /// This process is in another PID namespace than the segment's creator:
    /// owners registered elsewhere are "unknown" and never reclaimed from here.
    PROCREG_LIVENESS_FOREIGN_PID_NAMESPACE = 1,
    /// An in-process (mem:) registry.
    PROCREG_LIVENESS_IN_PROCESS = 2,
    /// A networked (etcd://) registry: an entry lives while its owner's
    /// lease is kept alive; owners on this host are also checked in /proc.
    PROCREG_LIVENESS_LEASE = 3,
}

/// Opaque registry handle. One handle may be used from many threads at once;
/// close it once, after every other call on it has returned.
pub struct procreg {
    reg: Registry,
}

/// Options for `procreg_open`. Fill with `procreg_options_default` first;
/// a size or limit left at 0 means "the default when creating, whatever the
/// segment has when opening". A non-zero limit that differs from an existing
/// segment's fails with PROCREG_E_INCOMPATIBLE_SEGMENT.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct procreg_options {
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
}

/// Size of the inline metadata buffer of `procreg_entry`. An entry with longer
/// metadata (possible only in a registry created with max_metadata_len above
/// this) is read with `procreg_lookup_metadata`.
pub const PROCREG_METADATA_CAPACITY: usize = 4096;

/// One entry, owned by the caller: a lookup copies into it and allocates nothing.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct procreg_entry {
    /// Owner process.
    pub pid: u32,
    /// Registration time, nanoseconds since the Unix epoch.
    pub registered_at_ns: u64,
    /// Version of the entry (changes on every update).
    pub version: u64,
    /// Number of valid bytes in `metadata`.
    pub metadata_len: usize,
    /// Metadata bytes; only the first `metadata_len` are meaningful.
    pub metadata: [u8; PROCREG_METADATA_CAPACITY],
}

/// One entry lent to a `procreg_visit_fn`. The pointers are valid only during
/// the callback; copy what you keep.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct procreg_entry_view {
    /// Namespace, NUL-terminated.
    pub ns: *const c_char,
    /// Name, NUL-terminated.
    pub name: *const c_char,
    /// Owner process.
    pub pid: u32,
    /// Registration time, nanoseconds since the Unix epoch.
    pub registered_at_ns: u64,
    /// Version of the entry.
    pub version: u64,
    /// Metadata bytes (not NUL-terminated).
    pub metadata: *const u8,
    /// Number of metadata bytes.
    pub metadata_len: usize,
}

/// Called once per entry by `procreg_list`; return 0 to go on, non-zero to stop.
pub type procreg_visit_fn =
    Option<unsafe extern "C" fn(entry: *const procreg_entry_view, ctx: *mut c_void) -> c_int>;

/// Sizes and counters of a registry (see `procreg_stats`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct procreg_stats_t {
    /// Backend name ("shm" or "mem"), NUL-terminated.
    pub backend: [c_char; 16],
    /// Slot capacity.
    pub capacity: usize,
    /// Live entries.
    pub live: usize,
    /// Tombstones (freed slots still marking probe chains).
    pub tombstones: usize,
    /// Slots claimed by a writer that has not published yet (or died).
    pub claimed: usize,
    /// Largest probe distance of any home, in groups.
    pub max_probe_distance: usize,
    /// Mean number of groups a miss reads.
    pub mean_miss_groups: f64,
    /// Bytes of the segment.
    pub segment_bytes: usize,
    /// Creation time of the segment, nanoseconds since the Unix epoch.
    pub created_at_ns: u64,
    /// Longest namespace in bytes.
    pub max_namespace_len: usize,
    /// Longest name in bytes.
    pub max_name_len: usize,
    /// Longest metadata in bytes (a buffer of this size always suffices).
    pub max_metadata_len: usize,
    /// Registrations committed (all processes).
    pub registers: u64,
    /// Unregistrations committed.
    pub unregisters: u64,
    /// Metadata updates committed.
    pub updates: u64,
    /// Entries of dead owners reclaimed.
    pub reclaimed: u64,
    /// Slots of dead writers recovered.
    pub stuck_recovered: u64,
    /// Locks of dead writers taken over.
    pub locks_stolen: u64,
    /// Committed changes of any kind.
    pub changes: u64,
    /// This process (all handles, all threads): successful registrations.
    pub process_registers: u64,
    /// This process: lookups that found their key.
    pub process_lookup_hits: u64,
    /// This process: lookups that did not.
    pub process_lookup_misses: u64,
    /// This process: successful unregistrations.
    pub process_unregisters: u64,
    /// This process: successful metadata updates.
    pub process_updates: u64,
    /// This process: entries it reclaimed (dead owner or expired lease).
    pub process_reclaimed: u64,
    /// This process: operations that gave up with PROCREG_E_BUSY.
    pub process_busy: u64,
}

/// Size of `procreg_health_t.problems`.
pub const PROCREG_PROBLEMS_CAPACITY: usize = 512;

/// Result of `procreg_health`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct procreg_health_t {
    /// True when nothing below needs attention.
    pub healthy: bool,
    /// Header validated on open.
    pub header_valid: bool,
    /// live / capacity.
    pub load_factor: f64,
    /// Live entries.
    pub live: usize,
    /// Live entries whose owner is alive.
    pub alive_owners: usize,
    /// Live entries whose owner is dead (a sweep reclaims them).
    pub dead_owners: usize,
    /// Live entries whose owner cannot be judged from here.
    pub unknown_owners: usize,
    /// Live entries whose lease ran out (a sweep reclaims them).
    pub expired_leases: usize,
    /// Slots or locks held by writers that died (a sweep frees them).
    pub stuck_slots: usize,
    /// How liveness is judged.
    pub liveness_mode: procreg_liveness_mode,
    /// Number of problems found.
    pub problem_count: usize,
    /// The problems, one per line ("\n"-separated), NUL-terminated.
    pub problems: [c_char; PROCREG_PROBLEMS_CAPACITY],
    /// True when `problems` was cut to fit (the full text is in
    /// procreg_last_error_message after this call).
    pub problems_truncated: bool,
}

// ---- plumbing ---------------------------------------------------------------

/// Why a call failed, before it becomes a status and a message.
enum Fail {
    /// Boxed: keeps `Result<(), Fail>` two words wide on the success path.
    Lib(Box<Error>),
    Null(&'static str),
    Utf8(&'static str),
    Buffer(String),
}

impl From<Error> for Fail {
    #[cold]
    fn from(e: Error) -> Self {
        Fail::Lib(Box::new(e))
    }
}

type FfiResult = Result<(), Fail>;

thread_local! {
    /// Detail of the last failure on this thread: message and, for
    /// AlreadyExists, the owner's pid.
    static LAST_ERROR: RefCell<(String, u32)> = const { RefCell::new((String::new(), 0)) };
}

fn record(message: String, pid: u32) {
    LAST_ERROR.with(|l| *l.borrow_mut() = (message, pid));
}

fn status_of(e: &Error) -> procreg_status {
    match e {
        Error::AlreadyExists { .. } => PROCREG_E_ALREADY_EXISTS,
        Error::InvalidKey(_) => PROCREG_E_INVALID_KEY,
        Error::MetadataTooLarge { .. } => PROCREG_E_METADATA_TOO_LARGE,
        Error::ProcessNotAlive(_) => PROCREG_E_PROCESS_NOT_ALIVE,
        Error::NotFound { .. } => PROCREG_E_NOT_FOUND,
        Error::Full { .. } => PROCREG_E_FULL,
        Error::Busy(_) => PROCREG_E_BUSY,
        Error::IncompatibleSegment(_) => PROCREG_E_INCOMPATIBLE_SEGMENT,
        Error::PermissionDenied(_) => PROCREG_E_PERMISSION_DENIED,
        Error::InvalidArgument(_) => PROCREG_E_INVALID_ARGUMENT,
        Error::NoSuchRegistry(_) => PROCREG_E_NO_SUCH_REGISTRY,
        Error::RegistryExists(_) => PROCREG_E_REGISTRY_EXISTS,
        Error::Io { .. } => PROCREG_E_IO,
        Error::Timeout { .. } => PROCREG_E_TIMEOUT,
        Error::Lagged { .. } => PROCREG_E_LAGGED,
        #[allow(unreachable_patterns)] // Error is non_exhaustive
        _ => PROCREG_E_UNKNOWN,
    }
}

fn fail(f: Fail) -> procreg_status {
    let (status, message, pid) = match f {
        Fail::Lib(e) => {
            let pid = match &*e {
                Error::AlreadyExists { pid, .. } => *pid,
                _ => 0,
            };
            (status_of(&e), e.to_string(), pid)
        }
        Fail::Null(what) => (
            PROCREG_E_NULL_ARGUMENT,
            format!("{what} is NULL; pass a valid pointer"),
            0,
        ),
        Fail::Utf8(what) => (
            PROCREG_E_INVALID_UTF8,
            format!("{what} is not valid UTF-8; keys and urls are UTF-8 text"),
            0,
        ),
        Fail::Buffer(m) => (PROCREG_E_BUFFER_TOO_SMALL, m, 0),
    };
    record(message, pid);
    status
}

fn panicked(payload: Box<dyn std::any::Any + Send>) -> procreg_status {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    record(
        format!("procreg panicked (a bug; please report it): {what}"),
        0,
    );
    PROCREG_E_PANIC
}

/// The one wrapper of every exported body: runs it, catches a panic, turns
/// the result into a status and records the message of a failure.
macro_rules! ffi {
    ($body:block) => {{
        match catch_unwind(AssertUnwindSafe(|| -> FfiResult { $body })) {
            Ok(Ok(())) => PROCREG_OK,
            Ok(Err(f)) => fail(f),
            Err(payload) => panicked(payload),
        }
    }};
}

/// `p` as a shared reference, or `NullArgument` naming it.
///
/// # Safety
/// `p` is NULL or valid for reads as a `T` for `'a`.
unsafe fn non_null<'a, T>(p: *const T, what: &'static str) -> Result<&'a T, Fail> {
    // SAFETY: the caller promises a NULL or valid pointer; NULL is rejected here.
    unsafe { p.as_ref() }.ok_or(Fail::Null(what))
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
#[inline(always)]
unsafe fn text<'a>(p: *const c_char, what: &'static str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(Fail::Null(what));
    }
    // Keys are short and almost always ASCII: libc's strlen, then an ASCII
    // check of the slice, costs about half of CStr::to_str's general UTF-8
    // validation on a 24-byte key; anything else takes the general path.
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let n = unsafe { libc::strlen(p) };
    // SAFETY: the `n` bytes before the NUL are readable.
    let b = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) };
    if b.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(b) });
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| Fail::Utf8(what))
}

/// A byte-buffer argument: NULL is allowed only with length 0.
///
/// # Safety
/// `p` is NULL or valid for reads of `len` bytes for `'a`.
unsafe fn bytes<'a>(p: *const u8, len: usize, what: &'static str) -> Result<&'a [u8], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Fail::Null(what));
    }
    // SAFETY: non-NULL and valid for `len` bytes by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Writes `v` to the out-parameter `out` (checked for NULL before any work).
///
/// # Safety
/// `out` is non-NULL and valid for writes of a `T`.
unsafe fn put<T>(out: *mut T, v: T) {
    // SAFETY: by the caller's contract; `write` neither reads nor drops the old value.
    unsafe { out.write(v) }
}

fn out_ptr<T>(out: *mut T, what: &'static str) -> Result<*mut T, Fail> {
    if out.is_null() {
        Err(Fail::Null(what))
    } else {
        Ok(out)
    }
}

fn nanos(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `PROCREG_E_NOT_FOUND` for a key.
fn not_found(ns: &str, name: &str) -> Fail {
    Fail::from(Error::NotFound {
        namespace: ns.into(),
        name: name.into(),
    })
}

fn entry_too_large(len: usize) -> Fail {
    Fail::Buffer(format!(
        "the entry's metadata is {len} bytes but procreg_entry holds {PROCREG_METADATA_CAPACITY}; \
         read it with procreg_lookup_metadata and a buffer of procreg_stats' max_metadata_len bytes"
    ))
}

/// Copies a full entry into the caller's `procreg_entry`.
///
/// # Safety
/// `out` is non-NULL and valid for writes of a `procreg_entry`.
unsafe fn put_entry(out: *mut procreg_entry, e: &Entry) -> FfiResult {
    if e.metadata.len() > PROCREG_METADATA_CAPACITY {
        return Err(entry_too_large(e.metadata.len()));
    }
    let info = EntryInfo {
        pid: e.pid,
        registered_at_ns: nanos(e.registered_at),
        version: e.version,
        metadata_len: e.metadata.len(),
    };
    // SAFETY: forwarded from the caller; the length was checked above.
    unsafe { put_entry_parts(out, &info, &e.metadata) };
    Ok(())
}

/// Writes the fields of `out` one by one (never a 4 KiB temporary).
///
/// # Safety
/// `out` is non-NULL and valid for writes; `meta.len() <= PROCREG_METADATA_CAPACITY`.
unsafe fn put_entry_parts(out: *mut procreg_entry, info: &EntryInfo, meta: &[u8]) {
    debug_assert!(meta.len() <= PROCREG_METADATA_CAPACITY);
    // SAFETY: `out` is valid for writes (caller); the field places are in
    // bounds of it and the metadata copy is at most the array's length.
    unsafe {
        ptr::addr_of_mut!((*out).pid).write(info.pid);
        ptr::addr_of_mut!((*out).registered_at_ns).write(info.registered_at_ns);
        ptr::addr_of_mut!((*out).version).write(info.version);
        ptr::addr_of_mut!((*out).metadata_len).write(meta.len());
        ptr::copy_nonoverlapping(
            meta.as_ptr(),
            ptr::addr_of_mut!((*out).metadata).cast::<u8>(),
            meta.len(),
        );
    }
}

/// Copies `s` into a fixed C char array, NUL-terminated; true if it was cut.
fn fill_chars(dst: &mut [c_char], s: &str) -> bool {
    let mut n = s.len().min(dst.len() - 1);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    for (d, b) in dst.iter_mut().zip(s.as_bytes()[..n].iter()) {
        *d = *b as c_char;
    }
    dst[n] = 0;
    n < s.len()
}

// ---- version and errors -------------------------------------------------------

/// The library's version, "MAJOR.MINOR.PATCH" (static string). Compare with
/// the PROCREG_VERSION_* macros of the header you compiled against.
#[unsafe(no_mangle)]
pub extern "C" fn procreg_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// A static, NUL-terminated description of `status` (also for unknown values).
#[unsafe(no_mangle)]
pub extern "C" fn procreg_strerror(status: StatusArg) -> *const c_char {
    let s: &'static CStr = match status.0 {
        0 => c"success",
        1 => c"key already registered by a live process",
        2 => c"invalid key (empty, too long for this registry, or contains NUL)",
        3 => c"metadata larger than this registry allows",
        4 => c"owner process is not alive",
        5 => c"key not registered",
        6 => c"registry full",
        7 => c"registry busy; retry",
        8 => c"incompatible segment",
        9 => c"permission denied",
        10 => c"invalid argument",
        11 => c"no registry at this url",
        12 => c"a registry already exists at this url",
        13 => c"operating-system error",
        14 => c"timed out",
        15 => c"watcher lagged behind the change history",
        100 => c"NULL pointer argument",
        101 => c"string argument is not valid UTF-8",
        102 => c"buffer too small",
        103 => c"internal panic (a procreg bug)",
        199 => c"unknown error (library newer than header)",
        _ => c"not a procreg status",
    };
    s.as_ptr()
}

/// Copies the detailed message of the last failed call on this thread into
/// `buf` (at most `len - 1` bytes, always NUL-terminated when `len > 0`) and
/// returns the message's full length in bytes, like snprintf: a result >= len
/// means it was cut. `buf` may be NULL when `len` is 0, to ask for the length.
/// A successful call does not clear the message.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_last_error_message(buf: *mut c_char, len: usize) -> usize {
    let r = catch_unwind(|| {
        LAST_ERROR.with(|l| {
            let l = l.borrow();
            let msg = l.0.as_bytes();
            if !buf.is_null() && len > 0 {
                let n = msg.len().min(len - 1);
                // SAFETY: the caller gives `buf` valid for `len` bytes; n < len.
                unsafe {
                    ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
                    buf.add(n).write(0);
                }
            }
            msg.len()
        })
    });
    r.unwrap_or(0)
}

/// The owner pid reported by the last PROCREG_E_ALREADY_EXISTS on this
/// thread, 0 if the last failure was of another kind.
#[unsafe(no_mangle)]
pub extern "C" fn procreg_last_error_pid() -> u32 {
    catch_unwind(|| LAST_ERROR.with(|l| l.borrow().1)).unwrap_or(0)
}

// ---- opening --------------------------------------------------------------------

/// Fills `out` with the defaults: limits 0 (default or the segment's),
/// mode 0600, PROCREG_OPEN_OR_CREATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_options_default(out: *mut procreg_options) -> procreg_status {
    ffi!({
        let out = out_ptr(out, "out")?;
        let d = procreg_options {
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
        };
        // SAFETY: checked non-NULL; the caller gives a writable procreg_options.
        unsafe { put(out, d) };
        Ok(())
    })
}

fn builder_of(o: &procreg_options) -> Result<Builder, Fail> {
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
    if o.lock_timeout_ms != 0 {
        b = b.lock_timeout(Duration::from_millis(u64::from(o.lock_timeout_ms)));
    }
    Ok(b)
}

/// Opens (or creates, per `opts->create`) the registry at `url`: "shm:NAME"
/// (or a bare NAME), "file:/path", or "mem:[NAME]" (in this process only).
/// `opts` may be NULL for the defaults. On success `*out` holds a handle to
/// release with procreg_close.
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
            let mut d = MaybeUninit::uninit();
            // SAFETY: a valid, writable place for the defaults.
            unsafe { procreg_options_default(d.as_mut_ptr()) };
            // SAFETY: procreg_options_default wrote every field.
            unsafe { d.assume_init() }
        } else {
            // SAFETY: non-NULL; the caller gives a readable procreg_options.
            *unsafe { non_null(opts, "opts") }?
        };
        let b = builder_of(&o)?;
        let reg = match o.create.0 {
            0 => b.open_or_create(url),
            1 => b.create(url),
            2 => b.open(url),
            other => {
                return Err(Fail::from(Error::InvalidArgument(format!(
                    "opts->create is {other}; use PROCREG_OPEN_OR_CREATE, PROCREG_CREATE or PROCREG_OPEN"
                ))));
            }
        }?;
        let handle = Box::into_raw(Box::new(procreg { reg }));
        // SAFETY: checked non-NULL; the caller gives a writable pointer place.
        unsafe { put(out, handle) };
        Ok(())
    })
}

/// Closes a handle from procreg_open; NULL is a no-op. Entries stay
/// registered: they belong to processes, not handles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_close(reg: *mut procreg) {
    if reg.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a handle from procreg_open, closed once (the caller's contract).
        drop(unsafe { Box::from_raw(reg) });
    }));
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
unsafe fn registry<'a>(reg: *const procreg) -> Result<&'a Registry, Fail> {
    // SAFETY: forwarded.
    Ok(&unsafe { non_null(reg, "reg") }?.reg)
}

/// A handle and a key, the first arguments of most calls.
///
/// # Safety
/// As [`registry`] and [`text`].
#[inline(always)]
unsafe fn reg_key<'a>(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
) -> Result<(&'a Registry, &'a str, &'a str), Fail> {
    // SAFETY: forwarded from the exported function's contract.
    unsafe { Ok((registry(reg)?, text(ns, "ns")?, text(name, "name")?)) }
}

// ---- writing --------------------------------------------------------------------

/// Registers (ns, name) for process `pid` with `meta_len` bytes of metadata
/// (`meta` may be NULL when `meta_len` is 0). PROCREG_E_ALREADY_EXISTS if a
/// live process holds the key; an entry of a dead owner is replaced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_register(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    pid: u32,
    meta: *const u8,
    meta_len: usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        // SAFETY: the exported function's contract.
        let meta = unsafe { bytes(meta, meta_len, "meta") }?;
        r.register(ns, name, pid, meta)?;
        Ok(())
    })
}

/// Registers (ns, name) for the calling process (as procreg_register).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_register_self(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    meta: *const u8,
    meta_len: usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        // SAFETY: the exported function's contract.
        let meta = unsafe { bytes(meta, meta_len, "meta") }?;
        r.register_self(ns, name, meta)?;
        Ok(())
    })
}

/// Removes (ns, name); PROCREG_E_NOT_FOUND if it was not registered.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_unregister(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        if r.unregister(ns, name)? {
            Ok(())
        } else {
            Err(not_found(ns, name))
        }
    })
}

/// Replaces the metadata of (ns, name); readers never wait for it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_update_metadata(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    meta: *const u8,
    meta_len: usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        // SAFETY: the exported function's contract.
        let meta = unsafe { bytes(meta, meta_len, "meta") }?;
        r.update_metadata(ns, name, meta)?;
        Ok(())
    })
}

/// Reclaims every entry whose owner is dead and every slot or lock left by a
/// dead writer; `*reclaimed` receives how many.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_sweep(
    reg: *const procreg,
    reclaimed: *mut usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        let out = out_ptr(reclaimed, "reclaimed")?;
        let n = r.sweep()?;
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, n) };
        Ok(())
    })
}

/// Removes every entry of `ns`; `*removed` receives how many.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_clear_namespace(
    reg: *const procreg,
    ns: *const c_char,
    removed: *mut usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        // SAFETY: the exported function's contract.
        let ns = unsafe { text(ns, "ns") }?;
        let out = out_ptr(removed, "removed")?;
        let n = r.clear_namespace(ns)?;
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, n) };
        Ok(())
    })
}

// ---- reading --------------------------------------------------------------------

/// Copies the entry of (ns, name) into `*out`, whatever its owner's liveness.
/// Allocates nothing. PROCREG_E_NOT_FOUND if absent; PROCREG_E_BUFFER_TOO_SMALL
/// if its metadata exceeds PROCREG_METADATA_CAPACITY.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_lookup(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    out: *mut procreg_entry,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        let out = out_ptr(out, "out")?;
        // Copy into a private buffer first: a torn read retried by the table
        // must never show in the caller's entry. Only the segment's maximum
        // is initialised, so a lookup costs no 4 KiB memset.
        let cap = r.limits().max_metadata_len.min(PROCREG_METADATA_CAPACITY);
        let mut scratch = MaybeUninit::<[u8; PROCREG_METADATA_CAPACITY]>::uninit();
        let base = scratch.as_mut_ptr().cast::<u8>();
        // SAFETY: `cap` <= the array's length; the bytes are zeroed before
        // the slice over them is made.
        let buf = unsafe {
            ptr::write_bytes(base, 0, cap);
            std::slice::from_raw_parts_mut(base, cap)
        };
        let Some(info) = r.lookup_into(ns, name, buf)? else {
            return Err(not_found(ns, name));
        };
        if info.metadata_len > buf.len() {
            return Err(entry_too_large(info.metadata_len));
        }
        // SAFETY: checked non-NULL, writable by contract; length checked.
        unsafe { put_entry_parts(out, &info, &buf[..info.metadata_len]) };
        Ok(())
    })
}

/// Copies only the metadata of (ns, name) into `buf` (`buf_len` bytes) and
/// its length into `*metadata_len`. PROCREG_E_BUFFER_TOO_SMALL (nothing
/// written; the message gives the size) if it does not fit: a buffer of
/// procreg_stats' max_metadata_len bytes always fits. `buf` may be NULL when
/// `buf_len` is 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_lookup_metadata(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    buf: *mut u8,
    buf_len: usize,
    metadata_len: *mut usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        let len_out = out_ptr(metadata_len, "metadata_len")?;
        if buf.is_null() && buf_len > 0 {
            return Err(Fail::Null("buf"));
        }
        let Some(e) = r.lookup(ns, name)? else {
            return Err(not_found(ns, name));
        };
        if e.metadata.len() > buf_len {
            return Err(Fail::Buffer(format!(
                "the metadata is {} bytes but the buffer holds {buf_len}",
                e.metadata.len()
            )));
        }
        // SAFETY: `buf` is valid for `buf_len` >= the copied length (contract),
        // non-NULL unless the length is 0; `len_out` checked non-NULL.
        unsafe {
            if !e.metadata.is_empty() {
                ptr::copy_nonoverlapping(e.metadata.as_ptr(), buf, e.metadata.len());
            }
            put(len_out, e.metadata.len());
        }
        Ok(())
    })
}

/// The owner pid of (ns, name) into `*pid`; loads only, allocates nothing.
/// PROCREG_E_NOT_FOUND if absent.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_lookup_pid(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    pid: *mut u32,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        let out = out_ptr(pid, "pid")?;
        match r.lookup_pid_nul_free(ns, name)? {
            // SAFETY: checked non-NULL, writable by contract.
            Some(p) => unsafe { put(out, p) },
            None => {
                return Err(not_found(ns, name));
            }
        }
        Ok(())
    })
}

/// Like procreg_lookup, but only if the owner is alive (or cannot be judged
/// from here): an entry of a dead owner is reclaimed and PROCREG_E_NOT_FOUND
/// returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_lookup_checked(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    out: *mut procreg_entry,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        let out = out_ptr(out, "out")?;
        match r.lookup_checked(ns, name)? {
            // SAFETY: checked non-NULL, writable by contract.
            Some(e) => unsafe { put_entry(out, &e) },
            None => Err(not_found(ns, name)),
        }
    })
}

/// Calls `fn(entry, ctx)` once per entry of `ns` (slot order, not sorted)
/// until it returns non-zero. The library allocates nothing per entry and
/// nothing the caller must free; the view is valid during the callback only.
/// The callback may call procreg functions (the scan holds no lock).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_list(
    reg: *const procreg,
    ns: *const c_char,
    visit: procreg_visit_fn,
    ctx: *mut c_void,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        // SAFETY: the exported function's contract.
        let ns = unsafe { text(ns, "ns") }?;
        let visit = visit.ok_or(Fail::Null("fn"))?;
        // SAFETY: forwarded.
        unsafe { list(r, Some(ns), visit, ctx) }
    })
}

/// Like procreg_list over every namespace.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_list_all(
    reg: *const procreg,
    visit: procreg_visit_fn,
    ctx: *mut c_void,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        let visit = visit.ok_or(Fail::Null("fn"))?;
        // SAFETY: forwarded.
        unsafe { list(r, None, visit, ctx) }
    })
}

/// The scan behind procreg_list and procreg_list_all.
///
/// # Safety
/// `visit` is a valid function taking `ctx`.
unsafe fn list(
    r: &Registry,
    ns: Option<&str>,
    visit: unsafe extern "C" fn(*const procreg_entry_view, *mut c_void) -> c_int,
    ctx: *mut c_void,
) -> FfiResult {
    // NUL-terminated copies of namespace and name, reused for every entry.
    let l = r.limits();
    let mut ns_buf = Vec::with_capacity(l.max_namespace_len + 1);
    let mut name_buf = Vec::with_capacity(l.max_name_len + 1);
    let mut f = |e: &EntryRef<'_>| {
        for (buf, src) in [(&mut ns_buf, e.namespace), (&mut name_buf, e.name)] {
            buf.clear();
            // A hostile writer's NUL would cut the C string short, not overrun.
            buf.extend_from_slice(src);
            buf.push(0);
        }
        let view = procreg_entry_view {
            ns: ns_buf.as_ptr().cast(),
            name: name_buf.as_ptr().cast(),
            pid: e.info.pid,
            registered_at_ns: e.info.registered_at_ns,
            version: e.info.version,
            metadata: if e.metadata.is_empty() {
                ptr::null()
            } else {
                e.metadata.as_ptr()
            },
            metadata_len: e.metadata.len(),
        };
        // SAFETY: the caller's function, called with a view valid for the call.
        unsafe { visit(&view, ctx) == 0 }
    };
    r.visit(ns, &mut f)?;
    Ok(())
}

/// Sizes and counters of the registry into `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_stats(
    reg: *const procreg,
    out: *mut procreg_stats_t,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        let out = out_ptr(out, "out")?;
        let s = r.stats()?;
        let mut backend = [0 as c_char; 16];
        fill_chars(&mut backend, s.backend);
        let t = s.table();
        let v = procreg_stats_t {
            backend,
            capacity: s.limits.capacity.unwrap_or(0),
            live: s.live,
            tombstones: t.map_or(0, |t| t.tombstones),
            claimed: t.map_or(0, |t| t.claimed),
            max_probe_distance: t.map_or(0, |t| t.max_probe_distance),
            mean_miss_groups: t.map_or(0.0, |t| t.mean_miss_groups),
            segment_bytes: t.map_or(0, |t| t.segment_bytes),
            created_at_ns: t.map_or(0, |t| nanos(t.created_at)),
            max_namespace_len: s.limits.max_namespace_len,
            max_name_len: s.limits.max_name_len,
            max_metadata_len: s.limits.max_metadata_len,
            registers: t.map_or(0, |t| t.registers),
            unregisters: t.map_or(0, |t| t.unregisters),
            updates: t.map_or(0, |t| t.updates),
            reclaimed: t.map_or(0, |t| t.reclaimed),
            stuck_recovered: t.map_or(0, |t| t.stuck_recovered),
            locks_stolen: t.map_or(0, |t| t.locks_stolen),
            changes: s.revision,
            process_registers: s.process.registers,
            process_lookup_hits: s.process.lookup_hits,
            process_lookup_misses: s.process.lookup_misses,
            process_unregisters: s.process.unregisters,
            process_updates: s.process.updates,
            process_reclaimed: s.process.reclaimed,
            process_busy: s.process.busy,
        };
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, v) };
        Ok(())
    })
}

/// Checks owners and leftovers of dead writers into `*out`. When the problems
/// text is cut to fit, its full text is left in procreg_last_error_message.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_health(
    reg: *const procreg,
    out: *mut procreg_health_t,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        let out = out_ptr(out, "out")?;
        let h = r.health_check()?;
        let text = h.problems.join("\n");
        let mut problems = [0 as c_char; PROCREG_PROBLEMS_CAPACITY];
        let problems_truncated = fill_chars(&mut problems, &text);
        if problems_truncated {
            record(text, 0);
        }
        let v = procreg_health_t {
            healthy: h.healthy,
            header_valid: h.table().is_none_or(|t| t.header_valid),
            load_factor: h.table().map_or(0.0, |t| t.load_factor),
            live: h.live,
            alive_owners: h.alive_owners,
            dead_owners: h.dead_owners,
            unknown_owners: h.unknown_owners,
            expired_leases: h.expired_leases,
            stuck_slots: h.table().map_or(0, |t| t.stuck_slots),
            liveness_mode: match h.liveness_mode {
                LivenessMode::ProcStartTime => {
                    procreg_liveness_mode::PROCREG_LIVENESS_PROC_START_TIME
                }
                LivenessMode::ForeignPidNamespace => {
                    procreg_liveness_mode::PROCREG_LIVENESS_FOREIGN_PID_NAMESPACE
                }
                LivenessMode::InProcess => procreg_liveness_mode::PROCREG_LIVENESS_IN_PROCESS,
                LivenessMode::Lease => procreg_liveness_mode::PROCREG_LIVENESS_LEASE,
            },
            problem_count: h.problems.len(),
            problems,
            problems_truncated,
        };
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, v) };
        Ok(())
    })
}

// ---- waiting, watching, leases, reaping ---------------------------------------

/// The latest committed revision into `*out` (every committed change of any
/// process adds one).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_revision(reg: *const procreg, out: *mut u64) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        let out = out_ptr(out, "out")?;
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, r.revision()?) };
        Ok(())
    })
}

/// Waits up to `timeout_ms` until (ns, name) is registered by a live owner
/// and copies its entry into `*out`; returns at once if it already is. Sleeps
/// on a futex (no polling). PROCREG_E_TIMEOUT when the time runs out.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_wait_for(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    timeout_ms: u64,
    out: *mut procreg_entry,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        let out = out_ptr(out, "out")?;
        let e = r.wait_for(ns, name, Duration::from_millis(timeout_ms))?;
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put_entry(out, &e) }
    })
}

/// Registers (ns, name) for `pid` with a lease of `ttl_ms` milliseconds
/// (1..=16777215): the entry expires unless procreg_keepalive renews it in
/// time, even if its owner is alive but hung.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_register_with_lease(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    pid: u32,
    meta: *const u8,
    meta_len: usize,
    ttl_ms: u64,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        // SAFETY: the exported function's contract.
        let meta = unsafe { bytes(meta, meta_len, "meta") }?;
        r.register_with_lease(ns, name, pid, meta, Duration::from_millis(ttl_ms))?;
        Ok(())
    })
}

/// Renews the lease of (ns, name) for another ttl. PROCREG_E_NOT_FOUND if
/// absent or already expired; PROCREG_E_INVALID_ARGUMENT if it has no lease.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_keepalive(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        r.keepalive(ns, name)?;
        Ok(())
    })
}

/// What a change did (see `procreg_event`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum procreg_event_kind {
    /// The key was registered.
    PROCREG_EVENT_REGISTERED = 1,
    /// The key was unregistered by a process.
    PROCREG_EVENT_UNREGISTERED = 2,
    /// The entry's metadata was replaced.
    PROCREG_EVENT_UPDATED = 3,
    /// The owner died and the entry was reclaimed.
    PROCREG_EVENT_RECLAIMED = 4,
    /// The entry's lease ran out and it was reclaimed.
    PROCREG_EVENT_EXPIRED = 5,
    /// A change whose writer died before recording it: resynchronise with procreg_list.
    PROCREG_EVENT_LOST = 6,
}

/// One change, filled by procreg_watch_next. `ns` and `name` point into the
/// watcher and stay valid until its next procreg_watch_next or procreg_watch_close.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct procreg_event {
    /// Position of the change in the registry's history.
    pub revision: u64,
    /// What happened.
    pub kind: procreg_event_kind,
    /// Owner of the entry (0 for PROCREG_EVENT_LOST).
    pub pid: u32,
    /// Version of the entry after the change (of the removed entry for removals).
    pub version: u64,
    /// When the change was committed, nanoseconds since the Unix epoch.
    pub at_ns: u64,
    /// Namespace, NUL-terminated ("" for PROCREG_EVENT_LOST).
    pub ns: *const c_char,
    /// Name, NUL-terminated ("" for PROCREG_EVENT_LOST).
    pub name: *const c_char,
}

/// A stream of changes from procreg_watch. Use it from one thread at a time;
/// close it before the registry handle it came from.
pub struct procreg_watcher {
    w: Watcher,
    ns: std::ffi::CString,
    name: std::ffi::CString,
}

/// Starts watching the changes of namespace `ns` (NULL: every namespace)
/// after revision `from_revision` (pass procreg_revision's value to see only
/// what happens from now on). Release with procreg_watch_close, before
/// closing `reg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_watch(
    reg: *const procreg,
    ns: *const c_char,
    from_revision: u64,
    out: *mut *mut procreg_watcher,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract. The watcher holds its
        // own clone of the registry.
        let r = unsafe { registry(reg) }?;
        let ns = if ns.is_null() {
            None
        } else {
            // SAFETY: non-NULL, NUL-terminated by contract.
            Some(unsafe { text(ns, "ns") }?)
        };
        let out = out_ptr(out, "out")?;
        let w = r.watch(ns, from_revision)?;
        let handle = Box::into_raw(Box::new(procreg_watcher {
            w,
            ns: std::ffi::CString::default(),
            name: std::ffi::CString::default(),
        }));
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, handle) };
        Ok(())
    })
}

/// Waits up to `timeout_ms` for the next change and fills `*out`.
/// PROCREG_E_TIMEOUT if none came; PROCREG_E_LAGGED if changes were
/// overwritten before they were read (re-read with procreg_list; the watcher
/// continues after the latest revision).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_watch_next(
    w: *mut procreg_watcher,
    timeout_ms: u64,
    out: *mut procreg_event,
) -> procreg_status {
    ffi!({
        // SAFETY: a live watcher from procreg_watch, used by one thread at a time.
        let w = unsafe { w.as_mut() }.ok_or(Fail::Null("w"))?;
        let out = out_ptr(out, "out")?;
        let e: Event = w.w.next(Duration::from_millis(timeout_ms))?;
        // Key strings never hold NUL (validated when written).
        w.ns = std::ffi::CString::new(e.namespace).unwrap_or_default();
        w.name = std::ffi::CString::new(e.name).unwrap_or_default();
        let kind = match e.kind {
            EventKind::Registered => procreg_event_kind::PROCREG_EVENT_REGISTERED,
            EventKind::Unregistered => procreg_event_kind::PROCREG_EVENT_UNREGISTERED,
            EventKind::Updated => procreg_event_kind::PROCREG_EVENT_UPDATED,
            EventKind::Reclaimed => procreg_event_kind::PROCREG_EVENT_RECLAIMED,
            EventKind::Expired => procreg_event_kind::PROCREG_EVENT_EXPIRED,
            _ => procreg_event_kind::PROCREG_EVENT_LOST,
        };
        let v = procreg_event {
            revision: e.revision,
            kind,
            pid: e.pid,
            version: e.version,
            at_ns: nanos(e.at),
            ns: w.ns.as_ptr(),
            name: w.name.as_ptr(),
        };
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, v) };
        Ok(())
    })
}

/// Stops a watcher; NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_watch_close(w: *mut procreg_watcher) {
    if w.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a watcher from procreg_watch, closed once (the caller's contract).
        drop(unsafe { Box::from_raw(w) });
    }));
}

/// A reaper thread from procreg_reaper_start.
pub struct procreg_reaper {
    r: Reaper,
}

/// Starts a thread in this process that reclaims entries within
/// milliseconds of their owners' death (pidfds), and sweeps every
/// `interval_ms` anyway. It uses its own handle on `reg`'s url. Stop it with
/// procreg_reaper_stop.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_reaper_start(
    reg: *const procreg,
    interval_ms: u64,
    out: *mut *mut procreg_reaper,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        let out = out_ptr(out, "out")?;
        let reaper = r.spawn_reaper(Duration::from_millis(interval_ms))?;
        let handle = Box::into_raw(Box::new(procreg_reaper { r: reaper }));
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, handle) };
        Ok(())
    })
}

/// How many entries the reaper reclaimed so far, into `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_reaper_reclaimed(
    r: *const procreg_reaper,
    out: *mut u64,
) -> procreg_status {
    ffi!({
        // SAFETY: a live reaper from procreg_reaper_start.
        let r = unsafe { non_null(r, "r") }?;
        let out = out_ptr(out, "out")?;
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, r.r.reclaimed()) };
        Ok(())
    })
}

/// Stops and frees a reaper (NULL is a no-op returning PROCREG_OK); returns
/// the error that stopped it early, if any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_reaper_stop(r: *mut procreg_reaper) -> procreg_status {
    if r.is_null() {
        return PROCREG_OK;
    }
    ffi!({
        // SAFETY: a reaper from procreg_reaper_start, stopped once (contract).
        let r = unsafe { Box::from_raw(r) };
        r.r.stop()?;
        Ok(())
    })
}
