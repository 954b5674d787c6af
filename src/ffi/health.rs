//! `procreg_health_t`: owners and leftovers of dead writers; the generic
//! part, then the hash-table part, zero when `has_table` is false, then
//! (version 2) the etcd part, zero when `has_etcd` is false.

use super::error::Fail;
use super::registry::{procreg, registry};
use super::sized::{Extensible, caller_size, write_out};
use super::status::procreg_status;
use super::util::{interned, out_ptr, put};
use crate::LivenessMode;
use std::ffi::c_char;
use std::mem::offset_of;
use std::ptr;

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
    /// A mode this header does not know (a newer library).
    PROCREG_LIVENESS_OTHER = 255,
}

/// Result of `procreg_health`. Set `struct_size` to sizeof(procreg_health_t)
/// before the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct procreg_health_t {
    /// sizeof(procreg_health_t) as the caller was compiled: set it first.
    pub struct_size: usize,
    /// Backend kind ("shm", "mem", ...), NUL-terminated, static.
    pub backend: *const c_char,
    /// True when nothing below needs attention.
    pub healthy: bool,
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
    /// How liveness is judged.
    pub liveness_mode: procreg_liveness_mode,
    /// Number of problems found (their text: see procreg_health).
    pub problem_count: usize,
    /// True for a hash-table backend (shm, mem): the fields below are its.
    /// False: they are 0.
    pub has_table: bool,
    /// Header validated on open.
    pub header_valid: bool,
    /// live / capacity.
    pub load_factor: f64,
    /// Slots or locks held by writers that died (a sweep frees them).
    pub stuck_slots: usize,
    // Version 1 ends here (sizeof 104 on LP64). A caller built against it
    // gets the fields above only.
    /// True for an etcd registry (etcd://): the fields below are its.
    /// False: they are 0. (Added in version 2.)
    pub has_etcd: bool,
    /// True when this handle's session lease is lost: every entry
    /// registered through it is gone; the reason is among the problems.
    /// Open a new handle to register again.
    pub etcd_session_lost: bool,
    /// This handle's session lease id.
    pub etcd_lease: i64,
    /// Milliseconds left before the handle's local lease deadline (0 once
    /// lost).
    pub etcd_lease_left_ms: u64,
    /// Members of the cluster named by the url.
    pub etcd_endpoints: usize,
    /// Members that answered a status request.
    pub etcd_endpoints_up: usize,
    // Version 2 ends here; append past its sizeof.
}

// SAFETY: repr(C), struct_size first, integers, floats, a pointer, bools,
// and an enum the library writes but never reads.
unsafe impl Extensible for procreg_health_t {
    const NAME: &'static str = "procreg_health_t";
    const MIN_SIZE: usize = offset_of!(procreg_health_t, stuck_slots) + size_of::<usize>();
}

/// Checks owners and leftovers of dead writers into `*out` (struct_size set
/// by the caller). The problems, one per line ("\n"-separated), go to
/// `problems` like snprintf: at most `problems_cap - 1` bytes, always
/// NUL-terminated when `problems_cap > 0`; `*problems_len` (if not NULL)
/// receives the full length, so a result >= problems_cap means it was cut.
/// `problems` may be NULL when `problems_cap` is 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_health(
    reg: *const procreg,
    out: *mut procreg_health_t,
    problems: *mut c_char,
    problems_cap: usize,
    problems_len: *mut usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        let out = out_ptr(out, "out")?;
        if problems.is_null() && problems_cap > 0 {
            return Err(Fail::Null("problems"));
        }
        // SAFETY: non-NULL, readable by contract.
        let size = unsafe { caller_size(out) }?;
        let h = r.health_check()?;
        let backend = r.stats()?.backend;
        let t = h.table();
        let v = procreg_health_t {
            struct_size: size_of::<procreg_health_t>(),
            backend: interned(backend),
            healthy: h.healthy,
            live: h.live,
            alive_owners: h.alive_owners,
            dead_owners: h.dead_owners,
            unknown_owners: h.unknown_owners,
            expired_leases: h.expired_leases,
            liveness_mode: match h.liveness_mode {
                LivenessMode::ProcStartTime => {
                    procreg_liveness_mode::PROCREG_LIVENESS_PROC_START_TIME
                }
                LivenessMode::ForeignPidNamespace => {
                    procreg_liveness_mode::PROCREG_LIVENESS_FOREIGN_PID_NAMESPACE
                }
                LivenessMode::InProcess => procreg_liveness_mode::PROCREG_LIVENESS_IN_PROCESS,
                LivenessMode::Lease => procreg_liveness_mode::PROCREG_LIVENESS_LEASE,
                #[allow(unreachable_patterns)] // LivenessMode is non_exhaustive
                _ => procreg_liveness_mode::PROCREG_LIVENESS_OTHER,
            },
            problem_count: h.problems.len(),
            has_table: t.is_some(),
            header_valid: t.is_some_and(|t| t.header_valid),
            load_factor: t.map_or(0.0, |t| t.load_factor),
            stuck_slots: t.map_or(0, |t| t.stuck_slots),
            has_etcd: false,
            etcd_session_lost: false,
            etcd_lease: 0,
            etcd_lease_left_ms: 0,
            etcd_endpoints: 0,
            etcd_endpoints_up: 0,
        };
        #[cfg(feature = "etcd")]
        let v = match &h.detail {
            crate::BackendHealth::Etcd(e) => procreg_health_t {
                has_etcd: true,
                etcd_session_lost: e.session_lost.is_some(),
                etcd_lease: e.lease,
                etcd_lease_left_ms: super::util::millis(e.lease_left),
                etcd_endpoints: e.endpoints.len(),
                etcd_endpoints_up: e.endpoints.iter().filter(|(_, up)| *up).count(),
                ..v
            },
            _ => v,
        };
        let text = h.problems.join("\n");
        if problems_cap > 0 {
            let mut n = text.len().min(problems_cap - 1);
            while !text.is_char_boundary(n) {
                n -= 1;
            }
            // SAFETY: `problems` is non-NULL (cap > 0) and writable for
            // `problems_cap` > n bytes by contract.
            unsafe {
                ptr::copy_nonoverlapping(text.as_ptr(), problems.cast::<u8>(), n);
                problems.add(n).write(0);
            }
        }
        if !problems_len.is_null() {
            // SAFETY: non-NULL, writable by contract.
            unsafe { put(problems_len, text.len()) };
        }
        // SAFETY: writable for `size` bytes by contract.
        unsafe { write_out(out, size, &v) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 2 begins past version 1's sizeof (see stats.rs).
    #[test]
    fn the_etcd_part_is_appended_past_version_1() {
        let v1_end = <procreg_health_t as Extensible>::MIN_SIZE;
        assert_eq!(
            v1_end % align_of::<procreg_health_t>(),
            0,
            "no tail padding in v1"
        );
        assert!(offset_of!(procreg_health_t, has_etcd) >= v1_end);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(v1_end, 104);
    }
}
