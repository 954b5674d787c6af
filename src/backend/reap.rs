//! The reaper: a thread that reclaims entries of owners of this host soon
//! after they die. It holds a pidfd per owner and sweeps when one exits,
//! and sweeps every interval anyway (owners whose death a pidfd cannot
//! report: other PID namespaces, kernels without pidfds). It needs only the
//! backend's cleanup capability (`local_owners`, `sweep`).

use super::Backend;
use crate::error::{Error, Result};
use crate::sys::pidfd::PidWatch;
use crate::sys::poll::wait_readable;
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the reaper looks for new owners to watch.
const REFRESH_EVERY: Duration = Duration::from_millis(20);

/// Runs until `stop` reads end-of-file; counts reclaims into `count`.
pub(crate) fn run(
    b: &dyn Backend,
    interval: Duration,
    stop: &std::io::PipeReader,
    count: &AtomicU64,
) -> Result<()> {
    let mut watched: HashMap<u32, PidWatch> = HashMap::new();
    let mut seen_changes = None;
    let mut last_sweep = Instant::now();
    let mut sweep_now = true;
    loop {
        if let Some((pids, changed)) = b.local_owners(seen_changes)? {
            seen_changes = Some(changed);
            watched.retain(|pid, _| pids.binary_search(pid).is_ok());
            for pid in pids {
                if let std::collections::hash_map::Entry::Vacant(v) = watched.entry(pid) {
                    match PidWatch::open(pid) {
                        Ok(Some(w)) => {
                            v.insert(w);
                        }
                        Ok(None) => sweep_now = true, // already gone
                        Err(_) => {}                  // no pidfd here: periodic sweeps
                    }
                }
            }
        }
        if sweep_now || last_sweep.elapsed() >= interval {
            let n = b.sweep()?;
            count.fetch_add(n as u64, Ordering::Relaxed);
            last_sweep = Instant::now();
            sweep_now = false;
        }
        let order: Vec<u32> = watched.keys().copied().collect();
        let fds: Vec<_> = std::iter::once(stop.as_fd())
            .chain(order.iter().map(|p| watched[p].as_fd()))
            .collect();
        // Short naps: new owners get their pidfd within one nap, which is
        // also the bound on noticing them die.
        let wait = interval
            .saturating_sub(last_sweep.elapsed())
            .min(REFRESH_EVERY);
        let ready = wait_readable(&fds, wait)
            .map_err(|e| Error::io("poll on the reaper's pidfds failed", e))?;
        if ready.first() == Some(&0) {
            return Ok(()); // stop pipe: closed by Reaper::stop or drop
        }
        if !ready.is_empty() {
            sweep_now = true;
            // Exited processes stay readable: forget them now.
            for i in ready {
                if let Some(pid) = order.get(i - 1) {
                    watched.remove(pid);
                }
            }
        }
    }
}
