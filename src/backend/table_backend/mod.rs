//! The backend shared by `shm` and `mem`: the hash table of atomic slots
//! over some storage (a mapped file, or heap memory). They differ only in
//! where the words live and in how writer identity and liveness are known
//! ([`Writers`]).

mod convert;
mod env;
mod report;
mod stream;

use super::{Backend, EventStream, Hook, Key, Proof, Tally, Who};
use crate::error::{Error, Liveness, Result};
use crate::liveness;
use crate::sync::AtomicU64;
use crate::table::key::{KeyWords, ShortKey, StackKey, is_short};
use crate::table::{self, Geometry, Owner, RawEntry, Table};
use crate::types::{Entry, EntryInfo, EntryRef, Health, Limits, LivenessMode, Stats};
use convert::{entry_of, info_of};
use env::{OpEnv, key_error, scan_error};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How a table-backed backend knows writers.
pub(crate) trait Writers: Send + Sync {
    /// This process's writer token.
    fn token(&self) -> Result<u32>;
    /// This process's token if it has one already (never claims one).
    fn current_token(&self) -> Option<u32>;
    /// Whether the writer holding `token` runs.
    fn liveness(&self, token: u32) -> Liveness;
    fn mode(&self) -> LivenessMode;
}

/// The shared implementation of `shm` and `mem`. A clone is another view
/// of the same table (its words and geometry inline, so a lookup follows no
/// extra pointer) sharing one writer identity and one hook.
// `table` first: the fast paths pass `&self.table` on with no add.
#[repr(C)]
pub(crate) struct TableBackend<S: AsRef<[AtomicU64]>, W: Writers> {
    pub(crate) table: Table<S>,
    pub(crate) kind: &'static str,
    pub(crate) created_at_ns: u64,
    pub(crate) bytes: usize,
    pub(crate) lock_timeout: Duration,
    shared: Arc<Shared<W>>,
}

/// What the clones of one handle share.
struct Shared<W> {
    writers: W,
    /// Whether `hook` holds one: a write without a hook takes no lock.
    has_hook: AtomicBool,
    hook: RwLock<Option<Hook>>,
}

impl<S: AsRef<[AtomicU64]> + Clone, W: Writers> Clone for TableBackend<S, W> {
    fn clone(&self) -> Self {
        TableBackend {
            table: self.table.clone(),
            kind: self.kind,
            created_at_ns: self.created_at_ns,
            bytes: self.bytes,
            lock_timeout: self.lock_timeout,
            shared: self.shared.clone(),
        }
    }
}

#[cold]
fn fire_all(hook: &Hook, events: Vec<crate::types::Event>) {
    for e in events {
        hook(&e);
    }
}

/// Whether an entry is gone: its lease ran out or its owner is dead.
fn gone(e: &RawEntry) -> bool {
    table::lease::expired(e.lease, crate::sys::clock::boot_ms())
        || liveness::check(&e.owner) == Liveness::Dead
}

impl<S: AsRef<[AtomicU64]> + Clone, W: Writers> TableBackend<S, W> {
    pub(crate) fn new(
        storage: S,
        geometry: Geometry,
        writers: W,
        kind: &'static str,
        created_at_ns: u64,
        bytes: usize,
        lock_timeout: Duration,
    ) -> Self {
        TableBackend {
            table: Table::new(storage, geometry),
            bytes,
            kind,
            created_at_ns,
            lock_timeout,
            shared: Arc::new(Shared {
                writers,
                has_hook: AtomicBool::new(false),
                hook: RwLock::new(None),
            }),
        }
    }

    /// This handle's writer identity.
    pub(crate) fn writers(&self) -> &W {
        &self.shared.writers
    }

    /// The context of one write. A write without a hook takes no lock.
    #[inline]
    fn env(&self) -> Result<OpEnv<'_, W>> {
        let sh = &*self.shared;
        let hook = if sh.has_hook.load(Ordering::Relaxed) {
            sh.hook.read().unwrap_or_else(|p| p.into_inner()).clone()
        } else {
            None
        };
        Ok(OpEnv {
            writers: &sh.writers,
            token: sh.writers.token()?,
            timeout: self.lock_timeout,
            deadline: std::cell::Cell::new(None),
            hook: hook.map(|h| (h, Default::default())),
        })
    }

    /// Hands the changes `env` committed to the hook, after the operation.
    #[inline]
    fn fire(env: OpEnv<'_, W>) {
        if let Some((hook, events)) = env.hook {
            fire_all(&hook, events.into_inner());
        }
    }

    fn capacity(&self) -> usize {
        self.table.geometry().capacity
    }

    fn err(&self, e: table::TableError, key: Key<'_>) -> Error {
        key_error(e, key, self.capacity())
    }

    fn scan_err(&self, e: table::TableError) -> Error {
        scan_error(e, self.capacity())
    }

    /// `lookup_pid_quick` of a key not of the short shape: packed whole on
    /// the stack when it fits, so no word is packed twice. A part longer
    /// than a row's 16-bit length field goes the full path (which refuses
    /// it).
    #[inline(never)]
    fn lookup_pid_quick_long<T: Tally>(&self, ns: &[u8], name: &[u8]) -> Option<Option<u32>> {
        if ns.len() > u16::MAX as usize || name.len() > u16::MAX as usize {
            return None;
        }
        match StackKey::new(ns, name, 0) {
            Some(k) => self.table.lookup_pid_quick(&k, T::hit, T::miss),
            None => self
                .table
                .lookup_pid_quick(&KeyWords::new(ns, name), T::hit, T::miss),
        }
    }

    /// `lookup_pid_quick` of a short key past the home group's first
    /// candidate. The key is packed again here rather than passed: passed,
    /// it would need an address, and the common path would store it.
    #[inline(never)]
    fn lookup_pid_quick_rest<T: Tally>(&self, ns: &[u8], name: &[u8]) -> Option<Option<u32>> {
        let k = ShortKey::new(ns, name, 0);
        self.table.lookup_pid_quick_rest_inline(&k, T::hit, T::miss)
    }

    /// `lookup_pid_quick` of a short key with no candidate in its home
    /// group and keys of its home further away.
    #[inline(never)]
    fn lookup_pid_quick_away<T: Tally>(
        &self,
        ns: &[u8],
        name: &[u8],
        home: usize,
        steps: u64,
    ) -> Option<Option<u32>> {
        let k = ShortKey::new(ns, name, 0);
        self.table
            .lookup_pid_quick_away_inline(&k, T::hit, T::miss, home, steps)
    }

    #[inline(always)]
    fn keywords(key: Key<'_>) -> KeyWords<'_> {
        KeyWords::with_kind(key.ns.as_bytes(), key.name.as_bytes(), Self::kind_of(key))
    }

    /// The table's kind bits of a key (unique or group member).
    #[inline(always)]
    fn kind_of(key: Key<'_>) -> u64 {
        if key.member { table::MEMBER } else { 0 }
    }

    /// The identity of `who`, a process of this host, if it runs. The
    /// caller's own identity is cached (no syscall).
    #[inline]
    fn owner(who: Who) -> Result<Owner> {
        let me = liveness::current();
        match who {
            Who::Me => Ok(me),
            Who::Pid(pid) if pid == me.pid => Ok(me),
            Who::Pid(pid) => liveness::owner_of(pid)
                .map_err(|e| Error::io(format!("cannot read /proc/{pid}/stat"), e))?
                .ok_or(Error::ProcessNotAlive(pid)),
        }
    }
}

impl<S, W> Backend for TableBackend<S, W>
where
    S: AsRef<[AtomicU64]> + Clone + Send + Sync + 'static,
    W: Writers,
{
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn limits(&self) -> Limits {
        let g = self.table.geometry();
        Limits {
            capacity: Some(g.capacity),
            max_namespace_len: g.max_ns_len,
            max_name_len: g.max_name_len,
            max_metadata_len: g.max_meta_len,
            min_lease_ttl: Duration::from_millis(1),
            max_lease_ttl: Duration::from_millis(table::lease::MAX_TTL_MS),
        }
    }

    fn register(
        &self,
        key: Key<'_>,
        who: Who,
        metadata: &[u8],
        lease: Option<Duration>,
    ) -> Result<u64> {
        let owner = Self::owner(who)?;
        let env = self.env()?;
        let lease = match lease {
            None => 0,
            Some(ttl) => table::lease::new(
                crate::sys::clock::boot_ms(),
                u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            ),
        };
        let r = self
            .table
            .insert_with_lease(
                &Self::keywords(key),
                &owner,
                // The tick clock: registration time at tick resolution.
                crate::sys::clock::coarse_realtime_ns(),
                metadata,
                lease,
                &env,
            )
            .map(u64::from)
            .map_err(|e| self.err(e, key));
        Self::fire(env);
        r
    }

    fn keepalive(&self, key: Key<'_>) -> Result<()> {
        let env = self.env()?;
        match self.table.renew(&Self::keywords(key), &env) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::InvalidArgument(format!(
                "key {:?} in namespace {:?} was registered without a lease; \
                 register it with register_with_lease to keep it alive",
                key.name, key.ns
            ))),
            Err(e) => Err(self.err(e, key)),
        }
    }

    fn lookup(&self, key: Key<'_>) -> Result<Option<Entry>> {
        Ok(self
            .table
            .lookup(&Self::keywords(key))
            .map_err(|e| self.err(e, key))?
            .map(entry_of))
    }

    fn lookup_pid(&self, key: Key<'_>) -> Result<Option<u32>> {
        self.table
            .lookup_pid(&Self::keywords(key))
            .map_err(|e| self.err(e, key))
    }

    /// A leaf function (see `Table::lookup_pid_quick`).
    #[inline(never)]
    fn lookup_pid_quick<T: Tally>(&self, ns: &str, name: &str) -> Option<Option<u32>> {
        let (ns, name) = (ns.as_bytes(), name.as_bytes());
        if !is_short(ns.len(), name.len()) {
            return self.lookup_pid_quick_long::<T>(ns, name);
        }
        // Packed into registers; a way past the home group's first
        // candidate packs it again, so the key needs no address here.
        let k = ShortKey::new(ns, name, 0);
        self.table.lookup_pid_quick_with(
            &k,
            T::hit,
            T::miss,
            || self.lookup_pid_quick_rest::<T>(ns, name),
            |home, steps| self.lookup_pid_quick_away::<T>(ns, name, home, steps),
        )
    }

    /// A leaf function (see `Table::lookup_pid_quick`).
    #[inline(never)]
    fn lookup_pid_key_quick<T: Tally>(&self, key: &crate::Key) -> Option<Option<u32>> {
        self.table.lookup_pid_quick(key.packed(), T::hit, T::miss)
    }

    fn lookup_pid_key(&self, key: &crate::Key) -> Result<Option<u32>> {
        self.table
            .lookup_pid(key.packed())
            .map_err(|e| self.err(e, key.as_key()))
    }

    fn lookup_key(&self, key: &crate::Key) -> Result<Option<Entry>> {
        Ok(self
            .table
            .lookup(key.packed())
            .map_err(|e| self.err(e, key.as_key()))?
            .map(entry_of))
    }

    fn lookup_pid_proved(&self, key: &crate::Key) -> Result<Option<(u32, Option<Proof>)>> {
        Ok(self
            .table
            .lookup_pid_seen(key.packed())
            .map_err(|e| self.err(e, key.as_key()))?
            .map(|(pid, seen)| (pid, Some(seen))))
    }

    fn lookup_proved(&self, key: &crate::Key) -> Result<Option<(Entry, Option<Proof>)>> {
        Ok(self
            .table
            .lookup_seen(key.packed())
            .map_err(|e| self.err(e, key.as_key()))?
            // A renewal rewrites the lease word without a new version, and
            // an entry's lease figures are as of the read: an entry with a
            // lease is never answered from a cache.
            .map(|(e, seen)| {
                let proof = (e.lease == 0).then_some(seen);
                (entry_of(e), proof)
            }))
    }

    #[inline(always)]
    fn proof_holds(&self, proof: &Proof) -> bool {
        self.table.unchanged(proof)
    }

    fn lookup_into(&self, key: Key<'_>, meta: &mut [u8]) -> Result<Option<EntryInfo>> {
        Ok(self
            .table
            .lookup_into(&Self::keywords(key), meta)
            .map_err(|e| self.err(e, key))?
            .map(|h| info_of(&h)))
    }

    fn owner_liveness(&self, key: Key<'_>) -> Result<Option<Liveness>> {
        Ok(self
            .table
            .lookup_owner(&Self::keywords(key))
            .map_err(|e| self.err(e, key))?
            .map(|o| liveness::check(&o)))
    }

    fn lookup_checked(&self, key: Key<'_>) -> Result<Option<Entry>> {
        let kw = Self::keywords(key);
        let Some((slot, c, e)) = self.table.lookup_at(&kw).map_err(|e| self.err(e, key))? else {
            return Ok(None);
        };
        if !gone(&e) {
            return Ok(Some(entry_of(e)));
        }
        // A dead owner's entry is a miss whatever happens next. Reclaim it
        // only if that costs no wait (readers never wait); otherwise sweep will.
        if let Ok(env) = self.env() {
            self.table.try_reclaim(slot, c, &env);
            Self::fire(env);
        }
        Ok(None)
    }

    fn unregister(&self, key: Key<'_>, only_pid: Option<u32>) -> Result<bool> {
        let env = self.env()?;
        let r = self
            .table
            .remove(&Self::keywords(key), only_pid, &env)
            .map_err(|e| self.err(e, key));
        Self::fire(env);
        r
    }

    fn update_metadata(&self, key: Key<'_>, metadata: &[u8]) -> Result<u64> {
        let env = self.env()?;
        let r = self
            .table
            .update(&Self::keywords(key), metadata, &env)
            .map(u64::from)
            .map_err(|e| self.err(e, key));
        Self::fire(env);
        r
    }

    fn list(&self, ns: Option<&str>) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        self.table
            .for_each_live(|_, _, e| {
                if ns.is_none_or(|ns| e.ns_len == ns.len() && e.key.starts_with(ns.as_bytes())) {
                    out.push(entry_of(e));
                }
                true
            })
            .map_err(|e| self.scan_err(e))?;
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(out)
    }

    fn visit(&self, ns: Option<&str>, f: &mut dyn FnMut(&EntryRef<'_>) -> bool) -> Result<()> {
        let g = self.table.geometry();
        let mut key = vec![0u8; g.max_ns_len + g.max_name_len];
        let mut meta = vec![0u8; g.max_meta_len];
        let host = crate::host::name();
        self.table
            .for_each_live_into(&mut key, &mut meta, |h, k, m| {
                let (namespace, name) = k.split_at(h.ns_len);
                if ns.is_some_and(|ns| ns.as_bytes() != namespace) {
                    return true;
                }
                f(&EntryRef {
                    namespace,
                    name,
                    host,
                    info: info_of(h),
                    metadata: m,
                })
            })
            .map_err(|e| self.scan_err(e))
    }

    fn clear_namespace(&self, ns: &str) -> Result<usize> {
        let mut n = 0;
        for e in self.list(Some(ns))? {
            let key = Key {
                ns,
                name: &e.name,
                member: crate::groups::is_member_name(e.name.as_bytes()),
            };
            n += self.unregister(key, None)? as usize;
        }
        Ok(n)
    }

    fn revision(&self) -> Result<u64> {
        Ok(self.table.revision())
    }

    fn wait_for(&self, key: Key<'_>, timeout: Duration) -> Result<Option<Entry>> {
        let started = Instant::now();
        loop {
            // Read the change counter before the condition: a change after
            // this read wakes the sleep below.
            let seen = self.table.changes_word();
            if let Some(e) = self.lookup_checked(key)? {
                return Ok(Some(e));
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            self.table.sleep_on_changes(seen, left);
        }
    }

    fn watch(&self, ns: Option<&str>, from_revision: u64) -> Result<Box<dyn EventStream>> {
        Ok(Box::new(stream::RingStream::new(
            self.table.clone(),
            ns.map(str::to_owned),
            from_revision,
        )))
    }

    fn stats(&self) -> Result<Stats> {
        Ok(self.stats_now())
    }

    fn health(&self) -> Result<Health> {
        self.health_now()
    }

    fn sweep(&self) -> Result<usize> {
        let env = self.env()?;
        let r = self.table.sweep(&env).map_err(|e| self.scan_err(e));
        Self::fire(env);
        r
    }

    fn local_owners(&self, since: Option<u64>) -> Result<Option<(Vec<u32>, u64)>> {
        // Revisions, not the change word: its bit 0 flips with sleepers.
        let changed = self.table.revision();
        if since == Some(changed) {
            return Ok(None);
        }
        let mut pids = Vec::new();
        self.table
            .for_each_live(|_, _, e| {
                pids.push(e.owner.pid);
                true
            })
            .map_err(|e| self.scan_err(e))?;
        pids.sort_unstable();
        pids.dedup();
        Ok(Some((pids, changed)))
    }

    fn set_hook(&self, hook: Option<Hook>) {
        let mut h = self.shared.hook.write().unwrap_or_else(|p| p.into_inner());
        self.shared
            .has_hook
            .store(hook.is_some(), Ordering::Relaxed);
        *h = hook;
    }
}

#[cfg(test)]
mod tests;
