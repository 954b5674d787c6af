//! The revision, sweeping dead local owners, stats, health and closing.

use super::*;

impl EtcdBackend {
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
        let lost = i.session().lost().map(|l| l.reason);
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
            lease: i.session().lease,
            lease_left: i
                .session()
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
        i.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let session = i.session();
        session.stop();
        session
            .shared()
            .declare_lost("the handle was closed".into());
        let lease = session.lease;
        self.run("closing the handle", |mut c| async move {
            c.lease_revoke(lease).await
        })
        .map(|_| ())
    }
}
