//! `procreg.Watcher` and `procreg.Reaper`: a stream of changes and a reaper
//! thread. Each holds its own reference to the registry (inside the
//! library), so both outlive `Registry.close()`.

use crate::errors::{closed, to_py};
use crate::registry::WAIT_SLICE;
use crate::values;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, TryLockError};
use std::time::{Duration, Instant};

/// A stream of the registry's changes, from `Registry.watch`.
///
/// Used by one thread at a time (a concurrent `next` raises RuntimeError);
/// `close()` works from any thread: it frees the watcher at once, or, when
/// a `next` is running, as soon as that call returns (within 0.25 s).
#[pyclass(frozen, module = "procreg", name = "Watcher")]
pub struct Watcher {
    inner: Mutex<Option<procreg::Watcher>>,
    closing: AtomicBool,
    /// The namespace watched (None: every namespace).
    #[pyo3(get)]
    namespace: Option<String>,
    /// The revision the watcher started after.
    #[pyo3(get)]
    from_revision: u64,
}

impl Watcher {
    pub(crate) fn new(w: procreg::Watcher, namespace: Option<String>, from_revision: u64) -> Self {
        Watcher {
            inner: Mutex::new(Some(w)),
            closing: AtomicBool::new(false),
            namespace,
            from_revision,
        }
    }

    fn closed_err(&self, py: Python<'_>) -> PyErr {
        let ns = match &self.namespace {
            Some(n) => format!("'{n}'"),
            None => "None".into(),
        };
        closed(py, &format!("watcher of namespace {ns}"))
    }

    /// The next event; Ok(None) once the watcher is closed.
    fn next_event<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let deadline = timeout.map(|s| Instant::now() + Duration::from_secs_f64(s.min(1e9)));
        let mut g = match self.inner.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err(
                    "Watcher.next is running in another thread; use a watcher from one thread at a time",
                ));
            }
        };
        let out = loop {
            if self.closing.load(Ordering::Acquire) {
                break Ok(None);
            }
            let Some(w) = g.as_mut() else { break Ok(None) };
            let slice = match deadline {
                None => WAIT_SLICE,
                Some(d) => d.saturating_duration_since(Instant::now()).min(WAIT_SLICE),
            };
            match py.detach(|| w.next(slice)) {
                Ok(ev) => break values::event(py, ev).map(Some),
                Err(procreg::Error::Timeout { .. }) => {}
                Err(e) => break Err(to_py(py, e)),
            }
            if let Err(e) = py.check_signals() {
                break Err(e);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Err(crate::errors::raise(
                    py,
                    "Timeout",
                    format!("no change within {} s", timeout.unwrap_or(0.0)),
                ));
            }
        };
        if self.closing.load(Ordering::Acquire) {
            // close() came while this call ran: free the watcher here.
            let w = g.take();
            drop(g);
            py.detach(move || drop(w));
        }
        out
    }
}

#[pymethods]
impl Watcher {
    /// The next change, waiting up to `timeout` seconds (None: no limit).
    /// Raises `Timeout` if none came, `Lagged` if changes were overwritten
    /// before they were read, `RegistryClosed` after `close()`. The wait
    /// releases the GIL.
    #[pyo3(signature = (timeout = None))]
    fn next<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = match timeout {
            Some(t) if !t.is_none() => Some(crate::convert::seconds(t, "timeout")?),
            _ => None,
        };
        match self.next_event(py, t)? {
            Some(ev) => Ok(ev),
            None => Err(self.closed_err(py)),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Yields events until the watcher is closed.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.next_event(py, None)
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Stops the watcher (idempotent, any thread).
    fn close(&self, py: Python<'_>) {
        self.closing.store(true, Ordering::Release);
        if let Ok(mut g) = self.inner.try_lock() {
            let w = g.take();
            drop(g);
            py.detach(move || drop(w));
        }
        // else: the thread inside next() frees it when its call returns.
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { "closed" } else { "open" };
        let ns = match &self.namespace {
            Some(n) => format!("'{n}'"),
            None => "None".into(),
        };
        format!("<procreg.Watcher namespace={ns} {state}>")
    }
}

/// A reaper thread from `Registry.spawn_reaper`: reclaims entries of dead
/// owners within milliseconds, until `stop()` (or the end of a `with`
/// block, or garbage collection).
#[pyclass(frozen, module = "procreg", name = "Reaper")]
pub struct Reaper {
    inner: Mutex<Option<procreg::Reaper>>,
    final_count: AtomicU64,
    /// The url of the registry it reaps.
    #[pyo3(get)]
    url: String,
}

impl Reaper {
    pub(crate) fn new(r: procreg::Reaper, url: String) -> Self {
        Reaper {
            inner: Mutex::new(Some(r)),
            final_count: AtomicU64::new(0),
            url,
        }
    }
}

#[pymethods]
impl Reaper {
    /// True until `stop()`.
    #[getter]
    fn running(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// How many entries the reaper reclaimed so far (after stop: at stop).
    #[getter]
    fn reclaimed(&self) -> u64 {
        match self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            Some(r) => r.reclaimed(),
            None => self.final_count.load(Ordering::Acquire),
        }
    }

    /// Stops the thread (idempotent). Raises the error that had stopped it
    /// early, if any.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let r = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(r) = r else { return Ok(()) };
        self.final_count.store(r.reclaimed(), Ordering::Release);
        match py.detach(move || r.stop()) {
            Ok(n) => {
                self.final_count.store(n, Ordering::Release);
                Ok(())
            }
            Err(e) => Err(to_py(py, e)),
        }
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.running() { "running" } else { "stopped" };
        format!("<procreg.Reaper '{}' {state}>", self.url)
    }
}
