//! Argument plumbing shared by every C object: C strings, byte buffers,
//! out-pointers, times and host names.

use super::error::Fail;
use std::ffi::{CStr, CString, c_char};
use std::sync::{PoisonError, RwLock};

/// `p` as a shared reference, or `NullArgument` naming it.
///
/// # Safety
/// `p` is NULL or valid for reads as a `T` for `'a`.
pub(crate) unsafe fn non_null<'a, T>(p: *const T, what: &'static str) -> Result<&'a T, Fail> {
    // SAFETY: the caller promises a NULL or valid pointer; NULL is rejected here.
    unsafe { p.as_ref() }.ok_or(Fail::Null(what))
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
#[inline(always)]
pub(crate) unsafe fn text<'a>(p: *const c_char, what: &'static str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(Fail::Null(what));
    }
    // Keys are short and almost always ASCII: libc's strlen, then an ASCII
    // check of the slice, costs about half of CStr::to_str's general UTF-8
    // validation on a 24-byte key; anything else takes the general path.
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let n = unsafe { libc::strlen(p) };
    // SAFETY: the `n` bytes before the NUL are readable.
    let b = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) };
    if b.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(b) });
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| Fail::Utf8(what))
}

/// An optional string argument: NULL is `None`.
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn opt_text<'a>(
    p: *const c_char,
    what: &'static str,
) -> Result<Option<&'a str>, Fail> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from the caller.
    unsafe { text(p, what) }.map(Some)
}

/// A byte-buffer argument: NULL is allowed only with length 0.
///
/// # Safety
/// `p` is NULL or valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes<'a>(
    p: *const u8,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Fail::Null(what));
    }
    // SAFETY: non-NULL and valid for `len` bytes by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An out-parameter, checked for NULL before any work.
pub(crate) fn out_ptr<T>(out: *mut T, what: &'static str) -> Result<*mut T, Fail> {
    if out.is_null() {
        Err(Fail::Null(what))
    } else {
        Ok(out)
    }
}

/// A caller's output buffer: NULL is allowed only with capacity 0.
pub(crate) fn out_buf(p: *mut u8, cap: usize, what: &'static str) -> Result<*mut u8, Fail> {
    if p.is_null() && cap > 0 {
        Err(Fail::Null(what))
    } else {
        Ok(p)
    }
}

/// Writes `v` to the out-parameter `out` (checked for NULL before any work).
///
/// # Safety
/// `out` is non-NULL and valid for writes of a `T`.
pub(crate) unsafe fn put<T>(out: *mut T, v: T) {
    // SAFETY: by the caller's contract; `write` neither reads nor drops the old value.
    unsafe { out.write(v) }
}

/// Nanoseconds since the Unix epoch (0 before it, saturated after 2554).
pub(crate) fn nanos(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Milliseconds of a duration, saturated.
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Strings handed to C without an owner (host names, backend kinds),
/// interned: each distinct one is copied once and kept until the process
/// exits, so a `const char *host` in an entry, a view or an event never
/// dangles. A registry has a handful of hosts (one for `shm:` and `mem:`),
/// so the list stays short.
static INTERNED: RwLock<Vec<&'static CStr>> = RwLock::new(Vec::new());

/// The interned, NUL-terminated copy of `s` (cut at a NUL, which a host
/// name never holds).
pub(crate) fn interned(s: &str) -> *const c_char {
    interned_cstr(s).as_ptr()
}

/// [`interned`], as a `CStr`.
pub(crate) fn interned_cstr(s: &str) -> &'static CStr {
    let host = s.split('\0').next().unwrap_or_default();
    let find = |v: &[&'static CStr]| v.iter().find(|h| h.to_bytes() == host.as_bytes()).copied();
    if let Some(p) = find(&INTERNED.read().unwrap_or_else(PoisonError::into_inner)) {
        return p;
    }
    let mut w = INTERNED.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(p) = find(&w) {
        return p;
    }
    let c: &'static CStr = Box::leak(CString::new(host).unwrap_or_default().into_boxed_c_str());
    w.push(c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_name_is_interned_once() {
        let a = interned("interned-host");
        let b = interned(&String::from("interned-host"));
        assert_eq!(a, b);
        // SAFETY: interned strings live until the process exits.
        assert_eq!(unsafe { CStr::from_ptr(a) }, c"interned-host");
        assert_ne!(interned("other-host"), a);
        // SAFETY: as above.
        assert_eq!(unsafe { CStr::from_ptr(interned("a\0b")) }, c"a");
    }
}
