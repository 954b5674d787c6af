//! The context of one write operation on the table: this writer's token,
//! how writers and owners are judged, the clocks, fault points, the commit
//! hook and the bound on waiting.

use super::Writers;
use super::convert::{event_kind, lossy_utf8};
use crate::backend::{Hook, Key};
use crate::error::{Error, Liveness};
use crate::liveness;
use crate::table::ring::{Change, ChangeKind};
use crate::table::{LivenessJudge, Owner, Step, TableError, WriteHooks, Writer};
use crate::telemetry::{self, Op};
use crate::types::{Event, time_from_ns};
use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

pub(super) struct OpEnv<'a, W: Writers> {
    pub(super) writers: &'a W,
    pub(super) token: u32,
    pub(super) timeout: Duration,
    /// Set on the first wait only: an uncontended write reads no clock.
    pub(super) deadline: Cell<Option<Instant>>,
    /// The hook, and the changes committed for it (only when one is set).
    pub(super) hook: Option<(Hook, RefCell<Vec<Event>>)>,
}

impl<W: Writers> Writer for OpEnv<'_, W> {
    fn token(&self) -> u32 {
        self.token
    }
    fn give_up(&self, spins: u64) -> bool {
        if spins % 32 != 1 {
            return false;
        }
        let now = Instant::now();
        match self.deadline.get() {
            Some(deadline) => now > deadline,
            None => {
                self.deadline.set(Some(now + self.timeout));
                false
            }
        }
    }
}

impl<W: Writers> LivenessJudge for OpEnv<'_, W> {
    fn writer_liveness(&self, token: u32) -> Liveness {
        self.writers.liveness(token)
    }
    fn owner_liveness(&self, owner: &Owner) -> Liveness {
        liveness::check(owner)
    }
}

impl<W: Writers> WriteHooks for OpEnv<'_, W> {
    fn crash_at(&self, step: Step) -> bool {
        fault::crash_at(step)
    }
    fn now(&self) -> u64 {
        // Change records of removals and updates: tick resolution is enough.
        crate::sys::clock::coarse_realtime_ns()
    }
    fn now_ms(&self) -> u64 {
        crate::sys::clock::boot_ms()
    }
    fn on_commit(&self, revision: u64, ch: &Change<'_>) {
        telemetry::count(match ch.kind {
            ChangeKind::Registered => Op::Register,
            ChangeKind::Unregistered => Op::Unregister,
            ChangeKind::Updated => Op::Update,
            ChangeKind::Reclaimed | ChangeKind::Expired | ChangeKind::Lost => Op::Reclaimed,
        });
        if let Some((_, events)) = &self.hook {
            let (ns, name) = ch.key.bytes();
            events.borrow_mut().push(Event {
                revision,
                kind: event_kind(ch.kind),
                namespace: lossy_utf8(ns),
                name: lossy_utf8(name),
                pid: ch.pid,
                host: crate::host::name().to_owned(),
                version: u64::from(ch.version),
                at: time_from_ns(if ch.at != 0 { ch.at } else { crate::now_ns() }),
                member: false,
            });
        }
    }
}

/// The registry error of a table error on `key`.
#[inline]
pub(super) fn key_error(e: TableError, key: Key<'_>, capacity: usize) -> Error {
    match e {
        TableError::Exists { pid, alive } => Error::AlreadyExists {
            namespace: key.ns.to_owned(),
            name: key.name.to_owned(),
            pid,
            alive,
        },
        TableError::NotFound => Error::NotFound {
            namespace: key.ns.to_owned(),
            name: key.name.to_owned(),
        },
        TableError::Full => Error::Full { capacity },
        TableError::Busy(why) => Error::Busy(format!(
            "{why} (key {:?} in namespace {:?})",
            key.name, key.ns
        )),
        TableError::Crashed => Error::Busy("writer stopped by fault injection".into()),
    }
}

/// The registry error of a table error during a scan.
#[inline]
pub(super) fn scan_error(e: TableError, capacity: usize) -> Error {
    match e {
        TableError::Busy(why) => Error::Busy(format!("{why} (during a scan of the table)")),
        e => key_error(e, Key::unique("", ""), capacity),
    }
}

#[cfg(feature = "fault-injection")]
mod fault {
    use crate::table::Step;
    use std::sync::OnceLock;
    /// `PROCREG_CRASH_AT=<Step name>` aborts the process at that step;
    /// `PROCREG_PAUSE_AT=<Step name>` stops it there with SIGSTOP (a frozen
    /// writer: it goes on where it stopped when it gets SIGCONT).
    pub(super) fn crash_at(step: Step) -> bool {
        static AT: OnceLock<(Option<String>, Option<String>)> = OnceLock::new();
        let (crash, pause) = AT.get_or_init(|| {
            (
                std::env::var("PROCREG_CRASH_AT").ok(),
                std::env::var("PROCREG_PAUSE_AT").ok(),
            )
        });
        if crash.is_none() && pause.is_none() {
            return false;
        }
        let name = format!("{step:?}");
        if crash.as_deref() == Some(name.as_str()) {
            std::process::abort();
        }
        if pause.as_deref() == Some(name.as_str()) {
            crate::sys::process::stop_self();
        }
        false
    }
}

#[cfg(not(feature = "fault-injection"))]
mod fault {
    #[inline(always)]
    pub(super) fn crash_at(_: crate::table::Step) -> bool {
        false
    }
}
