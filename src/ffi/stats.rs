//! `procreg_stats_t`: the generic counters every backend has, then the
//! hash-table part (`shm:`, `mem:`), zero when `has_table` is false, then
//! (version 2) the etcd part, zero when `has_etcd` is false.

use super::registry::{procreg, registry};
use super::sized::{Extensible, caller_size, write_out};
use super::status::procreg_status;
use super::util::{interned, millis, nanos, out_ptr, put};
use std::ffi::c_char;
use std::mem::offset_of;

/// Sizes and counters of a registry (see `procreg_stats`). Set
/// `struct_size` to sizeof(procreg_stats_t) before the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct procreg_stats_t {
    /// sizeof(procreg_stats_t) as the caller was compiled: set it first.
    pub struct_size: usize,
    /// Backend kind ("shm", "mem", ...), NUL-terminated, static.
    pub backend: *const c_char,
    /// Live entries.
    pub live: usize,
    /// The latest committed revision (committed changes of any kind).
    pub revision: u64,
    /// Entries the registry can hold; 0 for a backend without a fixed capacity.
    pub capacity: usize,
    /// Longest namespace in bytes.
    pub max_namespace_len: usize,
    /// Longest name in bytes.
    pub max_name_len: usize,
    /// Longest metadata in bytes (a buffer of this size always suffices).
    pub max_metadata_len: usize,
    /// Shortest lease ttl the backend honours, in milliseconds.
    pub min_lease_ttl_ms: u64,
    /// Longest lease ttl the backend can record, in milliseconds.
    pub max_lease_ttl_ms: u64,
    /// This process (all handles, all threads): successful registrations.
    pub process_registers: u64,
    /// This process: lookups that found their key.
    pub process_lookup_hits: u64,
    /// This process: lookups that did not.
    pub process_lookup_misses: u64,
    /// This process: successful unregistrations.
    pub process_unregisters: u64,
    /// This process: successful metadata updates.
    pub process_updates: u64,
    /// This process: entries it reclaimed (dead owner or expired lease).
    pub process_reclaimed: u64,
    /// This process: operations that gave up with PROCREG_E_BUSY.
    pub process_busy: u64,
    /// True for a hash-table backend (shm, mem): the fields below are its.
    /// False: they are 0.
    pub has_table: bool,
    /// Tombstones (freed slots still marking probe chains).
    pub tombstones: usize,
    /// Slots claimed by a writer that has not published yet (or died).
    pub claimed: usize,
    /// Largest probe distance of any home, in groups.
    pub max_probe_distance: usize,
    /// Mean number of groups a miss reads.
    pub mean_miss_groups: f64,
    /// Bytes of the segment.
    pub segment_bytes: usize,
    /// Creation time of the segment, nanoseconds since the Unix epoch.
    pub created_at_ns: u64,
    /// Registrations committed (all processes).
    pub registers: u64,
    /// Unregistrations committed.
    pub unregisters: u64,
    /// Metadata updates committed.
    pub updates: u64,
    /// Entries of dead owners reclaimed.
    pub reclaimed: u64,
    /// Slots of dead writers recovered.
    pub stuck_recovered: u64,
    /// Locks of dead writers taken over.
    pub locks_stolen: u64,
    // Version 1 ends here (sizeof 240 on LP64). A caller built against it
    // gets the fields above only.
    /// True for an etcd registry (etcd://): the fields below are its.
    /// False: they are 0. (Added in version 2.)
    pub has_etcd: bool,
    /// This handle's session lease id.
    pub etcd_lease: i64,
    /// The session lease's ttl, in milliseconds.
    pub etcd_lease_ttl_ms: u64,
    /// Entries registered through this handle's session.
    pub etcd_own_entries: usize,
    /// Members of the cluster named by the url.
    pub etcd_endpoints: usize,
    // Version 2 ends here; append past its sizeof.
}

// SAFETY: repr(C), struct_size first, integers, floats, a pointer, a bool.
unsafe impl Extensible for procreg_stats_t {
    const NAME: &'static str = "procreg_stats_t";
    const MIN_SIZE: usize = offset_of!(procreg_stats_t, locks_stolen) + size_of::<u64>();
}

/// Sizes and counters of the registry into `*out` (struct_size set by the
/// caller; PROCREG_E_INVALID_ARGUMENT if it is too small).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_stats(
    reg: *const procreg,
    out: *mut procreg_stats_t,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        let out = out_ptr(out, "out")?;
        // SAFETY: non-NULL, readable by contract.
        let size = unsafe { caller_size(out) }?;
        let s = r.stats()?;
        let t = s.table();
        let v = procreg_stats_t {
            struct_size: size_of::<procreg_stats_t>(),
            backend: interned(s.backend),
            live: s.live,
            revision: s.revision,
            capacity: s.limits.capacity.unwrap_or(0),
            max_namespace_len: s.limits.max_namespace_len,
            max_name_len: s.limits.max_name_len,
            max_metadata_len: s.limits.max_metadata_len,
            min_lease_ttl_ms: millis(s.limits.min_lease_ttl),
            max_lease_ttl_ms: millis(s.limits.max_lease_ttl),
            process_registers: s.process.registers,
            process_lookup_hits: s.process.lookup_hits,
            process_lookup_misses: s.process.lookup_misses,
            process_unregisters: s.process.unregisters,
            process_updates: s.process.updates,
            process_reclaimed: s.process.reclaimed,
            process_busy: s.process.busy,
            has_table: t.is_some(),
            tombstones: t.map_or(0, |t| t.tombstones),
            claimed: t.map_or(0, |t| t.claimed),
            max_probe_distance: t.map_or(0, |t| t.max_probe_distance),
            mean_miss_groups: t.map_or(0.0, |t| t.mean_miss_groups),
            segment_bytes: t.map_or(0, |t| t.segment_bytes),
            created_at_ns: t.map_or(0, |t| nanos(t.created_at)),
            registers: t.map_or(0, |t| t.registers),
            unregisters: t.map_or(0, |t| t.unregisters),
            updates: t.map_or(0, |t| t.updates),
            reclaimed: t.map_or(0, |t| t.reclaimed),
            stuck_recovered: t.map_or(0, |t| t.stuck_recovered),
            locks_stolen: t.map_or(0, |t| t.locks_stolen),
            has_etcd: false,
            etcd_lease: 0,
            etcd_lease_ttl_ms: 0,
            etcd_own_entries: 0,
            etcd_endpoints: 0,
        };
        #[cfg(feature = "etcd")]
        let v = match &s.detail {
            crate::BackendStats::Etcd(e) => procreg_stats_t {
                has_etcd: true,
                etcd_lease: e.lease,
                etcd_lease_ttl_ms: millis(e.ttl),
                etcd_own_entries: e.own_entries,
                etcd_endpoints: e.endpoints.len(),
                ..v
            },
            _ => v,
        };
        // SAFETY: writable for `size` bytes by contract.
        unsafe { write_out(out, size, &v) };
        Ok(())
    })
}

/// The latest committed revision into `*out` (every committed change of any
/// process adds one).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_revision(reg: *const procreg, out: *mut u64) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        let out = out_ptr(out, "out")?;
        let rev = r.revision()?;
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(out, rev) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 2 begins past version 1's sizeof: an older caller leaves
    /// nothing of it uninitialised in the struct it passes.
    #[test]
    fn the_etcd_part_is_appended_past_version_1() {
        let v1_end = <procreg_stats_t as Extensible>::MIN_SIZE;
        assert_eq!(
            v1_end % align_of::<procreg_stats_t>(),
            0,
            "no tail padding in v1"
        );
        assert!(offset_of!(procreg_stats_t, has_etcd) >= v1_end);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(v1_end, 240);
    }
}
