//! `procreg.Key` and `procreg.Service`: a key prepared once, and a cached
//! reference to one service (`procreg::Key`, `procreg::Service`).

use crate::convert::key;
use crate::errors::to_py;
use pyo3::prelude::*;
use std::sync::Mutex;

/// A (namespace, name) validated, packed and hashed once: `reg.lookup_pid_key(k)`
/// then skips that work. Usable with any registry whose limits admit it.
#[pyclass(frozen, module = "procreg", name = "Key")]
pub struct Key {
    pub(crate) key: procreg::Key,
}

#[pymethods]
impl Key {
    #[new]
    fn new(py: Python<'_>, ns: &Bound<'_, PyAny>, name: &Bound<'_, PyAny>) -> PyResult<Key> {
        let (ns, name) = (key(ns, "namespace")?, key(name, "name")?);
        procreg::Key::new(ns, name)
            .map(|key| Key { key })
            .map_err(|e| to_py(py, e))
    }

    /// The namespace.
    #[getter]
    fn namespace(&self) -> &str {
        self.key.namespace()
    }

    /// The name.
    #[getter]
    fn name(&self) -> &str {
        self.key.name()
    }

    fn __repr__(&self) -> String {
        format!("Key({:?}, {:?})", self.key.namespace(), self.key.name())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Key>().is_ok_and(|o| o.get().key == self.key)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{BuildHasher, RandomState};
        thread_local!(static S: RandomState = RandomState::new());
        S.with(|s| s.hash_one((self.key.namespace(), self.key.name())))
    }
}

/// A cached reference to one service of one registry, from
/// `reg.service(ns, name)`: `pid()` answers from its cache while the entry
/// is unchanged and looks the key up again when it changed; it never
/// returns an entry unregistered or replaced before the call began.
#[pyclass(frozen, module = "procreg", name = "Service")]
pub struct Service {
    svc: Mutex<procreg::Service>,
}

impl Service {
    pub(crate) fn new(svc: procreg::Service) -> Service {
        Service {
            svc: Mutex::new(svc),
        }
    }
}

#[pymethods]
impl Service {
    /// The owner pid, or None if the key is not registered.
    fn pid(&self, py: Python<'_>) -> PyResult<Option<u32>> {
        let mut s = self.svc.lock().unwrap_or_else(|p| p.into_inner());
        s.pid().map_err(|e| to_py(py, e))
    }

    /// The prepared key of this service.
    #[getter]
    fn key(&self) -> Key {
        let s = self.svc.lock().unwrap_or_else(|p| p.into_inner());
        Key {
            key: s.key().clone(),
        }
    }

    fn __repr__(&self) -> String {
        let s = self.svc.lock().unwrap_or_else(|p| p.into_inner());
        format!(
            "Service({:?}, {:?} in {})",
            s.key().namespace(),
            s.key().name(),
            s.registry().url()
        )
    }
}
