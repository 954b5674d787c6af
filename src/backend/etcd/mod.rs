//! The etcd v3 engine (feature `etcd`): the registry's operations over an etcd
//! cluster, for processes on many hosts. Not yet wired into the `Backend`
//! trait; [`EtcdBackend`]'s inherent methods take plain arguments and return
//! [`EtcdRecord`]s and `crate::Error`.
//!
//! - Uniqueness: a transaction `create_revision(key) == 0 → put(key, value, lease)`.
//! - Owners: each handle holds one session lease ([`session`]); its entries are
//!   attached to it and vanish when it runs out. The handle judges it lost
//!   first (local deadline) and then fences its writes.
//! - Every call is bounded by the handle's timeout; a cluster that does not
//!   answer gives `Error::Unavailable` naming the endpoints tried ([`client`]).
//! - Formats: keys in [`keys`], values in [`value`] (docs/etcd-format.md).

pub mod client;
pub mod keys;
pub mod local;
pub(crate) mod registry;
pub mod runtime;
pub mod session;
pub mod url;
pub mod value;
mod watch;

use crate::error::{Error, Liveness, Result};
use crate::types::EventKind;
use client::Cluster;
use etcd_client::{Client, Compare, CompareOp, GetOptions, KeyValue, PutOptions, Txn, TxnOp};
use etcd_client::{DeleteOptions, TxnOpResponse};
use keys::KeyLayout;
use local::HostId;
use runtime::Runtime;
use session::Session;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
pub use url::EtcdConfig;
use value::{OwnerToken, Value};
use watch::Owned;

/// Longest namespace, in bytes (as on shm).
pub const MAX_NAMESPACE_LEN: usize = crate::DEFAULT_MAX_NAMESPACE_LEN;
/// Longest name, in bytes.
pub const MAX_NAME_LEN: usize = crate::DEFAULT_MAX_NAME_LEN;
/// Longest metadata, in bytes. etcd takes far more; the registry's contract
/// is the same bound on every backend.
pub const MAX_METADATA_LEN: usize = crate::DEFAULT_MAX_METADATA_LEN;

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
    fn new(namespace: String, name: String, v: Value, kv: &KeyValue) -> Self {
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

    fn value(&self) -> Value {
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

struct Inner {
    cfg: EtcdConfig,
    layout: KeyLayout,
    cluster: Arc<Cluster>,
    session: Session,
    me: HostId,
    handle_id: String,
    owned: Owned,
    // Last: dropped after the session (whose task it runs).
    rt: Runtime,
}

/// A handle on an etcd-backed registry. Cheap to clone (one session for all clones).
#[derive(Clone)]
pub struct EtcdBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("cfg", &self.inner.cfg)
            .field("lease", &format_args!("{:x}", self.inner.session.lease))
            .field("handle", &self.inner.handle_id)
            .finish()
    }
}

/// A watch of a namespace (or of everything) from a revision.
pub struct EtcdWatcher {
    rx: Mutex<mpsc::UnboundedReceiver<Result<EtcdEvent>>>,
    backend: EtcdBackend,
}

impl std::fmt::Debug for EtcdWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdWatcher").finish_non_exhaustive()
    }
}

impl EtcdWatcher {
    /// The next event, waiting at most `timeout`; `Ok(None)` when none came.
    ///
    /// # Errors
    /// `Lagged` when the watch started from a compacted revision (re-read with
    /// `list` and watch from its revision).
    pub fn next(&self, timeout: Duration) -> Result<Option<EtcdEvent>> {
        let mut rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        match self
            .backend
            .inner
            .rt
            .handle()
            .block_on(async { tokio::time::timeout(timeout, rx.recv()).await })
        {
            Err(_) => Ok(None),
            Ok(None) => Err(Error::Unavailable(
                "the watch stream ended; open a new watcher".into(),
            )),
            Ok(Some(r)) => r.map(Some),
        }
    }
}

thread_local! {
    /// Revision of the last write this thread committed through an engine
    /// (0: none yet), for the registry's `on_event` hook.
    static LAST_WRITE: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// The revision of the last write the calling thread committed (register,
/// unregister, update, reclaim); read it right after the call.
pub fn last_write_revision() -> i64 {
    LAST_WRITE.with(|c| c.get())
}

fn committed_at(header: Option<&etcd_client::ResponseHeader>) {
    LAST_WRITE.with(|c| c.set(header.map_or(0, |h| h.revision())));
}

fn random_id() -> String {
    use std::io::Read;
    let mut b = [0u8; 8];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !ok {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        b = (t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn check_key(ns: &str, name: &str) -> Result<()> {
    for (what, s, max) in [
        ("namespace", ns, MAX_NAMESPACE_LEN),
        ("name", name, MAX_NAME_LEN),
    ] {
        if s.is_empty() || s.len() > max || s.contains('\0') {
            return Err(Error::InvalidKey(format!(
                "{what} {s:?} must be 1..={max} bytes of UTF-8 without NUL"
            )));
        }
    }
    Ok(())
}

impl EtcdBackend {
    /// Opens a handle on `url` (`etcd://H:P[,H:P...]/PREFIX[?ttl=..&timeout=..]`).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad url, `Unavailable` when no member grants
    /// the session lease within the timeout.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_config(EtcdConfig::parse(url)?)
    }

    /// Opens a handle with `cfg`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_config(cfg: EtcdConfig) -> Result<Self> {
        cfg.validate()?;
        let rt = Runtime::start()?;
        let cluster = Arc::new(Cluster::new(&cfg)?);
        let deadline = Instant::now() + cfg.timeout;
        let handle = rt.handle().clone();
        let session = rt.call(
            "opening the etcd registry",
            cfg.timeout + Duration::from_millis(100),
            Session::grant(cluster.clone(), cfg.ttl, deadline, &handle),
        )??;
        Ok(EtcdBackend {
            inner: Arc::new(Inner {
                layout: KeyLayout::new(&cfg.prefix),
                cluster,
                session,
                me: local::this_host(),
                handle_id: random_id(),
                owned: Arc::new(Mutex::new(HashMap::new())),
                cfg,
                rt,
            }),
        })
    }

    /// The handle's config (secrets redacted in its `Debug`).
    pub fn config(&self) -> &EtcdConfig {
        &self.inner.cfg
    }

    /// The session lease id.
    pub fn lease(&self) -> i64 {
        self.inner.session.lease
    }

    /// The TTL etcd granted the session lease.
    pub fn ttl(&self) -> Duration {
        self.inner.session.ttl
    }

    /// `Some(reason)` once the session lease may have expired (never reverts).
    pub fn session_lost(&self) -> Option<String> {
        self.inner.session.lost().map(|l| l.reason)
    }

    /// The local deadline of the session lease.
    pub fn lease_deadline(&self) -> Instant {
        self.inner.session.deadline()
    }

    /// Test hook: stop the keep-alives (as if the process were frozen); the
    /// handle then judges its lease lost at its local deadline.
    #[doc(hidden)]
    pub fn suspend_keepalive_for_test(&self) {
        self.inner.session.suspend_keepalive();
    }

    /// Runs `op` on a member, with retries, bounded by the handle's timeout.
    fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let i = &self.inner;
        let deadline = Instant::now() + i.cfg.timeout;
        let r = i.rt.call(
            what,
            i.cfg.timeout + Duration::from_millis(100),
            i.cluster.run(what, deadline, op),
        )?;
        if let Err(Error::Unavailable(m)) = &r {
            if m.contains(client::LEASE_GONE) {
                i.session
                    .shared()
                    .declare_lost("etcd refused a write: the lease is gone on the server".into());
            }
        }
        r
    }

    fn record(&self, kv: &KeyValue) -> Option<EtcdRecord> {
        watch::record_of(&self.inner.layout, kv)
    }

    fn get_kv(&self, ns: &str, name: &str) -> Result<(Option<KeyValue>, i64)> {
        check_key(ns, name)?;
        let key = self.inner.layout.entry(ns, name);
        let mut r = self.run("lookup", |mut c| {
            let key = key.clone();
            async move { c.get(key, None).await }
        })?;
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        Ok((r.take_kvs().into_iter().next(), rev))
    }

    /// Registers `(ns, name)` for `pid` (a running process on this host) under
    /// the session lease. An entry whose owner is a dead process of this host
    /// is replaced. A retry that finds its own earlier write succeeds.
    ///
    /// # Errors
    /// `AlreadyExists`, `InvalidKey`, `MetadataTooLarge`, `ProcessNotAlive`,
    /// `Unavailable` (cluster silent, or session lost: the write is fenced).
    pub fn register(&self, ns: &str, name: &str, pid: u32, metadata: &[u8]) -> Result<EtcdRecord> {
        self.register_under(ns, name, pid, metadata, None)
    }

    /// Registers with a lease of its own of `ttl` (not kept alive by the
    /// library: call [`keepalive`](Self::keepalive) within `ttl`).
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub fn register_with_lease(
        &self,
        ns: &str,
        name: &str,
        pid: u32,
        metadata: &[u8],
        ttl: Duration,
    ) -> Result<EtcdRecord> {
        if ttl < url::MIN_TTL {
            return Err(Error::InvalidArgument(format!(
                "lease ttl {ttl:?} is below etcd's minimum of 2s; give at least 2s"
            )));
        }
        self.inner.session.check("register_with_lease")?;
        let secs = ttl.as_secs().max(2) as i64;
        let lease = self
            .run("granting an entry lease", |mut c| async move {
                c.lease_grant(secs, None).await
            })?
            .id();
        self.register_under(ns, name, pid, metadata, Some(lease))
    }

    /// Renews the lease of an entry registered with
    /// [`register_with_lease`](Self::register_with_lease).
    ///
    /// # Errors
    /// `NotFound` when the entry is gone, `InvalidArgument` when it has the
    /// session lease (renewed by the library), `Unavailable`.
    pub fn keepalive(&self, ns: &str, name: &str) -> Result<()> {
        let (kv, _) = self.get_kv(ns, name)?;
        let not_found = || Error::NotFound {
            namespace: ns.into(),
            name: name.into(),
        };
        let kv = kv.ok_or_else(not_found)?;
        let lease = kv.lease();
        if lease == 0 || lease == self.inner.session.lease {
            return Err(Error::InvalidArgument(format!(
                "{ns}/{name} has no lease of its own; the handle keeps its session alive by itself"
            )));
        }
        let ttl = self.run("renewing an entry lease", |mut c| async move {
            let (_keeper, mut stream) = c.lease_keep_alive(lease).await?;
            let _ = stream.message().await;
            Ok(())
        });
        match ttl {
            Err(Error::Unavailable(m)) if m.contains("lease not found") => Err(not_found()),
            other => other,
        }
    }

    fn register_under(
        &self,
        ns: &str,
        name: &str,
        pid: u32,
        metadata: &[u8],
        entry_lease: Option<i64>,
    ) -> Result<EtcdRecord> {
        check_key(ns, name)?;
        if metadata.len() > MAX_METADATA_LEN {
            return Err(Error::MetadataTooLarge {
                len: metadata.len(),
                max: MAX_METADATA_LEN,
            });
        }
        let i = &self.inner;
        i.session.check("register")?;
        let start_time = local::start_time(pid).ok_or(Error::ProcessNotAlive(pid))?;
        let lease = entry_lease.unwrap_or(i.session.lease);
        let value = Value {
            pid,
            host: i.me.host.clone(),
            boot_id: i.me.boot_id.clone(),
            start_time,
            metadata: metadata.to_vec(),
            registered_at_ns: now_ns(),
            version: 1,
            owner: OwnerToken {
                lease,
                handle: i.handle_id.clone(),
            },
        };
        let key = i.layout.entry(ns, name);
        let bytes = value.encode();
        for _ in 0..4 {
            i.session.check("register")?;
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key.clone(),
                    bytes.clone(),
                    Some(PutOptions::new().with_lease(lease)),
                )])
                .or_else([TxnOp::get(key.clone(), None)]);
            let r = self.run("register", |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })?;
            let rev = r.header().map(|h| h.revision()).unwrap_or(0);
            if r.succeeded() {
                let rec = EtcdRecord {
                    namespace: ns.into(),
                    name: name.into(),
                    pid,
                    host: value.host.clone(),
                    boot_id: value.boot_id.clone(),
                    start_time,
                    metadata: metadata.to_vec(),
                    registered_at_ns: value.registered_at_ns,
                    version: 1,
                    mod_revision: rev,
                    create_revision: rev,
                    lease,
                    handle: i.handle_id.clone(),
                };
                if entry_lease.is_none() {
                    i.owned
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key, rec.clone());
                }
                return Ok(rec);
            }
            let existing = r.op_responses().into_iter().find_map(|op| match op {
                TxnOpResponse::Get(mut g) => g.take_kvs().into_iter().next(),
                _ => None,
            });
            let Some(kv) = existing else {
                continue; // Deleted in between: try again.
            };
            let Some(rec) = self.record(&kv) else {
                return Err(Error::AlreadyExists {
                    namespace: ns.into(),
                    name: name.into(),
                    pid: 0,
                    alive: Liveness::Unknown,
                });
            };
            if rec.lease == lease
                && rec.handle == i.handle_id
                && rec.pid == pid
                && rec.start_time == start_time
                && rec.metadata == metadata
            {
                // Our own earlier attempt whose answer was lost (same owner
                // token, same content): the create took effect once.
                if entry_lease.is_none() {
                    i.owned
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key, rec.clone());
                }
                return Ok(rec);
            }
            match local::judge(&rec.value(), &i.me) {
                Liveness::Dead => {
                    self.reclaim(&kv)?;
                    continue;
                }
                // A remote owner's entry is held by its live lease.
                alive => {
                    return Err(Error::AlreadyExists {
                        namespace: ns.into(),
                        name: name.into(),
                        pid: rec.pid,
                        alive: if alive == Liveness::Unknown {
                            Liveness::Alive
                        } else {
                            alive
                        },
                    });
                }
            }
        }
        Err(Error::Busy(format!(
            "{ns}/{name} changed under every attempt to register it"
        )))
    }

    /// Deletes `kv` if it has not changed since it was read; true if deleted.
    fn reclaim(&self, kv: &KeyValue) -> Result<bool> {
        let key = kv.key().to_vec();
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                kv.mod_revision(),
            )])
            .and_then([TxnOp::delete(key, None)]);
        let r = self.run("reclaiming a dead owner's entry", |mut c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })?;
        committed_at(r.header());
        Ok(r.succeeded())
    }

    /// The entry of `(ns, name)` (linearizable read).
    ///
    /// # Errors
    /// `InvalidKey`, `Unavailable`.
    pub fn lookup(&self, ns: &str, name: &str) -> Result<Option<EtcdRecord>> {
        Ok(self.get_kv(ns, name)?.0.and_then(|kv| self.record(&kv)))
    }

    /// The owner pid of `(ns, name)`.
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub fn lookup_pid(&self, ns: &str, name: &str) -> Result<Option<u32>> {
        Ok(self.lookup(ns, name)?.map(|r| r.pid))
    }

    /// As [`lookup`](Self::lookup), but an entry whose owner is a dead process
    /// of this host is reclaimed and not returned.
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub fn lookup_checked(&self, ns: &str, name: &str) -> Result<Option<EtcdRecord>> {
        let Some(kv) = self.get_kv(ns, name)?.0 else {
            return Ok(None);
        };
        let Some(rec) = self.record(&kv) else {
            return Ok(None);
        };
        if local::judge(&rec.value(), &self.inner.me) == Liveness::Dead {
            self.reclaim(&kv)?;
            return Ok(None);
        }
        Ok(Some(rec))
    }

    /// The owner's liveness as judged from here (`Unknown` for another host).
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub fn owner_liveness(&self, ns: &str, name: &str) -> Result<Option<Liveness>> {
        Ok(self
            .lookup(ns, name)?
            .map(|r| local::judge(&r.value(), &self.inner.me)))
    }

    /// Removes `(ns, name)`; true if it was there.
    ///
    /// # Errors
    /// `InvalidKey`, `Unavailable`.
    pub fn unregister(&self, ns: &str, name: &str) -> Result<bool> {
        check_key(ns, name)?;
        let key = self.inner.layout.entry(ns, name);
        let r = self.run("unregister", |mut c| {
            let key = key.clone();
            async move { c.delete(key, None).await }
        })?;
        committed_at(r.header());
        self.inner
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        Ok(r.deleted() > 0)
    }

    /// Removes `(ns, name)` only if its owner is `pid` on this host (compared
    /// in the transaction through the entry's revision); true if removed.
    ///
    /// # Errors
    /// `InvalidKey`, `Unavailable`.
    pub fn unregister_if_owner(&self, ns: &str, name: &str, pid: u32) -> Result<bool> {
        let Some(kv) = self.get_kv(ns, name)?.0 else {
            return Ok(false);
        };
        let Some(rec) = self.record(&kv) else {
            return Ok(false);
        };
        if rec.pid != pid || rec.boot_id != self.inner.me.boot_id {
            return Ok(false);
        }
        let removed = self.reclaim(&kv)?;
        if removed {
            let key = self.inner.layout.entry(ns, name);
            self.inner
                .owned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        }
        Ok(removed)
    }

    /// Replaces the metadata of an entry of this handle's session; returns the
    /// new version. Fenced: refused when the session is lost, and the
    /// transaction compares the entry's lease and revision.
    ///
    /// # Errors
    /// `NotFound`, `MetadataTooLarge`, `InvalidArgument` (entry of another
    /// handle), `Busy` (changed concurrently), `Unavailable`.
    pub fn update_metadata(&self, ns: &str, name: &str, metadata: &[u8]) -> Result<u64> {
        if metadata.len() > MAX_METADATA_LEN {
            return Err(Error::MetadataTooLarge {
                len: metadata.len(),
                max: MAX_METADATA_LEN,
            });
        }
        let i = &self.inner;
        i.session.check("update_metadata")?;
        let not_found = || Error::NotFound {
            namespace: ns.into(),
            name: name.into(),
        };
        let kv = self.get_kv(ns, name)?.0.ok_or_else(not_found)?;
        let rec = self.record(&kv).ok_or_else(not_found)?;
        if rec.handle != i.handle_id {
            return Err(Error::InvalidArgument(format!(
                "{ns}/{name} belongs to another handle (pid {} on {}); only its owner updates it",
                rec.pid, rec.host
            )));
        }
        let mut v = rec.value();
        v.metadata = metadata.to_vec();
        v.version = rec.version + 1;
        let key = kv.key().to_vec();
        let txn = Txn::new()
            .when([
                Compare::mod_revision(key.clone(), CompareOp::Equal, kv.mod_revision()),
                Compare::lease(key.clone(), CompareOp::Equal, rec.lease),
            ])
            .and_then([TxnOp::put(
                key,
                v.encode(),
                Some(PutOptions::new().with_lease(rec.lease)),
            )]);
        i.session.check("update_metadata")?;
        let r = self.run("update_metadata", |mut c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })?;
        if !r.succeeded() {
            return Err(Error::Busy(format!(
                "{ns}/{name} changed while its metadata was being replaced"
            )));
        }
        committed_at(r.header());
        Ok(v.version)
    }

    fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, i64)> {
        let p = prefix.to_owned();
        let mut r = self.run("list", |mut c| {
            let p = p.clone();
            async move { c.get(p, Some(GetOptions::new().with_prefix())).await }
        })?;
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        Ok((r.take_kvs(), rev))
    }

    /// Every entry (of `ns`, or of every namespace) and the revision they
    /// were read at (watch from `revision + 1` to follow on).
    ///
    /// # Errors
    /// `Unavailable`.
    pub fn list(&self, ns: Option<&str>) -> Result<(Vec<EtcdRecord>, i64)> {
        let prefix = match ns {
            Some(ns) => self.inner.layout.namespace(ns),
            None => self.inner.layout.all().to_owned(),
        };
        let (kvs, rev) = self.range(&prefix)?;
        Ok((kvs.iter().filter_map(|kv| self.record(kv)).collect(), rev))
    }

    /// The namespaces that hold entries, sorted.
    ///
    /// # Errors
    /// `Unavailable`.
    pub fn namespaces(&self) -> Result<Vec<String>> {
        let p = self.inner.layout.all().to_owned();
        let mut r = self.run("namespaces", |mut c| {
            let p = p.clone();
            async move {
                c.get(p, Some(GetOptions::new().with_prefix().with_keys_only()))
                    .await
            }
        })?;
        let mut v: Vec<String> = r
            .take_kvs()
            .iter()
            .filter_map(|kv| self.inner.layout.parse(kv.key()).map(|(ns, _)| ns))
            .collect();
        v.dedup();
        v.sort();
        v.dedup();
        Ok(v)
    }

    /// Removes every entry of `ns` (and of no other namespace); how many.
    ///
    /// # Errors
    /// `InvalidKey`, `Unavailable`.
    pub fn clear_namespace(&self, ns: &str) -> Result<usize> {
        check_key(ns, "x")?;
        let p = self.inner.layout.namespace(ns);
        let r = self.run("clear_namespace", |mut c| {
            let p = p.clone();
            async move { c.delete(p, Some(DeleteOptions::new().with_prefix())).await }
        })?;
        self.inner
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| !k.starts_with(&p));
        Ok(r.deleted().max(0) as usize)
    }

    /// Waits until `(ns, name)` is registered, with a watch (no polling).
    ///
    /// # Errors
    /// `Timeout` when it is not registered within `timeout`; `Unavailable`.
    pub fn wait_for(&self, ns: &str, name: &str, timeout: Duration) -> Result<EtcdRecord> {
        let t0 = Instant::now();
        let (kv, rev) = self.get_kv(ns, name)?;
        if let Some(r) = kv.and_then(|kv| self.record(&kv)) {
            return Ok(r);
        }
        let key = self.inner.layout.entry(ns, name);
        let w = self.watch_key(key, false, rev + 1)?;
        loop {
            let left = timeout.saturating_sub(t0.elapsed());
            if left.is_zero() {
                return Err(Error::Timeout {
                    what: format!("{ns}/{name} to be registered"),
                    waited: t0.elapsed(),
                });
            }
            if let Some(e) = w.next(left)? {
                if e.kind == EventKind::Registered || e.kind == EventKind::Updated {
                    if let Some(r) = e.record {
                        return Ok(r);
                    }
                }
            }
        }
    }

    /// Watches `ns` (or everything) from `from_revision` (0: from now).
    ///
    /// # Errors
    /// `Unavailable`. A compacted `from_revision` shows as `Lagged` from
    /// [`EtcdWatcher::next`].
    pub fn watch(&self, ns: Option<&str>, from_revision: i64) -> Result<EtcdWatcher> {
        let prefix = match ns {
            Some(ns) => {
                check_key(ns, "x")?;
                self.inner.layout.namespace(ns)
            }
            None => self.inner.layout.all().to_owned(),
        };
        self.watch_key(prefix, true, from_revision)
    }

    fn watch_key(&self, key: String, prefix: bool, from_revision: i64) -> Result<EtcdWatcher> {
        let i = &self.inner;
        let from = if from_revision > 0 {
            from_revision
        } else {
            self.revision()? + 1
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let spec = watch::Spec {
            cluster: i.cluster.clone(),
            layout: i.layout.clone(),
            me: i.me.clone(),
            key,
            prefix,
            from_revision: from,
            lost: i.session.subscribe(),
            owned: i.owned.clone(),
            timeout: i.cfg.timeout,
        };
        i.rt.handle().spawn(watch::pump(spec, tx));
        Ok(EtcdWatcher {
            rx: Mutex::new(rx),
            backend: self.clone(),
        })
    }

    /// The cluster's current revision (the registry's revision).
    ///
    /// # Errors
    /// `Unavailable`.
    pub fn revision(&self) -> Result<i64> {
        let p = self.inner.layout.all().to_owned();
        let r = self.run("revision", |mut c| {
            let p = p.clone();
            async move {
                c.get(p, Some(GetOptions::new().with_prefix().with_count_only()))
                    .await
            }
        })?;
        Ok(r.header().map(|h| h.revision()).unwrap_or(0))
    }

    /// The liveness of `r`'s owner judged from this host: `Unknown` for an
    /// owner on another host (its lease speaks for it).
    pub(crate) fn judge(&self, r: &EtcdRecord) -> Liveness {
        local::judge(&r.value(), &self.inner.me)
    }

    /// Reclaims every entry whose owner is a dead process of this host; how many.
    ///
    /// # Errors
    /// `Unavailable`.
    pub fn sweep(&self) -> Result<usize> {
        let (kvs, _) = self.range(self.inner.layout.all())?;
        let mut n = 0;
        for kv in &kvs {
            if let Some(rec) = self.record(kv) {
                if local::judge(&rec.value(), &self.inner.me) == Liveness::Dead
                    && self.reclaim(kv)?
                {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Counts under the prefix.
    ///
    /// # Errors
    /// `Unavailable`.
    pub fn stats(&self) -> Result<EtcdStats> {
        let (recs, revision) = self.list(None)?;
        let mut namespaces = BTreeMap::new();
        let mut own = 0;
        for r in &recs {
            *namespaces.entry(r.namespace.clone()).or_insert(0) += 1;
            if r.handle == self.inner.handle_id {
                own += 1;
            }
        }
        Ok(EtcdStats {
            live: recs.len(),
            namespaces,
            own,
            revision,
        })
    }

    /// Session and members: asks every member for its status (each bounded).
    pub fn health_check(&self) -> EtcdHealth {
        let i = &self.inner;
        let mut problems = Vec::new();
        let lost = i.session.lost().map(|l| l.reason);
        if let Some(l) = &lost {
            problems.push(format!("the session lease is lost: {l}"));
        }
        let mut endpoints = Vec::new();
        for ep in i.cluster.endpoints() {
            let one = EtcdConfig {
                endpoints: vec![ep.clone()],
                timeout: Duration::from_millis(500),
                ..i.cfg.clone()
            };
            let ok = Cluster::new(&one).is_ok_and(|c| {
                let deadline = Instant::now() + Duration::from_millis(500);
                i.rt.call("health", Duration::from_millis(600), async {
                    c.run("status", deadline, |mut c| async move { c.status().await })
                        .await
                })
                .is_ok_and(|r| r.is_ok())
            });
            if !ok {
                problems.push(format!("member {ep} does not answer"));
            }
            endpoints.push((ep, ok));
        }
        let up = endpoints.iter().filter(|(_, ok)| *ok).count();
        if up * 2 <= endpoints.len() {
            problems.push(format!(
                "only {up} of {} members answer: no majority",
                endpoints.len()
            ));
        }
        EtcdHealth {
            healthy: problems.is_empty(),
            lease: i.session.lease,
            lease_left: i
                .session
                .deadline()
                .saturating_duration_since(Instant::now()),
            lost,
            endpoints,
            problems,
        }
    }

    /// Revokes the session lease (its entries go at once) and stops the
    /// keep-alives. Bounded by the timeout; the handle is lost afterwards.
    ///
    /// # Errors
    /// `Unavailable` when no member answered (the lease then runs out by itself).
    pub fn close(&self) -> Result<()> {
        let i = &self.inner;
        i.session.stop();
        i.session
            .shared()
            .declare_lost("the handle was closed".into());
        let lease = i.session.lease;
        self.run("closing the handle", |mut c| async move {
            c.lease_revoke(lease).await
        })
        .map(|_| ())
    }
}
