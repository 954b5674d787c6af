//! `mem:` — the same table over heap memory, for one process (tests, or a
//! registry of threads). `mem:` alone is a fresh private table; `mem:NAME` is
//! shared by every open of that name in this process while one handle lives.

use super::table_backend::{TableBackend, Writers};
use crate::error::{Error, Liveness, Result};
use crate::segment::{OpenMode, RequestedLimits};
use crate::sync::AtomicU64;
use crate::table::{Geometry, heap_storage};
use crate::types::LivenessMode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// In one process every writer is alive while it can ask.
pub(crate) struct MemWriters;

impl Writers for MemWriters {
    fn token(&self) -> Result<u32> {
        Ok(1)
    }
    fn current_token(&self) -> Option<u32> {
        Some(1)
    }
    fn liveness(&self, _token: u32) -> Liveness {
        Liveness::Alive
    }
    fn mode(&self) -> LivenessMode {
        LivenessMode::InProcess
    }
}

/// Heap words shared by the handles of one `mem:NAME`.
#[derive(Clone)]
pub(crate) struct HeapWords(Arc<Box<[AtomicU64]>>);

impl AsRef<[AtomicU64]> for HeapWords {
    fn as_ref(&self) -> &[AtomicU64] {
        &self.0
    }
}

pub(crate) type MemBackend = TableBackend<HeapWords, MemWriters>;

struct Shared {
    words: Arc<Box<[AtomicU64]>>,
    geometry: Geometry,
    created_at_ns: u64,
}

/// Named tables of this process: words (while a handle lives), limits, creation time.
type NamedTables = Mutex<HashMap<String, (Weak<Box<[AtomicU64]>>, Geometry, u64)>>;

fn named() -> &'static NamedTables {
    static NAMED: std::sync::OnceLock<NamedTables> = std::sync::OnceLock::new();
    NAMED.get_or_init(Default::default)
}

pub(crate) fn open(
    name: &str,
    mode: OpenMode,
    geometry: Geometry,
    requested: &RequestedLimits,
    lock_timeout: Duration,
) -> Result<MemBackend> {
    let fresh = || Shared {
        words: Arc::new(heap_storage(&geometry)),
        geometry,
        created_at_ns: crate::now_ns(),
    };
    let shared = if name.is_empty() {
        if mode == OpenMode::Open {
            return Err(Error::NoSuchRegistry(
                "mem: (an anonymous table exists only once created)".into(),
            ));
        }
        fresh()
    } else {
        let mut map = named().lock().unwrap_or_else(|p| p.into_inner());
        let existing = map
            .get(name)
            .and_then(|(w, g, at)| Some((w.upgrade()?, *g, *at)));
        match existing {
            Some((words, g, at)) => {
                if mode == OpenMode::Create {
                    return Err(Error::RegistryExists(format!("mem:{name}")));
                }
                requested.check_geometry(&g)?;
                Shared {
                    words,
                    geometry: g,
                    created_at_ns: at,
                }
            }
            None => {
                if mode == OpenMode::Open {
                    return Err(Error::NoSuchRegistry(format!("mem:{name}")));
                }
                let s = fresh();
                map.insert(
                    name.to_owned(),
                    (Arc::downgrade(&s.words), geometry, s.created_at_ns),
                );
                s
            }
        }
    };
    let bytes = shared.words.len() * 8;
    Ok(TableBackend::new(
        HeapWords(shared.words),
        shared.geometry,
        MemWriters,
        "mem",
        shared.created_at_ns,
        bytes,
        lock_timeout,
    ))
}
