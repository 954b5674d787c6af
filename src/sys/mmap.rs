//! The shared mapping of a segment file (memmap2's `MmapRaw`), seen only as
//! `u64` atomics: no `&`/`&mut` to its bytes is ever formed otherwise.

use crate::sync::AtomicU64;
use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::io;

/// A shared read-write mapping of the first `len` bytes of a file.
pub(crate) struct Mapping(MmapRaw);

impl Mapping {
    /// Maps `len` bytes of `f` (a multiple of 8, not 0) shared read-write.
    /// The caller has checked that the file is at least `len` bytes long.
    pub(crate) fn new(f: &File, len: usize) -> io::Result<Mapping> {
        assert!(len.is_multiple_of(8) && len > 0);
        MmapOptions::new().len(len).map_raw(f).map(Mapping)
    }

    /// The whole mapping as atomic words.
    pub(crate) fn words(&self) -> &[AtomicU64] {
        debug_assert!(self.0.len().is_multiple_of(8));
        // SAFETY: the mapping starts page-aligned (so 8-aligned) and is valid
        // for `len()` bytes until `self` is dropped (the slice borrows `self`);
        // every process accesses these bytes only as `AtomicU64`, which has
        // the size and alignment of u64 and permits concurrent access through
        // shared references.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<AtomicU64>(), self.0.len() / 8) }
    }
}
