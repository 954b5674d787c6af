//! Reaping: `procreg_reaper`, a thread that reclaims entries of dead owners.

use super::registry::{procreg, registry};
use super::status::procreg_status;
use super::util::{non_null, out_ptr, put};
use crate::Reaper;
use std::time::Duration;

/// A reaper thread from procreg_reaper_start.
pub struct procreg_reaper {
    r: Reaper,
}

/// Starts a thread in this process that reclaims entries within
/// milliseconds of their owners' death (pidfds), and sweeps every
/// `interval_ms` anyway. It holds its own reference to the registry, so it
/// keeps running after procreg_close(reg). Stop it with procreg_reaper_stop.
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
    ffi!({
        if r.is_null() {
            return Ok(());
        }
        // SAFETY: a reaper from procreg_reaper_start, stopped once (contract).
        let r = unsafe { Box::from_raw(r) };
        r.r.stop()?;
        Ok(())
    })
}
