//! The etcd v3 backend (feature `etcd`): the registry's operations over an
//! etcd cluster, for processes on many hosts. [`EtcdBackend`] is the engine
//! (inherent methods on plain arguments, returning [`EtcdRecord`]s);
//! `registry::EtcdRegistry` is the [`Backend`](crate::backend::Backend) the
//! registry dispatches to.
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
mod maintenance;
mod read;
mod records;
pub(crate) mod registry;
pub mod runtime;
pub mod session;
pub mod url;
pub mod value;
mod watch;
mod watching;
mod write;

use crate::error::{Error, Liveness, Result};
use crate::types::EventKind;
use client::Cluster;
use etcd_client::{Client, Compare, CompareOp, GetOptions, KeyValue, PutOptions, Txn, TxnOp};
use etcd_client::{DeleteOptions, TxnOpResponse};
use keys::KeyLayout;
use local::HostId;
pub use records::{EtcdEvent, EtcdHealth, EtcdRecord, EtcdStats};
use runtime::Runtime;
use session::Session;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
pub use url::EtcdConfig;
use value::{OwnerToken, Value};
use watch::Owned;
pub use watching::EtcdWatcher;

/// Longest namespace, in bytes (as on shm).
pub const MAX_NAMESPACE_LEN: usize = crate::DEFAULT_MAX_NAMESPACE_LEN;
/// Longest name, in bytes.
pub const MAX_NAME_LEN: usize = crate::DEFAULT_MAX_NAME_LEN;
/// Longest metadata, in bytes. etcd takes far more; the registry's contract
/// is the same bound on every backend.
pub const MAX_METADATA_LEN: usize = crate::DEFAULT_MAX_METADATA_LEN;

struct Inner {
    cfg: EtcdConfig,
    layout: KeyLayout,
    cluster: Arc<Cluster>,
    /// The current session; replaced only by re-registration (`reregister=true`).
    session: RwLock<Arc<Session>>,
    /// `reregister=true`: after a session loss, grant a new lease and
    /// re-register the entries still free (off by default).
    reregister: bool,
    /// Set by `close`: no re-registration after it.
    closed: AtomicBool,
    /// With `reregister`: `Some` from a session's loss until the next session
    /// is in place (watch pumps subscribe here, so each loss is reported).
    lost_tx: tokio::sync::watch::Sender<Option<session::Lost>>,
    me: HostId,
    handle_id: String,
    owned: Owned,
    // Last: dropped after the session (whose task it runs).
    rt: Runtime,
}

/// A handle on an etcd-backed registry. Cheap to clone (one session for all clones).
///
/// This engine speaks in stored names: a name `GROUP\0PID` (a pid in
/// canonical decimal, registered for that pid only) is a member of a
/// process group, as `docs/etcd-format.md` lays out. `Registry` refuses a
/// unique key holding NUL before it reaches the engine, so no unique key
/// of a `Registry` finds a member.
#[derive(Clone)]
pub struct EtcdBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("cfg", &self.inner.cfg)
            .field("lease", &format_args!("{:x}", self.inner.session().lease))
            .field("handle", &self.inner.handle_id)
            .finish()
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

impl Inner {
    /// The current session.
    fn session(&self) -> Arc<Session> {
        self.session
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
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
        // A group member is stored as `GROUP\0PID` (see `Registry::join`):
        // its one NUL is allowed, any other is not.
        let nul_ok = what == "name" && is_member_name(s);
        if s.is_empty() || s.len() > max || (s.contains('\0') && !nul_ok) {
            return Err(Error::InvalidKey(format!(
                "{what} {s:?} must be 1..={max} bytes of UTF-8 without NUL"
            )));
        }
    }
    Ok(())
}

/// Whether `name` is a group member's stored name: `GROUP\0PID`, a
/// non-empty group without NUL and a pid from 1 to `u32::MAX` in canonical
/// decimal (no sign, no leading zero), so each member has one name.
fn is_member_name(name: &str) -> bool {
    name.split_once('\0').is_some_and(|(group, pid)| {
        !group.is_empty()
            && !pid.starts_with('0')
            && pid.bytes().all(|b| b.is_ascii_digit())
            && pid.parse::<u32>().is_ok()
    })
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
        let reregister = cfg.reregister;
        Self::open_with(cfg, reregister)
    }

    /// Opens a handle with `cfg`; with `reregister`, a lost session is
    /// replaced by a new lease and the entries it held are registered again
    /// where nobody took them meanwhile (each through the create-if-absent
    /// transaction).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(cfg: EtcdConfig, reregister: bool) -> Result<Self> {
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
        let b = EtcdBackend {
            inner: Arc::new(Inner {
                layout: KeyLayout::new(&cfg.prefix),
                cluster,
                session: RwLock::new(Arc::new(session)),
                reregister,
                closed: AtomicBool::new(false),
                lost_tx: tokio::sync::watch::channel(None).0,
                me: local::this_host(),
                handle_id: random_id(),
                owned: Arc::new(Mutex::new(HashMap::new())),
                cfg,
                rt,
            }),
        };
        if reregister {
            let weak = Arc::downgrade(&b.inner);
            b.inner.rt.handle().spawn(write::keep_registered(weak));
        }
        Ok(b)
    }

    /// The handle's config (secrets redacted in its `Debug`).
    pub fn config(&self) -> &EtcdConfig {
        &self.inner.cfg
    }

    /// The session lease id.
    pub fn lease(&self) -> i64 {
        self.inner.session().lease
    }

    /// The TTL etcd granted the session lease.
    pub fn ttl(&self) -> Duration {
        self.inner.session().ttl
    }

    /// `Some(reason)` once the session lease may have expired (never reverts).
    pub fn session_lost(&self) -> Option<String> {
        self.inner.session().lost().map(|l| l.reason)
    }

    /// The local deadline of the session lease.
    pub fn lease_deadline(&self) -> Instant {
        self.inner.session().deadline()
    }

    /// Test hook: stop the keep-alives (as if the process were frozen); the
    /// handle then judges its lease lost at its local deadline.
    #[doc(hidden)]
    pub fn suspend_keepalive_for_test(&self) {
        self.inner.session().suspend_keepalive();
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
                i.session()
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
}
