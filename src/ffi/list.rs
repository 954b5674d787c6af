//! Listing: `procreg_entry_view` lent to a callback per entry, from the
//! table's own scan (`procreg_list`) or from a list of entries the library
//! read first (the group calls of `groups.rs`).

use super::error::{Fail, FfiResult};
use super::registry::{procreg, registry};
use super::status::procreg_status;
use super::util::{interned, nanos, text};
use crate::{Entry, EntryInfo, EntryRef, Registry};
use std::ffi::{c_char, c_int, c_void};
use std::ptr;

/// One entry lent to a `procreg_visit_fn`. The library fills it; the
/// pointers are valid only during the callback (except `host`, valid until
/// the process exits): copy what you keep. Fields are only ever appended:
/// read a field that a later version added only if `struct_size` covers it
/// (for `member`: `struct_size > offsetof(procreg_entry_view, member)`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct procreg_entry_view {
    /// sizeof(procreg_entry_view) of the library that filled it.
    pub struct_size: usize,
    /// Namespace, NUL-terminated.
    pub ns: *const c_char,
    /// Name, NUL-terminated.
    pub name: *const c_char,
    /// Name of the owner's host, NUL-terminated (interned by the library:
    /// valid until the process exits).
    pub host: *const c_char,
    /// Owner process (on `host`).
    pub pid: u32,
    /// Registration time, nanoseconds since the Unix epoch.
    pub registered_at_ns: u64,
    /// Version of the entry.
    pub version: u64,
    /// Metadata bytes (not NUL-terminated; NULL when empty).
    pub metadata: *const u8,
    /// Number of metadata bytes.
    pub metadata_len: usize,
    // Version 1 ends here (72 bytes on LP64).
    /// True for a member of a process group (procreg_members,
    /// procreg_list_members, procreg_select): then `name` is the group and
    /// `pid` the member. False for a unique entry (always, in procreg_list).
    /// (Version 2.)
    pub member: bool,
}

/// A `procreg_visit_fn` that is not NULL.
pub(crate) type VisitFn = unsafe extern "C" fn(*const procreg_entry_view, *mut c_void) -> c_int;

/// NUL-terminated copies of an entry's namespace and name, reused from one
/// entry to the next, and its host, interned only when it changes: what a
/// `procreg_entry_view` points to.
pub(crate) struct ViewBufs {
    ns: Vec<u8>,
    name: Vec<u8>,
    host: String,
    host_c: *const c_char,
}

impl ViewBufs {
    /// Buffers sized for the registry's longest namespace and name.
    pub(crate) fn new(r: &Registry) -> ViewBufs {
        let l = r.limits();
        ViewBufs {
            ns: Vec::with_capacity(l.max_namespace_len + 1),
            name: Vec::with_capacity(l.max_name_len + 1),
            host: String::new(),
            host_c: interned(""),
        }
    }

    /// The view of one entry; its pointers are valid until the next call.
    fn view(
        &mut self,
        ns: &[u8],
        name: &[u8],
        host: &str,
        info: &EntryInfo,
        metadata: &[u8],
        member: bool,
    ) -> procreg_entry_view {
        for (buf, src) in [(&mut self.ns, ns), (&mut self.name, name)] {
            buf.clear();
            // A hostile writer's NUL would cut the C string short, not overrun.
            buf.extend_from_slice(src);
            buf.push(0);
        }
        if self.host != host {
            self.host.clear();
            self.host.push_str(host);
            self.host_c = interned(host);
        }
        procreg_entry_view {
            struct_size: size_of::<procreg_entry_view>(),
            ns: self.ns.as_ptr().cast(),
            name: self.name.as_ptr().cast(),
            host: self.host_c,
            pid: info.pid,
            registered_at_ns: info.registered_at_ns,
            version: info.version,
            metadata: if metadata.is_empty() {
                ptr::null()
            } else {
                metadata.as_ptr()
            },
            metadata_len: metadata.len(),
            member,
        }
    }
}

/// Lends each of `entries` to `visit`, in order, until it returns non-zero.
/// Nothing is allocated per entry here (the entries were read before).
///
/// # Safety
/// `visit` is a valid function taking `ctx`.
pub(crate) unsafe fn visit_entries(
    r: &Registry,
    entries: &[Entry],
    visit: VisitFn,
    ctx: *mut c_void,
) {
    let mut bufs = ViewBufs::new(r);
    for e in entries {
        let info = EntryInfo {
            pid: e.pid,
            registered_at_ns: nanos(e.registered_at),
            version: e.version,
            metadata_len: e.metadata.len(),
        };
        let view = bufs.view(
            e.namespace.as_bytes(),
            e.name.as_bytes(),
            &e.host,
            &info,
            &e.metadata,
            e.member,
        );
        // SAFETY: the caller's function, called with a view valid for the call.
        if unsafe { visit(&view, ctx) } != 0 {
            break;
        }
    }
}

/// Called once per entry by procreg_list, procreg_list_all, procreg_members,
/// procreg_list_members, procreg_select and procreg_wait_for_members; return
/// 0 to go on, non-zero to stop.
pub type procreg_visit_fn =
    Option<unsafe extern "C" fn(entry: *const procreg_entry_view, ctx: *mut c_void) -> c_int>;

/// Calls `fn(entry, ctx)` once per unique entry of `ns` (slot order, not
/// sorted) until it returns non-zero; the view's `member` is false. Group
/// members are not listed (procreg_list_members lists them). The library allocates nothing per entry and
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
unsafe fn list(r: &Registry, ns: Option<&str>, visit: VisitFn, ctx: *mut c_void) -> FfiResult {
    let mut bufs = ViewBufs::new(r);
    let mut f = |e: &EntryRef<'_>| {
        // `visit` shows unique entries only.
        let view = bufs.view(e.namespace, e.name, e.host, &e.info, e.metadata, false);
        // SAFETY: the caller's function, called with a view valid for the call.
        unsafe { visit(&view, ctx) == 0 }
    };
    r.visit(ns, &mut f)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    /// `member` (version 2) begins past version 1's sizeof (no tail padding
    /// in version 1), so a version-1 reader's layout is a prefix.
    #[test]
    fn member_is_appended_past_version_1() {
        let v1_end = offset_of!(procreg_entry_view, metadata_len) + size_of::<usize>();
        assert_eq!(v1_end % align_of::<procreg_entry_view>(), 0);
        assert_eq!(offset_of!(procreg_entry_view, member), v1_end);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(v1_end, 72);
    }

    unsafe extern "C" fn count_members(e: *const procreg_entry_view, ctx: *mut c_void) -> c_int {
        // SAFETY: called by visit_entries with a valid view and our counter.
        let (e, n) = unsafe { (&*e, &mut *ctx.cast::<[usize; 2]>()) };
        n[usize::from(e.member)] += 1;
        c_int::from(n[0] + n[1] == 2)
    }

    /// procreg_list lends unique entries only, member false; the lent list
    /// of the group calls keeps each entry's flag and stops when told.
    #[test]
    fn views_carry_the_member_flag() {
        let r = Registry::open("mem:").unwrap();
        r.register_self("ns", "api", b"role=front").unwrap();
        r.join_self("ns", "api", b"role=api").unwrap();
        let mut n = [0usize; 2];
        // SAFETY: a valid function and counter.
        unsafe { list(&r, Some("ns"), count_members, (&raw mut n).cast()) }
            .ok()
            .unwrap();
        assert_eq!(n, [1, 0]);
        let mut n = [0usize; 2];
        let all = r.select(Some("ns"), "role=api").unwrap();
        let thrice: Vec<_> = all.iter().chain(&all).chain(&all).cloned().collect();
        // SAFETY: as above.
        unsafe { visit_entries(&r, &thrice, count_members, (&raw mut n).cast()) };
        assert_eq!(n, [0, 2], "of three, stopped after the second");
    }
}
