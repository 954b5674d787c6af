//! Waiting and watching: [`EtcdWatcher`] over the watch pump, `wait_for`
//! by a watch of one key (never polling).

use super::*;

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

impl EtcdBackend {
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

    pub(super) fn watch_key(
        &self,
        key: String,
        prefix: bool,
        from_revision: i64,
    ) -> Result<EtcdWatcher> {
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
}
