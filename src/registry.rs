//! The facade: validation, errors and telemetry. Every storage operation is
//! delegated to a [`Backend`]; construction goes through [`backend::open`].
//! This module never touches storage.

use crate::backend::{self, AnyBackend, Backend, OpenMode, Options, Proof, Secret, Who};
use crate::error::{Error, Liveness, Result};
use crate::key::Key;
use crate::service::Service;
use crate::telemetry::{self, Op};
use crate::types::{Entry, EntryInfo, EntryRef, Event, Health, Limits, Stats};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A process registry: many processes register services under
/// `(namespace, name)` and look each other up.
///
/// A `Registry` is `Send + Sync` and cheap to clone: clones share one handle
/// (one backend connection, one writer slot), so share it between threads,
/// watchers and reapers.
///
/// Each clone holds the backend's view inline (for `shm:`/`mem:`, the
/// table's words and geometry), so a lookup follows no extra pointer; what
/// the clones share (writer identity, hook, connection) sits behind an `Arc`
/// inside the backend.
#[derive(Clone)]
pub struct Registry {
    inner: Inner,
}

#[derive(Clone)]
struct Inner {
    backend: AnyBackend,
    url: Arc<str>,
    limits: Limits,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("url", &self.inner.url)
            .field("backend", &self.inner.backend.kind())
            .finish()
    }
}

/// Options for creating or opening a registry.
///
/// - Limits, `max_writers`, `mode`, the trust options and `lock_timeout`
///   apply to the hash-table backends (`shm:`, `file:`, `mem:`). Set to a
///   value other than its default for an `etcd://` url, one of them makes
///   the open fail with `InvalidArgument`.
/// - The `etcd_*` options apply to `etcd://` registries only (set for
///   another url, they make the open fail with `InvalidArgument`). Each
///   overrides the url option of the same meaning (`ca=`, `cert=`/`key=`,
///   `user=`/`password=`, `ttl=`, `timeout=`), so secrets can stay out of
///   urls. See docs/etcd.md.
///
/// `Debug` never shows the etcd password (nor the key file).
#[derive(Debug, Clone, Default)]
pub struct Builder {
    options: Options,
}

impl Builder {
    /// Slot capacity: a power of two, 16..=2^26 (default 4096). Live entries
    /// above ~90% of it make inserts slow and may fail with `Full`.
    pub fn capacity(mut self, n: usize) -> Self {
        self.options.table.capacity = Some(n);
        self
    }
    /// Longest namespace in bytes, 1..=1024 (default 64).
    pub fn max_namespace_len(mut self, n: usize) -> Self {
        self.options.table.max_ns_len = Some(n);
        self
    }
    /// Longest name in bytes, 1..=4096 (default 128).
    pub fn max_name_len(mut self, n: usize) -> Self {
        self.options.table.max_name_len = Some(n);
        self
    }
    /// Longest metadata in bytes, 0..=1 MiB (default 256).
    pub fn max_metadata_len(mut self, n: usize) -> Self {
        self.options.table.max_meta_len = Some(n);
        self
    }
    /// How many processes may write the segment at the same time, 1..=4095
    /// (default 1024). Used when creating.
    pub fn max_writers(mut self, n: usize) -> Self {
        self.options.table.max_writers = n;
        self
    }
    /// File mode of a created segment (default 0o600; applied with fchmod, so
    /// the umask does not weaken or widen it).
    pub fn mode(mut self, mode: u32) -> Self {
        self.options.table.mode = mode;
        self
    }
    /// Accept a segment owned by another user (refused by default: a squatter
    /// could pre-create the name).
    pub fn allow_foreign_owner(mut self, yes: bool) -> Self {
        self.options.table.trust.allow_foreign_owner = yes;
        self
    }
    /// Accept a world-writable segment (refused by default).
    pub fn allow_world_writable(mut self, yes: bool) -> Self {
        self.options.table.trust.allow_world_writable = yes;
        self
    }
    /// Largest segment file `create` may reserve, in bytes (default
    /// [`DEFAULT_MAX_SEGMENT_BYTES`](crate::DEFAULT_MAX_SEGMENT_BYTES), 1 GiB).
    /// Creating a segment whose limits need more fails with
    /// `InvalidArgument`, saying the size; opening an existing one is not
    /// bounded.
    pub fn max_segment_bytes(mut self, bytes: u64) -> Self {
        self.options.table.max_segment_bytes = bytes;
        self
    }
    /// How long a writer waits for another live writer of the same
    /// neighbourhood before `Busy` (default 500 ms).
    pub fn lock_timeout(mut self, t: Duration) -> Self {
        self.options.table.lock_timeout = t;
        self
    }

    /// etcd: verify the members' certificates with the CA certificate in the
    /// PEM file `ca` (this turns TLS on). Overrides the url's `ca=`.
    pub fn etcd_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.options.etcd.ca = Some(ca.into());
        self
    }
    /// etcd: present the client certificate `cert` with its private key
    /// `key` (PEM files) to members started with `--client-cert-auth` (this
    /// turns TLS on). Overrides the url's `cert=` and `key=`.
    pub fn etcd_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.options.etcd.cert = Some((cert.into(), key.into()));
        self
    }
    /// etcd: TLS with the CA `ca` and the client certificate `cert` + `key`
    /// (PEM files); [`etcd_ca`](Self::etcd_ca) and
    /// [`etcd_client_cert`](Self::etcd_client_cert) in one call.
    pub fn etcd_tls(
        self,
        ca: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.etcd_ca(ca).etcd_client_cert(cert, key)
    }
    /// etcd: authenticate as `user` with `password` (a cluster with
    /// `etcdctl auth enable`). Overrides the url's `user=` and `password=`.
    /// The password is never printed: not by `Debug`, not in errors.
    pub fn etcd_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.options.etcd.auth = Some((user.into(), Secret(password.into())));
        self
    }
    /// etcd: TTL of the handle's session lease, whole seconds, at least 2 s
    /// (default 10 s): how long the entries of a dead, frozen or partitioned
    /// owner outlive it. Overrides the url's `ttl=`.
    pub fn etcd_session_ttl(mut self, ttl: Duration) -> Self {
        self.options.etcd.ttl = Some(ttl);
        self
    }
    /// etcd: bound of every call of the handle, at least 100 ms (default
    /// 5 s); past it a call fails with `Unavailable`. Overrides the url's
    /// `timeout=`.
    pub fn etcd_timeout(mut self, timeout: Duration) -> Self {
        self.options.etcd.timeout = Some(timeout);
        self
    }

    /// Creates a new registry; fails with `RegistryExists` if one is there.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad url or option, `RegistryExists`, `Io`, `PermissionDenied`.
    pub fn create(&self, url: &str) -> Result<Registry> {
        self.build(url, OpenMode::Create)
    }
    /// Opens an existing registry; fails with `NoSuchRegistry` if absent.
    ///
    /// # Errors
    /// `NoSuchRegistry`, `IncompatibleSegment` (including limits that differ
    /// from explicitly set ones), `PermissionDenied`, `Io`.
    pub fn open(&self, url: &str) -> Result<Registry> {
        self.build(url, OpenMode::Open)
    }
    /// Opens the registry, creating it when absent.
    ///
    /// # Errors
    /// As [`create`](Self::create) and [`open`](Self::open).
    pub fn open_or_create(&self, url: &str) -> Result<Registry> {
        self.build(url, OpenMode::OpenOrCreate)
    }

    /// [`Registry::destroy`] with these options (for `etcd://`, the TLS and
    /// auth options reach the cluster).
    ///
    /// # Errors
    /// As [`Registry::destroy`]; `InvalidArgument` for an option of another backend.
    pub fn destroy(&self, url: &str) -> Result<()> {
        backend::destroy(url, &self.options)
    }

    fn build(&self, url: &str, mode: OpenMode) -> Result<Registry> {
        let backend = backend::open(url, mode, &self.options)?;
        let limits = backend.limits();
        Ok(Registry {
            inner: Inner {
                backend,
                // What `url()` and `Debug` show: no password.
                url: backend::redact_url(url).into(),
                limits,
            },
        })
    }
}

/// Whether `b` holds a 0 byte: 8 bytes at a time (SWAR), inline. On short
/// keys this is several times cheaper than two `memchr` calls.
#[inline(always)]
fn has_nul(b: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = b.chunks_exact(8);
    let mut found = 0u64;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        found |= w.wrapping_sub(LO) & !w & HI;
    }
    // At most 7 bytes left: a branch-free fold beats a memchr call here.
    found != 0
        || chunks
            .remainder()
            .iter()
            .fold(false, |any, &x| any | (x == 0))
}

pub(crate) fn check_part(what: &str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() {
        return Err(Error::InvalidKey(format!(
            "{what} is empty; it must be 1..={max} bytes"
        )));
    }
    if s.len() > max {
        return Err(Error::InvalidKey(format!(
            "{what} {:?}… is {} bytes but this registry allows at most {max}; use a shorter {what}",
            s.chars().take(16).collect::<String>(),
            s.len()
        )));
    }
    if s.as_bytes().contains(&0) {
        return Err(Error::InvalidKey(format!(
            "{what} {s:?} contains a NUL byte"
        )));
    }
    Ok(())
}

impl Registry {
    /// Opens the registry at `url`, creating it with default limits when absent.
    /// `url` is `shm:NAME` (or a bare `NAME`), `file:/path`, or `mem:[NAME]`.
    ///
    /// # Errors
    /// See [`Builder::open_or_create`].
    pub fn open(url: &str) -> Result<Registry> {
        Builder::default().open_or_create(url)
    }

    /// Options for creating or opening.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Removes the segment at `url` (only a procreg segment, only by its creator).
    ///
    /// # Errors
    /// `NoSuchRegistry`, `IncompatibleSegment` (not a procreg file), `PermissionDenied`.
    pub fn destroy(url: &str) -> Result<()> {
        backend::destroy(url, &Options::default())
    }

    /// The url this registry was opened with (an etcd `password=` shown as `<redacted>`).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The limits of this registry, as its backend reports them.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    #[inline(always)]
    fn backend(&self) -> &AnyBackend {
        &self.inner.backend
    }

    #[inline]
    fn key<'a>(&self, ns: &'a str, name: &'a str) -> Result<backend::Key<'a>> {
        self.key_of(ns, name, false)
    }

    /// [`key`](Self::key); `nul_free` skips the NUL scan for strings that
    /// cannot hold one (C strings end at their first NUL).
    #[inline(always)]
    fn key_of<'a>(&self, ns: &'a str, name: &'a str, nul_free: bool) -> Result<backend::Key<'a>> {
        if ns.is_empty()
            || name.is_empty()
            || ns.len() > self.inner.limits.max_namespace_len
            || name.len() > self.inner.limits.max_name_len
            || (!nul_free && (has_nul(ns.as_bytes()) || has_nul(name.as_bytes())))
        {
            check_part("namespace", ns, self.inner.limits.max_namespace_len)?;
            check_part("name", name, self.inner.limits.max_name_len)?;
        }
        Ok(backend::Key::unique(ns, name))
    }

    fn meta(&self, metadata: &[u8]) -> Result<()> {
        if metadata.len() > self.inner.limits.max_metadata_len {
            return Err(Error::MetadataTooLarge {
                len: metadata.len(),
                max: self.inner.limits.max_metadata_len,
            });
        }
        Ok(())
    }

    /// Registers `(ns, name)` for process `pid`. Fails with `AlreadyExists` if
    /// a live process holds the key; an entry of a dead owner is replaced.
    /// Returns the entry's version.
    ///
    /// # Errors
    /// `InvalidKey`, `MetadataTooLarge`, `InvalidArgument` (pid 0),
    /// `ProcessNotAlive`, `AlreadyExists`, `Full`, `Busy`.
    pub fn register(&self, ns: &str, name: &str, pid: u32, metadata: &[u8]) -> Result<u64> {
        self.register_leased(ns, name, pid, metadata, None)
    }

    /// Registers `(ns, name)` for process `pid` with a lease of `ttl`: the
    /// entry expires (and is reclaimed like one of a dead owner, reported as
    /// [`EventKind::Expired`](crate::EventKind::Expired)) unless
    /// [`keepalive`](Self::keepalive) renews it within `ttl`, even if its
    /// owner is alive but hung. Leases run on the host's boot clock.
    ///
    /// # Errors
    /// As [`register`](Self::register); `InvalidArgument` for a `ttl` outside
    /// the backend's [`Limits`] (`min_lease_ttl..=max_lease_ttl`; on `shm:`
    /// and `mem:` 1 ms..=16,777,215 ms, about 4 h 39 min).
    pub fn register_with_lease(
        &self,
        ns: &str,
        name: &str,
        pid: u32,
        metadata: &[u8],
        ttl: Duration,
    ) -> Result<u64> {
        let (min, max) = (
            self.inner.limits.min_lease_ttl,
            self.inner.limits.max_lease_ttl,
        );
        if !(min..=max).contains(&ttl) {
            return Err(Error::InvalidArgument(format!(
                "lease ttl {ttl:?} is outside {} ms..={} ms",
                min.as_millis(),
                max.as_millis()
            )));
        }
        self.register_leased(ns, name, pid, metadata, Some(ttl))
    }

    /// Renews the lease of `(ns, name)` for another ttl (the one it was
    /// registered with). Any process may renew it.
    ///
    /// # Errors
    /// `NotFound` if the key is absent or its lease already ran out;
    /// `InvalidArgument` if it has no lease; `InvalidKey`, `Busy`.
    pub fn keepalive(&self, ns: &str, name: &str) -> Result<()> {
        self.backend().keepalive(self.key(ns, name)?)
    }

    fn register_leased(
        &self,
        ns: &str,
        name: &str,
        pid: u32,
        metadata: &[u8],
        lease: Option<Duration>,
    ) -> Result<u64> {
        let key = self.key(ns, name)?;
        self.meta(metadata)?;
        if pid == 0 {
            return Err(Error::InvalidArgument(
                "pid 0 is not a process; give the owner's pid".into(),
            ));
        }
        self.backend().register(key, Who::Pid(pid), metadata, lease)
    }

    /// Registers `(ns, name)` for the calling process.
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub fn register_self(&self, ns: &str, name: &str, metadata: &[u8]) -> Result<u64> {
        let key = self.key(ns, name)?;
        self.meta(metadata)?;
        self.backend().register(key, Who::Me, metadata, None)
    }

    /// The entry of `(ns, name)`, whatever its owner's liveness.
    ///
    /// # Errors
    /// `InvalidKey`, `Busy` (a writer kept changing the slot).
    pub fn lookup(&self, ns: &str, name: &str) -> Result<Option<Entry>> {
        let r = counted(self.backend().lookup(self.key_of(ns, name, true)?));
        nul_checked(r, ns, name)
    }

    /// The owner pid of `(ns, name)`. Allocates nothing; loads only.
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`.
    #[inline(always)]
    pub fn lookup_pid(&self, ns: &str, name: &str) -> Result<Option<u32>> {
        // A small wrapper at each call site: the fast path is a leaf
        // function of the backend (it packs the key, looks it up and
        // counts; a miss only for a valid key), the rest is out of line.
        match self.backend().lookup_pid_quick::<Counted>(ns, name) {
            Some(r) => Ok(r),
            None => self.lookup_pid_full(ns, name),
        }
    }

    /// [`lookup_pid`](Self::lookup_pid) without its fast path.
    #[inline(never)]
    fn lookup_pid_full(&self, ns: &str, name: &str) -> Result<Option<u32>> {
        let r = counted(self.backend().lookup_pid(self.key_of(ns, name, true)?));
        nul_checked(r, ns, name)
    }

    /// [`lookup_pid`](Self::lookup_pid) of a prepared [`Key`]: no
    /// validation, packing or hashing per call, only a compare of the key's
    /// lengths with this registry's limits. Allocates nothing; loads only.
    ///
    /// # Errors
    /// `InvalidKey` (longer than this registry's limits), `Busy`.
    #[inline(always)]
    pub fn lookup_pid_key(&self, key: &Key) -> Result<Option<u32>> {
        // A small wrapper at each call site: the fast path is a leaf
        // function of the backend (no register saves, the answer in a
        // register, counted), the rest is out of line.
        match self.backend().lookup_pid_key_quick::<Counted>(key) {
            Some(r) => Ok(r),
            None => self.lookup_pid_key_full(key),
        }
    }

    /// [`lookup_pid_key`](Self::lookup_pid_key) without its fast path.
    #[inline(never)]
    fn lookup_pid_key_full(&self, key: &Key) -> Result<Option<u32>> {
        self.admit(key)?;
        counted(self.backend().lookup_pid_key(key))
    }

    /// [`lookup`](Self::lookup) of a prepared [`Key`].
    ///
    /// # Errors
    /// As [`lookup_pid_key`](Self::lookup_pid_key).
    pub fn lookup_key(&self, key: &Key) -> Result<Option<Entry>> {
        self.admit(key)?;
        counted(self.backend().lookup_key(key))
    }

    /// A cached reference to the service `(ns, name)`: see [`Service`].
    ///
    /// # Errors
    /// `InvalidKey`.
    pub fn service(&self, ns: &str, name: &str) -> Result<Service> {
        self.key(ns, name)?;
        Ok(Service::new(self.clone(), Key::new(ns, name)?))
    }

    /// `lookup_pid_key` with what a hit rests on (for [`Service`]).
    pub(crate) fn lookup_pid_proved(&self, key: &Key) -> Result<Option<(u32, Option<Proof>)>> {
        self.admit(key)?;
        let r = self.backend().lookup_pid_proved(key);
        telemetry::count(match &r {
            Ok(Some(_)) => Op::LookupHit,
            Ok(None) => Op::LookupMiss,
            Err(_) => Op::Busy,
        });
        r
    }

    /// `lookup_key` with what a hit rests on (for [`Service`]).
    pub(crate) fn lookup_proved(&self, key: &Key) -> Result<Option<(Entry, Option<Proof>)>> {
        self.admit(key)?;
        let r = self.backend().lookup_proved(key);
        telemetry::count(match &r {
            Ok(Some(_)) => Op::LookupHit,
            Ok(None) => Op::LookupMiss,
            Err(_) => Op::Busy,
        });
        r
    }

    /// Whether this registry's limits admit `key`: two compares.
    #[inline(always)]
    fn admit(&self, key: &Key) -> Result<()> {
        let l = &self.inner.limits;
        if key.ns_len() > l.max_namespace_len || key.name_len() > l.max_name_len {
            return Err(key.too_long(l.max_namespace_len, l.max_name_len));
        }
        Ok(())
    }

    /// Whether the owner of `(ns, name)` is alive, judged now (pid + start
    /// time + PID namespace); `None` if the key is not registered. Unlike
    /// [`lookup_checked`](Self::lookup_checked) this changes nothing: an entry
    /// of a dead owner stays until `sweep` or a checked lookup reclaims it.
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`.
    pub fn owner_liveness(&self, ns: &str, name: &str) -> Result<Option<Liveness>> {
        self.backend().owner_liveness(self.key(ns, name)?)
    }

    /// The entry of `(ns, name)` if its owner is alive now (or cannot be
    /// judged from here); an entry of a dead owner is reclaimed and `None`
    /// returned.
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`.
    pub fn lookup_checked(&self, ns: &str, name: &str) -> Result<Option<Entry>> {
        counted(self.backend().lookup_checked(self.key(ns, name)?))
    }

    /// Removes `(ns, name)`; false if it was not registered.
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`.
    pub fn unregister(&self, ns: &str, name: &str) -> Result<bool> {
        // A key with a NUL byte can never have been registered: it is looked
        // for like any other and refused only when nothing was removed.
        let removed = self
            .backend()
            .unregister(self.key_of(ns, name, true)?, None)?;
        if !removed {
            nul_checked(Ok(None::<()>), ns, name)?;
        }
        Ok(removed)
    }

    /// Removes `(ns, name)` only if `pid` owns it; false otherwise.
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`.
    pub fn unregister_if_owner(&self, ns: &str, name: &str, pid: u32) -> Result<bool> {
        self.backend().unregister(self.key(ns, name)?, Some(pid))
    }

    /// Replaces the metadata of `(ns, name)`; readers never wait for it.
    /// Returns the new version.
    ///
    /// # Errors
    /// `InvalidKey`, `MetadataTooLarge`, `NotFound`, `Busy`.
    pub fn update_metadata(&self, ns: &str, name: &str, metadata: &[u8]) -> Result<u64> {
        let key = self.key(ns, name)?;
        self.meta(metadata)?;
        self.backend().update_metadata(key, metadata)
    }

    /// Every unique entry of namespace `ns`, sorted by name. Group members
    /// are not listed: see [`members`](Self::members) and
    /// [`list_members`](Self::list_members).
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`.
    pub fn list(&self, ns: &str) -> Result<Vec<Entry>> {
        check_part("namespace", ns, self.inner.limits.max_namespace_len)?;
        Ok(unique_only(self.backend().list(Some(ns))?))
    }

    /// Like [`lookup`](Self::lookup) without allocating: the metadata goes
    /// to `meta[..info.metadata_len]` only when it fits (compare
    /// `metadata_len` with `meta.len()`; `meta` may be written also when it
    /// does not fit or nothing is found).
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`.
    pub fn lookup_into(&self, ns: &str, name: &str, meta: &mut [u8]) -> Result<Option<EntryInfo>> {
        counted(self.backend().lookup_into(self.key(ns, name)?, meta))
    }

    /// Lends every unique entry of `ns` (or of all namespaces) to `f`, in no
    /// particular order, until it returns false; allocates nothing per entry.
    /// Group members are skipped.
    ///
    /// # Errors
    /// `InvalidKey` for a bad namespace, `Busy`.
    pub fn visit(&self, ns: Option<&str>, mut f: impl FnMut(&EntryRef<'_>) -> bool) -> Result<()> {
        if let Some(ns) = ns {
            check_part("namespace", ns, self.inner.limits.max_namespace_len)?;
        }
        self.backend().visit(ns, &mut |e: &EntryRef<'_>| {
            crate::groups::is_member_name(e.name) || f(e)
        })
    }

    /// Every unique entry of every namespace, sorted (group members are not
    /// listed: see [`list_members`](Self::list_members)).
    ///
    /// # Errors
    /// `Busy`.
    pub fn list_all(&self) -> Result<Vec<Entry>> {
        Ok(unique_only(self.backend().list(None)?))
    }

    /// The namespaces that hold at least one entry or group member, sorted.
    ///
    /// # Errors
    /// `Busy`.
    pub fn namespaces(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> = self
            .backend()
            .list(None)?
            .into_iter()
            .map(|e| e.namespace)
            .collect();
        v.dedup();
        Ok(v)
    }

    /// Removes every entry and group member of `ns`; returns how many.
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`.
    pub fn clear_namespace(&self, ns: &str) -> Result<usize> {
        check_part("namespace", ns, self.inner.limits.max_namespace_len)?;
        self.backend().clear_namespace(ns)
    }

    /// Reclaims every entry whose owner is dead and every slot or lock left by
    /// a dead writer; returns how many.
    ///
    /// # Errors
    /// `Busy`.
    pub fn sweep(&self) -> Result<usize> {
        self.backend().sweep()
    }

    /// Sizes and counters: a part every backend has, and a backend-specific
    /// part (on `shm:`/`mem:`, one scan of the control words).
    ///
    /// # Errors
    /// The backend's (`Unavailable` for a networked one).
    pub fn stats(&self) -> Result<Stats> {
        self.backend().stats()
    }

    /// The latest committed revision: every committed change (register,
    /// unregister, update, reclaim) of any process adds one.
    ///
    /// # Errors
    /// The backend's (`Unavailable` for a networked one).
    pub fn revision(&self) -> Result<u64> {
        self.backend().revision()
    }

    /// Waits until `(ns, name)` is registered by a live owner (or one that
    /// cannot be judged from here) and returns its entry; at once if it
    /// already is. Never polls: on `shm:` it sleeps on a futex shared with
    /// every process of the segment, so a registration anywhere wakes it. An
    /// entry of a dead owner found on the way is reclaimed.
    ///
    /// # Errors
    /// `Timeout` when `timeout` passes first; `InvalidKey`, `Busy`.
    pub fn wait_for(&self, ns: &str, name: &str, timeout: Duration) -> Result<Entry> {
        let key = self.key(ns, name)?;
        let started = std::time::Instant::now();
        match self.backend().wait_for(key, timeout)? {
            Some(e) => Ok(e),
            None => Err(Error::Timeout {
                what: format!("key {name:?} in namespace {ns:?} to be registered"),
                waited: started.elapsed(),
            }),
        }
    }

    /// Calls `hook` with every change this handle (and its clones) commits
    /// (register, unregister, update, and reclaims by its sweeps and checked
    /// lookups), after the operation returns and outside any lock: wire
    /// metrics or logs here. Replaces an earlier hook. Lookups are counted
    /// in [`Stats::process`] instead, which costs them no call. Joins and
    /// leaves of group members come as events with `member == true`.
    pub fn on_event(&self, hook: impl Fn(&Event) + Send + Sync + 'static) {
        self.backend().set_hook(Some(Arc::new(move |e: &Event| {
            if crate::groups::is_member_name(e.name.as_bytes()) {
                hook(&crate::groups::decode_event(e.clone()))
            } else {
                hook(e)
            }
        })));
    }

    /// The backend, for the watcher and the reaper.
    pub(crate) fn backend_ref(&self) -> &AnyBackend {
        &self.inner.backend
    }

    /// Checks owners and leftovers of dead writers.
    ///
    /// # Errors
    /// `Busy`; the backend's.
    pub fn health_check(&self) -> Result<Health> {
        self.backend().health()
    }
}

/// A lookup's result with the NUL check done after the fact: a unique key
/// holding a NUL byte can never have been registered (registration refuses
/// it, and group members, whose stored names hold one, are a separate
/// keyspace a unique key never finds: see `backend::Key::member`), so it
/// cannot hit, and a hit needs no NUL scan. A miss scans, and reports such a
/// key as `InvalidKey`, as every other operation does.
#[inline(always)]
fn nul_checked<T>(r: Result<Option<T>>, ns: &str, name: &str) -> Result<Option<T>> {
    if matches!(r, Ok(None)) && (has_nul(ns.as_bytes()) || has_nul(name.as_bytes())) {
        check_part("namespace", ns, usize::MAX)?;
        check_part("name", name, usize::MAX)?;
    }
    r
}

/// The unique entries of a backend listing (group members dropped).
fn unique_only(mut v: Vec<Entry>) -> Vec<Entry> {
    v.retain(|e| !crate::groups::is_member_name(e.name.as_bytes()));
    v
}

/// The per-process counters as a fast path's [`Tally`](backend::Tally).
struct Counted;

impl backend::Tally for Counted {
    #[inline(always)]
    fn hit() -> bool {
        telemetry::count_quick(Op::LookupHit)
    }
    #[inline(always)]
    fn miss() -> bool {
        telemetry::count_quick(Op::LookupMiss)
    }
}

/// Counts a lookup's outcome in the per-process counters.
#[inline(always)]
fn counted<T>(r: Result<Option<T>>) -> Result<Option<T>> {
    telemetry::count(match &r {
        Ok(Some(_)) => Op::LookupHit,
        Ok(None) => Op::LookupMiss,
        Err(_) => Op::Busy,
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_detection_finds_a_zero_at_every_position() {
        for len in 0..40 {
            let clean = vec![b'a'; len];
            assert!(!has_nul(&clean));
            for i in 0..len {
                let mut b = clean.clone();
                b[i] = 0;
                assert!(has_nul(&b), "len {len} pos {i}");
            }
        }
        assert!(
            !has_nul("ünïcödé\u{80}\u{100}".as_bytes()),
            "high bytes are not zero"
        );
    }
}
