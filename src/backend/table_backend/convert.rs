//! Table records to the registry's values.

use crate::table::ring::{ChangeKind, RawChange};
use crate::table::{EntryHead, RawEntry};
use crate::types::{Entry, EntryInfo, Event, EventKind, time_from_ns};

/// Keys are validated UTF-8 when written; a hostile writer's bytes are replaced.
pub(super) fn lossy_utf8(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

pub(super) fn event_kind(k: ChangeKind) -> EventKind {
    match k {
        ChangeKind::Registered => EventKind::Registered,
        ChangeKind::Unregistered => EventKind::Unregistered,
        ChangeKind::Updated => EventKind::Updated,
        ChangeKind::Reclaimed => EventKind::Reclaimed,
        ChangeKind::Expired => EventKind::Expired,
        ChangeKind::Lost => EventKind::Lost,
    }
}

pub(super) fn event_of(c: RawChange) -> Event {
    let mut ns = c.key;
    let name = ns.split_off(c.ns_len.min(ns.len()));
    Event {
        revision: c.revision,
        kind: event_kind(c.kind),
        namespace: lossy_utf8(ns),
        name: lossy_utf8(name),
        pid: c.pid,
        host: crate::host::name().to_owned(),
        version: u64::from(c.version),
        at: time_from_ns(c.at),
    }
}

pub(super) fn entry_of(e: RawEntry) -> Entry {
    let mut ns = e.key;
    let name = ns.split_off(e.ns_len.min(ns.len()));
    Entry {
        namespace: lossy_utf8(ns),
        name: lossy_utf8(name),
        pid: e.owner.pid,
        host: crate::host::name().to_owned(),
        metadata: e.metadata,
        registered_at: time_from_ns(e.registered_at),
        version: e.version as u64,
    }
}

pub(super) fn info_of(h: &EntryHead) -> EntryInfo {
    EntryInfo {
        pid: h.owner.pid,
        registered_at_ns: h.registered_at,
        version: u64::from(h.version),
        metadata_len: h.meta_len,
    }
}
