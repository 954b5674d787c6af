//! Reading one key: `procreg_entry` and the lookups that fill it.
//!
//! Metadata of any length goes to a caller buffer with one protocol, shared
//! by procreg_lookup, procreg_lookup_checked, procreg_wait_for and
//! procreg_lookup_metadata (see procreg_lookup).

use super::error::{Fail, FfiResult, not_found};
use super::registry::{procreg, reg_key};
use super::sized::{Extensible, caller_size, write_out};
use super::status::procreg_status;
use super::util::{interned, nanos, out_buf, out_ptr, put};
use crate::{Entry, Registry};
use std::ffi::c_char;
use std::mem::offset_of;
use std::ptr;
use std::time::Duration;

/// One entry, owned by the caller. Set `struct_size` to
/// sizeof(procreg_entry) before passing it. The metadata goes to a separate
/// caller buffer (see procreg_lookup).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct procreg_entry {
    /// sizeof(procreg_entry) as the caller was compiled: set it first.
    pub struct_size: usize,
    /// Owner process (on `host`).
    pub pid: u32,
    /// Registration time, nanoseconds since the Unix epoch.
    pub registered_at_ns: u64,
    /// Version of the entry (changes on every update).
    pub version: u64,
    /// Name of the owner's host, NUL-terminated. Owned by the library and
    /// valid until the process exits (host names are interned).
    pub host: *const c_char,
    // Version 1 ends here; append past its sizeof (40 on LP64).
}

// SAFETY: repr(C), struct_size first, integers and a pointer.
unsafe impl Extensible for procreg_entry {
    const NAME: &'static str = "procreg_entry";
    const MIN_SIZE: usize = offset_of!(procreg_entry, host) + size_of::<*const c_char>();
}

/// The checked out-parameters of an entry-returning call.
struct EntryOut {
    entry: Option<(*mut procreg_entry, usize)>,
    meta: *mut u8,
    cap: usize,
    len: *mut usize,
}

impl EntryOut {
    /// Checks the out-parameters before any work.
    ///
    /// # Safety
    /// `entry` is NULL or valid for writes of its struct_size bytes.
    unsafe fn new(
        entry: Option<*mut procreg_entry>,
        meta: *mut u8,
        cap: usize,
        len: *mut usize,
    ) -> Result<EntryOut, Fail> {
        let entry = match entry {
            None => None,
            Some(e) => {
                let e = out_ptr(e, "out")?;
                // SAFETY: non-NULL, readable by contract.
                Some((e, unsafe { caller_size(e.cast_const()) }?))
            }
        };
        Ok(EntryOut {
            entry,
            meta: out_buf(meta, cap, "meta")?,
            cap,
            len: out_ptr(len, "meta_len")?,
        })
    }

    /// Writes `e`, or reports the buffer size it needs.
    ///
    /// # Safety
    /// The pointers checked by [`EntryOut::new`] are valid for writes
    /// (`meta` for `cap` bytes).
    unsafe fn put(&self, e: &Entry) -> FfiResult {
        let n = e.metadata.len();
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(self.len, n) };
        if n > self.cap {
            return Err(Fail::Buffer(format!(
                "the entry's metadata is {n} bytes but the buffer holds {}; call again with \
                 a buffer of at least meta_len ({n}) bytes",
                self.cap
            )));
        }
        if n > 0 {
            // SAFETY: `meta` is non-NULL (cap >= n > 0) and writable for cap bytes.
            unsafe { ptr::copy_nonoverlapping(e.metadata.as_ptr(), self.meta, n) };
        }
        if let Some((out, size)) = self.entry {
            let v = procreg_entry {
                struct_size: size_of::<procreg_entry>(),
                pid: e.pid,
                registered_at_ns: nanos(e.registered_at),
                version: e.version,
                host: interned(&e.host),
            };
            // SAFETY: writable for `size` bytes (contract, size checked).
            unsafe { write_out(out, size, &v) };
        }
        Ok(())
    }
}

/// The body of procreg_lookup, procreg_lookup_checked and
/// procreg_lookup_metadata: checks the arguments, reads the entry with
/// `read`, and copies it out (the entry only when `out` is given).
///
/// # Safety
/// The exported functions' contract for every pointer.
#[allow(clippy::too_many_arguments)]
unsafe fn read_entry(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    out: Option<*mut procreg_entry>,
    meta: *mut u8,
    meta_cap: usize,
    meta_len: *mut usize,
    read: fn(&Registry, &str, &str) -> crate::Result<Option<Entry>>,
) -> FfiResult {
    // SAFETY: forwarded from the exported function's contract.
    let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
    // SAFETY: forwarded from the exported function's contract.
    let o = unsafe { EntryOut::new(out, meta, meta_cap, meta_len) }?;
    let Some(e) = read(r, ns, name)? else {
        return Err(not_found(ns, name));
    };
    // SAFETY: checked by EntryOut::new, valid by contract.
    unsafe { o.put(&e) }
}

/// Copies the entry of (ns, name), whatever its owner's liveness, into
/// `*out` and its metadata into `meta` (`meta_cap` bytes; NULL when
/// `meta_cap` is 0).
///
/// The metadata protocol (the same for procreg_lookup_checked,
/// procreg_wait_for and procreg_lookup_metadata):
/// * PROCREG_OK: `*out` is filled, `*meta_len` is the metadata's length and
///   `meta[0 .. *meta_len]` holds it.
/// * PROCREG_E_BUFFER_TOO_SMALL: the metadata is longer than `meta_cap`;
///   `*meta_len` is its length and nothing else is written. Call again with
///   a buffer of at least `*meta_len` bytes (the entry may change in
///   between, so loop). A buffer of procreg_stats' max_metadata_len bytes
///   always suffices.
/// * any other status: nothing is written. PROCREG_E_NOT_FOUND if absent.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_lookup(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    out: *mut procreg_entry,
    meta: *mut u8,
    meta_cap: usize,
    meta_len: *mut usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        unsafe {
            read_entry(
                reg,
                ns,
                name,
                Some(out),
                meta,
                meta_cap,
                meta_len,
                Registry::lookup,
            )
        }
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
    meta: *mut u8,
    meta_cap: usize,
    meta_len: *mut usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        unsafe {
            read_entry(
                reg,
                ns,
                name,
                Some(out),
                meta,
                meta_cap,
                meta_len,
                Registry::lookup_checked,
            )
        }
    })
}

/// Copies only the metadata of (ns, name) into `meta` (`meta_cap` bytes;
/// NULL when `meta_cap` is 0), its length into `*meta_len`: the protocol of
/// procreg_lookup.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_lookup_metadata(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    meta: *mut u8,
    meta_cap: usize,
    meta_len: *mut usize,
) -> procreg_status {
    ffi!({
        // SAFETY: no entry; the rest by the exported function's contract.
        unsafe {
            read_entry(
                reg,
                ns,
                name,
                None,
                meta,
                meta_cap,
                meta_len,
                Registry::lookup,
            )
        }
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
        // A C string holds no NUL: the registry's NUL check runs on a miss only.
        let Some(p) = r.lookup_pid(ns, name)? else {
            return Err(not_found(ns, name));
        };
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, p) };
        Ok(())
    })
}

/// Waits up to `timeout_ms` until (ns, name) is registered by a live owner
/// and copies its entry into `*out` and `meta` (the protocol of
/// procreg_lookup: after PROCREG_E_BUFFER_TOO_SMALL the key is registered,
/// and a second call with a large enough buffer returns at once). Returns
/// at once if it already is. Sleeps on a futex (no polling).
/// PROCREG_E_TIMEOUT when the time runs out.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_wait_for(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    timeout_ms: u64,
    out: *mut procreg_entry,
    meta: *mut u8,
    meta_cap: usize,
    meta_len: *mut usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        // SAFETY: the exported function's contract.
        let o = unsafe { EntryOut::new(Some(out), meta, meta_cap, meta_len) }?;
        let e = r.wait_for(ns, name, Duration::from_millis(timeout_ms))?;
        // SAFETY: checked by EntryOut::new, valid by contract.
        unsafe { o.put(&e) }
    })
}
