//! The handle's session lease: granted at open, kept alive by a task on the
//! runtime, and judged lost by a local deadline before the server can delete
//! anything attached to it.
//!
//! Deadline = send time of the last acknowledged keep-alive + granted TTL −
//! margin. The server restarts its countdown when it *receives* that request
//! (no earlier than it was sent), so the local deadline always falls before the
//! server's expiry (with one leader; a new leader re-arms leases to a full TTL,
//! etcd#9395, which only makes the server later). Once lost, a session stays
//! lost: the handle reports it, fences its writes, and does not quietly re-grant.

use super::client::Cluster;
use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Why and when a session was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// What happened.
    pub reason: String,
    /// When the handle decided.
    pub at: Instant,
}

#[derive(Debug)]
struct State {
    deadline: Instant,
    lost: Option<Lost>,
}

/// Shared between the handle and its keep-alive task.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    lost_tx: watch::Sender<Option<Lost>>,
    suspended: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `reason` unless lost already (first reason wins).
    pub fn declare_lost(&self, reason: String) {
        let mut s = self.lock();
        if s.lost.is_none() {
            let l = Lost {
                reason,
                at: Instant::now(),
            };
            s.lost = Some(l.clone());
            drop(s);
            self.lost_tx.send_replace(Some(l));
        }
    }

    fn acked(&self, sent: Instant, ttl: Duration) {
        let mut s = self.lock();
        if s.lost.is_none() {
            let d = sent + ttl.saturating_sub(margin(ttl));
            if d > s.deadline {
                s.deadline = d;
            }
        }
    }

    /// The lost record, deciding it now if the deadline has passed.
    pub fn lost(&self) -> Option<Lost> {
        let s = self.lock();
        if s.lost.is_none() && Instant::now() >= s.deadline {
            let d = s.deadline;
            drop(s);
            self.declare_lost(format!(
                "no keep-alive was acknowledged in time (local deadline passed {:?} ago)",
                d.elapsed()
            ));
            return self.lock().lost.clone();
        }
        s.lost.clone()
    }

    /// The local deadline of the lease.
    pub fn deadline(&self) -> Instant {
        self.lock().deadline
    }
}

/// Safety margin subtracted from the TTL: 100 ms + 5% of it.
pub fn margin(ttl: Duration) -> Duration {
    Duration::from_millis(100) + ttl / 20
}

/// A granted session lease and its keep-alive task.
#[derive(Debug)]
pub struct Session {
    /// The etcd lease id.
    pub lease: i64,
    /// TTL granted by the server.
    pub ttl: Duration,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Grants a lease of `ttl` (on a member of `cluster`) and starts keeping it
    /// alive on `rt`. Call from inside the runtime (an async context).
    ///
    /// # Errors
    /// `Unavailable` when no member grants a lease before `deadline`.
    pub async fn grant(
        cluster: Arc<Cluster>,
        ttl: Duration,
        deadline: Instant,
        rt: &tokio::runtime::Handle,
    ) -> Result<Session> {
        let sent = Instant::now();
        let secs = ttl.as_secs() as i64;
        let resp = cluster
            .run("granting the session lease", deadline, |mut c| async move {
                c.lease_grant(secs, None).await
            })
            .await?;
        let granted = Duration::from_secs(resp.ttl().max(0) as u64);
        if granted < Duration::from_secs(1) {
            return Err(Error::Unavailable(format!(
                "etcd granted a lease of {}s for {}s; check the cluster",
                resp.ttl(),
                secs
            )));
        }
        let (lost_tx, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                deadline: sent + granted.saturating_sub(margin(granted)),
                lost: None,
            }),
            lost_tx,
            suspended: AtomicBool::new(false),
        });
        let task = rt.spawn(keep_alive(cluster, resp.id(), granted, shared.clone()));
        Ok(Session {
            lease: resp.id(),
            ttl: granted,
            shared,
            task,
        })
    }

    /// The shared state (lost flag, deadline).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// `Some` once the lease may have expired; it never goes back to `None`.
    pub fn lost(&self) -> Option<Lost> {
        self.shared.lost()
    }

    /// The local deadline (the lease is held until then at least).
    pub fn deadline(&self) -> Instant {
        self.shared.deadline()
    }

    /// A receiver that changes to `Some` when the session is lost.
    pub fn subscribe(&self) -> watch::Receiver<Option<Lost>> {
        self.shared.lost_tx.subscribe()
    }

    /// Test hook: stop sending keep-alives, as a frozen process would.
    pub fn suspend_keepalive(&self) {
        self.shared.suspended.store(true, Ordering::SeqCst);
    }

    /// Fails with `Unavailable` when the session is lost (the write fence on
    /// this side; the server-side fence is the lease itself).
    ///
    /// # Errors
    /// `Unavailable` describing the loss.
    pub fn check(&self, what: &str) -> Result<()> {
        match self.lost() {
            None => Ok(()),
            Some(l) => Err(Error::Unavailable(format!(
                "{what}: refused because this handle's etcd lease {:x} may have expired ({}, \
                 {:?} ago); its entries are gone or about to go. Open a new handle and \
                 register again",
                self.lease,
                l.reason,
                l.at.elapsed()
            ))),
        }
    }

    /// Stops the keep-alive task (the lease then runs out on the server
    /// unless revoked).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends a keep-alive every TTL/3 on a stream, reopening it on another member
/// when it breaks, until the lease is gone or the local deadline passes.
async fn keep_alive(cluster: Arc<Cluster>, id: i64, ttl: Duration, shared: Arc<Shared>) {
    let every = ttl / 3;
    'reopen: loop {
        if shared.lost().is_some() {
            break;
        }
        let deadline = shared.deadline();
        let sent = Instant::now();
        let opened = cluster
            .run(
                "keeping the session lease alive",
                deadline,
                |mut c| async move { c.lease_keep_alive(id).await },
            )
            .await;
        let (mut keeper, mut stream) = match opened {
            Ok(ks) => ks,
            Err(e) => {
                // etcd-client opens the stream with a first keep-alive and says
                // "lease not found" when the server has dropped the lease.
                shared.declare_lost(format!("the keep-alive stream could not be reopened: {e}"));
                break;
            }
        };
        shared.acked(sent, ttl);
        let mut in_flight: VecDeque<Instant> = VecDeque::new();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = tokio::time::Instant::from_std(shared.deadline());
            tokio::select! {
                _ = tick.tick() => {
                    if shared.suspended.load(Ordering::SeqCst) {
                        continue;
                    }
                    let now = Instant::now();
                    if keeper.keep_alive().await.is_err() {
                        continue 'reopen;
                    }
                    in_flight.push_back(now);
                }
                msg = stream.message() => match msg {
                    Ok(Some(r)) => {
                        let Some(sent) = in_flight.pop_front() else { continue };
                        if r.ttl() <= 0 {
                            shared.declare_lost("etcd says the lease is gone (it expired on the server)".into());
                            break 'reopen;
                        }
                        shared.acked(sent, Duration::from_secs(r.ttl() as u64));
                    }
                    Ok(None) => continue 'reopen,
                    // Expected during elections: reopen on another member.
                    Err(_) => continue 'reopen,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if shared.lost().is_some() {
                        break 'reopen;
                    }
                }
            }
        }
    }
    // Lost: best-effort revoke so the server drops the entries now rather than
    // at its own expiry (the client has already reported them gone). A frozen
    // process (the test hook) revokes nothing: the server's expiry is measured.
    if shared.suspended.load(Ordering::SeqCst) {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    let _ = cluster
        .run("revoking a lost lease", deadline, |mut c| async move {
            c.lease_revoke(id).await
        })
        .await;
}
