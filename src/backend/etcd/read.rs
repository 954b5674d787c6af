//! Reads: lookups (linearizable), lists, namespaces, and clearing a namespace.

use super::*;

impl EtcdBackend {
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

    pub(super) fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, i64)> {
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
}
