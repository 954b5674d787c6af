//! Prepared keys and cached service references: `procreg_key` and
//! `procreg_service` (the C side of `procreg::Key` and `procreg::Service`).

use super::error::{Fail, not_found};
use super::registry::{procreg, registry};
use super::status::procreg_status;
use super::util::{non_null, out_ptr, put, text};
use crate::{Key, Service};
use std::ffi::c_char;

/// A prepared key: validated, packed and hashed once by procreg_key_new,
/// then looked up with procreg_lookup_pid_key in any registry whose limits
/// admit it. Immutable: one key may be used from many threads at once.
/// Free it with procreg_key_free.
pub struct procreg_key {
    key: Key,
}

/// A cached reference to one service of one registry, from
/// procreg_service_open: procreg_service_pid answers from its cache while
/// the entry is unchanged (one or two loads on shm: and mem:) and looks the
/// key up again when it changed. It holds its own reference to the
/// registry, so it may outlive the handle it came from. A service holds a
/// cache: use each one from one thread at a time (open one per thread).
pub struct procreg_service {
    svc: Service,
}

/// Validates, packs and hashes (ns, name) into a new key at `*out`.
/// PROCREG_E_INVALID_KEY if a part is empty, longer than 65535 bytes or not
/// UTF-8; a registry with smaller limits refuses the key when it is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_key_new(
    ns: *const c_char,
    name: *const c_char,
    out: *mut *mut procreg_key,
) -> procreg_status {
    ffi!({
        // SAFETY: NULL or NUL-terminated by the exported function's contract.
        let (ns, name) = unsafe { (text(ns, "ns")?, text(name, "name")?) };
        let out = out_ptr(out, "out")?;
        let key = Key::new(ns, name)?;
        // SAFETY: checked non-NULL; the caller gives a writable pointer place.
        unsafe { put(out, Box::into_raw(Box::new(procreg_key { key }))) };
        Ok(())
    })
}

/// Frees a key from procreg_key_new; NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_key_free(key: *mut procreg_key) {
    ffi!(or(), {
        if !key.is_null() {
            // SAFETY: a key from procreg_key_new, freed once (the caller's contract).
            drop(unsafe { Box::from_raw(key) });
        }
    })
}

/// The owner pid of a prepared key into `*pid`: no validation, packing or
/// hashing per call. Loads only, allocates nothing on shm: and mem:.
/// PROCREG_E_NOT_FOUND if absent; PROCREG_E_INVALID_KEY if the key is
/// longer than this registry admits.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_lookup_pid_key(
    reg: *const procreg,
    key: *const procreg_key,
    pid: *mut u32,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, k) = unsafe { (registry(reg)?, non_null(key, "key")?) };
        let out = out_ptr(pid, "pid")?;
        let Some(p) = r.lookup_pid_key(&k.key)? else {
            return Err(not_found(k.key.namespace(), k.key.name()));
        };
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, p) };
        Ok(())
    })
}

/// A cached reference to (ns, name) of `reg` at `*out` (see
/// procreg_service). The key need not be registered yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_service_open(
    reg: *const procreg,
    ns: *const c_char,
    name: *const c_char,
    out: *mut *mut procreg_service,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, name) = unsafe { (registry(reg)?, text(ns, "ns")?, text(name, "name")?) };
        let out = out_ptr(out, "out")?;
        let svc = r.service(ns, name)?;
        // SAFETY: checked non-NULL; the caller gives a writable pointer place.
        unsafe { put(out, Box::into_raw(Box::new(procreg_service { svc }))) };
        Ok(())
    })
}

/// The owner pid of the service into `*pid`, from the cache while the entry
/// is unchanged. Never an entry unregistered, replaced or reclaimed before
/// the call began. PROCREG_E_NOT_FOUND if the key is not registered.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_service_pid(
    svc: *mut procreg_service,
    pid: *mut u32,
) -> procreg_status {
    ffi!({
        // SAFETY: NULL or a service from procreg_service_open that no other
        // thread uses during this call (the exported function's contract).
        let s = unsafe { svc.as_mut() }.ok_or(Fail::Null("svc"))?;
        let out = out_ptr(pid, "pid")?;
        let Some(p) = s.svc.pid()? else {
            let k = s.svc.key();
            return Err(not_found(k.namespace(), k.name()));
        };
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, p) };
        Ok(())
    })
}

/// Closes a service from procreg_service_open; NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_service_close(svc: *mut procreg_service) {
    ffi!(or(), {
        if !svc.is_null() {
            // SAFETY: a service from procreg_service_open, closed once (the caller's contract).
            drop(unsafe { Box::from_raw(svc) });
        }
    })
}
