//! Python arguments -> Rust values, with the binding's errors: a wrong type
//! is a `TypeError`, a value out of range an `InvalidArgument`, a string
//! that is not UTF-8 an `InvalidUtf8`, all before the library is called.

use crate::errors::{invalid_argument, raise};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyString};
use std::borrow::Cow;
use std::time::Duration;

/// The name of `v`'s type, for messages.
pub(crate) fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A namespace or name: a `str` whose UTF-8 is borrowed, not copied.
#[inline(always)]
pub(crate) fn key<'a>(v: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a str> {
    match v.cast::<PyString>() {
        Ok(s) => s.to_str().map_err(|_| bad_utf8(v.py(), s, what)),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what} must be str, not {}",
            type_name(v)
        ))),
    }
}

#[cold]
fn bad_utf8(py: Python<'_>, s: &Bound<'_, PyString>, what: &str) -> PyErr {
    raise(
        py,
        "InvalidUtf8",
        format!(
            "{what} {} cannot be encoded as UTF-8 (lone surrogate); keys are text",
            s.repr().map(|r| r.to_string()).unwrap_or_default()
        ),
    )
}

/// An optional namespace.
pub(crate) fn opt_key<'a>(
    v: Option<&'a Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Option<&'a str>> {
    match v {
        Some(v) if !v.is_none() => key(v, what).map(Some),
        _ => Ok(None),
    }
}

/// A pid: an `int` (not a `bool`) in 1..=u32::MAX; 0 is left to the
/// library, which says what to give instead.
pub(crate) fn pid(v: &Bound<'_, PyAny>) -> PyResult<u32> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "pid must be int or None, not {}",
            type_name(v)
        )));
    }
    // An i64 is one C call; an i128 under the limited API is four, with a
    // shifted int allocated (PyO3's slow 128-bit path), so it is only the
    // fallback that names a huge value in the message.
    let n: i128 = match v.extract::<i64>() {
        Ok(n) => i128::from(n),
        Err(_) => v.extract()?,
    };
    u32::try_from(n).map_err(|_| {
        invalid_argument(
            v.py(),
            format!(
                "pid {n} is out of range (a process id is 1 to {})",
                u32::MAX
            ),
        )
    })
}

static META: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Metadata as bytes: `bytes` and `str` directly, anything else through
/// `procreg._registry._meta` (bytearray, memoryview, dict as JSON; a
/// `TypeError` for the rest).
pub(crate) fn metadata<'a>(v: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return match s.to_str() {
            Ok(s) => Ok(Cow::Borrowed(s.as_bytes())),
            Err(_) => Err(raise(
                v.py(),
                "InvalidUtf8",
                "metadata str cannot be encoded as UTF-8 (lone surrogate)".into(),
            )),
        };
    }
    let py = v.py();
    let f = META.import(py, "procreg._registry", "_meta")?;
    let b = f.call1((v,))?;
    let b = b.cast_into::<PyBytes>().map_err(PyErr::from)?;
    Ok(Cow::Owned(b.as_bytes().to_vec()))
}

/// A duration in seconds: a finite, non-negative `int` or `float`.
pub(crate) fn seconds(v: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if v.is_instance_of::<PyBool>()
        || !(v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>())
    {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number of seconds, not {}",
            type_name(v)
        )));
    }
    let f: f64 = v.extract().map_err(|_| {
        invalid_argument(
            v.py(),
            format!("{what}={v} is out of range; give a number of seconds"),
        )
    })?;
    if !f.is_finite() || f < 0.0 {
        return Err(invalid_argument(
            v.py(),
            format!("{what}={v} is out of range; give a non-negative number of seconds"),
        ));
    }
    Ok(f)
}

/// Seconds as a `Duration` of whole milliseconds (at least `min_ms` when
/// positive, so 0.0001 s is not silently 0).
pub(crate) fn millis(py: Python<'_>, secs: f64, what: &str, min_ms: u64) -> PyResult<Duration> {
    let ms = (secs * 1000.0).round();
    if ms >= u64::MAX as f64 {
        return Err(invalid_argument(
            py,
            format!("{what}={secs} s is out of range"),
        ));
    }
    let mut ms = ms as u64;
    if secs > 0.0 {
        ms = ms.max(min_ms);
    }
    Ok(Duration::from_millis(ms))
}

/// An optional size option: `None` -> not set; a positive `int` otherwise.
pub(crate) fn limit(v: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<usize>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be int or None, not {}",
            type_name(v)
        )));
    }
    let n: i128 = v.extract()?;
    if !(1..=(1i128 << 62)).contains(&n) {
        return Err(invalid_argument(
            v.py(),
            format!("{what}={n} is out of range; give a positive number or None for the default"),
        ));
    }
    Ok(Some(n as usize))
}

/// A `bool` option (not merely truthy).
pub(crate) fn flag(v: &Bound<'_, PyAny>, what: &str) -> PyResult<bool> {
    if !v.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be bool, not {}",
            type_name(v)
        )));
    }
    v.extract()
}
