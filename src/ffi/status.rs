//! `procreg_status`, `procreg_strerror` and the mapping of [`Error`] to a
//! status, all generated from the one list in `status_list.rs`.

use crate::Error;
use std::ffi::{CStr, c_char, c_int};

/// Expands the status list (see `status_list.rs`) into the enum, the table
/// of every status and the mapping of a library error.
macro_rules! procreg_statuses {
    (
        $(#[doc = $edoc:literal])*
        pub enum $enum:ident {
            $(
                $(#[doc = $doc:literal])*
                $name:ident = $num:literal => $msg:literal $(from $pat:pat)?,
            )*
        }
    ) => {
        $(#[doc = $edoc])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $enum {
            $( $(#[doc = $doc])* $name = $num, )*
        }

        /// Every status: number, C name and message, in declaration order.
        pub(crate) const ALL: &[(c_int, &str, &CStr)] = &[
            $( ($num, stringify!($name), {
                const M: &CStr = match CStr::from_bytes_with_nul(concat!($msg, "\0").as_bytes()) {
                    Ok(m) => m,
                    Err(_) => panic!("a status message holds a NUL"),
                };
                M
            }), )*
        ];

        /// The status of a library error.
        pub(crate) fn status_of(e: &Error) -> $enum {
            match e {
                $( $( $pat => $enum::$name, )? )*
                #[allow(unreachable_patterns)] // Error is non_exhaustive
                _ => $enum::PROCREG_E_UNKNOWN,
            }
        }
    };
}

include!("status_list.rs");

/// Numbers of statuses that were retired: never reused for a new status
/// (checked by the tests below).
#[cfg(test)]
const RETIRED: &[c_int] = &[];

/// A status received from C: any `int` (C may pass a value that is not a
/// `procreg_status`, which a Rust enum parameter could not soundly hold).
/// Appears in the header as `procreg_status`.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusArg(pub c_int);

/// A static, NUL-terminated description of `status` (also for unknown values).
#[unsafe(no_mangle)]
pub extern "C" fn procreg_strerror(status: StatusArg) -> *const c_char {
    ffi!(or c"not a procreg status".as_ptr(), {
        ALL.iter()
            .find(|(n, ..)| *n == status.0)
            .map_or(c"not a procreg status", |(_, _, m)| m)
            .as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_numbers_are_unique_and_never_a_retired_one() {
        let mut seen = std::collections::HashSet::new();
        for (n, name, _) in ALL {
            assert!(seen.insert(*n), "{name} reuses {n}");
            assert!(!RETIRED.contains(n), "{name} reuses retired {n}");
        }
    }

    /// The numbers of the first release: this list may only grow.
    #[test]
    fn published_status_numbers_never_change() {
        let published = [
            ("PROCREG_OK", 0),
            ("PROCREG_E_ALREADY_EXISTS", 1),
            ("PROCREG_E_INVALID_KEY", 2),
            ("PROCREG_E_METADATA_TOO_LARGE", 3),
            ("PROCREG_E_PROCESS_NOT_ALIVE", 4),
            ("PROCREG_E_NOT_FOUND", 5),
            ("PROCREG_E_FULL", 6),
            ("PROCREG_E_BUSY", 7),
            ("PROCREG_E_INCOMPATIBLE_SEGMENT", 8),
            ("PROCREG_E_PERMISSION_DENIED", 9),
            ("PROCREG_E_INVALID_ARGUMENT", 10),
            ("PROCREG_E_NO_SUCH_REGISTRY", 11),
            ("PROCREG_E_REGISTRY_EXISTS", 12),
            ("PROCREG_E_IO", 13),
            ("PROCREG_E_TIMEOUT", 14),
            ("PROCREG_E_LAGGED", 15),
            ("PROCREG_E_UNAVAILABLE", 16),
            ("PROCREG_E_NULL_ARGUMENT", 100),
            ("PROCREG_E_INVALID_UTF8", 101),
            ("PROCREG_E_BUFFER_TOO_SMALL", 102),
            ("PROCREG_E_PANIC", 103),
            ("PROCREG_E_UNKNOWN", 199),
        ];
        for (name, n) in published {
            assert!(
                ALL.iter().any(|(m, s, _)| *m == n && *s == name) || RETIRED.contains(&n),
                "{name} = {n} was renumbered or removed without retiring it"
            );
        }
    }

    #[test]
    fn every_library_error_has_its_own_status() {
        let e = Error::NotFound {
            namespace: "n".into(),
            name: "k".into(),
        };
        assert_eq!(status_of(&e), procreg_status::PROCREG_E_NOT_FOUND);
        let e = Error::Busy("x".into());
        assert_eq!(status_of(&e), procreg_status::PROCREG_E_BUSY);
    }

    #[test]
    fn strerror_comes_from_the_list() {
        for (n, _, m) in ALL {
            // SAFETY: procreg_strerror returns a static NUL-terminated string.
            let s = unsafe { CStr::from_ptr(procreg_strerror(StatusArg(*n))) };
            assert_eq!(s, *m);
        }
        // SAFETY: as above.
        let s = unsafe { CStr::from_ptr(procreg_strerror(StatusArg(999))) };
        assert_eq!(s, c"not a procreg status");
    }
}
