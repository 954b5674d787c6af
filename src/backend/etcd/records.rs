//! What the engine hands out: entries with their etcd bookkeeping, events,
//! stats and health.

use super::*;

/// One entry as stored in etcd, with its etcd bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdRecord {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Owner pid (on `host`).
    pub pid: u32,
    /// Owner's host name.
    pub host: String,
    /// Owner host's boot id.
    pub boot_id: String,
    /// Owner pid's start time (clock ticks since boot).
    pub start_time: u64,
    /// Metadata.
    pub metadata: Vec<u8>,
    /// Registration time, ns since the Unix epoch.
    pub registered_at_ns: u64,
    /// etcd's version of the key: 1 at registration, +1 per update.
    pub version: u64,
    /// Revision of the last change (the registry's revision).
    pub mod_revision: i64,
    /// Revision of the registration.
    pub create_revision: i64,
    /// Lease the entry is attached to (0: none).
    pub lease: i64,
    /// Handle id from the owner token.
    pub handle: String,
}

impl EtcdRecord {
    pub(super) fn new(namespace: String, name: String, v: Value, kv: &KeyValue) -> Self {
        EtcdRecord {
            namespace,
            name,
            pid: v.pid,
            host: v.host,
            boot_id: v.boot_id,
            start_time: v.start_time,
            metadata: v.metadata,
            registered_at_ns: v.registered_at_ns,
            version: kv.version().max(0) as u64,
            mod_revision: kv.mod_revision(),
            create_revision: kv.create_revision(),
            lease: kv.lease(),
            handle: v.owner.handle,
        }
    }

    pub(super) fn value(&self) -> Value {
        Value {
            pid: self.pid,
            host: self.host.clone(),
            boot_id: self.boot_id.clone(),
            start_time: self.start_time,
            metadata: self.metadata.clone(),
            registered_at_ns: self.registered_at_ns,
            version: self.version,
            owner: OwnerToken {
                lease: self.lease,
                handle: self.handle.clone(),
            },
        }
    }
}

/// One change seen by a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdEvent {
    /// What happened.
    pub kind: EventKind,
    /// Namespace of the key.
    pub namespace: String,
    /// Name of the key.
    pub name: String,
    /// etcd revision of the change (for a locally detected expiry: the
    /// entry's last revision).
    pub revision: i64,
    /// The entry after a put, before a delete (`None` when etcd no longer has
    /// the previous value).
    pub record: Option<EtcdRecord>,
}

/// Health of a handle.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdHealth {
    /// Session held and a majority answered.
    pub healthy: bool,
    /// The session lease id.
    pub lease: i64,
    /// Time left before the local lease deadline (zero once lost).
    pub lease_left: Duration,
    /// Why the session is lost, if it is.
    pub lost: Option<String>,
    /// Each endpoint and whether it answered a status request.
    pub endpoints: Vec<(String, bool)>,
    /// Human-readable problems.
    pub problems: Vec<String>,
}

/// Counts of a registry prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdStats {
    /// Entries under the prefix.
    pub live: usize,
    /// Entries per namespace.
    pub namespaces: BTreeMap<String, usize>,
    /// Entries of this handle's session.
    pub own: usize,
    /// The cluster's revision.
    pub revision: i64,
}
