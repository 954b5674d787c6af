//! Watch streams: events from a revision, reopened on another member when a
//! stream breaks (from the revision after the last one delivered, so nothing is
//! skipped), `Lagged` when the start revision was compacted, and `Expired`
//! for the handle's own entries as soon as its session is judged lost.

use super::client::Cluster;
use super::keys::KeyLayout;
use super::local::{self, HostId};
use super::session::Lost;
use super::value::Value;
use super::{EtcdEvent, EtcdRecord};
use crate::error::{Error, Liveness, Result};
use crate::types::EventKind;
use etcd_client::{EventType, KeyValue, WatchOptions};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Entries registered under the session, by key.
pub type Owned = Arc<Mutex<HashMap<String, EtcdRecord>>>;

/// What one pump watches.
pub struct Spec {
    pub cluster: Arc<Cluster>,
    pub layout: KeyLayout,
    pub me: HostId,
    /// A key, or a range prefix ending with `/`.
    pub key: String,
    pub prefix: bool,
    pub from_revision: i64,
    pub lost: watch::Receiver<Option<Lost>>,
    pub owned: Owned,
    pub timeout: Duration,
}

pub(super) fn record_of(layout: &KeyLayout, kv: &KeyValue) -> Option<EtcdRecord> {
    let (namespace, name) = layout.parse(kv.key())?;
    let v = Value::decode(kv.value())?;
    Some(EtcdRecord::new(namespace, name, v, kv))
}

/// Forwards events to `tx` until the receiver goes away or the watch ends
/// (compaction: `Lagged`).
pub async fn pump(s: Spec, tx: mpsc::UnboundedSender<Result<EtcdEvent>>) {
    let mut next = s.from_revision;
    let mut reported: HashSet<(String, i64)> = HashSet::new();
    let mut lost = s.lost.clone();
    let mut lost_done = false;
    'reopen: loop {
        if tx.is_closed() {
            return;
        }
        let deadline = Instant::now() + s.timeout;
        let (key, prefix, start) = (s.key.clone(), s.prefix, next);
        let open = s.cluster.run("opening a watch", deadline, |mut c| {
            let key = key.clone();
            async move {
                let mut o = WatchOptions::new().with_prev_key().with_progress_notify();
                if prefix {
                    o = o.with_prefix();
                }
                if start > 0 {
                    o = o.with_start_revision(start);
                }
                c.watch(key, Some(o)).await
            }
        });
        tokio::pin!(open);
        // The session's loss is reported while (re)opening too: a partitioned
        // handle keeps failing here, and its Expired must not wait for a member.
        let opened = loop {
            tokio::select! {
                _ = tx.closed() => return,
                changed = lost.changed(), if !lost_done => {
                    lost_done = changed.is_err();
                    if lost_done || lost.borrow().is_some() {
                        report_lost(&s, &tx, &mut reported);
                    }
                }
                r = &mut open => break r,
            }
        };
        let mut stream = match opened {
            Ok(st) => st,
            Err(_) => {
                // No member now: try again (the consumer's own timeout bounds its wait).
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue 'reopen;
            }
        };
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                changed = lost.changed(), if !lost_done => {
                    lost_done = changed.is_err();
                    if lost_done || lost.borrow().is_some() {
                        report_lost(&s, &tx, &mut reported);
                    }
                }
                msg = stream.message() => match msg {
                    Ok(Some(r)) => {
                        if r.canceled() {
                            if r.compact_revision() > 0 {
                                let _ = tx.send(Err(Error::Lagged {
                                    missed: (r.compact_revision() - next).max(1) as u64,
                                }));
                                return;
                            }
                            continue 'reopen;
                        }
                        for ev in r.events() {
                            let Some(kv) = ev.kv() else { continue };
                            next = next.max(kv.mod_revision() + 1);
                            if let Some(e) = classify(&s, ev.event_type(), kv, ev.prev_kv(), &mut reported).await {
                                if tx.send(Ok(e)).is_err() {
                                    return;
                                }
                            }
                        }
                        if let Some(h) = r.header() {
                            if r.events().is_empty() && h.revision() >= next {
                                // Progress notification: nothing up to here.
                                next = h.revision() + 1;
                            }
                        }
                    }
                    Ok(None) | Err(_) => continue 'reopen,
                },
            }
        }
    }
}

/// Sends `Expired` for each entry of the session inside the watched range
/// (once per entry: the server's delete that follows is not reported again).
fn report_lost(
    s: &Spec,
    tx: &mpsc::UnboundedSender<Result<EtcdEvent>>,
    reported: &mut HashSet<(String, i64)>,
) {
    let owned: Vec<EtcdRecord> = s
        .owned
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    for r in owned {
        let k = s.layout.entry(&r.namespace, &r.name);
        let inside = if s.prefix {
            k.starts_with(&s.key)
        } else {
            k == s.key
        };
        if inside && reported.insert((k, r.create_revision)) {
            let _ = tx.send(Ok(EtcdEvent {
                kind: EventKind::Expired,
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                revision: r.mod_revision,
                record: Some(r),
            }));
        }
    }
}

async fn classify(
    s: &Spec,
    ty: EventType,
    kv: &KeyValue,
    prev: Option<&KeyValue>,
    reported: &mut HashSet<(String, i64)>,
) -> Option<EtcdEvent> {
    let (namespace, name) = s.layout.parse(kv.key())?;
    let revision = kv.mod_revision();
    match ty {
        EventType::Put => {
            let v = Value::decode(kv.value())?;
            let kind = if kv.version() == 1 {
                EventKind::Registered
            } else {
                EventKind::Updated
            };
            Some(EtcdEvent {
                kind,
                record: Some(EtcdRecord::new(namespace.clone(), name.clone(), v, kv)),
                namespace,
                name,
                revision,
            })
        }
        EventType::Delete => {
            let record = prev.and_then(|p| record_of(&s.layout, p));
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            if let Some(r) = &record {
                if reported.remove(&(key, r.create_revision)) {
                    // Already reported Expired when the session was lost.
                    return None;
                }
            }
            // The lease first: an owner that died on this host also stops
            // renewing, and the server's expiry of its entry is Expired; a
            // Reclaimed is a delete by someone who judged it dead while its
            // lease still ran.
            let kind = match &record {
                Some(r) if r.lease != 0 && lease_gone(s, r.lease).await => EventKind::Expired,
                Some(r) if local::judge(&r.value(), &s.me) == Liveness::Dead => {
                    EventKind::Reclaimed
                }
                _ => EventKind::Unregistered,
            };
            Some(EtcdEvent {
                kind,
                namespace,
                name,
                revision,
                record,
            })
        }
    }
}

/// Whether the server no longer knows `lease` (TTL -1). Unknown (no answer)
/// counts as not gone.
async fn lease_gone(s: &Spec, lease: i64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    s.cluster
        .run("asking a lease's TTL", deadline, |mut c| async move {
            c.lease_time_to_live(lease, None).await
        })
        .await
        .map(|r| r.ttl() <= 0)
        .unwrap_or(false)
}
