//! Reading one key: `procreg_entry` and the lookups that fill it.
//!
//! Metadata of any length goes to a caller buffer with one protocol, shared
//! by procreg_lookup, procreg_lookup_checked, procreg_wait_for and
//! procreg_lookup_metadata (see procreg_lookup).

use super::error::{Fail, FfiResult, not_found};
use super::registry::{handle, procreg, reg_key};
use super::sized::{Extensible, caller_size, write_out};
use super::status::procreg_status;
use super::util::{interned_cstr, nanos, out_buf, out_ptr, put, text};
use crate::{Entry, Registry};
use std::cell::RefCell;
use std::ffi::{CStr, c_char};
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

/// The fixed part of an entry, as the C struct holds it.
struct Head {
    pid: u32,
    registered_at_ns: u64,
    version: u64,
    host: &'static CStr,
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
    /// As [`EntryOut::put_parts`].
    unsafe fn put(&self, e: &Entry) -> FfiResult {
        let head = Head {
            pid: e.pid,
            registered_at_ns: nanos(e.registered_at),
            version: e.version,
            host: interned_cstr(&e.host),
        };
        // SAFETY: forwarded.
        unsafe { self.put_parts(&head, &e.metadata) }
    }

    /// Writes an entry, or reports the buffer size its metadata needs.
    ///
    /// # Safety
    /// The pointers checked by [`EntryOut::new`] are valid for writes
    /// (`meta` for `cap` bytes).
    unsafe fn put_parts(&self, h: &Head, metadata: &[u8]) -> FfiResult {
        let n = metadata.len();
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(self.len, n) };
        if n > self.cap {
            return Err(self.too_small(n));
        }
        if n > 0 {
            // SAFETY: `meta` is non-NULL (cap >= n > 0) and writable for cap bytes.
            unsafe { ptr::copy_nonoverlapping(metadata.as_ptr(), self.meta, n) };
        }
        if let Some((out, size)) = self.entry {
            let v = procreg_entry {
                struct_size: size_of::<procreg_entry>(),
                pid: h.pid,
                registered_at_ns: h.registered_at_ns,
                version: h.version,
                host: h.host.as_ptr(),
            };
            // SAFETY: writable for `size` bytes (contract, size checked).
            unsafe { write_out(out, size, &v) };
        }
        Ok(())
    }

    #[cold]
    fn too_small(&self, n: usize) -> Fail {
        Fail::Buffer(format!(
            "the entry's metadata is {n} bytes but the buffer holds {}; call again with \
             a buffer of at least meta_len ({n}) bytes",
            self.cap
        ))
    }
}

thread_local! {
    /// Where procreg_lookup reads metadata before copying it to the caller,
    /// who must find its buffer untouched unless PROCREG_OK is returned
    /// (`Registry::lookup_into` may leave bytes of a discarded torn read in
    /// its buffer). Grows to the largest buffer a caller of this thread
    /// passed, capped by the registry's max_metadata_len.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The allocation-free read of [`read_entry`]: the entry through
/// `Registry::lookup_into` into [`SCRATCH`], then copied out with `host`.
/// False when the metadata is longer than the registry's limit (only a
/// hostile segment holds such): the caller then reads it the general way.
///
/// # Safety
/// The pointers of `o` are valid for writes (see [`EntryOut::put_parts`]).
unsafe fn read_into(
    r: &Registry,
    ns: &str,
    name: &str,
    o: &EntryOut,
    host: &'static CStr,
) -> Result<bool, Fail> {
    let want = o.cap.min(r.limits().max_metadata_len);
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < want {
            s.resize(want, 0);
        }
        let Some(i) = r.lookup_into(ns, name, &mut s[..want])? else {
            return Err(not_found(ns, name));
        };
        let n = i.metadata_len;
        if n > o.cap {
            // SAFETY: checked non-NULL, writable by contract.
            unsafe { put(o.len, n) };
            return Err(o.too_small(n));
        }
        if n > want {
            return Ok(false);
        }
        let head = Head {
            pid: i.pid,
            registered_at_ns: i.registered_at_ns,
            version: i.version,
            host,
        };
        // SAFETY: forwarded from this function's contract.
        unsafe { o.put_parts(&head, &s[..n]) }.map(|()| true)
    })
}

/// The body of procreg_lookup, procreg_lookup_checked and
/// procreg_lookup_metadata: checks the arguments, reads the entry, and
/// copies it out (the entry only when `out` is given).
///
/// Without allocating (`Registry::lookup_into` into [`SCRATCH`]) when no
/// host is needed (procreg_lookup_metadata) or the handle knows it (a local
/// registry, after its first entry); otherwise through `Registry::lookup`
/// (or `lookup_checked`, which judges the owner: it always allocates).
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
    checked: bool,
) -> FfiResult {
    // SAFETY: forwarded from the exported function's contract.
    let (h, ns, name) = unsafe { (handle(reg)?, text(ns, "ns")?, text(name, "name")?) };
    let r = h.registry();
    // SAFETY: forwarded from the exported function's contract.
    let o = unsafe { EntryOut::new(out, meta, meta_cap, meta_len) }?;
    if !checked {
        let host = if out.is_none() {
            Some(c"")
        } else {
            h.local_host()
        };
        if let Some(host) = host {
            // SAFETY: checked by EntryOut::new, valid by contract.
            if unsafe { read_into(r, ns, name, &o, host) }? {
                return Ok(());
            }
        }
    }
    let e = if checked {
        r.lookup_checked(ns, name)?
    } else {
        r.lookup(ns, name)?
    };
    let Some(e) = e else {
        return Err(not_found(ns, name));
    };
    if out.is_some() {
        h.learn_host(interned_cstr(&e.host));
    }
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
///
/// On shm: and mem: registries a hit or a miss allocates nothing (from the
/// second entry read through the handle on: the first learns the host
/// name); procreg_lookup_metadata and the misses of every lookup never
/// allocate there. procreg_lookup_checked and procreg_wait_for allocate.
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
        unsafe { read_entry(reg, ns, name, Some(out), meta, meta_cap, meta_len, false) }
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
        unsafe { read_entry(reg, ns, name, Some(out), meta, meta_cap, meta_len, true) }
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
        unsafe { read_entry(reg, ns, name, None, meta, meta_cap, meta_len, false) }
    })
}

/// The owner pid of (ns, name) into `*pid`; loads only, allocates nothing
/// on shm: and mem: registries, for a hit or a miss. PROCREG_E_NOT_FOUND if
/// absent.
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
