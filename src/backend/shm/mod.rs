//! `shm:NAME` and `file:PATH` — the table in a mapped segment file, shared by
//! every process on the host that opens it.

pub(crate) mod files;

use super::table_backend::{TableBackend, Writers};
use crate::error::{Liveness, Result};
use crate::segment::Segment;
use crate::sync::AtomicU64;
use crate::sys::fork::{self, CloseOnFork};
use crate::types::LivenessMode;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering};
use std::time::Duration;

/// The mapped table region of a segment.
#[derive(Clone)]
pub(crate) struct SegmentWords(pub(crate) Arc<Segment>);

impl AsRef<[AtomicU64]> for SegmentWords {
    fn as_ref(&self) -> &[AtomicU64] {
        self.0.table_words()
    }
}

/// This handle's writer slot (its writer token), claimed on first write.
struct Claim {
    token: u32,
    /// Holds the slot's lock; a forked child closes its copy by itself.
    _lock: CloseOnFork,
    fork_generation: u64,
}

pub(crate) struct ShmWriters {
    seg: Arc<Segment>,
    /// `fork generation << 32 | token` of the current claim (0 = none yet).
    cached: StdAtomicU64,
    claim: Mutex<Option<Claim>>,
}

impl Writers for ShmWriters {
    #[inline]
    fn token(&self) -> Result<u32> {
        let c = self.cached.load(Ordering::Acquire);
        let generation = fork::generation() & 0xFFFF_FFFF;
        if c != 0 && c >> 32 == generation {
            return Ok(c as u32);
        }
        self.claim_slow()
    }

    fn current_token(&self) -> Option<u32> {
        let c = self.cached.load(Ordering::Acquire);
        (c != 0 && c >> 32 == fork::generation() & 0xFFFF_FFFF).then_some(c as u32)
    }

    fn liveness(&self, token: u32) -> Liveness {
        let mine = self.cached.load(Ordering::Acquire);
        if mine != 0 && mine as u32 == token && mine >> 32 == fork::generation() & 0xFFFF_FFFF {
            return Liveness::Alive;
        }
        self.seg.writer_liveness(token, self.seg.file())
    }

    fn mode(&self) -> LivenessMode {
        if self.seg.header.pidns == crate::liveness::my_pidns() {
            LivenessMode::ProcStartTime
        } else {
            LivenessMode::ForeignPidNamespace
        }
    }
}

impl ShmWriters {
    #[cold]
    fn claim_slow(&self) -> Result<u32> {
        let mut guard = self.claim.lock().unwrap_or_else(|p| p.into_inner());
        let generation = fork::generation();
        if let Some(c) = guard.as_mut() {
            if c.fork_generation == generation {
                return Ok(c.token);
            }
        }
        // None yet, or we are a forked child and the slot is the parent's:
        // dropping the old claim forgets (never closes) the descriptor that
        // the fork handler already closed.
        *guard = None;
        let (token, lock) = self.seg.claim_writer_slot()?;
        *guard = Some(Claim {
            token,
            _lock: lock,
            fork_generation: generation,
        });
        self.cached.store(
            (generation & 0xFFFF_FFFF) << 32 | token as u64,
            Ordering::Release,
        );
        Ok(token)
    }
}

pub(crate) type ShmBackend = TableBackend<SegmentWords, ShmWriters>;

pub(crate) fn from_segment(seg: Segment, lock_timeout: Duration) -> ShmBackend {
    let seg = Arc::new(seg);
    let geometry = seg.header.config.geometry;
    let (created_at_ns, bytes) = (seg.header.created_at_ns, seg.mapped_bytes());
    TableBackend::new(
        SegmentWords(seg.clone()),
        geometry,
        ShmWriters {
            seg,
            cached: StdAtomicU64::new(0),
            claim: Mutex::new(None),
        },
        "shm",
        created_at_ns,
        bytes,
        lock_timeout,
    )
}
