//! Extensible structs: every struct a caller passes to procreg begins with
//! `size_t struct_size`, set by the caller to `sizeof` the struct it was
//! compiled with. The scheme of Linux's `openat2`/`clone3`
//! (`copy_struct_from_user`):
//!
//! * a caller compiled against an older, smaller struct still works: the
//!   library reads and writes only its `struct_size` bytes, and fields
//!   beyond them take their defaults (0) when read;
//! * a caller compiled against a newer, larger struct works with an older
//!   library as long as the fields this library does not know are zero
//!   (input), and gets them zeroed (output);
//! * a size below the first published version (or absurdly large: an
//!   uninitialised field) is `PROCREG_E_INVALID_ARGUMENT`.
//!
//! The library never changes `struct_size`. Fields are only ever appended,
//! each new one at an offset at or past the previous version's `sizeof`
//! (never in its tail padding, which an older caller leaves uninitialised).

use super::error::{Fail, invalid};
use std::mem::size_of;
use std::ptr;

/// The largest `struct_size` accepted: no procreg struct will grow near it,
/// and an uninitialised `struct_size` is most likely larger.
pub(crate) const MAX_STRUCT_SIZE: usize = 4096;

/// A `#[repr(C)]` struct whose first field is `struct_size: usize`.
///
/// # Safety
/// The implementor is `#[repr(C)]`, its first field is `struct_size: usize`,
/// and any bytes a C caller may write are a valid value of it (integers,
/// floats, pointers, C-ABI bools and `c_int` wrappers only).
pub(crate) unsafe trait Extensible: Copy {
    /// The C name, for messages.
    const NAME: &'static str;
    /// The end of the last field of the first published version: the
    /// smallest `struct_size` accepted.
    const MIN_SIZE: usize;
}

/// The caller's `struct_size` of `*p`, checked.
///
/// # Safety
/// `p` is non-NULL and valid for reads of at least a `usize`.
pub(crate) unsafe fn caller_size<T: Extensible>(p: *const T) -> Result<usize, Fail> {
    // SAFETY: struct_size is the first field (trait contract); `p` is readable.
    let n = unsafe { p.cast::<usize>().read() };
    if !(T::MIN_SIZE..=MAX_STRUCT_SIZE).contains(&n) {
        return Err(invalid(format!(
            "{name}.struct_size is {n}; set it to sizeof({name}) ({size} for this library)",
            name = T::NAME,
            size = size_of::<T>(),
        )));
    }
    Ok(n)
}

/// Reads a caller's input struct of `size` bytes over `defaults`: fields
/// beyond `size` keep their defaults; bytes beyond this library's struct
/// must be zero.
///
/// # Safety
/// `p` is non-NULL and valid for reads of `size` bytes.
pub(crate) unsafe fn read_in<T: Extensible>(
    p: *const T,
    size: usize,
    mut defaults: T,
) -> Result<T, Fail> {
    let ours = size_of::<T>();
    let head = size_of::<usize>();
    let n = size.min(ours);
    // SAFETY: both sides are valid for `n` bytes (caller: `size` >= n;
    // ours: size_of T >= n); an untyped copy of plain-data fields (trait
    // contract), after the struct_size field.
    unsafe {
        ptr::copy_nonoverlapping(
            p.cast::<u8>().add(head),
            ptr::addr_of_mut!(defaults).cast::<u8>().add(head),
            n.saturating_sub(head),
        );
    }
    if size > ours {
        // SAFETY: the caller's struct is `size` bytes long.
        let tail = unsafe { std::slice::from_raw_parts(p.cast::<u8>().add(ours), size - ours) };
        if let Some(at) = tail.iter().position(|b| *b != 0) {
            return Err(invalid(format!(
                "{name} sets byte {off} (struct_size {size}), past the {ours} bytes this \
                 library version knows: a newer option that it cannot honour; upgrade the \
                 library or leave that option zero",
                name = T::NAME,
                off = ours + at,
            )));
        }
    }
    Ok(defaults)
}

/// Writes `v` into a caller's output struct of `size` bytes: the fields
/// that fit, zeros past this library's struct; `struct_size` is left as is.
///
/// # Safety
/// `out` is non-NULL and valid for writes of `size` bytes.
pub(crate) unsafe fn write_out<T: Extensible>(out: *mut T, size: usize, v: &T) {
    let ours = size_of::<T>();
    let head = size_of::<usize>();
    let n = size.min(ours);
    // SAFETY: `out` is valid for `size` >= n bytes and `v` for size_of T >= n;
    // untyped copies and fills of bytes the caller owns.
    unsafe {
        let dst = out.cast::<u8>();
        ptr::copy_nonoverlapping(
            ptr::from_ref(v).cast::<u8>().add(head),
            dst.add(head),
            n.saturating_sub(head),
        );
        if size > ours {
            ptr::write_bytes(dst.add(ours), 0, size - ours);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 2 of a struct whose version 1 ended after `a`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct V2 {
        struct_size: usize,
        a: u64,
        b: u64,
    }
    // SAFETY: repr(C), struct_size first, plain integers.
    unsafe impl Extensible for V2 {
        const NAME: &'static str = "v2";
        const MIN_SIZE: usize = 16;
    }

    const DEFAULTS: V2 = V2 {
        struct_size: 24,
        a: 1,
        b: 2,
    };

    #[test]
    fn an_older_smaller_input_struct_keeps_the_new_fields_defaults() {
        let v1 = [16usize, 7];
        let p = v1.as_ptr().cast::<V2>();
        // SAFETY: `p` is readable for 16 bytes.
        let n = unsafe { caller_size(p) }.ok().unwrap();
        // SAFETY: as above.
        let got = unsafe { read_in(p, n, DEFAULTS) }.ok().unwrap();
        assert_eq!((got.a, got.b), (7, 2));
    }

    #[test]
    fn an_older_smaller_output_struct_gets_only_its_fields() {
        let mut v1 = [16usize, 0, 0xdead];
        let out = v1.as_mut_ptr().cast::<V2>();
        let v = V2 {
            struct_size: 24,
            a: 5,
            b: 6,
        };
        // SAFETY: `out` is writable for 24 bytes, of which 16 are claimed.
        unsafe { write_out(out, 16, &v) };
        assert_eq!(v1, [16, 5, 0xdead]);
    }

    #[test]
    fn a_newer_larger_struct_works_when_the_unknown_part_is_zero() {
        let mut big = [40usize, 0, 0, 0, 0];
        let out = big.as_mut_ptr().cast::<V2>();
        let v = V2 {
            struct_size: 24,
            a: 5,
            b: 6,
        };
        big[3] = 9;
        // SAFETY: 40 bytes, writable.
        unsafe { write_out(out, 40, &v) };
        assert_eq!(big, [40, 5, 6, 0, 0], "the unknown tail is zeroed");
        // SAFETY: 40 bytes, readable.
        let got = unsafe { read_in(out.cast_const(), 40, DEFAULTS) }
            .ok()
            .unwrap();
        assert_eq!((got.a, got.b), (5, 6));
        big[4] = 1;
        // SAFETY: as above.
        assert!(unsafe { read_in(big.as_ptr().cast::<V2>(), 40, DEFAULTS) }.is_err());
    }

    #[test]
    fn a_too_small_or_uninitialised_size_is_refused() {
        for n in [0, 8, 15, MAX_STRUCT_SIZE + 1, usize::MAX] {
            let v = [n, 0, 0];
            // SAFETY: `v` is readable for 24 bytes.
            let r = unsafe { caller_size(v.as_ptr().cast::<V2>()) };
            assert!(r.is_err(), "{n}");
        }
    }
}
