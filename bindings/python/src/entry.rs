//! `procreg.Entry`: one registration, immutable. Native so that a lookup
//! builds it in one allocation; `metadata` (bytes) and `registered_at`
//! (datetime) are made when read.

use crate::convert::{key, type_name};
use crate::registry::Registry;
use crate::values::{datetime, pymod};
use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyString, PyTuple, PyWeakrefMethods, PyWeakrefReference};

/// One registration: who owns (namespace, name), with what metadata, since
/// when. Immutable; compares and hashes by value.
#[pyclass(frozen, module = "procreg", name = "Entry")]
pub struct Entry {
    pub(crate) namespace: Py<PyString>,
    pub(crate) name: Py<PyString>,
    pub(crate) pid: u32,
    pub(crate) metadata: Box<[u8]>,
    pub(crate) registered_at_ns: u64,
    pub(crate) version: u64,
    pub(crate) host: String,
    /// The registry it was read from (for `liveness`), weakly: an Entry
    /// kept around does not keep a registry (an etcd session) open. None
    /// when built by hand.
    pub(crate) registry: Option<Py<PyWeakrefReference>>,
    /// The lease the entry lives under, if any (as of the read).
    pub(crate) lease: Option<procreg::Lease>,
    /// A member of a process group (`name` is the group), not a unique entry.
    pub(crate) member: bool,
}

impl Entry {
    /// Builds the Entry of a lookup; `ns` and `name` are the caller's strings.
    pub(crate) fn from_lookup(
        py: Python<'_>,
        ns: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
        e: procreg::Entry,
        registry: Option<Py<PyWeakrefReference>>,
    ) -> PyResult<Py<Entry>> {
        let as_str = |v: &Bound<'_, PyAny>| -> Py<PyString> {
            match v.cast::<PyString>() {
                Ok(s) => s.clone().unbind(),
                Err(_) => PyString::new(py, "").unbind(),
            }
        };
        Py::new(
            py,
            Entry {
                namespace: as_str(ns),
                name: as_str(name),
                pid: e.pid,
                metadata: e.metadata.into_boxed_slice(),
                registered_at_ns: crate::values::ns_of(e.registered_at),
                version: e.version,
                host: e.host,
                registry,
                lease: e.lease,
                member: e.member,
            },
        )
    }

    /// Builds the Entry of a listing.
    pub(crate) fn from_list(
        py: Python<'_>,
        e: procreg::Entry,
        registry: Option<Py<PyWeakrefReference>>,
    ) -> PyResult<Py<Entry>> {
        Py::new(
            py,
            Entry {
                namespace: PyString::new(py, &e.namespace).unbind(),
                name: PyString::new(py, &e.name).unbind(),
                pid: e.pid,
                metadata: e.metadata.into_boxed_slice(),
                registered_at_ns: crate::values::ns_of(e.registered_at),
                version: e.version,
                host: e.host,
                registry,
                lease: e.lease,
                member: e.member,
            },
        )
    }

    fn key_tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(
            py,
            [
                self.namespace.bind(py).clone().into_any(),
                self.name.bind(py).clone().into_any(),
                self.pid.into_pyobject(py)?.into_any(),
                PyBytes::new(py, &self.metadata).into_any(),
                self.registered_at_ns.into_pyobject(py)?.into_any(),
                self.version.into_pyobject(py)?.into_any(),
                PyString::new(py, &self.host).into_any(),
                PyBool::new(py, self.member).to_owned().into_any(),
            ],
        )
    }
}

#[pymethods]
impl Entry {
    /// What each renewal of the entry's lease grants, in seconds; None
    /// without a lease, or where the entry does not record it (etcd).
    #[getter]
    fn lease_ttl(&self) -> Option<f64> {
        self.lease.and_then(|l| l.ttl).map(|d| d.as_secs_f64())
    }

    /// Seconds left on the entry's lease as of the read (0 once it ran
    /// out); None without a lease, or where not known (etcd).
    #[getter]
    fn lease_remaining(&self) -> Option<f64> {
        self.lease
            .and_then(|l| l.remaining)
            .map(|d| d.as_secs_f64())
    }

    /// The backend's lease id (etcd), else None.
    #[getter]
    fn lease_id(&self) -> Option<i64> {
        self.lease.and_then(|l| l.id)
    }

    #[new]
    #[pyo3(signature = (
        namespace, name, pid, metadata, registered_at, version, host = String::new(), member = false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        namespace: &Bound<'_, PyAny>,
        name: &Bound<'_, PyAny>,
        pid: &Bound<'_, PyAny>,
        metadata: &Bound<'_, PyAny>,
        registered_at: &Bound<'_, PyAny>,
        version: u64,
        host: String,
        member: bool,
    ) -> PyResult<Self> {
        key(namespace, "namespace")?;
        key(name, "name")?;
        let pid = crate::convert::pid(pid)?;
        let metadata = metadata
            .cast::<PyBytes>()
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "metadata must be bytes, not {}",
                    type_name(metadata)
                ))
            })?
            .as_bytes()
            .into();
        static NS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let registered_at_ns: u64 = NS
            .import(py, "procreg._registry", "_ns")?
            .call1((registered_at,))?
            .extract()?;
        Ok(Entry {
            namespace: namespace.cast::<PyString>()?.clone().unbind(),
            name: name.cast::<PyString>()?.clone().unbind(),
            pid,
            metadata,
            registered_at_ns,
            version,
            host,
            registry: None,
            lease: None,
            member,
        })
    }

    /// Namespace of the key.
    #[getter]
    fn namespace(&self, py: Python<'_>) -> Py<PyString> {
        self.namespace.clone_ref(py)
    }
    /// Name of the key; for a member, the name of its group.
    #[getter]
    fn name(&self, py: Python<'_>) -> Py<PyString> {
        self.name.clone_ref(py)
    }
    /// Pid of the owner process (on `host`); for a member, the member.
    #[getter]
    fn pid(&self) -> u32 {
        self.pid
    }
    /// True for a member of a process group (`name` is the group), False
    /// for a unique entry.
    #[getter]
    fn member(&self) -> bool {
        self.member
    }
    /// The metadata bytes.
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.metadata)
    }
    /// When the entry was registered (UTC datetime, to the microsecond).
    #[getter]
    fn registered_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        datetime(py, self.registered_at_ns)
    }
    /// When the entry was registered, in nanoseconds since the Unix epoch.
    #[getter]
    fn registered_at_ns(&self) -> u64 {
        self.registered_at_ns
    }
    /// Changes on every update of this entry (and differs between registrations).
    #[getter]
    fn version(&self) -> u64 {
        self.version
    }
    /// Name of the host the owner runs on (for shm: and mem:, this host).
    #[getter]
    fn host(&self) -> &str {
        &self.host
    }

    /// The metadata decoded as JSON (as stored from a dict).
    fn metadata_json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?
            .call_method1("loads", (PyBytes::new(py, &self.metadata),))
    }

    /// The metadata decoded as UTF-8.
    fn metadata_text<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyBytes::new(py, &self.metadata).call_method1("decode", ("utf-8",))
    }

    /// Whether the owner of this entry's key is alive now: `Liveness.ALIVE`,
    /// `DEAD` (gone, pid reused, or the key no longer held by this pid) or
    /// `UNKNOWN` (cannot be judged from here, e.g. another PID namespace).
    /// Judged at each read; changes nothing. For a member, the liveness of
    /// its process while its pid is still a member of the group (`DEAD`
    /// once it is not).
    #[getter]
    fn liveness<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let Some(reg) = &self.registry else {
            return Err(PyValueError::new_err(
                "this Entry was built by hand, not read from a registry: use Registry.owner_liveness(ns, name)",
            ));
        };
        let Some(reg) = reg.bind(py).upgrade_as::<Registry>()? else {
            return Err(crate::errors::raise(
                py,
                "RegistryClosed",
                "the Registry this Entry was read from is gone; use Registry.owner_liveness(ns, name) on an open one"
                    .into(),
            ));
        };
        let l = reg.get().entry_liveness(
            py,
            self.namespace.bind(py),
            self.name.bind(py),
            self.pid,
            self.member,
        )?;
        crate::values::liveness(py, l)
    }

    /// `liveness == Liveness.ALIVE`.
    #[getter]
    fn alive(&self, py: Python<'_>) -> PyResult<bool> {
        let l = self.liveness(py)?;
        let alive = pymod(py)?.getattr("Liveness")?.getattr("ALIVE")?;
        l.eq(alive)
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        let Ok(other) = other.cast::<Entry>() else {
            return Ok(py.NotImplemented());
        };
        let eq = self.key_tuple(py)?.eq(other.get().key_tuple(py)?)?;
        Ok(match op {
            CompareOp::Eq => eq.into_pyobject(py)?.to_owned().into_any().unbind(),
            CompareOp::Ne => (!eq).into_pyobject(py)?.to_owned().into_any().unbind(),
            _ => py.NotImplemented(),
        })
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        self.key_tuple(py)?.hash()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Entry(namespace={}, name={}, pid={}, metadata={}, registered_at={}, version={}, host={}, member={})",
            self.namespace.bind(py).repr()?,
            self.name.bind(py).repr()?,
            self.pid,
            PyBytes::new(py, &self.metadata).repr()?,
            datetime(py, self.registered_at_ns)?.repr()?,
            self.version,
            PyString::new(py, &self.host).repr()?,
            if self.member { "True" } else { "False" },
        ))
    }

    /// Pickles by value (without the registry: a liveness check on the
    /// unpickled copy needs `Registry.owner_liveness`).
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let cls = py.get_type::<Entry>().into_any();
        let args = PyTuple::new(
            py,
            [
                self.namespace.bind(py).clone().into_any(),
                self.name.bind(py).clone().into_any(),
                self.pid.into_pyobject(py)?.into_any(),
                PyBytes::new(py, &self.metadata).into_any(),
                self.registered_at_ns.into_pyobject(py)?.into_any(),
                self.version.into_pyobject(py)?.into_any(),
                PyString::new(py, &self.host).into_any(),
                PyBool::new(py, self.member).to_owned().into_any(),
            ],
        )?;
        Ok((cls, args))
    }
}
