//! Per-process operation counters, cheap enough for the lookup path: each
//! thread increments its own counters with a plain load and store (no
//! read-modify-write, no shared cache line); `snapshot` sums every thread's.
//! A thread's counters outlive it and are handed to the next new thread, so
//! totals never drop and memory stays bounded by the peak number of threads.

use crate::types::ProcessCounters;
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What is counted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Register,
    LookupHit,
    LookupMiss,
    Unregister,
    Update,
    Reclaimed,
    Busy,
}

const OPS: usize = 7;

/// One thread's counters, written by that thread only.
#[derive(Default)]
struct Counters([AtomicU64; OPS]);

/// Every set of counters ever handed out, and those free for reuse.
struct CounterSets {
    all: Vec<&'static Counters>,
    free: Vec<&'static Counters>,
}

static COUNTERS: Mutex<CounterSets> = Mutex::new(CounterSets {
    all: Vec::new(),
    free: Vec::new(),
});

thread_local! {
    static MINE: Cell<Option<&'static Counters>> = const { Cell::new(None) };
    /// Returns this thread's counters for reuse when the thread ends.
    static RETURN: ReturnOnExit = const { ReturnOnExit };
}

struct ReturnOnExit;

impl Drop for ReturnOnExit {
    fn drop(&mut self) {
        if let Ok(Some(c)) = MINE.try_with(Cell::get) {
            if let Ok(mut r) = COUNTERS.lock() {
                r.free.push(c);
            }
        }
    }
}

#[cold]
fn claim() -> &'static Counters {
    let mut r = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let c = match r.free.pop() {
        Some(c) => c,
        None => {
            let c: &'static Counters = Box::leak(Box::default());
            r.all.push(c);
            c
        }
    };
    drop(r);
    MINE.with(|m| m.set(Some(c)));
    // Registers the destructor; if the thread is already exiting, the
    // counters simply stay claimed.
    let _ = RETURN.try_with(|_| ());
    c
}

/// Counts one `op` of this thread.
#[inline(always)]
pub(crate) fn count(op: Op) {
    let _ = MINE.try_with(|m| {
        let c = match m.get() {
            Some(c) => c,
            None => claim(),
        };
        let w = &c.0[op as usize];
        w.store(w.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    });
}

/// Counts one `op` of this thread if the thread has its counters already
/// (false otherwise: the caller counts with [`count`] elsewhere). No call:
/// a lookup's fast path stays a leaf function.
#[inline(always)]
pub(crate) fn count_quick(op: Op) -> bool {
    // `try_with`, not `with`: the latter is not always inlined (and this
    // key has no destructor, so `try_with` never fails).
    let Ok(Some(c)) = MINE.try_with(Cell::get) else {
        return false;
    };
    let w = &c.0[op as usize];
    w.store(w.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    true
}

/// The sums over every thread of this process.
pub(crate) fn snapshot() -> ProcessCounters {
    let r = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let mut sum = [0u64; OPS];
    for c in &r.all {
        for (s, w) in sum.iter_mut().zip(&c.0) {
            *s += w.load(Ordering::Relaxed);
        }
    }
    ProcessCounters {
        registers: sum[Op::Register as usize],
        lookup_hits: sum[Op::LookupHit as usize],
        lookup_misses: sum[Op::LookupMiss as usize],
        unregisters: sum[Op::Unregister as usize],
        updates: sum[Op::Update as usize],
        reclaimed: sum[Op::Reclaimed as usize],
        busy: sum[Op::Busy as usize],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_finished_threads_stay_in_the_totals() {
        let before = snapshot();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..1000 {
                        count(Op::LookupHit);
                    }
                    count(Op::Busy);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // A new thread reuses a finished one's counters; totals only grow.
        std::thread::spawn(|| count(Op::LookupHit)).join().unwrap();
        let after = snapshot();
        assert!(after.lookup_hits - before.lookup_hits >= 4001);
        assert!(after.busy - before.busy >= 4);
    }

    #[test]
    fn finished_threads_hand_their_counters_on() {
        let before = COUNTERS.lock().unwrap().all.len();
        for _ in 0..100 {
            std::thread::spawn(|| count(Op::Register)).join().unwrap();
        }
        let grown = COUNTERS.lock().unwrap().all.len() - before;
        // Other tests' threads may claim a few sets meanwhile; 100 sequential
        // threads must not leave 100.
        assert!(
            grown <= 8,
            "{grown} new counter sets for 100 sequential threads"
        );
    }
}
