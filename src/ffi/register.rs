//! Writing: register, unregister, update, sweep, clear.

use super::registry::{found_or, procreg, reg_key, registry};
use super::status::procreg_status;
use super::util::{bytes, out_ptr, put, text};
use std::ffi::c_char;

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
        found_or(r.unregister(ns, name)?, ns, name)
    })
}

/// Removes (ns, name) only if process `pid` owns it: `*removed` is true if
/// it did, false if the key is not registered or another process owns it
/// (both PROCREG_OK). For a service that stops: it never removes a
/// successor that registered the key after this owner died.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_unregister_if_owner(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    pid: u32,
    removed: *mut bool,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { reg_key(reg, ns, name) }?;
        let out = out_ptr(removed, "removed")?;
        let done = r.unregister_if_owner(ns, name, pid)?;
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, done) };
        Ok(())
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
