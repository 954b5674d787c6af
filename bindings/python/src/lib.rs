//! `procreg._native`: the Python extension module, PyO3 over the procreg
//! crate. One file per Python class (`registry.rs`, `entry.rs`,
//! `watch.rs`), beside the shared plumbing: argument conversion
//! (`convert.rs`), errors (`errors.rs`) and the value types built by the
//! Python side (`values.rs`).
//!
//! The exception classes and the value dataclasses (`Stats`, `Health`,
//! `Event`, ...) are defined in Python (`procreg/_errors.py`,
//! `procreg/_registry.py`) and looked up once; everything on a hot path
//! (`lookup_pid`, `lookup`, `register`, ...) is native.
//!
//! `service.rs` holds `Key` and `Service`; `groups.rs` the arguments and
//! errors of process groups and `select` (their methods are in `registry.rs`).

mod convert;
mod entry;
mod errors;
mod groups;
mod registry;
mod service;
mod values;
mod watch;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<registry::Registry>()?;
    m.add_class::<entry::Entry>()?;
    m.add_class::<service::Key>()?;
    m.add_class::<service::Service>()?;
    m.add_class::<watch::Watcher>()?;
    m.add_class::<watch::Reaper>()?;
    m.add_function(wrap_pyfunction!(registry::destroy, m)?)?;
    m.add_function(wrap_pyfunction!(library_version, m)?)?;
    m.add("ETCD", cfg!(feature = "etcd"))?;
    Ok(())
}

/// The version of procreg this module was built from ("MAJOR.MINOR.PATCH";
/// the binding is versioned with the library).
#[pyfunction]
fn library_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
