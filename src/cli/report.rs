//! `procreg stats` and `procreg health`: the part every backend has, then
//! the backend's own (the hash table, or etcd).

use super::commands::shown_url;
use super::error::{CliError, CliResult};
use super::fmt::{human_duration, thousands, unix_ms, utc};
use crate::outln;
use procreg::{Health, LivenessMode, Registry, Stats};
use serde_json::json;
use std::io::Write;
use std::time::Duration;

/// `procreg stats`: the part every backend has, then the backend's own.
pub fn stats(reg: &Registry, json: bool, out: &mut impl Write) -> CliResult {
    let s = reg.stats()?;
    let t = s.table();
    if json {
        let mut v = json!({
            "url": shown_url(reg),
            "backend": s.backend,
            "capacity": s.limits.capacity,
            "live": s.live,
            "load_factor": s.load_factor(),
            "max_namespace_len": s.limits.max_namespace_len,
            "max_name_len": s.limits.max_name_len,
            "max_metadata_len": s.limits.max_metadata_len,
            "changes": s.revision,
        });
        if let Some((part, _)) = etcd_stats_part(&s) {
            v["etcd"] = part;
        }
        if let Some(t) = t {
            let table = json!({
                "tombstones": t.tombstones,
                "claimed": t.claimed,
                "max_probe_distance": t.max_probe_distance,
                "mean_miss_groups": t.mean_miss_groups,
                "segment_bytes": t.segment_bytes,
                "created_at_ms": unix_ms(t.created_at),
                "registers": t.registers,
                "unregisters": t.unregisters,
                "updates": t.updates,
                "reclaimed": t.reclaimed,
                "stuck_recovered": t.stuck_recovered,
                "locks_stolen": t.locks_stolen,
            });
            if let (Some(v), Some(table)) = (v.as_object_mut(), table.as_object()) {
                v.extend(table.clone());
            }
        }
        return outln!(out, "{v}");
    }
    outln!(
        out,
        "registry    {} ({} backend)",
        shown_url(reg),
        s.backend
    )?;
    outln!(
        out,
        "limits      namespace {} B, name {} B, metadata {} B",
        s.limits.max_namespace_len,
        s.limits.max_name_len,
        s.limits.max_metadata_len
    )?;
    let Some(t) = t else {
        let (own, lines) = etcd_stats_part(&s).unwrap_or_default();
        match own.get("own_entries") {
            Some(n) => outln!(
                out,
                "entries     {} live, {n} registered through this handle",
                s.live
            )?,
            None => outln!(out, "entries     {} live", s.live)?,
        }
        for l in lines {
            outln!(out, "{l}")?;
        }
        return outln!(out, "counters    {} changes", s.revision);
    };
    let age = human_duration(super::fmt::age(t.created_at));
    outln!(
        out,
        "entries     {} live of {} slots ({:.1}% full), {} tombstones, {} claimed",
        s.live,
        thousands(t.capacity as u64),
        s.load_factor() * 100.0,
        t.tombstones,
        t.claimed
    )?;
    outln!(
        out,
        "segment     {} bytes, created {} ({age} ago)",
        thousands(t.segment_bytes as u64),
        utc(t.created_at)
    )?;
    outln!(
        out,
        "probing     max distance {} groups, a miss reads {:.2} groups on average",
        t.max_probe_distance,
        t.mean_miss_groups
    )?;
    outln!(
        out,
        "counters    {} registers, {} unregisters, {} updates, {} reclaimed, \
         {} stuck slots recovered, {} locks stolen, {} changes",
        t.registers,
        t.unregisters,
        t.updates,
        t.reclaimed,
        t.stuck_recovered,
        t.locks_stolen,
        s.revision
    )
}

/// The ttl and id of this handle's etcd session lease, for an etcd registry.
#[cfg(feature = "etcd")]
pub fn etcd_lease(s: &Stats) -> Option<(Duration, i64)> {
    match &s.detail {
        procreg::BackendStats::Etcd(e) => Some((e.ttl, e.lease)),
        _ => None,
    }
}

#[cfg(not(feature = "etcd"))]
pub fn etcd_lease(_: &Stats) -> Option<(Duration, i64)> {
    None
}

/// The etcd part of `stats`: JSON, and text lines.
#[cfg(feature = "etcd")]
fn etcd_stats_part(s: &Stats) -> Option<(serde_json::Value, Vec<String>)> {
    let procreg::BackendStats::Etcd(e) = &s.detail else {
        return None;
    };
    let v = json!({
        "endpoints": e.endpoints,
        "prefix": e.prefix,
        "lease": format!("{:x}", e.lease),
        "ttl_ms": e.ttl.as_millis() as u64,
        "own_entries": e.own_entries,
    });
    let lines = vec![
        format!("members     {}", e.endpoints.join(", ")),
        format!("prefix      {}", e.prefix),
        format!(
            "lease       {:x} (this handle's session, ttl {})",
            e.lease,
            human_duration(e.ttl)
        ),
    ];
    Some((v, lines))
}

#[cfg(not(feature = "etcd"))]
fn etcd_stats_part(_: &Stats) -> Option<(serde_json::Value, Vec<String>)> {
    None
}

/// The etcd part of `health`: JSON, and text lines.
#[cfg(feature = "etcd")]
fn etcd_health_part(h: &Health) -> Option<(serde_json::Value, Vec<String>)> {
    let procreg::BackendHealth::Etcd(e) = &h.detail else {
        return None;
    };
    let v = json!({
        "lease": format!("{:x}", e.lease),
        "lease_left_ms": e.lease_left.as_millis() as u64,
        "session_lost": e.session_lost,
        "members": e.endpoints.iter().map(|(ep, up)| json!({"endpoint": ep, "up": up})).collect::<Vec<_>>(),
    });
    let mut lines = vec![match &e.session_lost {
        None => format!(
            "session     lease {:x}, {} left before it must be renewed",
            e.lease,
            human_duration(e.lease_left)
        ),
        Some(why) => format!("session     LOST (lease {:x}): {why}", e.lease),
    }];
    for (ep, up) in &e.endpoints {
        lines.push(format!(
            "member      {ep} {}",
            if *up { "up" } else { "DOWN (no answer)" }
        ));
    }
    Some((v, lines))
}

#[cfg(not(feature = "etcd"))]
fn etcd_health_part(_: &Health) -> Option<(serde_json::Value, Vec<String>)> {
    None
}

/// What `health` makes of a check: the problems an operator must act on
/// (they make it unhealthy), and the notes that do not (dead owners and
/// expired leases, unless `strict`: a crashed neighbour should not fail
/// every container's probe; `sweep` or a reaper reclaims them).
pub struct Verdict {
    /// Problems that make the registry unhealthy.
    pub problems: Vec<String>,
    /// Reported, but healthy all the same.
    pub notes: Vec<String>,
}

/// Judges `h`: unhealthy means a broken segment, stuck writers, nearly full,
/// or (etcd) a lost session or silent members; with `strict` also dead
/// owners and expired leases.
pub fn verdict(h: &Health, strict: bool) -> Verdict {
    let mut owners = Vec::new();
    if h.dead_owners > 0 {
        owners.push(format!(
            "{} entries have dead owners; `procreg sweep` (or `reap`) reclaims them",
            h.dead_owners
        ));
    }
    if h.expired_leases > 0 {
        owners.push(format!(
            "{} entries have expired leases; `procreg sweep` (or `reap`) reclaims them",
            h.expired_leases
        ));
    }
    // The library words each owner count above as one problem of its own
    // ("... dead owners ...", "... expired leases ..."); the others are what
    // needs an operator.
    let problems: Vec<String> = h
        .problems
        .iter()
        .filter(|p| !(p.contains("dead owners") || p.contains("expired leases")))
        .cloned()
        .collect();
    let mut problems = problems;
    if let Some(t) = h.table() {
        if !t.header_valid && problems.is_empty() {
            problems.push("the segment header is not valid".to_owned());
        }
    }
    if strict {
        problems.extend(owners);
        Verdict {
            problems,
            notes: Vec::new(),
        }
    } else {
        Verdict {
            problems,
            notes: owners,
        }
    }
}

/// `procreg health`: prints the check; `Unhealthy` (exit 17) when it finds
/// a problem (see [`verdict`]).
pub fn health(reg: &Registry, json: bool, strict: bool, out: &mut impl Write) -> CliResult {
    let h = reg.health_check()?;
    let v = verdict(&h, strict);
    let healthy = v.problems.is_empty();
    let mode = match h.liveness_mode {
        LivenessMode::ProcStartTime => "proc-start-time",
        LivenessMode::ForeignPidNamespace => "foreign-pid-namespace",
        LivenessMode::InProcess => "in-process",
        LivenessMode::Lease => "lease",
        _ => "other",
    };
    let t = h.table();
    if json {
        let mut j = json!({
            "url": shown_url(reg),
            "healthy": healthy,
            "strict": strict,
            "header_valid": t.map(|t| t.header_valid),
            "load_factor": t.map(|t| t.load_factor),
            "live": h.live,
            "alive_owners": h.alive_owners,
            "dead_owners": h.dead_owners,
            "unknown_owners": h.unknown_owners,
            "expired_leases": h.expired_leases,
            "stuck_slots": t.map(|t| t.stuck_slots),
            "liveness_mode": mode,
            "problems": v.problems,
            "notes": v.notes,
        });
        if let Some((part, _)) = etcd_health_part(&h) {
            j["etcd"] = part;
        }
        outln!(out, "{j}")?;
    } else {
        outln!(
            out,
            "{:<11} {}",
            if healthy { "healthy" } else { "UNHEALTHY" },
            shown_url(reg)
        )?;
        outln!(
            out,
            "entries     {} live: {} alive, {} dead, {} unknown owners, {} expired leases",
            h.live,
            h.alive_owners,
            h.dead_owners,
            h.unknown_owners,
            h.expired_leases
        )?;
        if let Some(t) = t {
            outln!(
                out,
                "stuck       {} slots or locks of dead writers",
                t.stuck_slots
            )?;
            outln!(out, "load        {:.1}%", t.load_factor * 100.0)?;
        }
        if let Some((_, lines)) = etcd_health_part(&h) {
            for l in lines {
                outln!(out, "{l}")?;
            }
        }
        outln!(out, "liveness    {mode}")?;
        for p in &v.problems {
            outln!(out, "problem     {p}")?;
        }
        for n in &v.notes {
            outln!(out, "note        {n} (not a failure without --strict)")?;
        }
        if !healthy && t.is_some() {
            outln!(
                out,
                "hint        `procreg sweep` reclaims dead owners and stuck slots"
            )?;
        }
    }
    if healthy {
        Ok(())
    } else {
        Err(CliError::Unhealthy)
    }
}

/// A label value in the Prometheus text format: `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `procreg stats --prometheus`: the figures of `stats` in the Prometheus
/// text exposition format (version 0.0.4): `# HELP` and `# TYPE` before each
/// metric, every sample labelled with the registry's url and backend.
pub fn prometheus(reg: &Registry, out: &mut impl Write) -> CliResult {
    let s = reg.stats()?;
    let labels = format!(
        "registry=\"{}\",backend=\"{}\"",
        label(&shown_url(reg)),
        label(s.backend)
    );
    let mut metrics: Vec<(&str, &str, &str, f64)> = vec![
        ("procreg_entries", "gauge", "Live entries.", s.live as f64),
        (
            "procreg_changes_total",
            "counter",
            "Committed changes (the registry's revision).",
            s.revision as f64,
        ),
        (
            "procreg_max_metadata_bytes",
            "gauge",
            "Longest metadata the registry accepts, in bytes.",
            s.limits.max_metadata_len as f64,
        ),
    ];
    if let Some(c) = s.limits.capacity {
        metrics.push(("procreg_capacity", "gauge", "Slot capacity.", c as f64));
        metrics.push((
            "procreg_load_factor",
            "gauge",
            "Live entries divided by the capacity.",
            s.load_factor(),
        ));
    }
    if let Some(t) = s.table() {
        let table: [(&str, &str, &str, f64); 12] = [
            (
                "procreg_tombstones",
                "gauge",
                "Deleted slots awaiting reuse.",
                t.tombstones as f64,
            ),
            (
                "procreg_claimed_slots",
                "gauge",
                "Slots claimed by a writer that has not published (or died).",
                t.claimed as f64,
            ),
            (
                "procreg_max_probe_distance_groups",
                "gauge",
                "Largest probe distance of a live key, in groups of 8 slots.",
                t.max_probe_distance as f64,
            ),
            (
                "procreg_mean_miss_groups",
                "gauge",
                "Groups of 8 slots a lookup miss reads on average.",
                t.mean_miss_groups,
            ),
            (
                "procreg_segment_bytes",
                "gauge",
                "Size of the segment (or heap table) in bytes.",
                t.segment_bytes as f64,
            ),
            (
                "procreg_created_timestamp_seconds",
                "gauge",
                "When the segment was created, in seconds since the Unix epoch.",
                unix_ms(t.created_at) as f64 / 1000.0,
            ),
            (
                "procreg_registers_total",
                "counter",
                "Registrations committed since creation (all processes).",
                t.registers as f64,
            ),
            (
                "procreg_unregisters_total",
                "counter",
                "Unregistrations committed since creation (all processes).",
                t.unregisters as f64,
            ),
            (
                "procreg_updates_total",
                "counter",
                "Metadata updates committed since creation (all processes).",
                t.updates as f64,
            ),
            (
                "procreg_reclaimed_total",
                "counter",
                "Entries reclaimed because their owner died or their lease ran out.",
                t.reclaimed as f64,
            ),
            (
                "procreg_stuck_recovered_total",
                "counter",
                "Slots left claimed by dead writers and freed again.",
                t.stuck_recovered as f64,
            ),
            (
                "procreg_locks_stolen_total",
                "counter",
                "Neighbourhood locks taken over from dead writers.",
                t.locks_stolen as f64,
            ),
        ];
        metrics.extend(table);
    }
    for (name, kind, help, value) in metrics {
        outln!(out, "# HELP {name} {help}")?;
        outln!(out, "# TYPE {name} {kind}")?;
        outln!(out, "{name}{{{labels}}} {value}")?;
    }
    Ok(())
}
