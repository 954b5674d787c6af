//! Why a call failed, and the per-thread detail behind
//! `procreg_last_error_message` and `procreg_last_error_pid`.

use super::status::{procreg_status, status_of};
use crate::Error;
use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::c_char;
use std::ptr;

/// Why a call failed, before it becomes a status and a message.
pub(crate) enum Fail {
    /// Boxed: keeps `Result<(), Fail>` two words wide on the success path.
    Lib(Box<Error>),
    /// A NULL pointer argument, by name.
    Null(&'static str),
    /// A string argument that is not UTF-8, by name.
    Utf8(&'static str),
    /// A caller's buffer is too small; the message says how large it must be.
    Buffer(String),
    /// A library error whose message the C ABI words itself (a group
    /// member's `AlreadyExists` names the member, not a key): the status,
    /// the message and the pid for procreg_last_error_pid.
    Said(procreg_status, String, u32),
    /// `PROCREG_E_NOT_FOUND`, its key already recorded by [`not_found`]
    /// (a miss is a common answer, not an accident: it allocates nothing).
    NotFound,
}

impl From<Error> for Fail {
    #[cold]
    fn from(e: Error) -> Self {
        Fail::Lib(Box::new(e))
    }
}

/// What the body of every exported function returns (see `ffi!`).
pub(crate) type FfiResult = Result<(), Fail>;

/// `InvalidArgument` with a message.
#[cold]
pub(crate) fn invalid(message: String) -> Fail {
    Fail::from(Error::InvalidArgument(message))
}

/// `PROCREG_E_NOT_FOUND` for a key. Allocates nothing (once this thread's
/// detail buffer has grown to the key's length): the key is copied into the
/// buffer, and the message is written only if procreg_last_error_message
/// asks for it. Building `Error::NotFound` and its message here cost seven
/// allocations and six times the time of a hit per miss.
pub(crate) fn not_found(ns: &str, name: &str) -> Fail {
    LAST_ERROR.with(|l| {
        let mut l = l.borrow_mut();
        l.text.clear();
        l.text.push_str(ns);
        l.text.push_str(name);
        l.missing_key = Some(ns.len());
        l.pid = 0;
    });
    Fail::NotFound
}

/// Detail of the last failure of a thread.
struct Last {
    /// The message; for a miss, the key: namespace then name.
    text: String,
    /// For a miss: the namespace's length in `text`.
    missing_key: Option<usize>,
    /// For AlreadyExists, the owner's pid; 0 otherwise.
    pid: u32,
}

impl Last {
    /// The message.
    fn message(&self) -> Cow<'_, str> {
        match self.missing_key {
            None => Cow::Borrowed(&self.text),
            Some(n) => {
                let (namespace, name) = self.text.split_at(n);
                Cow::Owned(
                    Error::NotFound {
                        namespace: namespace.to_owned(),
                        name: name.to_owned(),
                    }
                    .to_string(),
                )
            }
        }
    }
}

thread_local! {
    /// Detail of the last failure on this thread.
    static LAST_ERROR: RefCell<Last> = const {
        RefCell::new(Last { text: String::new(), missing_key: None, pid: 0 })
    };
}

/// Records the detail of a failure on this thread.
pub(crate) fn record(message: String, pid: u32) {
    LAST_ERROR.with(|l| {
        *l.borrow_mut() = Last {
            text: message,
            missing_key: None,
            pid,
        }
    });
}

/// Rewrites the Rust calls a library message names into the C ABI's words
/// (the library speaks of its `Builder`; a C caller sets `procreg_options`).
fn in_c_words(msg: &str) -> String {
    const CALLS: &[(&str, &str)] = &[
        (
            "Builder::allow_foreign_owner(true)",
            "procreg_options.allow_foreign_owner = true",
        ),
        (
            "Builder::allow_world_writable(true)",
            "procreg_options.allow_world_writable = true",
        ),
        (
            "Builder::max_segment_bytes (procreg put --max-segment-size SIZE)",
            "procreg_options.max_segment_bytes",
        ),
        ("Builder::etcd_auth", "the url's user= and password="),
        ("Builder::etcd_client_cert", "the url's cert= and key="),
        ("Builder::etcd_ca", "the url's ca="),
        ("run sweep()", "call procreg_sweep"),
    ];
    let mut s = msg.to_owned();
    for (rust, c) in CALLS {
        if s.contains(rust) {
            s = s.replace(rust, c);
        }
    }
    s
}

/// The status of a failure, after recording its detail.
#[cold]
pub(crate) fn fail(f: Fail) -> procreg_status {
    let (status, message, pid) = match f {
        Fail::Lib(e) => {
            let pid = match &*e {
                Error::AlreadyExists { pid, .. } => *pid,
                _ => 0,
            };
            (status_of(&e), in_c_words(&e.to_string()), pid)
        }
        Fail::Null(what) => (
            procreg_status::PROCREG_E_NULL_ARGUMENT,
            format!("{what} is NULL; pass a valid pointer"),
            0,
        ),
        Fail::Utf8(what) => (
            procreg_status::PROCREG_E_INVALID_UTF8,
            format!("{what} is not valid UTF-8; keys and urls are UTF-8 text"),
            0,
        ),
        Fail::Buffer(m) => (procreg_status::PROCREG_E_BUFFER_TOO_SMALL, m, 0),
        Fail::Said(status, m, pid) => (status, m, pid),
        // Recorded by `not_found`.
        Fail::NotFound => return procreg_status::PROCREG_E_NOT_FOUND,
    };
    record(message, pid);
    status
}

/// Copies the detailed message of the last failed call on this thread into
/// `buf` (at most `len - 1` bytes, always NUL-terminated when `len > 0`) and
/// returns the message's full length in bytes, like snprintf: a result >= len
/// means it was cut. `buf` may be NULL when `len` is 0, to ask for the length.
/// A successful call does not clear the message.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_last_error_message(buf: *mut c_char, len: usize) -> usize {
    ffi!(or 0, {
        LAST_ERROR.with(|l| {
            let l = l.borrow();
            let msg = l.message();
            let msg = msg.as_bytes();
            if !buf.is_null() && len > 0 {
                let n = msg.len().min(len - 1);
                // SAFETY: the caller gives `buf` valid for `len` bytes; n < len.
                unsafe {
                    ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
                    buf.add(n).write(0);
                }
            }
            msg.len()
        })
    })
}

/// The owner pid reported by the last PROCREG_E_ALREADY_EXISTS on this
/// thread, 0 if the last failure was of another kind.
#[unsafe(no_mangle)]
pub extern "C" fn procreg_last_error_pid() -> u32 {
    ffi!(or 0, { LAST_ERROR.with(|l| l.borrow().pid) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_message() -> String {
        LAST_ERROR.with(|l| l.borrow().message().into_owned())
    }

    #[test]
    fn a_miss_reports_the_message_of_the_library_error() {
        for (ns, name) in [("ns", "svc"), ("ä\"q", "tab\there"), ("a", "b")] {
            assert!(matches!(not_found(ns, name), Fail::NotFound));
            let want = Error::NotFound {
                namespace: ns.into(),
                name: name.into(),
            }
            .to_string();
            assert_eq!(last_message(), want);
            assert_eq!(fail(Fail::NotFound), procreg_status::PROCREG_E_NOT_FOUND);
            assert_eq!(last_message(), want, "fail() keeps the recorded key");
        }
        record("other".into(), 7);
        assert_eq!(last_message(), "other");
        assert_eq!(LAST_ERROR.with(|l| l.borrow().pid), 7);
        not_found("x", "y");
        assert_eq!(LAST_ERROR.with(|l| l.borrow().pid), 0);
    }
}
