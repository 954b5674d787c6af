//! `etcd://H:P[,H:P...]/PREFIX[?ttl=10s&timeout=5s&ca=..&cert=..&key=..&user=..&password=..]`
//! parsed into an [`EtcdConfig`] whose `Debug` never shows a secret.

use crate::error::{Error, Result};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Default session lease TTL of a handle.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// Shortest TTL: etcd 3.4 silently turns `lease_grant(1)` into 2 s.
pub const MIN_TTL: Duration = Duration::from_secs(2);
/// Default bound of every call of a handle.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

const USAGE: &str = "write etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?ttl=10s&timeout=5s\
                     &ca=FILE&cert=FILE&key=FILE&user=NAME&password=SECRET]";

/// Where and how to reach an etcd cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `host:port` of each member, in the order given.
    pub endpoints: Vec<String>,
    /// Key prefix with a leading `/` and no trailing `/` (`/myapp`).
    pub prefix: String,
    /// TTL of the handle's session lease (whole seconds, at least [`MIN_TTL`]).
    pub ttl: Duration,
    /// Bound of every call.
    pub timeout: Duration,
    /// CA certificate (PEM) that signs the members' certificates: enables TLS.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM), with `key`.
    pub cert: Option<PathBuf>,
    /// Client private key (PEM), with `cert`.
    pub key: Option<PathBuf>,
    /// User name for etcd authentication.
    pub user: Option<String>,
    /// Password for etcd authentication (never printed).
    pub password: Option<String>,
    /// After a session loss, grant a new lease and register again the
    /// entries the handle held where nobody took them meanwhile (off by
    /// default: a handle that lost its lease stays lost and says so).
    pub reregister: bool,
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl EtcdConfig {
    /// A config for `endpoints` and `prefix` with default TTL and timeout.
    ///
    /// # Errors
    /// `InvalidArgument` for an empty endpoint list or a bad prefix.
    pub fn new(endpoints: &[&str], prefix: &str) -> Result<Self> {
        let url = format!(
            "etcd://{}/{}",
            endpoints.join(","),
            prefix.trim_start_matches('/')
        );
        Self::parse(&url)
    }

    /// Parses an `etcd://` url.
    ///
    /// # Errors
    /// `InvalidArgument` with a message that says what to write.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |what: String| Error::InvalidArgument(format!("{what}; {USAGE}"));
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| bad("an etcd registry url starts with etcd://".into()))?;
        let (main, query) = match rest.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (rest, None),
        };
        let (hosts, path) = match main.split_once('/') {
            Some((h, p)) => (h, p),
            None => (main, ""),
        };
        let mut endpoints = Vec::new();
        for ep in hosts.split(',') {
            endpoints.push(parse_endpoint(ep).map_err(&bad)?);
        }
        let prefix = parse_prefix(path).map_err(&bad)?;
        let mut cfg = EtcdConfig {
            endpoints,
            prefix,
            ttl: DEFAULT_TTL,
            timeout: DEFAULT_TIMEOUT,
            ca: None,
            cert: None,
            key: None,
            user: None,
            password: None,
            reregister: false,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                bad(format!(
                    "option {:?} has no value (write NAME=VALUE)",
                    k_only(pair)
                ))
            })?;
            let v = percent_decode(v).map_err(|m| bad(format!("option {k}: {m}")))?;
            match k {
                "ttl" => cfg.ttl = parse_duration(&v).map_err(|m| bad(format!("ttl: {m}")))?,
                "timeout" => {
                    cfg.timeout = parse_duration(&v).map_err(|m| bad(format!("timeout: {m}")))?
                }
                "ca" => cfg.ca = Some(PathBuf::from(v)),
                "cert" => cfg.cert = Some(PathBuf::from(v)),
                "key" => cfg.key = Some(PathBuf::from(v)),
                "user" => cfg.user = Some(v),
                "password" => cfg.password = Some(v),
                "reregister" => {
                    cfg.reregister = match v.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(bad(format!(
                                "reregister={v:?}: write reregister=true or reregister=false"
                            )));
                        }
                    }
                }
                other => {
                    return Err(bad(format!(
                        "unknown option {other:?} (known: ttl, timeout, ca, cert, key, user, \
                         password, reregister)"
                    )));
                }
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the options together (TTL bounds, cert with key, user with password).
    ///
    /// # Errors
    /// `InvalidArgument` naming the option to fix.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidArgument(format!("{m}; {USAGE}")));
        if self.ttl < MIN_TTL {
            return bad("ttl must be at least 2s (etcd turns shorter leases into 2 s)");
        }
        if self.ttl.subsec_nanos() != 0 {
            return bad("ttl must be a whole number of seconds (etcd leases count seconds)");
        }
        if self.timeout < Duration::from_millis(100) {
            return bad("timeout must be at least 100ms");
        }
        if self.cert.is_some() != self.key.is_some() {
            return bad("give cert and key together");
        }
        if self.user.is_some() != self.password.is_some() {
            return bad("give user and password together");
        }
        Ok(())
    }

    /// Whether the members are reached over TLS.
    pub fn tls(&self) -> bool {
        self.ca.is_some() || self.cert.is_some()
    }
}

fn k_only(pair: &str) -> &str {
    pair.split('=').next().unwrap_or(pair)
}

fn parse_endpoint(ep: &str) -> std::result::Result<String, String> {
    if ep.contains('@') {
        // `user:password@host`: never echo it, it may hold a password.
        return Err(
            "credentials do not go before the host (USER:PASSWORD@HOST); \
             give them as ?user=NAME&password=SECRET or with Builder::etcd_auth"
                .into(),
        );
    }
    let (host, port) = ep
        .rsplit_once(':')
        .ok_or_else(|| format!("endpoint {ep:?} needs a port (HOST:PORT)"))?;
    if host.is_empty() || host.contains(['@', '/', ' ']) {
        return Err(format!("endpoint {ep:?} has no valid host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(format!("{host}:{p}")),
        _ => Err(format!("endpoint {ep:?} has no valid port (1..65535)")),
    }
}

fn parse_prefix(path: &str) -> std::result::Result<String, String> {
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        return Err(
            "the url needs a key prefix after the endpoints (etcd://H:P/myapp); \
                    procreg never takes the whole keyspace"
                .into(),
        );
    }
    if p.split('/').any(str::is_empty) {
        return Err(format!("prefix {p:?} has an empty segment (//)"));
    }
    if !p
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'%' && b != b'#')
    {
        return Err(format!(
            "prefix {p:?} may hold printable ASCII only, without % and #"
        ));
    }
    Ok(format!("/{p}"))
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let (num, mul_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else {
        (s, 1000)
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (write 10s, 500ms or 2m)"))?;
    n.checked_mul(mul_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?} is too long"))
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a % must be followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the value is not UTF-8 once decoded".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints_prefix_and_options() {
        let c = EtcdConfig::parse(
            "etcd://10.0.0.1:2379,h2:2380/apps/billing?ttl=3s&timeout=1500ms&user=u&password=p%40ss",
        )
        .unwrap();
        assert_eq!(c.endpoints, ["10.0.0.1:2379", "h2:2380"]);
        assert_eq!(c.prefix, "/apps/billing");
        assert_eq!(c.ttl, Duration::from_secs(3));
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        assert!(!c.tls());
    }

    #[test]
    fn defaults_apply() {
        let c = EtcdConfig::parse("etcd://h:1/p/").unwrap();
        assert_eq!(c.ttl, DEFAULT_TTL);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.prefix, "/p");
    }

    #[test]
    fn debug_redacts_secrets() {
        let c =
            EtcdConfig::parse("etcd://h:1/p?user=alice&password=hunter2&cert=/c&key=/secret.pem")
                .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(!d.contains("secret.pem"), "{d}");
        assert!(d.contains("alice"), "{d}");
    }

    #[test]
    fn bad_urls_are_invalid_arguments_that_say_what_to_write() {
        for (url, needle) in [
            ("http://h:1/p", "starts with etcd://"),
            ("etcd://h/p", "needs a port"),
            ("etcd://h:0/p", "valid port"),
            ("etcd://h:99999/p", "valid port"),
            ("etcd://h:1", "needs a key prefix"),
            ("etcd://h:1/", "needs a key prefix"),
            ("etcd://h:1/a//b", "empty segment"),
            ("etcd://h:1/p?ttl=1s", "at least 2s"),
            ("etcd://h:1/p?ttl=2500ms", "whole number"),
            ("etcd://h:1/p?ttl=soon", "not a duration"),
            ("etcd://h:1/p?cert=/c", "cert and key"),
            ("etcd://h:1/p?user=a", "user and password"),
            ("etcd://h:1/p?colour=red", "unknown option"),
            ("etcd://h:1/p?ttl", "has no value"),
            ("etcd://h:1,/p", "needs a port"),
            ("etcd://h:1/p?password=%zz&user=u", "two hex digits"),
        ] {
            match EtcdConfig::parse(url) {
                Err(Error::InvalidArgument(m)) => {
                    assert!(m.contains(needle), "{url}: {m}");
                    assert!(m.contains("etcd://HOST:PORT"), "{url}: {m}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn credentials_before_the_host_are_refused_without_echo() {
        let e = EtcdConfig::parse("etcd://u:hunter2@h:1/p").unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, Error::InvalidArgument(_)), "{m}");
        assert!(m.contains("?user=NAME&password=SECRET"), "{m}");
        assert!(!m.contains("hunter2"), "{m}");
    }

    #[test]
    fn password_never_in_error_messages() {
        let e = EtcdConfig::parse("etcd://h:1/p?password=hunter2&ttl=1s").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }
}
