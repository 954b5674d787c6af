//! The panic boundary: [`ffi!`], the one wrapper of every exported body.

use super::error::record;
use super::status::procreg_status;

/// Runs the body of an exported function inside `catch_unwind`, so that no
/// panic ever unwinds into C.
///
/// * `ffi!({ body })`: the body returns `FfiResult`; the function returns
///   `PROCREG_OK`, the status of the failure (recording its message for
///   procreg_last_error_message), or `PROCREG_E_PANIC`.
/// * `ffi!(or FALLBACK, { body })`: for the few functions that return a
///   value rather than a status; a panic returns `FALLBACK`.
///
/// The exported signature (`no_mangle`, `extern "C"`) stays outside the macro:
/// cbindgen reads signatures from the source and does not expand macros.
/// `tests/c_abi.rs` checks that every exported body is one `ffi!`.
macro_rules! ffi {
    ({ $($body:tt)* }) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> $crate::ffi::error::FfiResult { $($body)* },
        )) {
            Ok(Ok(())) => $crate::ffi::status::procreg_status::PROCREG_OK,
            Ok(Err(f)) => $crate::ffi::error::fail(f),
            Err(payload) => $crate::ffi::panic::panicked(payload),
        }
    }};
    (or $fallback:expr, { $($body:tt)* }) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(v) => v,
            Err(payload) => {
                $crate::ffi::panic::panicked(payload);
                $fallback
            }
        }
    }};
}

/// Records the message of a caught panic; returns `PROCREG_E_PANIC`.
#[cold]
pub(crate) fn panicked(payload: Box<dyn std::any::Any + Send>) -> procreg_status {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    record(
        format!("procreg panicked (a bug; please report it): {what}"),
        0,
    );
    procreg_status::PROCREG_E_PANIC
}
