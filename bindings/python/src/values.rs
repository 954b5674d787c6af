//! Rust values -> the Python value types of `procreg/_registry.py` (frozen
//! dataclasses and enums, built with keyword arguments). These are not on a
//! hot path; `Entry`, which is, is native (`entry.rs`).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};
use std::time::{SystemTime, UNIX_EPOCH};

static PYMOD: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// `procreg._registry`, imported once.
pub(crate) fn pymod(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    PYMOD
        .get_or_try_init(py, || Ok(py.import("procreg._registry")?.unbind()))
        .map(|m| m.bind(py))
}

/// Nanoseconds since the Unix epoch (0 before it).
pub(crate) fn ns_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
        .unwrap_or(0)
}

/// A UTC `datetime` from nanoseconds since the epoch (`_registry._time`).
pub(crate) fn datetime(py: Python<'_>, ns: u64) -> PyResult<Bound<'_, PyAny>> {
    static TIME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    TIME.import(py, "procreg._registry", "_time")?.call1((ns,))
}

fn liveness_mode(py: Python<'_>, m: procreg::LivenessMode) -> PyResult<Bound<'_, PyAny>> {
    let n = match m {
        procreg::LivenessMode::ProcStartTime => 0,
        procreg::LivenessMode::ForeignPidNamespace => 1,
        procreg::LivenessMode::InProcess => 2,
        procreg::LivenessMode::Lease => 3,
        _ => return Ok(255u8.into_pyobject(py)?.into_any()),
    };
    pymod(py)?.getattr("LivenessMode")?.call1((n,))
}

/// `procreg.Liveness` for a procreg liveness.
pub(crate) fn liveness(py: Python<'_>, l: procreg::Liveness) -> PyResult<Bound<'_, PyAny>> {
    let v = match l {
        procreg::Liveness::Alive => "alive",
        procreg::Liveness::Dead => "dead",
        procreg::Liveness::Unknown => "unknown",
    };
    pymod(py)?.getattr("Liveness")?.call1((v,))
}

/// `procreg.Stats`.
pub(crate) fn stats(py: Python<'_>, s: procreg::Stats) -> PyResult<Bound<'_, PyAny>> {
    let m = pymod(py)?;
    let p = &s.process;
    let pk = PyDict::new(py);
    pk.set_item("registers", p.registers)?;
    pk.set_item("lookup_hits", p.lookup_hits)?;
    pk.set_item("lookup_misses", p.lookup_misses)?;
    pk.set_item("unregisters", p.unregisters)?;
    pk.set_item("updates", p.updates)?;
    pk.set_item("reclaimed", p.reclaimed)?;
    pk.set_item("busy", p.busy)?;
    let process = m.getattr("ProcessCounters")?.call((), Some(&pk))?;

    let k = PyDict::new(py);
    k.set_item("backend", s.backend)?;
    k.set_item("live", s.live)?;
    k.set_item("changes", s.revision)?;
    k.set_item("max_namespace_len", s.limits.max_namespace_len)?;
    k.set_item("max_name_len", s.limits.max_name_len)?;
    k.set_item("max_metadata_len", s.limits.max_metadata_len)?;
    k.set_item("process", process)?;
    let none = py.None();
    let table_fields = [
        "capacity",
        "tombstones",
        "claimed",
        "max_probe_distance",
        "mean_miss_groups",
        "segment_bytes",
        "created_at",
        "registers",
        "unregisters",
        "updates",
        "reclaimed",
        "stuck_recovered",
        "locks_stolen",
    ];
    for f in table_fields {
        k.set_item(f, &none)?;
    }
    k.set_item("has_table", false)?;
    match &s.detail {
        procreg::BackendStats::Table(t) => {
            k.set_item("has_table", true)?;
            k.set_item("capacity", t.capacity)?;
            k.set_item("tombstones", t.tombstones)?;
            k.set_item("claimed", t.claimed)?;
            k.set_item("max_probe_distance", t.max_probe_distance)?;
            k.set_item("mean_miss_groups", t.mean_miss_groups)?;
            k.set_item("segment_bytes", t.segment_bytes)?;
            k.set_item("created_at", datetime(py, ns_of(t.created_at))?)?;
            k.set_item("registers", t.registers)?;
            k.set_item("unregisters", t.unregisters)?;
            k.set_item("updates", t.updates)?;
            k.set_item("reclaimed", t.reclaimed)?;
            k.set_item("stuck_recovered", t.stuck_recovered)?;
            k.set_item("locks_stolen", t.locks_stolen)?;
        }
        #[cfg(feature = "etcd")]
        procreg::BackendStats::Etcd(e) => {
            k.set_item("lease", e.lease)?;
            k.set_item("lease_ttl", e.ttl.as_secs_f64())?;
            k.set_item("endpoints", e.endpoints.clone())?;
            k.set_item("prefix", e.prefix.clone())?;
            k.set_item("own_entries", e.own_entries)?;
        }
        #[allow(unreachable_patterns)]
        _ => {}
    }
    m.getattr("Stats")?.call((), Some(&k))
}

/// `procreg.Health`.
pub(crate) fn health(py: Python<'_>, h: procreg::Health) -> PyResult<Bound<'_, PyAny>> {
    let m = pymod(py)?;
    let k = PyDict::new(py);
    k.set_item("healthy", h.healthy)?;
    k.set_item("live", h.live)?;
    k.set_item("alive_owners", h.alive_owners)?;
    k.set_item("dead_owners", h.dead_owners)?;
    k.set_item("unknown_owners", h.unknown_owners)?;
    k.set_item("expired_leases", h.expired_leases)?;
    k.set_item("liveness_mode", liveness_mode(py, h.liveness_mode)?)?;
    k.set_item("problem_count", h.problems.len())?;
    k.set_item("problems", h.problems.clone())?;
    let none = py.None();
    for f in ["header_valid", "load_factor", "stuck_slots"] {
        k.set_item(f, &none)?;
    }
    match &h.detail {
        procreg::BackendHealth::Table(t) => {
            k.set_item("header_valid", t.header_valid)?;
            k.set_item("load_factor", t.load_factor)?;
            k.set_item("stuck_slots", t.stuck_slots)?;
        }
        #[cfg(feature = "etcd")]
        procreg::BackendHealth::Etcd(e) => {
            k.set_item("lease", e.lease)?;
            k.set_item("lease_left", e.lease_left.as_secs_f64())?;
            k.set_item("session_lost", e.session_lost.clone())?;
            k.set_item("endpoints", e.endpoints.clone())?;
        }
        #[allow(unreachable_patterns)]
        _ => {}
    }
    m.getattr("Health")?.call((), Some(&k))
}

/// `procreg.Event`.
pub(crate) fn event(py: Python<'_>, e: procreg::Event) -> PyResult<Bound<'_, PyAny>> {
    let m = pymod(py)?;
    let kind = match e.kind {
        procreg::EventKind::Registered => 1,
        procreg::EventKind::Unregistered => 2,
        procreg::EventKind::Updated => 3,
        procreg::EventKind::Reclaimed => 4,
        procreg::EventKind::Expired => 5,
        _ => 6,
    };
    let k = PyDict::new(py);
    k.set_item("revision", e.revision)?;
    k.set_item("kind", m.getattr("EventKind")?.call1((kind,))?)?;
    k.set_item("namespace", e.namespace)?;
    k.set_item("name", e.name)?;
    k.set_item("pid", e.pid)?;
    k.set_item("version", e.version)?;
    k.set_item("at", datetime(py, ns_of(e.at))?)?;
    k.set_item("host", e.host)?;
    k.set_item("member", e.member)?;
    m.getattr("Event")?.call((), Some(&k))
}
