//! Stats and health of a table backend: one scan of the control words, and
//! one of the live entries judging their owners.

use super::{TableBackend, Writers};
use crate::backend::Backend;
use crate::error::{Liveness, Result};
use crate::liveness;
use crate::sync::AtomicU64;
use crate::table::{self, hdr};
use crate::telemetry;
use crate::types::{
    BackendHealth, BackendStats, Health, OwnerCounts, Stats, TableHealth, TableStats, time_from_ns,
};

impl<S, W> TableBackend<S, W>
where
    S: AsRef<[AtomicU64]> + Clone + Send + Sync + 'static,
    W: Writers,
{
    pub(super) fn stats_now(&self) -> Stats {
        let c = self.table.census();
        let g = self.table.geometry();
        Stats {
            backend: self.kind,
            live: c.live,
            revision: self.table.revision(),
            limits: self.limits(),
            process: telemetry::snapshot(),
            detail: BackendStats::Table(TableStats {
                capacity: g.capacity,
                tombstones: c.tombstones,
                claimed: c.claimed,
                max_probe_distance: c.max_probe,
                mean_miss_groups: c.mean_miss_groups,
                segment_bytes: self.bytes,
                created_at: time_from_ns(self.created_at_ns),
                registers: self.table.counter(hdr::REGISTERS),
                unregisters: self.table.counter(hdr::UNREGISTERS),
                updates: self.table.counter(hdr::UPDATES),
                reclaimed: self.table.counter(hdr::RECLAIMED),
                stuck_recovered: self.table.counter(hdr::STUCK_RECOVERED),
                locks_stolen: self.table.counter(hdr::LOCKS_STOLEN),
            }),
        }
    }

    pub(super) fn health_now(&self) -> Result<Health> {
        let stats = self.stats_now();
        let mut owners = OwnerCounts::default();
        let mut expired = 0;
        let now = crate::sys::clock::boot_ms();
        self.table
            .for_each_live(|_, _, e| {
                if table::lease::expired(e.lease, now) {
                    expired += 1;
                } else {
                    owners.add(liveness::check(&e.owner));
                }
                true
            })
            .map_err(|e| self.scan_err(e))?;
        let me = self.writers().current_token();
        let stuck = self
            .table
            .stuck(|t| Some(t) != me && self.writers().liveness(t) == Liveness::Dead);
        let mut problems = Vec::new();
        if owners.dead > 0 {
            problems.push(format!(
                "{} entries have dead owners; run sweep",
                owners.dead
            ));
        }
        if expired > 0 {
            problems.push(format!(
                "{expired} entries have expired leases; run sweep (or a reaper)"
            ));
        }
        if stuck > 0 {
            problems.push(format!(
                "{stuck} slots or locks are held by dead writers; run sweep"
            ));
        }
        if stats.load_factor() > 0.9 {
            problems.push(format!(
                "load factor {:.2} is above 0.90; inserts get slower and may fail with Full",
                stats.load_factor()
            ));
        }
        Ok(Health {
            healthy: problems.is_empty(),
            live: stats.live,
            alive_owners: owners.alive,
            dead_owners: owners.dead,
            unknown_owners: owners.unknown,
            expired_leases: expired,
            liveness_mode: self.writers().mode(),
            problems,
            detail: BackendHealth::Table(TableHealth {
                header_valid: true,
                load_factor: stats.load_factor(),
                stuck_slots: stuck,
            }),
        })
    }
}
