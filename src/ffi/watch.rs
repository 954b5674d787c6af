//! Watching: `procreg_watcher`, a stream of `procreg_event`s.

use super::error::Fail;
use super::registry::{procreg, registry};
use super::sized::{Extensible, caller_size, write_out};
use super::status::procreg_status;
use super::util::{interned, nanos, opt_text, out_ptr, put};
use crate::{EventKind, Watcher};
use std::ffi::{CString, c_char};
use std::mem::offset_of;
use std::time::Duration;

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

/// One change, filled by procreg_watch_next; set `struct_size` to
/// sizeof(procreg_event) before the call. `ns` and `name` point into the
/// watcher and stay valid until its next procreg_watch_next or
/// procreg_watch_close; `host` is valid until the process exits.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct procreg_event {
    /// sizeof(procreg_event) as the caller was compiled: set it first.
    pub struct_size: usize,
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
    /// Host of the owner, NUL-terminated ("" for PROCREG_EVENT_LOST).
    pub host: *const c_char,
    // Version 1 ends here (64 bytes on LP64); append past its sizeof.
    /// True when the change concerns a member of a process group: then
    /// `name` is the group and `pid` the member (PROCREG_EVENT_REGISTERED is
    /// a join, PROCREG_EVENT_UNREGISTERED a leave, PROCREG_EVENT_RECLAIMED
    /// or PROCREG_EVENT_EXPIRED a dead member removed). Written only when
    /// `struct_size` covers it (a caller built against version 1 sets a
    /// smaller size and gets the version-1 fields only). (Version 2.)
    pub member: bool,
}

// SAFETY: repr(C), struct_size first, integers, pointers, a C-ABI bool,
// and an enum the library writes but never reads.
unsafe impl Extensible for procreg_event {
    const NAME: &'static str = "procreg_event";
    const MIN_SIZE: usize = offset_of!(procreg_event, host) + size_of::<*const c_char>();
}

/// A stream of changes from procreg_watch. Use it from one thread at a time.
/// It holds its own reference to the registry: it may outlive procreg_close
/// of the handle it came from.
pub struct procreg_watcher {
    w: Watcher,
    ns: CString,
    name: CString,
}

/// Starts watching the changes of namespace `ns` (NULL: every namespace)
/// after revision `from_revision` (pass procreg_revision's value to see only
/// what happens from now on). Release with procreg_watch_close; the watcher
/// keeps working after procreg_close(reg).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_watch(
    reg: *const procreg,
    ns: *const c_char,
    from_revision: u64,
    out: *mut *mut procreg_watcher,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        // SAFETY: NULL or NUL-terminated by contract.
        let ns = unsafe { opt_text(ns, "ns") }?;
        let out = out_ptr(out, "out")?;
        // The watcher holds its own clone of the registry: nothing borrowed.
        let w = r.watch(ns, from_revision)?;
        let handle = Box::into_raw(Box::new(procreg_watcher {
            w,
            ns: CString::default(),
            name: CString::default(),
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
        // SAFETY: non-NULL, readable by contract.
        let size = unsafe { caller_size(out) }?;
        let e = w.w.next(Duration::from_millis(timeout_ms))?;
        // Key strings never hold NUL (validated when written).
        w.ns = CString::new(e.namespace).unwrap_or_default();
        w.name = CString::new(e.name).unwrap_or_default();
        let kind = match e.kind {
            EventKind::Registered => procreg_event_kind::PROCREG_EVENT_REGISTERED,
            EventKind::Unregistered => procreg_event_kind::PROCREG_EVENT_UNREGISTERED,
            EventKind::Updated => procreg_event_kind::PROCREG_EVENT_UPDATED,
            EventKind::Reclaimed => procreg_event_kind::PROCREG_EVENT_RECLAIMED,
            EventKind::Expired => procreg_event_kind::PROCREG_EVENT_EXPIRED,
            _ => procreg_event_kind::PROCREG_EVENT_LOST,
        };
        let v = procreg_event {
            struct_size: size_of::<procreg_event>(),
            revision: e.revision,
            kind,
            pid: e.pid,
            version: e.version,
            at_ns: nanos(e.at),
            ns: w.ns.as_ptr(),
            name: w.name.as_ptr(),
            host: interned(&e.host),
            member: e.member,
        };
        // SAFETY: writable for `size` bytes by contract.
        unsafe { write_out(out, size, &v) };
        Ok(())
    })
}

/// Stops a watcher; NULL is a no-op. May come before or after
/// procreg_close of the registry handle it came from.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_watch_close(w: *mut procreg_watcher) {
    ffi!(or(), {
        if !w.is_null() {
            // SAFETY: a watcher from procreg_watch, closed once (the caller's contract).
            drop(unsafe { Box::from_raw(w) });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `member` (version 2) begins past version 1's sizeof, so a version-1
    /// caller's struct_size excludes it.
    #[test]
    fn member_is_appended_past_version_1() {
        let v1_end = <procreg_event as Extensible>::MIN_SIZE;
        assert_eq!(
            v1_end % align_of::<procreg_event>(),
            0,
            "no tail padding in v1"
        );
        assert_eq!(offset_of!(procreg_event, member), v1_end);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(v1_end, 64);
    }
}
