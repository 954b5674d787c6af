//! The scans: every live entry, copied into caller buffers or allocated,
//! and the census. Like the lookups (`read.rs`) they only load, and every
//! loop is bounded.

use super::control::{STEP_BITS, SlotState, disp_of, state_of};
use super::types::Census;
use super::{EntryHead, READ_RETRIES, RawEntry, Table, TableError};
use crate::sync::{AtomicU64, Ordering, fence, spin_hint};

impl<S: AsRef<[AtomicU64]>> Table<S> {
    /// Visits every live entry like [`for_each_live`](Self::for_each_live),
    /// copying each into the caller's buffers (as [`copy_into`](Self::copy_into))
    /// instead of allocating. `f` gets the head, the key bytes and the metadata
    /// bytes of a consistent copy, and returns false to stop.
    pub(crate) fn for_each_live_into(
        &self,
        key: &mut [u8],
        meta: &mut [u8],
        mut f: impl FnMut(&EntryHead, &[u8], &[u8]) -> bool,
    ) -> Result<(), TableError> {
        let mut bufs = (key, meta);
        self.scan_live(
            &mut bufs,
            |t, s, c, (k, m)| t.copy_into(s, c, k, m),
            |_, _, h, (k, m)| {
                f(
                    &h,
                    &k[..h.ns_len + h.name_len],
                    m.get(..h.meta_len).unwrap_or(&[]),
                )
            },
        )
    }

    /// Visits every live entry (a consistent copy of each). `f` returns false
    /// to stop. Loads only.
    pub(crate) fn for_each_live(
        &self,
        mut f: impl FnMut(usize, u64, RawEntry) -> bool,
    ) -> Result<(), TableError> {
        // As in `lookup_at`: the buffers outlive the retries; each entry's
        // own vectors are cloned from them after the read validated.
        self.scan_live(
            &mut (Vec::new(), Vec::new()),
            |t, s, c, (k, m)| t.copy_entry_into(s, c, k, m),
            |s, c, (h, lease), (k, m)| f(s, c, RawEntry::new(h, lease, k.clone(), m.clone())),
        )
    }

    /// The scan behind the visitors: `copy` runs inside each live slot's
    /// seqlock window (with `bufs` to copy into); `f` sees only copies that
    /// were not torn.
    fn scan_live<B, T>(
        &self,
        bufs: &mut B,
        copy: impl Fn(&Self, usize, u64, &mut B) -> T,
        mut f: impl FnMut(usize, u64, T, &B) -> bool,
    ) -> Result<(), TableError> {
        for slot in 0..self.g.capacity {
            let mut retries = 0;
            loop {
                let c = self.ctrl(slot).load(Ordering::Acquire);
                if state_of(c) != SlotState::Live {
                    break;
                }
                // As in `probe`: the sequence, then the control word again.
                let m0 = self.meta_lens_word(slot);
                if self.ctrl(slot).load(Ordering::Relaxed) != c {
                    retries += 1;
                    if retries > READ_RETRIES {
                        return Err(TableError::Busy("a slot kept changing during the scan"));
                    }
                    continue;
                }
                let e = copy(self, slot, c, bufs);
                fence(Ordering::Acquire);
                if self.still_valid(slot, c, Some(m0)) {
                    if !f(slot, c, e, bufs) {
                        return Ok(());
                    }
                    break;
                }
                retries += 1;
                if retries > READ_RETRIES {
                    return Err(TableError::Busy("a slot kept changing during the scan"));
                }
                spin_hint();
            }
        }
        Ok(())
    }

    /// Counts slots by state and the largest reach of any home (in groups).
    pub(crate) fn census(&self) -> Census {
        let mut c = Census::default();
        for slot in 0..self.g.capacity {
            match state_of(self.ctrl(slot).load(Ordering::Relaxed)) {
                SlotState::Empty => c.empty += 1,
                SlotState::Claimed => c.claimed += 1,
                SlotState::Live => c.live += 1,
                SlotState::Tombstone => c.tombstones += 1,
            }
        }
        let mut scanned = 0usize;
        for g in 0..self.g.groups() {
            let h = self.home(g).load(Ordering::Relaxed);
            scanned += 1 + (h & STEP_BITS & !1).count_ones() as usize;
            if h >> 32 != 0 {
                c.locked_groups += 1;
            }
        }
        for slot in 0..self.g.capacity {
            let w = self.ctrl(slot).load(Ordering::Relaxed);
            if state_of(w) == SlotState::Live {
                c.max_probe = c.max_probe.max(disp_of(w));
            }
        }
        c.mean_miss_groups = scanned as f64 / self.g.groups() as f64;
        c
    }
}
