//! Writes: register (a create-if-absent transaction under a lease),
//! keep-alive, reclaim, unregister, metadata updates. Every write under the
//! session lease is fenced: refused once the session is judged lost, and the
//! transaction compares the lease.

use super::*;

impl EtcdBackend {
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
        self.inner.session().check("register_with_lease")?;
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
        if lease == 0 || lease == self.inner.session().lease {
            return Err(Error::InvalidArgument(format!(
                "{ns}/{name} has no lease of its own; the handle keeps its session alive by itself"
            )));
        }
        // `lease_keep_alive` sends one keep-alive and reads its answer (a
        // lease gone on the server is its error); nothing more will come.
        let ttl = self.run("renewing an entry lease", |mut c| async move {
            c.lease_keep_alive(lease).await.map(|_| ())
        });
        match ttl {
            Err(Error::Unavailable(m)) if m.contains("lease not found") => Err(not_found()),
            other => other,
        }
    }

    pub(super) fn register_under(
        &self,
        ns: &str,
        name: &str,
        pid: u32,
        metadata: &[u8],
        entry_lease: Option<i64>,
    ) -> Result<EtcdRecord> {
        check_key(ns, name)?;
        if let Some((group, of)) = name.split_once('\0')
            && of != pid.to_string()
        {
            return Err(Error::InvalidArgument(format!(
                "the member name {group:?}\\0{of} is for pid {of}, not {pid}: a member \
                 of group {group:?} is stored as GROUP\\0PID with its own pid"
            )));
        }
        if metadata.len() > MAX_METADATA_LEN {
            return Err(Error::MetadataTooLarge {
                len: metadata.len(),
                max: MAX_METADATA_LEN,
            });
        }
        let i = &self.inner;
        i.session().check("register")?;
        let start_time = local::start_time(pid).ok_or(Error::ProcessNotAlive(pid))?;
        let lease = entry_lease.unwrap_or(i.session().lease);
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
            i.session().check("register")?;
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
    pub(super) fn reclaim(&self, kv: &KeyValue) -> Result<bool> {
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
        Ok(self.update_metadata_of(ns, name, metadata)?.0)
    }

    /// [`update_metadata`](Self::update_metadata), also returning the
    /// entry's owner pid (for the event the registry fires).
    pub(crate) fn update_metadata_of(
        &self,
        ns: &str,
        name: &str,
        metadata: &[u8],
    ) -> Result<(u64, u32)> {
        if metadata.len() > MAX_METADATA_LEN {
            return Err(Error::MetadataTooLarge {
                len: metadata.len(),
                max: MAX_METADATA_LEN,
            });
        }
        let i = &self.inner;
        i.session().check("update_metadata")?;
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
        i.session().check("update_metadata")?;
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
        Ok((v.version, rec.pid))
    }
}

/// With `reregister=true`: waits for the session's loss, reports it (the
/// handle's watch pumps send `Expired` for its entries), grants a new lease
/// and registers again, each through the create-if-absent transaction, the
/// entries the lost session held whose owner still runs. A name someone else
/// took meanwhile stays theirs and leaves this handle's own entries. Holds
/// the handle only between waits, so dropping it ends the task; `close` stops
/// it.
pub(super) async fn keep_registered(weak: std::sync::Weak<Inner>) {
    use std::sync::atomic::Ordering::SeqCst;
    loop {
        let (mut rx, old_lease) = {
            let Some(i) = weak.upgrade() else { return };
            let s = i.session();
            (s.subscribe(), s.lease)
        };
        let lost = loop {
            if let Some(l) = rx.borrow_and_update().clone() {
                break l;
            }
            if rx.changed().await.is_err() {
                return;
            }
        };
        let (cluster, ttl, timeout) = {
            let Some(i) = weak.upgrade() else { return };
            if i.closed.load(SeqCst) {
                return;
            }
            i.lost_tx.send_replace(Some(lost));
            (i.cluster.clone(), i.cfg.ttl, i.cfg.timeout)
        };
        let rt = tokio::runtime::Handle::current();
        let session = loop {
            let deadline = Instant::now() + timeout;
            match Session::grant(cluster.clone(), ttl, deadline, &rt).await {
                Ok(s) => break s,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    match weak.upgrade() {
                        Some(i) if !i.closed.load(SeqCst) => {}
                        _ => return,
                    }
                }
            }
        };
        let new_lease = session.lease;
        let (layout, owned, handle_id) = {
            let Some(i) = weak.upgrade() else { return };
            if i.closed.load(SeqCst) {
                return;
            }
            *i.session.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(session);
            (i.layout.clone(), i.owned.clone(), i.handle_id.clone())
        };
        let held: Vec<(String, EtcdRecord)> = owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, r)| r.lease == old_lease)
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        for (key, rec) in held {
            let kept = if local::start_time(rec.pid) == Some(rec.start_time) {
                reregister_one(
                    &cluster, &layout, &key, &rec, new_lease, &handle_id, timeout,
                )
                .await
            } else {
                None
            };
            let mut own = owned.lock().unwrap_or_else(|e| e.into_inner());
            match kept {
                Some(r) => own.insert(key, r),
                None => own.remove(&key),
            };
        }
        if let Some(i) = weak.upgrade() {
            i.lost_tx.send_replace(None);
        }
    }
}

/// Registers `rec` again under `lease` if its key is free; the new record,
/// or `None` when someone else holds the key (or no member answered).
async fn reregister_one(
    cluster: &Cluster,
    layout: &KeyLayout,
    key: &str,
    rec: &EtcdRecord,
    lease: i64,
    handle: &str,
    timeout: Duration,
) -> Option<EtcdRecord> {
    let mut v = rec.value();
    v.registered_at_ns = now_ns();
    v.version = 1;
    v.owner = OwnerToken {
        lease,
        handle: handle.to_owned(),
    };
    let txn = Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            key,
            v.encode(),
            Some(PutOptions::new().with_lease(lease)),
        )])
        .or_else([TxnOp::get(key, None)]);
    // A retry after a lost answer finds its own write (same lease and handle).
    for _ in 0..3 {
        let deadline = Instant::now() + timeout;
        let Ok(r) = cluster
            .run("re-registering after a session loss", deadline, |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await
        else {
            continue;
        };
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        if r.succeeded() {
            return Some(EtcdRecord {
                registered_at_ns: v.registered_at_ns,
                version: 1,
                mod_revision: rev,
                create_revision: rev,
                lease,
                handle: handle.to_owned(),
                ..rec.clone()
            });
        }
        let existing = r.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(mut g) => g.take_kvs().into_iter().next(),
            _ => None,
        })?;
        let theirs = watch::record_of(layout, &existing)?;
        return (theirs.lease == lease && theirs.handle == handle).then_some(theirs);
    }
    None
}
