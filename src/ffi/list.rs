//! Listing: `procreg_entry_view` lent to a callback per entry.

use super::error::{Fail, FfiResult};
use super::registry::{procreg, registry};
use super::status::procreg_status;
use super::util::{interned, text};
use crate::{EntryRef, Registry};
use std::ffi::{c_char, c_int, c_void};
use std::ptr;

/// One entry lent to a `procreg_visit_fn`. The library fills it; the
/// pointers are valid only during the callback (except `host`, valid until
/// the process exits): copy what you keep. Fields are only ever appended:
/// read a field that a later version added only if `struct_size` covers it.
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
}

/// Called once per entry by `procreg_list`; return 0 to go on, non-zero to stop.
pub type procreg_visit_fn =
    Option<unsafe extern "C" fn(entry: *const procreg_entry_view, ctx: *mut c_void) -> c_int>;

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
    // The host of the previous entry, to intern only when it changes.
    let (mut host, mut host_c) = (String::new(), interned(""));
    let mut f = |e: &EntryRef<'_>| {
        for (buf, src) in [(&mut ns_buf, e.namespace), (&mut name_buf, e.name)] {
            buf.clear();
            // A hostile writer's NUL would cut the C string short, not overrun.
            buf.extend_from_slice(src);
            buf.push(0);
        }
        if host != e.host {
            host.clear();
            host.push_str(e.host);
            host_c = interned(e.host);
        }
        let view = procreg_entry_view {
            struct_size: size_of::<procreg_entry_view>(),
            ns: ns_buf.as_ptr().cast(),
            name: name_buf.as_ptr().cast(),
            host: host_c,
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
