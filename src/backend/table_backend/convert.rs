//! Table records to the registry's values.

use crate::table::ring::{ChangeKind, RawChange};
use crate::table::{EntryHead, RawEntry};
use crate::types::{Entry, EntryInfo, Event, EventKind, Lease, time_from_ns};
use std::time::Duration;

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
        member: false,
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
        // The clock is read only for an entry that has a lease.
        lease: (e.lease != 0).then(|| lease_of(e.lease, crate::sys::clock::boot_ms())),
        member: false,
    }
}

/// A row's non-zero lease word (`deadline:40 | ttl:24`, milliseconds on the
/// boot clock, see `table::lease`) as of `now_ms` on that clock.
fn lease_of(word: u64, now_ms: u64) -> Lease {
    const DEADLINE_MASK: u64 = (1 << 40) - 1;
    let ttl = Duration::from_millis(word >> 40);
    let left = if crate::table::lease::expired(word, now_ms) {
        0
    } else {
        (word & DEADLINE_MASK).wrapping_sub(now_ms & DEADLINE_MASK) & DEADLINE_MASK
    };
    Lease {
        ttl: Some(ttl),
        remaining: Some(Duration::from_millis(left.min(ttl.as_millis() as u64))),
        id: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::lease;

    #[test]
    fn a_lease_word_reads_as_its_ttl_and_time_left() {
        let w = lease::new(1_000, 3_000);
        let l = lease_of(w, 1_500);
        assert_eq!(l.ttl, Some(Duration::from_secs(3)));
        assert_eq!(l.remaining, Some(Duration::from_millis(2_500)));
        assert_eq!(lease_of(w, 9_000).remaining, Some(Duration::ZERO));
    }
}
