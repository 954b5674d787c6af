//! One tokio current-thread runtime per handle, driven by a dedicated thread
//! that owns every background task (keep-alive, watch pumps). Callers enter it
//! with [`Runtime::call`]: `Handle::block_on` under a deadline, so no call
//! waits longer than its timeout and nothing the user does starves the driver.

use crate::error::{Error, Result};
use std::future::Future;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// The runtime and its driver thread.
#[derive(Debug)]
pub struct Runtime {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Runtime {
    /// Starts the runtime and its driver thread `procreg-etcd`.
    ///
    /// # Errors
    /// `Io` when the runtime or the thread cannot be created.
    pub fn start() -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot build the etcd client runtime", e))?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("procreg-etcd".into())
            .spawn(move || {
                // Drives IO, timers and every spawned task until the handle drops.
                let _ = rt.block_on(stopped);
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .map_err(|e| Error::io("cannot start the etcd client thread", e))?;
        Ok(Runtime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The runtime's handle, for spawning tasks.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Runs `fut` to completion from a plain thread, for at most `timeout`.
    /// Must not be called from inside the runtime.
    ///
    /// # Errors
    /// `Unavailable` naming `what` when the deadline passes first.
    pub fn call<F: Future>(&self, what: &str, timeout: Duration, fut: F) -> Result<F::Output> {
        self.handle
            .block_on(async move { tokio::time::timeout(timeout, fut).await })
            .map_err(|_| {
                Error::Unavailable(format!(
                    "{what} got no answer within {timeout:?}; check that the etcd cluster \
                     runs and is reachable, or open the registry with a longer ?timeout="
                ))
            })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            // Dropped from the driver thread itself (a task holding the last
            // reference): it ends on its own once this returns.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn call_returns_the_result_and_spawned_tasks_run_between_calls() {
        let rt = Runtime::start().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        rt.handle().spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(7).unwrap();
        });
        // No thread is inside call() now: the driver thread alone runs the task.
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 7);
        assert_eq!(
            rt.call("t", Duration::from_secs(1), async { 3 }).unwrap(),
            3
        );
    }

    #[test]
    fn call_is_bounded_and_says_unavailable() {
        let rt = Runtime::start().unwrap();
        let t0 = Instant::now();
        let e = rt
            .call(
                "a test",
                Duration::from_millis(100),
                std::future::pending::<()>(),
            )
            .unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert!(
            matches!(&e, Error::Unavailable(m) if m.contains("a test")),
            "{e}"
        );
    }
}
