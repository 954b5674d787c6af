//! `shm:NAME` and `file:PATH` — the table in a mapped segment file, shared by
//! every process on the host that opens it.

use super::table_backend::{TableBackend, Writers};
use crate::error::{Liveness, Result};
use crate::segment::{FORK_GENERATION, Segment, unregister_fork_close};
use crate::sync::AtomicU64;
use crate::types::LivenessMode;
use std::os::fd::{AsRawFd, OwnedFd};
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

/// This handle's owner record (its writer token), taken on first write.
struct Claim {
    token: u32,
    fd: Option<OwnedFd>,
    fork_generation: u64,
    closes_on_fork: bool,
}

pub(crate) struct ShmWriters {
    seg: Arc<Segment>,
    /// `fork generation << 32 | token` of the current claim (0 = none yet).
    cached: StdAtomicU64,
    claim: Mutex<Option<Claim>>,
}

impl ShmWriters {
    fn drop_claim(c: &mut Claim) {
        if let Some(fd) = c.fd.take() {
            let forked = FORK_GENERATION.load(Ordering::SeqCst) != c.fork_generation;
            if forked && c.closes_on_fork {
                // The fork handler already closed this descriptor in the child.
                std::mem::forget(fd);
            } else {
                unregister_fork_close(fd.as_raw_fd());
                drop(fd);
            }
        }
    }
}

impl Drop for ShmWriters {
    fn drop(&mut self) {
        if let Some(c) = self
            .claim
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            Self::drop_claim(c);
        }
    }
}

impl Writers for ShmWriters {
    #[inline]
    fn token(&self) -> Result<u32> {
        let c = self.cached.load(Ordering::Acquire);
        let generation = FORK_GENERATION.load(Ordering::Relaxed) & 0xFFFF_FFFF;
        if c != 0 && c >> 32 == generation {
            return Ok(c as u32);
        }
        self.claim_slow()
    }

    fn current_token(&self) -> Option<u32> {
        let c = self.cached.load(Ordering::Acquire);
        (c != 0 && c >> 32 == FORK_GENERATION.load(Ordering::Relaxed) & 0xFFFF_FFFF)
            .then_some(c as u32)
    }

    fn liveness(&self, token: u32) -> Liveness {
        let mine = self.cached.load(Ordering::Acquire);
        if mine != 0
            && mine as u32 == token
            && mine >> 32 == FORK_GENERATION.load(Ordering::Relaxed) & 0xFFFF_FFFF
        {
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
        let generation = FORK_GENERATION.load(Ordering::SeqCst);
        if let Some(c) = guard.as_mut() {
            if c.fork_generation == generation {
                return Ok(c.token);
            }
            // We are a forked child: the record belongs to the parent.
            Self::drop_claim(c);
        }
        let (token, fd, closes_on_fork) = self.seg.claim_owner()?;
        *guard = Some(Claim {
            token,
            fd: Some(fd),
            fork_generation: generation,
            closes_on_fork,
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
