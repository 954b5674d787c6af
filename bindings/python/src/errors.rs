//! procreg errors as the Python exceptions of `procreg/_errors.py`, with
//! messages that speak Python: the library's messages name Rust calls
//! (`Builder::allow_foreign_owner(true)`, `sweep()`) and Rust ranges
//! (`1..=200`), which mean nothing to a Python user.

use procreg::Error;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// `procreg._errors`, imported once.
fn module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS
        .get_or_try_init(py, || Ok(py.import("procreg._errors")?.unbind()))
        .map(|m| m.bind(py))
}

/// The exception `class_name(message, status)` of `procreg._errors`.
pub(crate) fn raise(py: Python<'_>, class_name: &str, message: String) -> PyErr {
    build(py, class_name, message, None)
}

/// The exception `class_name(message, status, **extra)` of `procreg._errors`.
pub(crate) fn build(
    py: Python<'_>,
    class_name: &str,
    message: String,
    extra: Option<(&str, u64)>,
) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let cls = module(py)?.getattr(class_name)?;
        let kwargs = pyo3::types::PyDict::new(py);
        if let Some((k, v)) = extra {
            kwargs.set_item(k, v)?;
        }
        Ok(PyErr::from_value(cls.call((message,), Some(&kwargs))?))
    })();
    made.unwrap_or_else(|e| e)
}

/// `InvalidArgument(message)`.
pub(crate) fn invalid_argument(py: Python<'_>, message: String) -> PyErr {
    raise(py, "InvalidArgument", message)
}

/// `RegistryClosed` for the registry at `url`.
pub(crate) fn closed(py: Python<'_>, what: &str) -> PyErr {
    raise(
        py,
        "RegistryClosed",
        format!("{what} is closed; open a new Registry"),
    )
}

/// The Python exception for a procreg error.
pub(crate) fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let msg = pythonic(&e.to_string());
    match e {
        Error::AlreadyExists { pid, .. } => {
            build(py, "AlreadyExists", msg, Some(("pid", u64::from(pid))))
        }
        Error::InvalidKey(_) => raise(py, "InvalidKey", msg),
        Error::MetadataTooLarge { .. } => raise(py, "MetadataTooLarge", msg),
        Error::ProcessNotAlive(_) => raise(py, "ProcessNotAlive", msg),
        Error::NotFound { .. } => raise(py, "NotFound", msg),
        Error::Full { .. } => raise(py, "RegistryFull", msg),
        Error::Busy(_) => raise(py, "Busy", msg),
        Error::IncompatibleSegment(_) => raise(py, "IncompatibleSegment", msg),
        Error::PermissionDenied(_) => raise(py, "PermissionDenied", msg),
        Error::InvalidArgument(_) => raise(py, "InvalidArgument", msg),
        Error::NoSuchRegistry(_) => raise(py, "NoSuchRegistry", msg),
        Error::RegistryExists(_) => raise(py, "RegistryExists", msg),
        Error::Io { .. } => raise(py, "IoError", msg),
        Error::Timeout { what, waited } => raise(
            py,
            "Timeout",
            format!(
                "timed out after {:.3} s waiting for {what}",
                waited.as_secs_f64()
            ),
        ),
        Error::Lagged { missed } => build(py, "Lagged", msg, Some(("missed", missed))),
        Error::Unavailable(_) => raise(py, "Unavailable", msg),
        _ => raise(py, "UnknownError", msg),
    }
}

/// Rewrites the Rust-isms of a library message for Python users.
pub(crate) fn pythonic(msg: &str) -> String {
    const CALLS: &[(&str, &str)] = &[
        (
            "Use Builder::allow_foreign_owner(true)",
            "Pass allow_foreign_owner=True to Registry()",
        ),
        (
            "use Builder::allow_foreign_owner(true)",
            "pass allow_foreign_owner=True to Registry()",
        ),
        (
            "use Builder::allow_world_writable(true)",
            "pass allow_world_writable=True to Registry()",
        ),
        (
            "Builder::allow_foreign_owner(true)",
            "allow_foreign_owner=True",
        ),
        (
            "Builder::allow_world_writable(true)",
            "allow_world_writable=True",
        ),
        (
            "Builder::max_segment_bytes (procreg put --max-segment-size SIZE)",
            "max_segment_bytes=N to Registry()",
        ),
        ("Builder::etcd_auth", "the url's user= and password="),
        ("Builder::etcd_client_cert", "the url's cert= and key="),
        ("Builder::etcd_ca", "the url's ca="),
        ("run sweep()", "call reg.sweep()"),
        ("with list()", "with reg.list()"),
    ];
    let mut s = msg.to_owned();
    for (rust, python) in CALLS {
        if s.contains(rust) {
            s = s.replace(rust, python);
        }
    }
    // `A..=B` is Rust's inclusive range: "1..=200 bytes" -> "1 to 200 bytes".
    if s.contains("..=") {
        s = s.replace("..=", " to ");
    }
    s
}
