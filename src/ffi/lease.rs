//! Leases: registrations that expire unless renewed.

use super::registry::{procreg, reg_key};
use super::status::procreg_status;
use super::util::bytes;
use std::ffi::c_char;
use std::time::Duration;

/// Registers (ns, name) for `pid` with a lease of `ttl_ms` milliseconds
/// (within procreg_stats' min_lease_ttl_ms..=max_lease_ttl_ms): the entry
/// expires unless procreg_keepalive renews it in time, even if its owner is
/// alive but hung.
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
