//! Process groups and metadata queries: the arguments of `join`, `leave`,
//! `members`, `wait_for_members`, `select` ... and the errors of members in
//! Python's words. The methods themselves sit in the one `#[pymethods]`
//! block of `registry.rs` (PyO3 allows one per class unless its
//! `multiple-pymethods` feature, and the `inventory` crate, are added).
//!
//! The library names a member's errors after its stored key ("key \"api\"
//! ... is already registered; unregister it first"), which tells a Python
//! user to call the wrong method: here they name the group and the pid and
//! say which `reg.` call fixes it.

use crate::convert::type_name;
use crate::errors::{build, invalid_argument, raise, to_py};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString};

/// A member's pid: an `int` (not a `bool`, not `None`) in 0..=u32::MAX; 0
/// is left to the library (`join` refuses it, `leave` finds no member).
pub(crate) fn member_pid(v: &Bound<'_, PyAny>) -> PyResult<u32> {
    if v.is_none() {
        return Err(PyTypeError::new_err(
            "pid must be int, not None; give the member's pid (os.getpid() for this process, \
             or call join_self(ns, group))",
        ));
    }
    crate::convert::pid(v).map_err(|e| {
        if e.is_instance_of::<PyTypeError>(v.py()) {
            PyTypeError::new_err(format!("pid must be int, not {}", type_name(v)))
        } else {
            e
        }
    })
}

/// The `n` of `wait_for_members`: an `int` (not a `bool`), 0 or more.
pub(crate) fn count(v: &Bound<'_, PyAny>) -> PyResult<usize> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "n must be int, not {}",
            type_name(v)
        )));
    }
    let n: i128 = v.extract()?;
    usize::try_from(n).map_err(|_| {
        invalid_argument(
            v.py(),
            format!("n={n} is out of range; give how many members to wait for (0 or more)"),
        )
    })
}

/// A `select` query: a `str` whose UTF-8 is borrowed.
pub(crate) fn query<'a>(v: &'a Bound<'_, PyAny>) -> PyResult<&'a str> {
    let s = v.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "query must be str, not {}; give field=value terms such as \"role=api port=8080\"",
            type_name(v)
        ))
    })?;
    s.to_str().map_err(|_| {
        raise(
            v.py(),
            "InvalidUtf8",
            format!(
                "query {} cannot be encoded as UTF-8 (lone surrogate)",
                s.repr().map(|r| r.to_string()).unwrap_or_default()
            ),
        )
    })
}

fn repr(v: &Bound<'_, PyAny>) -> String {
    v.repr().map(|r| r.to_string()).unwrap_or_default()
}

/// The Python exception of a failed `join`, `join_self` or
/// `update_member_metadata` of member `pid` of `group`: `AlreadyExists` and
/// `NotFound` speak of members; the other errors are the library's.
pub(crate) fn member_error(
    py: Python<'_>,
    e: procreg::Error,
    ns: &Bound<'_, PyAny>,
    group: &Bound<'_, PyAny>,
    pid: u32,
) -> PyErr {
    let (ns, group) = (repr(ns), repr(group));
    match e {
        procreg::Error::AlreadyExists { alive, .. } => build(
            py,
            "AlreadyExists",
            format!(
                "pid {pid} is already a member of group {group} in namespace {ns} ({alive}); \
                 call reg.update_member_metadata({ns}, {group}, {pid}, metadata) to change \
                 its metadata, or reg.leave({ns}, {group}, {pid}) first"
            ),
            Some(("pid", u64::from(pid))),
        ),
        procreg::Error::NotFound { .. } => raise(
            py,
            "NotFound",
            format!(
                "pid {pid} is not a member of group {group} in namespace {ns}; \
                 call reg.join({ns}, {group}, {pid}) first"
            ),
        ),
        e => to_py(py, e),
    }
}

/// `Timeout` of a `wait_for_members` that waited `secs` seconds.
pub(crate) fn members_timeout(
    py: Python<'_>,
    ns: &Bound<'_, PyAny>,
    group: &Bound<'_, PyAny>,
    n: usize,
    have: usize,
    secs: f64,
) -> PyErr {
    raise(
        py,
        "Timeout",
        format!(
            "group {} in namespace {} did not have {n} live members within {secs} s \
             (it has {have}; members whose process died are not counted)",
            repr(group),
            repr(ns)
        ),
    )
}
