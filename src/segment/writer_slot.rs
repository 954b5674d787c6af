//! Writer slots: each writing process holds one, and its writer token names
//! it. A slot is held by an OFD write lock on one byte of the segment file,
//! which the kernel drops when the holder dies (whatever its PID namespace),
//! so a writer's liveness never depends on pids.
//!
//! Slot `i` (4 words): `generation | pid << 32`, start time, PID namespace,
//! reserved. Its token is `(i + 1) << GEN_BITS | generation`; the generation
//! changes at every claim, so a token of a previous holder no longer matches.

use super::{SLOT_WORDS, Segment, os_error};
use crate::error::{Error, Liveness, Result};
use crate::sync::{AtomicU64, Ordering};
use crate::sys::{file, fork::CloseOnFork, lock};
use crate::table;
use std::os::fd::AsFd;

/// Slot `i` is held by an OFD write lock on byte `SLOT_LOCK_BASE + i`
/// (past any real data: the file is far smaller).
const SLOT_LOCK_BASE: u64 = 1 << 40;
const GEN_BITS: u32 = 17;
const GEN_MASK: u32 = (1 << GEN_BITS) - 1;

impl Segment {
    fn writer_slot_words(&self) -> &[AtomicU64] {
        let w = self.map.words();
        let first = self.header.writers_offset / 8;
        &w[first..first + self.header.config.max_writers * SLOT_WORDS]
    }

    /// Claims a writer slot for this process: the first slot whose OFD lock
    /// we get. Returns the writer token and the descriptor whose open file
    /// description holds the lock (the slot is held while it stays open; a
    /// forked child closes its copy).
    ///
    /// # Errors
    /// `Busy` when every slot is held by a live writer; an I/O error if the
    /// file cannot be reopened or locked.
    pub(crate) fn claim_writer_slot(&self) -> Result<(u32, CloseOnFork)> {
        // A new open file description of *this* inode (the path may since
        // name another segment): its own OFD locks, separate from `self.file`.
        // Registered to close on fork before any lock is taken, so a fork in
        // another thread never leaves a child holding the slot unknowingly.
        let fd = CloseOnFork::new(
            file::reopen(&self.file)
                .map_err(|e| os_error(e, "reopen (writer slot lock)", &self.path))?
                .into(),
        );
        let n = self.header.config.max_writers;
        let me = crate::liveness::current();
        let start = me.pid as usize % n;
        for k in 0..n {
            let idx = (start + k) % n;
            match lock::try_lock_byte(&fd, SLOT_LOCK_BASE + idx as u64) {
                Ok(true) => {
                    let slot = &self.writer_slot_words()[idx * SLOT_WORDS..(idx + 1) * SLOT_WORDS];
                    let old = slot[0].load(Ordering::Relaxed);
                    let mut generation = ((old as u32) + 1) & GEN_MASK;
                    if generation == 0 {
                        generation = 1;
                    }
                    slot[1].store(me.start_time, Ordering::Relaxed);
                    slot[2].store(me.pidns, Ordering::Relaxed);
                    slot[0].store(generation as u64 | (me.pid as u64) << 32, Ordering::Release);
                    let token = ((idx as u32 + 1) << GEN_BITS) | generation;
                    debug_assert!(token <= table::MAX_TOKEN);
                    return Ok((token, fd));
                }
                Ok(false) => continue,
                Err(e) => return Err(os_error(e, "lock a writer slot of", &self.path)),
            }
        }
        Err(Error::Busy(format!(
            "all {n} writer slots of {} are held by live registry handles (each open handle that \
             writes holds one until it is dropped); drop unused handles, or create the segment with \
             a larger max_writers (at most {})",
            self.path.display(),
            super::MAX_WRITERS
        )))
    }

    /// Whether the writer that holds `token` still runs, judged through
    /// `probe_fd` (a description of this segment file that holds no slot).
    pub(crate) fn writer_liveness(&self, token: u32, probe_fd: impl AsFd) -> Liveness {
        let idx = (token >> GEN_BITS) as usize;
        if idx == 0 || idx > self.header.config.max_writers {
            return Liveness::Unknown; // not a token this build hands out
        }
        let idx = idx - 1;
        let gen_now =
            self.writer_slot_words()[idx * SLOT_WORDS].load(Ordering::Acquire) as u32 & GEN_MASK;
        if gen_now != token & GEN_MASK {
            // Another process took the slot over: ours released it, so it died.
            return Liveness::Dead;
        }
        match lock::byte_is_locked(probe_fd, SLOT_LOCK_BASE + idx as u64) {
            Ok(true) => Liveness::Alive,
            Ok(false) => Liveness::Dead,
            Err(_) => Liveness::Unknown,
        }
    }
}
