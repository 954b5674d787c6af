//! Endpoint health and retries.
//!
//! etcd-client's balancer keeps sending to a dead member (etcdv3/etcd-client#12,
//! #39), so procreg holds one client per member, each on its own lazily
//! connected channel (a refused connection fails the request at once instead
//! of waiting for the balancer). A request that fails with a transport or
//! "unavailable" error, or that gets no answer within its attempt budget, is
//! retried on another member before the call's deadline; a member that failed
//! is avoided for [`AVOID_FOR`]. The `Unavailable` error names every endpoint
//! tried and what each said.

use super::url::EtcdConfig;
use crate::error::{Error, Result};
use etcd_client::{Client, ConnectOptions};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tonic::Code;

/// How long a member that failed is tried only when every other one failed too.
pub const AVOID_FOR: Duration = Duration::from_secs(3);

struct Member {
    endpoint: String,
    client: tokio::sync::Mutex<Option<Client>>,
    avoid_until: Mutex<Option<Instant>>,
}

/// The members of one cluster, with their health.
pub struct Cluster {
    members: Vec<Member>,
    options: ConnectOptions,
    tls: Option<etcd_client::TlsOptions>,
    /// The member that answered last: tried first.
    preferred: AtomicUsize,
    /// Longest single attempt before another member is tried.
    attempt: Duration,
    /// The etcd user, for messages (never the password).
    user: Option<String>,
    /// Whether a client certificate is presented.
    identity: bool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("endpoints", &self.endpoints())
            .field("preferred", &self.preferred.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Whether an error means "this member cannot serve now, another may".
pub fn retryable(e: &etcd_client::Error) -> bool {
    use etcd_client::Error as E;
    match e {
        E::TransportError(_) | E::IoError(_) | E::EndpointError(_) => true,
        E::GRpcStatus(s) => matches!(
            s.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Unknown
                | Code::Cancelled
                | Code::Aborted
                | Code::ResourceExhausted
                | Code::Internal
        ),
        E::WatchError(_) | E::LeaseKeepAliveError(_) => true,
        _ => false,
    }
}

/// A short description of an etcd-client error for messages (no secrets:
/// these are server statuses and transport errors).
/// The causes of a transport error (`transport error` alone says nothing:
/// the certificate problem or refused connection is further down) are
/// appended, each once.
pub fn describe(e: &etcd_client::Error) -> String {
    let mut out = match e {
        etcd_client::Error::GRpcStatus(s) => format!("{:?}: {}", s.code(), s.message()),
        other => other.to_string(),
    };
    // etcd-client's error reports no source: start from what it wraps.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = match e {
        etcd_client::Error::GRpcStatus(s) => std::error::Error::source(s),
        etcd_client::Error::TransportError(t) => std::error::Error::source(t),
        etcd_client::Error::IoError(io) => std::error::Error::source(io),
        _ => None,
    };
    while let Some(c) = cause {
        let m = c.to_string();
        if !m.is_empty() && !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cause = c.source();
    }
    out
}

impl Cluster {
    /// Members of `cfg`; connects nothing yet.
    ///
    /// # Errors
    /// `InvalidArgument` when a TLS file cannot be read.
    pub fn new(cfg: &EtcdConfig) -> Result<Self> {
        let mut options = ConnectOptions::new()
            .with_require_leader(true)
            .with_connect_timeout(cfg.timeout.min(Duration::from_secs(2)))
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
        if let (Some(u), Some(p)) = (&cfg.user, &cfg.password) {
            // etcd drops a token unused for --auth-token-ttl (300 s by
            // default; lease keep-alives do not count): get a new one then.
            options = options
                .with_user(u.clone(), p.clone())
                .with_auto_token_refresh(true);
        }
        let tls = if cfg.tls() {
            // Read and checked here, so a wrong file fails the open at once
            // (and its contents, maybe a private key, are never quoted).
            let read = |what: &str, p: &std::path::Path, marker: &str, holds: &str| {
                let bytes = std::fs::read(p).map_err(|e| {
                    Error::InvalidArgument(format!(
                        "cannot read the {what} file {}: {e}",
                        p.display()
                    ))
                })?;
                let text = String::from_utf8_lossy(&bytes);
                if !text.contains("-----BEGIN ") || !text.contains(marker) {
                    return Err(Error::InvalidArgument(format!(
                        "the {what} file {} holds no PEM {holds} (a \"-----BEGIN ...{marker}\" \
                         block); check {what}= (swapped cert and key?)",
                        p.display()
                    )));
                }
                Ok(bytes)
            };
            let cert = |what, p| read(what, p, "CERTIFICATE-----", "certificate");
            let mut t = etcd_client::TlsOptions::new();
            if let Some(ca) = &cfg.ca {
                t = t.ca_certificate(etcd_client::Certificate::from_pem(cert("ca", ca)?));
            }
            if let (Some(c), Some(k)) = (&cfg.cert, &cfg.key) {
                t = t.identity(etcd_client::Identity::from_pem(
                    cert("cert", c)?,
                    read("key", k, "PRIVATE KEY-----", "private key")?,
                ));
            }
            Some(t)
        } else {
            None
        };
        let attempt = (cfg.timeout / 2).clamp(Duration::from_millis(300), Duration::from_secs(2));
        Ok(Cluster {
            members: cfg
                .endpoints
                .iter()
                .map(|ep| Member {
                    endpoint: ep.clone(),
                    client: tokio::sync::Mutex::new(None),
                    avoid_until: Mutex::new(None),
                })
                .collect(),
            options,
            tls,
            preferred: AtomicUsize::new(0),
            attempt,
            user: cfg.user.clone(),
            identity: cfg.cert.is_some(),
        })
    }

    /// `host:port` of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.endpoint.clone()).collect()
    }

    /// Whether member `i` is avoided now (it failed lately).
    pub fn avoided(&self, i: usize) -> bool {
        let until = *self.members[i]
            .avoid_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|u| Instant::now() < u)
    }

    fn mark_failed(&self, i: usize) {
        *self.members[i]
            .avoid_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + AVOID_FOR);
        // Let the next request open a new connection.
        if let Ok(mut c) = self.members[i].client.try_lock() {
            *c = None;
        }
    }

    fn mark_ok(&self, i: usize) {
        *self.members[i]
            .avoid_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        self.preferred.store(i, Ordering::Relaxed);
    }

    /// Member order for one call: the preferred one, then the others, members
    /// that failed lately last.
    fn order(&self) -> Vec<usize> {
        let n = self.members.len();
        let start = self.preferred.load(Ordering::Relaxed) % n;
        let mut v: Vec<usize> = (0..n).map(|k| (start + k) % n).collect();
        v.sort_by_key(|&i| self.avoided(i));
        v
    }

    /// The client of member `i`, connecting it if needed.
    async fn client(&self, i: usize) -> std::result::Result<Client, etcd_client::Error> {
        let mut slot = self.members[i].client.lock().await;
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut ep = tonic::transport::Endpoint::from_shared(format!(
            "{scheme}://{}",
            self.members[i].endpoint
        ))
        .map_err(|e| etcd_client::Error::InvalidArgs(e.to_string()))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(2))
        .keep_alive_while_idle(true);
        if let Some(t) = &self.tls {
            ep = ep.tls_config(t.clone())?;
        }
        let channel = etcd_client::Channel::Tonic(ep.connect_lazy());
        let c = Client::from_channel(channel, Some(self.options.clone())).await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs `op` on one member after another until one answers, an error that
    /// no other member would change comes back, or `deadline` passes.
    ///
    /// # Errors
    /// `Unavailable` naming the endpoints tried; the mapped error of a
    /// non-retryable failure.
    pub async fn run<T, F, Fut>(&self, what: &str, deadline: Instant, mut op: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let mut tried: Vec<String> = Vec::new();
        let mut round = 0u32;
        // Members whose TLS handshake failed: once all have, no retry will
        // help (the certificates are wrong, not late).
        let mut tls_failed = vec![false; self.members.len()];
        loop {
            for i in self.order() {
                let now = Instant::now();
                if now >= deadline {
                    return Err(self.unavailable(what, &tried));
                }
                let budget = (deadline - now).min(self.attempt);
                let attempt = async {
                    let c = self.client(i).await?;
                    op(c).await
                };
                let ep = &self.members[i].endpoint;
                match tokio::time::timeout(budget, attempt).await {
                    Ok(Ok(v)) => {
                        self.mark_ok(i);
                        return Ok(v);
                    }
                    Ok(Err(e)) if retryable(&e) => {
                        let d = describe(&e);
                        tried.push(format!("{ep} ({d})"));
                        self.mark_failed(i);
                        if tls_hint(&d).is_some() {
                            tls_failed[i] = true;
                            if tls_failed.iter().all(|&f| f) {
                                return Err(self.tls_failure(what, &tried));
                            }
                        }
                    }
                    Ok(Err(e)) => return Err(self.map_error(what, &e)),
                    Err(_) => {
                        tried.push(format!("{ep} (no answer within {budget:?})"));
                        self.mark_failed(i);
                    }
                }
            }
            // Every member failed once: wait a little (an election takes about
            // a second) and go round again while the deadline allows.
            round += 1;
            let pause = Duration::from_millis(50 * u64::from(round.min(6)));
            let now = Instant::now();
            if now + pause >= deadline {
                return Err(self.unavailable(what, &tried));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Every member refused the TLS handshake: say why and what to check.
    fn tls_failure(&self, what: &str, tried: &[String]) -> Error {
        let tls: Vec<&str> = dedup(tried)
            .into_iter()
            .filter(|t| tls_hint(t).is_some())
            .collect();
        Error::Unavailable(format!(
            "{what}: the TLS handshake with every etcd member of [{}] failed: {}.{}",
            self.endpoints().join(", "),
            tls.join(", "),
            hints(tried)
        ))
    }

    /// [`map_error`], with authentication failures told apart (naming the
    /// user, never the password).
    fn map_error(&self, what: &str, e: &etcd_client::Error) -> Error {
        if let etcd_client::Error::GRpcStatus(s) = e {
            let m = s.message();
            let user = match &self.user {
                Some(u) => format!("user {u:?}"),
                None => "no user".to_string(),
            };
            if m.contains("authentication failed") {
                return Error::PermissionDenied(format!(
                    "{what}: etcd refused {user}: authentication failed (wrong user name or \
                     password); check Builder::etcd_auth or the url's user= and password="
                ));
            }
            if m.contains("user name is empty") || m.contains("invalid auth token") {
                return Error::PermissionDenied(format!(
                    "{what}: the etcd cluster requires authentication and the request carried \
                     {user} ({m}); give Builder::etcd_auth(user, password) or \
                     ?user=NAME&password=SECRET"
                ));
            }
        }
        map_error(what, e)
    }

    fn unavailable(&self, what: &str, tried: &[String]) -> Error {
        let mut hint = hints(tried);
        let closed = tried
            .iter()
            .any(|t| t.contains("broken pipe") || t.contains("connection closed"));
        if closed && self.tls.is_none() {
            hint.push_str(
                " A member that closes connections at once may serve TLS: then give ca=FILE \
                 (Builder::etcd_ca).",
            );
        } else if closed && !self.identity && !hint.contains("client certificate") {
            // TLS 1.3: a member that wants a client certificate closes the
            // connection after the handshake; its alert is often lost.
            hint.push_str(
                " A member that closes TLS connections at once may require a client \
                 certificate (etcd --client-cert-auth): then give cert=FILE&key=FILE \
                 (Builder::etcd_client_cert).",
            );
        }
        let tried = if tried.is_empty() {
            "none (the deadline passed first)".to_string()
        } else {
            dedup(tried).join(", ")
        };
        Error::Unavailable(format!(
            "{what}: no etcd member of [{}] answered in time; tried {tried}. Check that a \
             majority of the members runs and is reachable from here, or open with a longer \
             ?timeout=.{hint}",
            self.endpoints().join(", ")
        ))
    }
}

/// `v` without repeats, in order.
fn dedup(v: &[String]) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    v.iter()
        .filter(|t| seen.insert(t.as_str()))
        .map(String::as_str)
        .collect()
}

/// The TLS hints of the failures in `tried`, each once, each after a space.
fn hints(tried: &[String]) -> String {
    let mut out = String::new();
    for t in tried {
        if let Some(h) = tls_hint(t) {
            if !out.contains(h) {
                out.push(' ');
                out.push_str(h);
            }
        }
    }
    out
}

/// What to check when a description (from [`describe`]) shows a failed TLS
/// handshake; `None` for other failures.
pub fn tls_hint(description: &str) -> Option<&'static str> {
    let d = description;
    if d.contains("invalid peer certificate") {
        Some(
            "The members' certificates are not trusted: give the CA certificate that signed \
             them (ca=FILE or Builder::etcd_ca), and check that they name the host in the url.",
        )
    } else if d.contains("fatal alert") && d.contains("Certificate")
        || d.contains("fatal alert: UnknownCA")
    {
        Some(
            "The members refused this client's certificate (or its absence): give a client \
             certificate and key signed by their --trusted-ca-file (cert=FILE&key=FILE or \
             Builder::etcd_client_cert).",
        )
    } else if d.contains("InvalidContentType") || d.contains("corrupt message") {
        Some("The members may not speak TLS: drop ca=, cert= and key= for a plain-HTTP cluster.")
    } else {
        None
    }
}

/// Marker in the message of a write refused because its lease is gone.
pub const LEASE_GONE: &str = "lease is gone on the server";

/// Maps a non-retryable etcd error.
pub fn map_error(what: &str, e: &etcd_client::Error) -> Error {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(s) if matches!(s.code(), Code::PermissionDenied | Code::Unauthenticated) => {
            Error::PermissionDenied(format!(
                "{what}: etcd refused the request ({}); check the user, password and roles",
                s.message()
            ))
        }
        E::GRpcStatus(s) if s.code() == Code::NotFound && s.message().contains("lease") => {
            Error::Unavailable(format!(
                "{what}: refused because the {LEASE_GONE} (it expired: the owner was frozen, \
                 partitioned or too slow to renew it); open a new handle and register again"
            ))
        }
        E::GRpcStatus(s) if s.code() == Code::InvalidArgument => {
            Error::InvalidArgument(format!("{what}: etcd refused the request: {}", s.message()))
        }
        other => Error::Unavailable(format!("{what}: etcd answered {}", describe(other))),
    }
}
