//! `procreg.Registry` (the native base of the Python class of that name):
//! one handle on a registry, shared by threads, closed by `close()`.
//!
//! The handle sits in an `RwLock<Option<_>>`: a call takes the read lock
//! for the library call only (never while running Python code, which could
//! switch threads to a `close()` waiting for the write lock), and a call that
//! releases the GIL works on its own clone, so `close()` never waits for it
//! and never frees a handle in use.

use crate::convert::{flag, key, limit, metadata, millis, opt_key, pid, seconds, type_name};
use crate::entry::Entry;
use crate::errors::{closed, invalid_argument, raise, to_py};
use crate::groups::{count, member_error, member_pid, members_timeout};
use crate::values;
use crate::watch::{Reaper, Watcher};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyString, PyTuple, PyWeakrefReference};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Longest single blocking call of `wait_for` and `Watcher.next`: longer
/// waits are cut into slices so that Ctrl-C (signal handlers run only
/// between calls) and a `close()` from another thread take effect.
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(250);

/// The options a registry was opened with, to reopen it when unpickled.
#[derive(Clone, Default)]
struct OpenArgs {
    capacity: Option<usize>,
    max_namespace_len: Option<usize>,
    max_name_len: Option<usize>,
    max_metadata_len: Option<usize>,
    max_writers: Option<usize>,
    mode: Option<u32>,
    lock_timeout_ms: Option<u64>,
    allow_foreign_owner: bool,
    allow_world_writable: bool,
    max_segment_bytes: Option<usize>,
}

/// A handle on a procreg registry (see the Python class `procreg.Registry`).
#[pyclass(subclass, frozen, weakref, module = "procreg", name = "Registry")]
pub struct Registry {
    handle: RwLock<Option<procreg::Registry>>,
    /// The url as given (with any password): what a pickle reopens.
    given: String,
    /// The url as shown (`Registry::url`: an etcd password redacted).
    shown: String,
    args: OpenArgs,
}

impl Registry {
    /// `f(handle)` under the read lock; errors become Python exceptions
    /// after the lock is released.
    #[inline(always)]
    fn with<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&procreg::Registry) -> procreg::Result<T>,
    ) -> PyResult<T> {
        let r = {
            let g = self.handle.read().unwrap_or_else(PoisonError::into_inner);
            g.as_ref().map(f)
        };
        match r {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(to_py(py, e)),
            None => Err(self.closed_err(py)),
        }
    }

    /// `f(handle)` under the read lock, its error left to the caller (which
    /// words it for Python: `groups::member_error`); only a closed handle
    /// is raised here.
    fn try_with<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&procreg::Registry) -> procreg::Result<T>,
    ) -> PyResult<procreg::Result<T>> {
        let r = {
            let g = self.handle.read().unwrap_or_else(PoisonError::into_inner);
            g.as_ref().map(f)
        };
        r.ok_or_else(|| self.closed_err(py))
    }

    /// A clone of the handle, for a call that releases the GIL.
    fn handle(&self, py: Python<'_>) -> PyResult<procreg::Registry> {
        let g = self.handle.read().unwrap_or_else(PoisonError::into_inner);
        match g.as_ref() {
            Some(r) => Ok(r.clone()),
            None => {
                drop(g);
                Err(self.closed_err(py))
            }
        }
    }

    #[cold]
    fn closed_err(&self, py: Python<'_>) -> PyErr {
        closed(py, &format!("registry '{}'", self.shown))
    }

    fn is_closed(&self) -> bool {
        self.handle
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// Liveness of the owner of (ns, name) if `pid` still holds it, else
    /// dead; for a member (`name` is its group), of member `pid` if it is
    /// still one, else dead.
    pub(crate) fn entry_liveness(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyString>,
        name: &Bound<'_, PyString>,
        owner: u32,
        member: bool,
    ) -> PyResult<procreg::Liveness> {
        let (ns, name) = (key(ns.as_any(), "namespace")?, key(name.as_any(), "name")?);
        if member {
            return self.with(py, |r| {
                Ok(r.member_liveness(ns, name, owner)?
                    .unwrap_or(procreg::Liveness::Dead))
            });
        }
        self.with(py, |r| match r.lookup_pid(ns, name)? {
            Some(p) if p == owner => Ok(r
                .owner_liveness(ns, name)?
                .unwrap_or(procreg::Liveness::Dead)),
            _ => Ok(procreg::Liveness::Dead),
        })
    }

    fn entry(
        slf: &Bound<'_, Self>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
        e: Option<procreg::Entry>,
    ) -> PyResult<Option<Py<Entry>>> {
        match e {
            None => Ok(None),
            Some(e) => Entry::from_lookup(slf.py(), ns, name, e, Some(weak(slf)?)).map(Some),
        }
    }
}

/// A weak reference to the registry object (the same one each time: CPython
/// reuses a callback-free weak reference).
fn weak(slf: &Bound<'_, Registry>) -> PyResult<Py<PyWeakrefReference>> {
    Ok(PyWeakrefReference::new(slf.as_any())?.unbind())
}

fn ttl_range(py: Python<'_>, limits: procreg::Limits, secs: f64, d: Duration) -> PyResult<()> {
    if d < limits.min_lease_ttl || d > limits.max_lease_ttl {
        return Err(invalid_argument(
            py,
            format!(
                "ttl={secs} s is out of range; give {} to {} seconds ({} ms to {} ms)",
                limits.min_lease_ttl.as_secs_f64(),
                limits.max_lease_ttl.as_secs_f64(),
                limits.min_lease_ttl.as_millis(),
                limits.max_lease_ttl.as_millis()
            ),
        ));
    }
    Ok(())
}

#[pymethods]
impl Registry {
    #[new]
    #[pyo3(signature = (
        url = None, *, capacity = None, max_name_len = None, max_metadata_len = None, mode = None,
        create = None, max_namespace_len = None, max_writers = None, lock_timeout_ms = None,
        allow_foreign_owner = None, allow_world_writable = None, max_segment_bytes = None,
        _share = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: Option<&Bound<'_, PyAny>>,
        capacity: Option<&Bound<'_, PyAny>>,
        max_name_len: Option<&Bound<'_, PyAny>>,
        max_metadata_len: Option<&Bound<'_, PyAny>>,
        mode: Option<&Bound<'_, PyAny>>,
        create: Option<&Bound<'_, PyAny>>,
        max_namespace_len: Option<&Bound<'_, PyAny>>,
        max_writers: Option<&Bound<'_, PyAny>>,
        lock_timeout_ms: Option<&Bound<'_, PyAny>>,
        allow_foreign_owner: Option<&Bound<'_, PyAny>>,
        allow_world_writable: Option<&Bound<'_, PyAny>>,
        max_segment_bytes: Option<&Bound<'_, PyAny>>,
        _share: Option<&Bound<'_, Registry>>,
    ) -> PyResult<Self> {
        if let Some(other) = _share {
            // copy.copy / copy.deepcopy: one more owner of the same handle
            // (the library's handles are reference counted).
            let o = other.get();
            let h = o
                .handle
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            return Ok(Registry {
                handle: RwLock::new(h),
                given: o.given.clone(),
                shown: o.shown.clone(),
                args: o.args.clone(),
            });
        }
        let url: String = match url.filter(|u| !u.is_none()) {
            Some(u) => {
                let s = u.cast::<PyString>().map_err(|_| {
                    PyTypeError::new_err(format!("url must be str, not {}", type_name(u)))
                })?;
                s.to_str()
                    .map_err(|_| {
                        invalid_argument(
                            py,
                            format!(
                                "url {} is not valid UTF-8",
                                s.repr().map(|r| r.to_string()).unwrap_or_default()
                            ),
                        )
                    })?
                    .to_owned()
            }
            None => std::env::var("PROCREG_URL")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "shm:default".to_owned()),
        };
        let create = match create.filter(|c| !c.is_none()) {
            None => "open_or_create".to_owned(),
            Some(c) => c
                .cast::<PyString>()
                .map_err(|_| {
                    PyTypeError::new_err(format!("create must be str, not {}", type_name(c)))
                })?
                .to_str()?
                .to_owned(),
        };
        if !matches!(create.as_str(), "open_or_create" | "create" | "open") {
            return Err(invalid_argument(
                py,
                format!("create='{create}'; use 'open_or_create', 'create' or 'open'"),
            ));
        }
        if url.contains('\0') {
            return Err(invalid_argument(
                py,
                format!("url {url:?} contains a NUL character"),
            ));
        }
        let mut args = OpenArgs {
            capacity: limit(capacity, "capacity")?,
            max_namespace_len: limit(max_namespace_len, "max_namespace_len")?,
            max_name_len: limit(max_name_len, "max_name_len")?,
            max_metadata_len: limit(max_metadata_len, "max_metadata_len")?,
            max_writers: limit(max_writers, "max_writers")?,
            max_segment_bytes: limit(max_segment_bytes, "max_segment_bytes")?,
            ..OpenArgs::default()
        };
        if let Some(ms) = limit(lock_timeout_ms, "lock_timeout_ms")? {
            if ms > u32::MAX as usize {
                return Err(invalid_argument(
                    py,
                    format!("lock_timeout_ms={ms} is out of range"),
                ));
            }
            args.lock_timeout_ms = Some(ms as u64);
        }
        if let Some(m) = mode.filter(|m| !m.is_none()) {
            if m.is_instance_of::<PyBool>() || !m.is_instance_of::<PyInt>() {
                return Err(PyTypeError::new_err(format!(
                    "mode must be int or None, not {}",
                    type_name(m)
                )));
            }
            let v: i64 = m.extract().unwrap_or(-1);
            if !(0..=0o7777).contains(&v) {
                return Err(invalid_argument(
                    py,
                    format!("mode={m} is out of range; give a file mode such as 0o600"),
                ));
            }
            args.mode = Some(v as u32);
        }
        if let Some(v) = allow_foreign_owner {
            args.allow_foreign_owner = flag(v, "allow_foreign_owner")?;
        }
        if let Some(v) = allow_world_writable {
            args.allow_world_writable = flag(v, "allow_world_writable")?;
        }
        let mut b = procreg::Registry::builder();
        let a = &args;
        if let Some(n) = a.capacity {
            b = b.capacity(n);
        }
        if let Some(n) = a.max_namespace_len {
            b = b.max_namespace_len(n);
        }
        if let Some(n) = a.max_name_len {
            b = b.max_name_len(n);
        }
        if let Some(n) = a.max_metadata_len {
            b = b.max_metadata_len(n);
        }
        if let Some(n) = a.max_writers {
            b = b.max_writers(n);
        }
        if let Some(n) = a.max_segment_bytes {
            b = b.max_segment_bytes(n as u64);
        }
        if let Some(m) = a.mode {
            b = b.mode(m);
        }
        if let Some(ms) = a.lock_timeout_ms {
            b = b.lock_timeout(Duration::from_millis(ms));
        }
        b = b
            .allow_foreign_owner(a.allow_foreign_owner)
            .allow_world_writable(a.allow_world_writable);
        // Opening an etcd:// registry talks to the cluster: without the GIL.
        let r = py
            .detach(|| match create.as_str() {
                "create" => b.create(&url),
                "open" => b.open(&url),
                _ => b.open_or_create(&url),
            })
            .map_err(|e| to_py(py, e))?;
        Ok(Registry {
            shown: r.url().to_owned(),
            handle: RwLock::new(Some(r)),
            given: url,
            args,
        })
    }

    // -- lifetime ----------------------------------------------------------------

    /// The url this registry was opened with (an etcd password shown as `<redacted>`).
    #[getter]
    fn url(&self) -> &str {
        &self.shown
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.is_closed()
    }

    /// Releases the handle (idempotent). Calls running in other threads
    /// finish first on their own reference; watchers and reapers keep theirs.
    fn close(&self, py: Python<'_>) {
        let h = self
            .handle
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = h {
            // An etcd handle revokes its session on its last drop: no GIL.
            py.detach(move || drop(h));
        }
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let me = slf.get();
        if me.is_closed() {
            return Err(me.closed_err(slf.py()));
        }
        Ok(slf.clone())
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.is_closed() { "closed" } else { "open" };
        format!("<procreg.Registry '{}' {state}>", self.shown)
    }

    /// `copy.copy`: another `Registry` object on the same handle.
    fn __copy__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let kw = PyDict::new(slf.py());
        kw.set_item("_share", slf)?;
        slf.get_type().call((), Some(&kw))
    }

    /// `copy.deepcopy`: as `copy.copy` (a handle names a shared registry; a
    /// deep copy of its entries is `list_all()`).
    fn __deepcopy__<'py>(
        slf: &Bound<'py, Self>,
        _memo: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::__copy__(slf)
    }

    /// Pickling (multiprocessing's spawn, ...) reopens the registry by url in
    /// the receiver, with the same options (`create="open"`). An anonymous
    /// `mem:` registry exists in this process only: it cannot be pickled.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let me = slf.get();
        if me.given == "mem:" {
            return Err(PyTypeError::new_err(
                "cannot pickle a Registry of the anonymous 'mem:' registry: it exists in this process only; \
                 use a named 'shm:NAME' registry to share it with other processes",
            ));
        }
        if me.is_closed() {
            return Err(me.closed_err(py));
        }
        let kw = PyDict::new(py);
        let a = &me.args;
        for (k, v) in [
            ("capacity", a.capacity),
            ("max_namespace_len", a.max_namespace_len),
            ("max_name_len", a.max_name_len),
            ("max_metadata_len", a.max_metadata_len),
            ("max_writers", a.max_writers),
            ("max_segment_bytes", a.max_segment_bytes),
        ] {
            if let Some(v) = v {
                kw.set_item(k, v)?;
            }
        }
        if let Some(m) = a.mode {
            kw.set_item("mode", m)?;
        }
        if let Some(ms) = a.lock_timeout_ms {
            kw.set_item("lock_timeout_ms", ms)?;
        }
        kw.set_item("allow_foreign_owner", a.allow_foreign_owner)?;
        kw.set_item("allow_world_writable", a.allow_world_writable)?;
        kw.set_item("create", "open")?;
        static REOPEN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let f = REOPEN.import(py, "procreg._registry", "_reopen")?.clone();
        let args = PyTuple::new(
            py,
            [
                slf.get_type().into_any(),
                PyString::new(py, &me.given).into_any(),
                kw.into_any(),
            ],
        )?;
        Ok((f, args))
    }

    // -- writing -------------------------------------------------------------------

    /// `register(ns, name, pid, metadata)` with every argument given (the
    /// Python method `register` supplies the defaults).
    fn _register(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
        owner: &Bound<'_, PyAny>,
        meta: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (ns, name) = (key(ns, "namespace")?, key(name, "name")?);
        let owner = if owner.is_none() {
            None
        } else {
            Some(pid(owner)?)
        };
        let meta = metadata(meta)?;
        self.with(py, |r| match owner {
            None => r.register_self(ns, name, &meta),
            Some(p) => r.register(ns, name, p, &meta),
        })?;
        Ok(())
    }

    /// `register_with_lease(ns, name, ttl, pid, metadata)` with every
    /// argument given (see the Python method).
    fn _register_with_lease(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
        owner: &Bound<'_, PyAny>,
        meta: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (ns, name) = (key(ns, "namespace")?, key(name, "name")?);
        let secs = seconds(ttl, "ttl")?;
        let d = millis(py, secs, "ttl", 1)?;
        let owner = if owner.is_none() {
            std::process::id()
        } else {
            pid(owner)?
        };
        let meta = metadata(meta)?;
        let limits = self.with(py, |r| Ok(r.limits()))?;
        ttl_range(py, limits, secs, d)?;
        self.with(py, |r| r.register_with_lease(ns, name, owner, &meta, d))?;
        Ok(())
    }

    /// Renews the lease of (ns, name) for another ttl. `NotFound` if it is
    /// absent or already expired; `InvalidArgument` if it has no lease.
    fn keepalive(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (ns, name) = (key(ns, "namespace")?, key(name, "name")?);
        self.with(py, |r| r.keepalive(ns, name))
    }

    /// Removes (ns, name); False if it was not registered.
    fn unregister(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let (ns, name) = (key(ns, "namespace")?, key(name, "name")?);
        self.with(py, |r| r.unregister(ns, name))
    }

    /// Removes (ns, name) only if `pid` (None: this process) owns it; False
    /// otherwise (absent, or held by another process). Safe against a
    /// concurrent re-registration by someone else, which a lookup followed
    /// by `unregister` is not.
    #[pyo3(signature = (ns, name, pid = None))]
    fn unregister_if_owner(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
        pid: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let (ns, name) = (key(ns, "namespace")?, key(name, "name")?);
        let owner = match pid {
            Some(p) if !p.is_none() => crate::convert::pid(p)?,
            _ => std::process::id(),
        };
        self.with(py, |r| r.unregister_if_owner(ns, name, owner))
    }

    /// Replaces the metadata of (ns, name); `NotFound` if absent.
    fn update_metadata(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
        metadata: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (ns, name) = (key(ns, "namespace")?, key(name, "name")?);
        let meta = crate::convert::metadata(metadata)?;
        self.with(py, |r| r.update_metadata(ns, name, &meta))?;
        Ok(())
    }

    /// Removes every entry of `ns`; returns how many.
    fn clear_namespace(&self, py: Python<'_>, ns: &Bound<'_, PyAny>) -> PyResult<usize> {
        let ns = key(ns, "namespace")?;
        self.with(py, |r| r.clear_namespace(ns))
    }

    /// Reclaims entries of dead owners and leftovers of dead writers; returns how many.
    fn sweep(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |r| r.sweep())
    }

    // -- reading -----------------------------------------------------------------------

    /// The owner pid of (ns, name), or None (whatever the owner's liveness).
    /// The fastest read: the key is read in place, nothing is allocated.
    fn lookup_pid(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
    ) -> PyResult<Option<u32>> {
        let (ns, name) = (key(ns, "namespace")?, key(name, "name")?);
        self.with(py, |r| r.lookup_pid(ns, name))
    }

    /// The owner pid of a prepared `Key`, or None: no validation, packing
    /// or hashing per call.
    fn lookup_pid_key(
        &self,
        py: Python<'_>,
        key: &Bound<'_, crate::service::Key>,
    ) -> PyResult<Option<u32>> {
        let k = &key.get().key;
        self.with(py, |r| r.lookup_pid_key(k))
    }

    /// A cached reference to (ns, name): see `Service`.
    fn service(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
    ) -> PyResult<crate::service::Service> {
        let (ns, name) = (key(ns, "namespace")?, key(name, "name")?);
        self.with(py, |r| r.service(ns, name))
            .map(crate::service::Service::new)
    }

    /// The entry of (ns, name), or None, whatever its owner's liveness.
    fn lookup(
        slf: &Bound<'_, Self>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Py<Entry>>> {
        let (k, n) = (key(ns, "namespace")?, key(name, "name")?);
        let e = slf.get().with(slf.py(), |r| r.lookup(k, n))?;
        Self::entry(slf, ns, name, e)
    }

    /// Like `lookup`, but None for an entry whose owner is dead (which is
    /// reclaimed on the way).
    fn lookup_checked(
        slf: &Bound<'_, Self>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Py<Entry>>> {
        let (k, n) = (key(ns, "namespace")?, key(name, "name")?);
        let e = slf.get().with(slf.py(), |r| r.lookup_checked(k, n))?;
        Self::entry(slf, ns, name, e)
    }

    /// Only the metadata of (ns, name), or None.
    fn lookup_metadata<'py>(
        &self,
        py: Python<'py>,
        ns: &Bound<'py, PyAny>,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let (ns, name) = (key(ns, "namespace")?, key(name, "name")?);
        let e = self.with(py, |r| r.lookup(ns, name))?;
        Ok(e.map(|e| PyBytes::new(py, &e.metadata)))
    }

    /// Whether the owner of (ns, name) is alive, judged now: a `Liveness`,
    /// or None if the key is not registered. Changes nothing (unlike
    /// `lookup_checked`, which reclaims an entry of a dead owner).
    fn owner_liveness<'py>(
        &self,
        py: Python<'py>,
        ns: &Bound<'py, PyAny>,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (ns, name) = (key(ns, "namespace")?, key(name, "name")?);
        match self.with(py, |r| r.owner_liveness(ns, name))? {
            None => Ok(None),
            Some(l) => values::liveness(py, l).map(Some),
        }
    }

    /// Every entry of `ns`, sorted by name.
    fn list(slf: &Bound<'_, Self>, ns: &Bound<'_, PyAny>) -> PyResult<Vec<Py<Entry>>> {
        let k = key(ns, "namespace")?;
        let v = slf.get().with(slf.py(), |r| r.list(k))?;
        v.into_iter()
            .map(|e| Entry::from_list(slf.py(), e, Some(weak(slf)?)))
            .collect()
    }

    /// Every entry of every namespace, sorted by (namespace, name).
    fn list_all(slf: &Bound<'_, Self>) -> PyResult<Vec<Py<Entry>>> {
        let v = slf.get().with(slf.py(), |r| r.list_all())?;
        v.into_iter()
            .map(|e| Entry::from_list(slf.py(), e, Some(weak(slf)?)))
            .collect()
    }

    /// The namespaces that hold at least one entry, sorted.
    fn namespaces(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.with(py, |r| r.namespaces())
    }

    /// Sizes and counters of the registry (`procreg.Stats`).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = self.handle(py)?;
        let s = py.detach(|| h.stats()).map_err(|e| to_py(py, e))?;
        values::stats(py, s)
    }

    /// Checks owners and leftovers of dead writers (`procreg.Health`).
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = self.handle(py)?;
        let s = py.detach(|| h.health_check()).map_err(|e| to_py(py, e))?;
        values::health(py, s)
    }

    /// The latest committed revision: every committed change of any process adds one.
    fn revision(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |r| r.revision())
    }

    // -- waiting, watching, leases, reaping ---------------------------------------------

    /// Waits until (ns, name) is registered by a live owner and returns its
    /// entry; at once if it already is. `timeout` in seconds (None: no
    /// limit); raises `Timeout` when it runs out. The GIL is released.
    #[pyo3(signature = (ns, name, timeout))]
    fn wait_for(
        slf: &Bound<'_, Self>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Py<Entry>>> {
        let py = slf.py();
        let me = slf.get();
        let (k, n) = (key(ns, "namespace")?, key(name, "name")?);
        let limit = match timeout {
            Some(t) if !t.is_none() => Some(seconds(t, "timeout")?),
            _ => None,
        };
        let deadline = limit.map(|s| Instant::now() + Duration::from_secs_f64(s.min(1e9)));
        loop {
            let h = me.handle(py)?;
            let slice = match deadline {
                None => WAIT_SLICE,
                Some(d) => d.saturating_duration_since(Instant::now()).min(WAIT_SLICE),
            };
            match py.detach(|| h.wait_for(k, n, slice)) {
                Ok(e) => return Self::entry(slf, ns, name, Some(e)),
                Err(procreg::Error::Timeout { .. }) => {}
                Err(e) => return Err(to_py(py, e)),
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(raise(
                    py,
                    "Timeout",
                    format!(
                        "key {} in namespace {} was not registered by a live process within {} s",
                        name.repr()?,
                        ns.repr()?,
                        limit.unwrap_or(0.0)
                    ),
                ));
            }
        }
    }

    // -- groups and queries (arguments and errors: groups.rs) ---------------------------

    /// `join(ns, group, pid, metadata)` with every argument given (the
    /// Python method `join` supplies the default metadata); the member's
    /// version.
    fn _join(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        group: &Bound<'_, PyAny>,
        pid: &Bound<'_, PyAny>,
        meta: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let (k, g) = (key(ns, "namespace")?, key(group, "group")?);
        let p = member_pid(pid)?;
        let m = metadata(meta)?;
        self.try_with(py, |r| r.join(k, g, p, &m))?
            .map_err(|e| member_error(py, e, ns, group, p))
    }

    /// `join_self(ns, group, metadata)` with every argument given.
    fn _join_self(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        group: &Bound<'_, PyAny>,
        meta: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let (k, g) = (key(ns, "namespace")?, key(group, "group")?);
        let m = metadata(meta)?;
        self.try_with(py, |r| r.join_self(k, g, &m))?
            .map_err(|e| member_error(py, e, ns, group, std::process::id()))
    }

    /// Removes member `pid` from `group`; False if it was not a member.
    fn leave(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        group: &Bound<'_, PyAny>,
        pid: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let (k, g) = (key(ns, "namespace")?, key(group, "group")?);
        let p = member_pid(pid)?;
        self.with(py, |r| r.leave(k, g, p))
    }

    /// Replaces the metadata of member `pid` of `group`; the new version.
    /// `NotFound` if `pid` is not a member.
    fn update_member_metadata(
        &self,
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        group: &Bound<'_, PyAny>,
        pid: &Bound<'_, PyAny>,
        metadata: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let (k, g) = (key(ns, "namespace")?, key(group, "group")?);
        let p = member_pid(pid)?;
        let m = crate::convert::metadata(metadata)?;
        self.try_with(py, |r| r.update_member_metadata(k, g, p, &m))?
            .map_err(|e| member_error(py, e, ns, group, p))
    }

    /// Member `pid` of `group`, or None if it is not one (whatever its
    /// process's liveness).
    fn member(
        slf: &Bound<'_, Self>,
        ns: &Bound<'_, PyAny>,
        group: &Bound<'_, PyAny>,
        pid: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Py<Entry>>> {
        let (k, g) = (key(ns, "namespace")?, key(group, "group")?);
        let p = member_pid(pid)?;
        match slf.get().with(slf.py(), |r| r.member(k, g, p))? {
            None => Ok(None),
            Some(e) => Entry::from_list(slf.py(), e, Some(weak(slf)?)).map(Some),
        }
    }

    /// Whether the process of member `pid` of `group` is alive, judged now:
    /// a `Liveness`, or None if `pid` is not a member. Changes nothing.
    fn member_liveness<'py>(
        &self,
        py: Python<'py>,
        ns: &Bound<'py, PyAny>,
        group: &Bound<'py, PyAny>,
        pid: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (k, g) = (key(ns, "namespace")?, key(group, "group")?);
        let p = member_pid(pid)?;
        match self.with(py, |r| r.member_liveness(k, g, p))? {
            None => Ok(None),
            Some(l) => values::liveness(py, l).map(Some),
        }
    }

    /// The members of `group`, sorted by pid (`member` True, `name` the
    /// group), including members whose process died until something
    /// reclaims them.
    fn members(
        slf: &Bound<'_, Self>,
        ns: &Bound<'_, PyAny>,
        group: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Py<Entry>>> {
        let (k, g) = (key(ns, "namespace")?, key(group, "group")?);
        let v = slf.get().with(slf.py(), |r| r.members(k, g))?;
        v.into_iter()
            .map(|e| Entry::from_list(slf.py(), e, Some(weak(slf)?)))
            .collect()
    }

    /// Every member of every group of `ns` (None: of every namespace),
    /// sorted by (namespace, group, pid).
    #[pyo3(signature = (ns = None))]
    fn list_members(
        slf: &Bound<'_, Self>,
        ns: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Entry>>> {
        let k = opt_key(ns, "namespace")?;
        let v = slf.get().with(slf.py(), |r| r.list_members(k))?;
        v.into_iter()
            .map(|e| Entry::from_list(slf.py(), e, Some(weak(slf)?)))
            .collect()
    }

    /// The entries and members of `ns` (None: every namespace) whose
    /// metadata has every `field=value` term of `query`, sorted by
    /// (namespace, name, member, pid). `ns` is keyword-only: every other
    /// method takes the namespace first, so a positional one here could be
    /// swapped with the query unnoticed.
    #[pyo3(signature = (query, *, ns = None))]
    fn select(
        slf: &Bound<'_, Self>,
        query: &Bound<'_, PyAny>,
        ns: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Entry>>> {
        let q = crate::groups::query(query)?;
        let k = opt_key(ns, "namespace")?;
        let v = slf.get().with(slf.py(), |r| r.select(k, q))?;
        v.into_iter()
            .map(|e| Entry::from_list(slf.py(), e, Some(weak(slf)?)))
            .collect()
    }

    /// Waits until `group` has at least `n` members whose process is alive
    /// (or cannot be judged from here) and returns them; at once if it
    /// already has. `timeout` in seconds (None: no limit); raises `Timeout`
    /// when it runs out. The GIL is released.
    #[pyo3(signature = (ns, group, n, timeout))]
    fn wait_for_members(
        slf: &Bound<'_, Self>,
        ns: &Bound<'_, PyAny>,
        group: &Bound<'_, PyAny>,
        n: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Entry>>> {
        let py = slf.py();
        let me = slf.get();
        let (k, g) = (key(ns, "namespace")?, key(group, "group")?);
        let n = count(n)?;
        let limit = match timeout {
            Some(t) if !t.is_none() => Some(seconds(t, "timeout")?),
            _ => None,
        };
        let deadline = limit.map(|s| Instant::now() + Duration::from_secs_f64(s.min(1e9)));
        loop {
            let h = me.handle(py)?;
            let slice = match deadline {
                None => WAIT_SLICE,
                Some(d) => d.saturating_duration_since(Instant::now()).min(WAIT_SLICE),
            };
            // Each slice attaches a watcher and then counts (the library's
            // order), so no join between two slices is missed.
            match py.detach(|| h.wait_for_members(k, g, n, slice)) {
                Ok(v) => {
                    return v
                        .into_iter()
                        .map(|e| Entry::from_list(py, e, Some(weak(slf)?)))
                        .collect();
                }
                Err(procreg::Error::Timeout { .. }) => {}
                Err(e) => return Err(to_py(py, e)),
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // The count as of now, for the message (n = 0 returns at once).
                let have = py
                    .detach(|| h.wait_for_members(k, g, 0, Duration::ZERO))
                    .map_or(0, |v| v.len());
                return Err(members_timeout(
                    py,
                    ns,
                    group,
                    n,
                    have,
                    limit.unwrap_or(0.0),
                ));
            }
        }
    }

    /// A `Watcher` of the changes of `ns` (None: every namespace) after
    /// revision `from_revision` (None: the current revision).
    #[pyo3(signature = (ns = None, from_revision = None))]
    fn watch(
        &self,
        py: Python<'_>,
        ns: Option<&Bound<'_, PyAny>>,
        from_revision: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Watcher> {
        let k = opt_key(ns, "namespace")?;
        let from = match from_revision.filter(|v| !v.is_none()) {
            None => self.revision(py)?,
            Some(v) => {
                if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
                    return Err(PyTypeError::new_err(format!(
                        "from_revision must be int or None, not {}",
                        type_name(v)
                    )));
                }
                v.extract::<u64>().map_err(|_| {
                    invalid_argument(py, format!("from_revision={v} is out of range"))
                })?
            }
        };
        let h = self.handle(py)?;
        let w = py.detach(|| h.watch(k, from)).map_err(|e| to_py(py, e))?;
        Ok(Watcher::new(w, k.map(str::to_owned), from))
    }

    /// Starts a reaper thread (inside the library) that reclaims entries
    /// within milliseconds of their owners' death and sweeps every
    /// `interval` seconds anyway. It holds its own reference to the registry.
    #[pyo3(signature = (interval = None))]
    fn spawn_reaper(
        &self,
        py: Python<'_>,
        interval: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Reaper> {
        let d = match interval.filter(|v| !v.is_none()) {
            None => Duration::from_secs(1),
            Some(v) => {
                let s = seconds(v, "interval")?;
                millis(py, s, "interval", 1)?
            }
        };
        let h = self.handle(py)?;
        let r = h.spawn_reaper(d).map_err(|e| to_py(py, e))?;
        Ok(Reaper::new(r, self.shown.clone()))
    }
}

/// Removes the segment at `url` (only a procreg segment, only by its
/// creator's user). Open handles keep working on the unlinked file.
#[pyfunction]
pub(crate) fn destroy(py: Python<'_>, url: &Bound<'_, PyAny>) -> PyResult<()> {
    let s = url
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("url must be str, not {}", type_name(url))))?
        .to_str()
        .map_err(|_| invalid_argument(py, "url is not valid UTF-8".into()))?;
    if s.contains('\0') {
        return Err(invalid_argument(
            py,
            format!("url {s:?} contains a NUL character"),
        ));
    }
    py.detach(|| procreg::Registry::destroy(s))
        .map_err(|e| to_py(py, e))
}
