//! The engine as a registry backend: [`Backend`] for [`EtcdRegistry`].
//!
//! Meanings that differ from `shm:` (documented in the README's etcd
//! section): there is no capacity (`Limits::capacity` is `None`); a lookup
//! is a linearizable read (about a millisecond on loopback, not
//! nanoseconds) and allocates; revisions are etcd's, cluster-wide and
//! sparse; an event's `at` is when this handle received it (etcd keeps no
//! commit time), except a registration's, which is its registration time.

use super::{EtcdBackend, EtcdEvent, EtcdRecord, EtcdWatcher, last_write_revision};
use crate::backend::{Backend, EventStream, Hook, Key, Who};
use crate::error::{Error, Liveness, Result};
use crate::telemetry;
use crate::types::{
    BackendHealth, BackendStats, Entry, EntryInfo, EntryRef, EtcdHealth, EtcdStats, Event,
    EventKind, Health, Lease, Limits, LivenessMode, OwnerCounts, Stats, time_from_ns,
};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// etcd's own bound on a lease ttl (`MaxLeaseTTL`, 9,000,000,000 s).
const MAX_LEASE_TTL: Duration = Duration::from_secs(9_000_000_000);

/// An `etcd://` registry: the engine plus the registry's hook. Clones share
/// both.
#[derive(Clone)]
pub(crate) struct EtcdRegistry {
    pub(crate) engine: EtcdBackend,
    hook: Arc<RwLock<Option<Hook>>>,
}

impl EtcdRegistry {
    pub(crate) fn new(engine: EtcdBackend) -> Self {
        EtcdRegistry {
            engine,
            hook: Arc::new(RwLock::new(None)),
        }
    }

    /// Hands one committed change of this handle to the hook.
    fn fire(&self, kind: EventKind, key: Key<'_>, pid: u32, version: u64, revision: i64) {
        let hook = self.hook.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(hook) = hook {
            hook(&Event {
                revision: revision.max(0) as u64,
                kind,
                namespace: key.ns.to_owned(),
                name: key.name.to_owned(),
                pid,
                host: crate::host::name().to_owned(),
                version,
                at: SystemTime::now(),
                member: false,
            });
        }
    }
}

/// The engine accepts a group member's stored name (`GROUP\0PID`), so a
/// unique key holding a NUL byte is refused here, before it could reach a
/// member: unique keys and members are separate keyspaces on every backend.
fn checked(key: Key<'_>) -> Result<Key<'_>> {
    if !key.member {
        crate::registry::check_part("namespace", key.ns, usize::MAX)?;
        crate::registry::check_part("name", key.name, usize::MAX)?;
    }
    Ok(key)
}

fn entry_of(r: EtcdRecord) -> Entry {
    Entry {
        namespace: r.namespace,
        name: r.name,
        pid: r.pid,
        host: r.host,
        metadata: r.metadata,
        registered_at: time_from_ns(r.registered_at_ns),
        version: r.version,
        lease: (r.lease != 0).then_some(Lease {
            ttl: None,
            remaining: None,
            id: Some(r.lease),
        }),
        member: false,
    }
}

fn event_of(e: EtcdEvent) -> Event {
    let (pid, host, version, at) = match &e.record {
        Some(r) => (
            r.pid,
            r.host.clone(),
            r.version,
            if e.kind == EventKind::Registered {
                time_from_ns(r.registered_at_ns)
            } else {
                SystemTime::now()
            },
        ),
        None => (0, String::new(), 0, SystemTime::now()),
    };
    Event {
        revision: e.revision.max(0) as u64,
        kind: e.kind,
        namespace: e.namespace,
        name: e.name,
        pid,
        host,
        version,
        at,
        member: false,
    }
}

/// A watch stream of the engine as the registry's [`EventStream`].
struct Stream {
    watcher: EtcdWatcher,
    revision: u64,
}

impl EventStream for Stream {
    fn next(&mut self, timeout: Duration) -> Result<Event> {
        let started = std::time::Instant::now();
        match self.watcher.next(timeout) {
            Ok(Some(e)) => {
                let e = event_of(e);
                self.revision = self.revision.max(e.revision);
                Ok(e)
            }
            Ok(None) => Err(Error::Timeout {
                what: format!("a change after revision {}", self.revision),
                waited: started.elapsed(),
            }),
            Err(e) => Err(e),
        }
    }

    fn revision(&self) -> u64 {
        self.revision
    }
}

impl Backend for EtcdRegistry {
    fn kind(&self) -> &'static str {
        "etcd"
    }

    fn limits(&self) -> Limits {
        Limits {
            capacity: None,
            max_namespace_len: super::MAX_NAMESPACE_LEN,
            max_name_len: super::MAX_NAME_LEN,
            max_metadata_len: super::MAX_METADATA_LEN,
            min_lease_ttl: super::url::MIN_TTL,
            max_lease_ttl: MAX_LEASE_TTL,
        }
    }

    fn register(
        &self,
        key: Key<'_>,
        who: Who,
        metadata: &[u8],
        lease: Option<Duration>,
    ) -> Result<u64> {
        let key = checked(key)?;
        let pid = match who {
            Who::Me => std::process::id(),
            Who::Pid(pid) => pid,
        };
        let r = match lease {
            None => self.engine.register(key.ns, key.name, pid, metadata)?,
            Some(ttl) => self
                .engine
                .register_with_lease(key.ns, key.name, pid, metadata, ttl)?,
        };
        telemetry::count(telemetry::Op::Register);
        self.fire(EventKind::Registered, key, pid, r.version, r.mod_revision);
        Ok(r.version)
    }

    fn keepalive(&self, key: Key<'_>) -> Result<()> {
        let key = checked(key)?;
        self.engine.keepalive(key.ns, key.name)
    }

    fn lookup(&self, key: Key<'_>) -> Result<Option<Entry>> {
        let key = checked(key)?;
        Ok(self.engine.lookup(key.ns, key.name)?.map(entry_of))
    }

    fn lookup_pid(&self, key: Key<'_>) -> Result<Option<u32>> {
        let key = checked(key)?;
        self.engine.lookup_pid(key.ns, key.name)
    }

    fn lookup_into(&self, key: Key<'_>, meta: &mut [u8]) -> Result<Option<EntryInfo>> {
        let key = checked(key)?;
        Ok(self.engine.lookup(key.ns, key.name)?.map(|r| {
            if let Some(dst) = meta.get_mut(..r.metadata.len()) {
                dst.copy_from_slice(&r.metadata);
            }
            EntryInfo {
                pid: r.pid,
                registered_at_ns: r.registered_at_ns,
                version: r.version,
                metadata_len: r.metadata.len(),
            }
        }))
    }

    fn owner_liveness(&self, key: Key<'_>) -> Result<Option<Liveness>> {
        let key = checked(key)?;
        self.engine.owner_liveness(key.ns, key.name)
    }

    fn lookup_checked(&self, key: Key<'_>) -> Result<Option<Entry>> {
        let key = checked(key)?;
        Ok(self.engine.lookup_checked(key.ns, key.name)?.map(entry_of))
    }

    fn unregister(&self, key: Key<'_>, only_pid: Option<u32>) -> Result<bool> {
        let key = checked(key)?;
        let removed = match only_pid {
            None => self.engine.unregister(key.ns, key.name)?,
            Some(pid) => self.engine.unregister_if_owner(key.ns, key.name, pid)?,
        };
        if removed {
            telemetry::count(telemetry::Op::Unregister);
            let rev = last_write_revision();
            self.fire(EventKind::Unregistered, key, only_pid.unwrap_or(0), 0, rev);
        }
        Ok(removed)
    }

    fn update_metadata(&self, key: Key<'_>, metadata: &[u8]) -> Result<u64> {
        let key = checked(key)?;
        let (v, pid) = self.engine.update_metadata_of(key.ns, key.name, metadata)?;
        telemetry::count(telemetry::Op::Update);
        let rev = last_write_revision();
        // The entry's owner, as the watchers report it (not the caller: an
        // entry or member registered for another pid is updated by its handle).
        self.fire(EventKind::Updated, key, pid, v, rev);
        Ok(v)
    }

    fn list_judged(&self, ns: Option<&str>) -> Result<Vec<(Entry, Liveness)>> {
        // One range read: each record judged as `owner_liveness` judges it,
        // without a read per entry.
        let mut v: Vec<(Entry, Liveness)> = self
            .engine
            .list(ns)?
            .0
            .into_iter()
            .map(|r| {
                let l = self.engine.judge(&r);
                (entry_of(r), l)
            })
            .collect();
        v.sort_by(|(a, _), (b, _)| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(v)
    }

    fn list(&self, ns: Option<&str>) -> Result<Vec<Entry>> {
        let mut v: Vec<Entry> = self.engine.list(ns)?.0.into_iter().map(entry_of).collect();
        // Keys sort by their escaped form in etcd; the registry sorts by text.
        v.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(v)
    }

    fn visit(&self, ns: Option<&str>, f: &mut dyn FnMut(&EntryRef<'_>) -> bool) -> Result<()> {
        for r in self.engine.list(ns)?.0 {
            let go_on = f(&EntryRef {
                namespace: r.namespace.as_bytes(),
                name: r.name.as_bytes(),
                host: &r.host,
                info: EntryInfo {
                    pid: r.pid,
                    registered_at_ns: r.registered_at_ns,
                    version: r.version,
                    metadata_len: r.metadata.len(),
                },
                metadata: &r.metadata,
            });
            if !go_on {
                break;
            }
        }
        Ok(())
    }

    fn clear_namespace(&self, ns: &str) -> Result<usize> {
        self.engine.clear_namespace(ns)
    }

    fn revision(&self) -> Result<u64> {
        Ok(self.engine.revision()?.max(0) as u64)
    }

    fn wait_for(&self, key: Key<'_>, timeout: Duration) -> Result<Option<Entry>> {
        let key = checked(key)?;
        match self.engine.wait_for(key.ns, key.name, timeout) {
            Ok(r) => Ok(Some(entry_of(r))),
            Err(Error::Timeout { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn watch(&self, ns: Option<&str>, from_revision: u64) -> Result<Box<dyn EventStream>> {
        // The registry's watch delivers the changes *after* `from_revision`;
        // etcd's starts at its start revision.
        let start = i64::try_from(from_revision.saturating_add(1)).unwrap_or(i64::MAX);
        Ok(Box::new(Stream {
            watcher: self.engine.watch(ns, start)?,
            revision: from_revision,
        }))
    }

    fn stats(&self) -> Result<Stats> {
        let s = self.engine.stats()?;
        let cfg = self.engine.config();
        Ok(Stats {
            backend: "etcd",
            live: s.live,
            revision: s.revision.max(0) as u64,
            limits: self.limits(),
            process: telemetry::snapshot(),
            detail: BackendStats::Etcd(EtcdStats {
                endpoints: cfg.endpoints.clone(),
                prefix: cfg.prefix.clone(),
                lease: self.engine.lease(),
                ttl: self.engine.ttl(),
                own_entries: s.own,
            }),
        })
    }

    fn health(&self) -> Result<Health> {
        let h = self.engine.health_check();
        let mut owners = OwnerCounts::default();
        let mut problems = h.problems;
        let live = match self.engine.list(None) {
            Ok((recs, _)) => {
                for r in &recs {
                    owners.add(self.engine.judge(r));
                }
                recs.len()
            }
            Err(e) => {
                problems.push(format!("cannot list the entries: {e}"));
                0
            }
        };
        if owners.dead > 0 {
            problems.push(format!(
                "{} entries have dead owners on this host; run sweep",
                owners.dead
            ));
        }
        Ok(Health {
            healthy: problems.is_empty(),
            live,
            alive_owners: owners.alive,
            dead_owners: owners.dead,
            unknown_owners: owners.unknown,
            expired_leases: 0,
            liveness_mode: LivenessMode::Lease,
            problems,
            detail: BackendHealth::Etcd(EtcdHealth {
                lease: h.lease,
                lease_left: h.lease_left,
                session_lost: h.lost,
                endpoints: h.endpoints,
            }),
        })
    }

    fn sweep(&self) -> Result<usize> {
        let n = self.engine.sweep()?;
        for _ in 0..n {
            telemetry::count(telemetry::Op::Reclaimed);
        }
        Ok(n)
    }

    fn local_owners(&self, since: Option<u64>) -> Result<Option<(Vec<u32>, u64)>> {
        let (recs, rev) = self.engine.list(None)?;
        let rev = rev.max(0) as u64;
        if since == Some(rev) {
            return Ok(None);
        }
        let mut pids: Vec<u32> = recs
            .iter()
            .filter(|r| r.boot_id == crate::host::boot_id())
            .map(|r| r.pid)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        Ok(Some((pids, rev)))
    }

    fn set_hook(&self, hook: Option<Hook>) {
        *self.hook.write().unwrap_or_else(|p| p.into_inner()) = hook;
    }
}
