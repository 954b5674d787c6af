//! Construction: a registry url names a backend and where it lives;
//! [`open`] builds it and [`destroy`] removes what it stores.

use super::{AnyBackend, mem, shm};
use crate::error::{Error, Result};
use crate::segment::{self, Config, RequestedLimits, Segment, Trust};
use crate::table::Geometry;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use crate::segment::OpenMode;

/// Default slot capacity.
pub const DEFAULT_CAPACITY: usize = 4096;
/// Default maximum namespace length in bytes.
pub const DEFAULT_MAX_NAMESPACE_LEN: usize = 64;
/// Default maximum name length in bytes.
pub const DEFAULT_MAX_NAME_LEN: usize = 128;
/// Default maximum metadata length in bytes.
pub const DEFAULT_MAX_METADATA_LEN: usize = 256;
/// Default maximum number of processes writing one segment at the same time.
pub const DEFAULT_MAX_WRITERS: usize = 1024;
/// Default segment file mode.
pub const DEFAULT_MODE: u32 = 0o600;
/// Default bound on waiting for another writer of the same neighbourhood.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_millis(500);
/// Default bound on the size of a segment file `create` may reserve (1 GiB):
/// larger limits are refused unless the bound is raised, so a typo in
/// `max_metadata_len` or `capacity` cannot fill a tmpfs silently.
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 1 << 30;

/// Options of the hash-table backends (`shm:`, `file:`, `mem:`). Limits left
/// `None` take the defaults when creating and accept the existing values
/// when opening; set ones must match an existing registry.
#[derive(Debug, Clone)]
pub(crate) struct TableOptions {
    pub(crate) capacity: Option<usize>,
    pub(crate) max_ns_len: Option<usize>,
    pub(crate) max_name_len: Option<usize>,
    pub(crate) max_meta_len: Option<usize>,
    /// Writer slots of a created segment.
    pub(crate) max_writers: usize,
    /// File mode of a created segment.
    pub(crate) mode: u32,
    /// Which existing segment files are trusted.
    pub(crate) trust: Trust,
    /// Bound on waiting for another writer of the same neighbourhood.
    pub(crate) lock_timeout: Duration,
    /// Largest segment file `create` may reserve, in bytes.
    pub(crate) max_segment_bytes: u64,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            capacity: None,
            max_ns_len: None,
            max_name_len: None,
            max_meta_len: None,
            max_writers: DEFAULT_MAX_WRITERS,
            mode: DEFAULT_MODE,
            trust: Trust::default(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
        }
    }
}

impl TableOptions {
    /// The geometry of a table created with these options.
    pub(crate) fn geometry(&self) -> Geometry {
        Geometry {
            capacity: self.capacity.unwrap_or(DEFAULT_CAPACITY),
            max_ns_len: self.max_ns_len.unwrap_or(DEFAULT_MAX_NAMESPACE_LEN),
            max_name_len: self.max_name_len.unwrap_or(DEFAULT_MAX_NAME_LEN),
            max_meta_len: self.max_meta_len.unwrap_or(DEFAULT_MAX_METADATA_LEN),
        }
    }

    /// The limits set explicitly, which an existing table must match.
    pub(crate) fn requested(&self) -> RequestedLimits {
        RequestedLimits {
            capacity: self.capacity,
            max_ns_len: self.max_ns_len,
            max_name_len: self.max_name_len,
            max_meta_len: self.max_meta_len,
        }
    }

    fn config(&self) -> Result<Config> {
        if self.mode & !0o777 != 0 {
            return Err(Error::InvalidArgument(format!(
                "mode {:o} has bits outside 0o777",
                self.mode
            )));
        }
        let config = Config {
            geometry: self.geometry(),
            max_writers: self.max_writers,
        };
        segment::validate_config(&config).map_err(Error::InvalidArgument)?;
        Ok(config)
    }
}

impl TableOptions {
    /// The builder methods whose values differ from the defaults. A default
    /// value counts as unset, so a caller that always passes every option
    /// (the C ABI passes `mode` and the trust flags) can open any backend.
    fn changed(&self) -> Vec<&'static str> {
        let d = TableOptions::default();
        let mut v = Vec::new();
        let mut note = |set: bool, name| {
            if set {
                v.push(name);
            }
        };
        note(self.capacity.is_some(), "capacity");
        note(self.max_ns_len.is_some(), "max_namespace_len");
        note(self.max_name_len.is_some(), "max_name_len");
        note(self.max_meta_len.is_some(), "max_metadata_len");
        note(self.max_writers != d.max_writers, "max_writers");
        note(self.mode != d.mode, "mode");
        note(
            self.trust.allow_foreign_owner != d.trust.allow_foreign_owner,
            "allow_foreign_owner",
        );
        note(
            self.trust.allow_world_writable != d.trust.allow_world_writable,
            "allow_world_writable",
        );
        note(self.lock_timeout != d.lock_timeout, "lock_timeout");
        note(
            self.max_segment_bytes != d.max_segment_bytes,
            "max_segment_bytes",
        );
        v
    }
}

/// A string that is never printed (`Debug` shows `<redacted>`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Options of the etcd backend (`etcd://`). Each one set here overrides the
/// url option of the same meaning (`ca=`, `cert=`, `key=`, `user=`,
/// `password=`, `ttl=`, `timeout=`).
#[derive(Clone, Default)]
pub(crate) struct EtcdOptions {
    /// CA certificate (PEM) that signs the members' certificates.
    pub(crate) ca: Option<PathBuf>,
    /// Client certificate and private key (PEM files).
    pub(crate) cert: Option<(PathBuf, PathBuf)>,
    /// User and password for etcd authentication.
    pub(crate) auth: Option<(String, Secret)>,
    /// Session lease TTL.
    pub(crate) ttl: Option<Duration>,
    /// Bound of every call.
    pub(crate) timeout: Option<Duration>,
}

impl fmt::Debug for EtcdOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdOptions")
            .field("ca", &self.ca)
            .field("cert", &self.cert.as_ref().map(|(c, _)| c))
            .field("key", &self.cert.as_ref().map(|_| "<redacted>"))
            .field("user", &self.auth.as_ref().map(|(u, _)| u))
            .field("password", &self.auth.as_ref().map(|(_, p)| p))
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl EtcdOptions {
    /// The builder methods that set something.
    fn changed(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut note = |set: bool, name| {
            if set {
                v.push(name);
            }
        };
        note(self.ca.is_some(), "etcd_ca");
        note(self.cert.is_some(), "etcd_client_cert");
        note(self.auth.is_some(), "etcd_auth");
        note(self.ttl.is_some(), "etcd_session_ttl");
        note(self.timeout.is_some(), "etcd_timeout");
        v
    }

    /// Lays these options over `cfg` (parsed from the url): a set option wins.
    #[cfg(feature = "etcd")]
    pub(crate) fn apply(&self, cfg: &mut super::etcd::EtcdConfig) {
        if let Some(ca) = &self.ca {
            cfg.ca = Some(ca.clone());
        }
        if let Some((c, k)) = &self.cert {
            cfg.cert = Some(c.clone());
            cfg.key = Some(k.clone());
        }
        if let Some((u, p)) = &self.auth {
            cfg.user = Some(u.clone());
            cfg.password = Some(p.0.clone());
        }
        if let Some(t) = self.ttl {
            cfg.ttl = t;
        }
        if let Some(t) = self.timeout {
            cfg.timeout = t;
        }
    }
}

/// Every option of [`open`]: generic ones, and those of one kind of backend.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) table: TableOptions,
    pub(crate) etcd: EtcdOptions,
}

impl Options {
    /// Refuses options of another kind of backend than `location`'s.
    fn check_fit(&self, url: &str, location: &Location) -> Result<()> {
        let list = |v: Vec<&str>| v.join(", ");
        match location {
            Location::Etcd(_) => {
                let t = self.table.changed();
                if !t.is_empty() {
                    return Err(Error::InvalidArgument(format!(
                        "Builder option(s) {} apply to the hash-table backends (shm:, file:, \
                         mem:) only, not to the etcd registry {}; leave them unset for etcd:// \
                         (its limits are fixed, its options are the etcd_* ones)",
                        list(t),
                        redact_url(url)
                    )));
                }
            }
            Location::File(_) | Location::Mem(_) => {
                let e = self.etcd.changed();
                if !e.is_empty() {
                    return Err(Error::InvalidArgument(format!(
                        "Builder option(s) {} apply to etcd:// registries only, not to {url:?}; \
                         leave them unset for shm:, file: and mem: registries",
                        list(e)
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Where a registry lives, parsed from a url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    File(PathBuf),
    Mem(String),
    /// An `etcd://` url, parsed by the etcd backend.
    Etcd(String),
}

/// Directory for `shm:` segments: `/dev/shm`, else `$XDG_RUNTIME_DIR`.
pub(crate) fn shm_dir() -> Result<PathBuf> {
    let dev = PathBuf::from("/dev/shm");
    if dev.is_dir() {
        return Ok(dev);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => Ok(PathBuf::from(d)),
        _ => Err(Error::InvalidArgument(
            "neither /dev/shm nor $XDG_RUNTIME_DIR exists; use a file:/path url".into(),
        )),
    }
}

impl Location {
    /// Parses `shm:NAME` (or a bare `NAME`), `file:/path`, `mem:[NAME]` or
    /// `etcd://…` (whose rest the etcd backend parses).
    pub(crate) fn parse(url: &str) -> Result<Location> {
        let bad = |why: &str| Error::InvalidArgument(format!("registry url {url:?}: {why}"));
        if url.starts_with("etcd://") {
            return Ok(Location::Etcd(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("file:") {
            if path.is_empty() || path.contains('\0') {
                return Err(bad(
                    "file: needs a path without NUL bytes, e.g. file:/tmp/my.reg",
                ));
            }
            return Ok(Location::File(PathBuf::from(path)));
        }
        if let Some(name) = url.strip_prefix("mem:") {
            if name.contains('\0') {
                return Err(bad("mem: name contains a NUL byte"));
            }
            return Ok(Location::Mem(name.to_owned()));
        }
        let name = url.strip_prefix("shm:").unwrap_or(url);
        if name.contains(':') && !url.starts_with("shm:") {
            return Err(bad(
                "unknown scheme; use shm:NAME, file:/path, mem:[NAME] or etcd://HOST:PORT/PREFIX",
            ));
        }
        if name.is_empty()
            || name.len() > 200
            || name == "."
            || name == ".."
            || name.contains(['/', '\0'])
        {
            return Err(bad("a shm name is 1..=200 bytes without '/' or NUL"));
        }
        if super::shm::files::creating_parts(name).is_some() {
            // The private name of a creator at work (see Segment::create):
            // `procreg registries --gc` removes such files of dead creators.
            return Err(bad(
                "NAME.creating.PID.N is reserved for the private files of creators",
            ));
        }
        Ok(Location::File(shm_dir()?.join(format!("procreg.{name}"))))
    }
}

/// Opens (or creates, per `mode`) the registry at `url`.
pub(crate) fn open(url: &str, mode: OpenMode, options: &Options) -> Result<AnyBackend> {
    let t = &options.table;
    let location = Location::parse(url)?;
    options.check_fit(url, &location)?;
    let config = t.config()?;
    Ok(match location {
        Location::File(path) => {
            let mut mode = mode;
            let bytes = config.total_bytes() as u64;
            if mode != OpenMode::Open && bytes > t.max_segment_bytes {
                // Attaching to an existing segment reserves nothing: only a
                // creation is refused.
                if mode == OpenMode::Create || !path.exists() {
                    return Err(too_large(&path, bytes, t.max_segment_bytes));
                }
                mode = OpenMode::Open;
            }
            let seg = Segment::open(&path, mode, config, &t.requested(), t.mode, t.trust)?;
            AnyBackend::Shm(shm::from_segment(seg, t.lock_timeout))
        }
        Location::Mem(name) => AnyBackend::Mem(mem::open(
            &name,
            mode,
            t.geometry(),
            &t.requested(),
            t.lock_timeout,
        )?),
        Location::Etcd(url) => open_etcd(&url, &options.etcd)?,
    })
}

/// The refusal of a segment larger than the bound: the size, the bound, and
/// the options that change either.
fn too_large(path: &std::path::Path, bytes: u64, bound: u64) -> Error {
    Error::InvalidArgument(format!(
        "creating {} would reserve {bytes} bytes ({}), more than the bound of {bound} bytes \
         ({}); lower capacity or max_metadata_len, or raise the bound with \
         Builder::max_segment_bytes (procreg put --max-segment-size SIZE)",
        path.display(),
        human_bytes(bytes),
        human_bytes(bound)
    ))
}

/// `1.5 GiB`, `64.0 MiB`, `512 B`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// An etcd cluster has no file to create: every mode connects, and a
/// prefix with no entries is an empty registry.
/// The builder's etcd options override the url's.
#[cfg(feature = "etcd")]
fn open_etcd(url: &str, options: &EtcdOptions) -> Result<AnyBackend> {
    let mut cfg = super::etcd::EtcdConfig::parse(url)?;
    options.apply(&mut cfg);
    let engine = super::etcd::EtcdBackend::open_config(cfg)?;
    Ok(AnyBackend::Etcd(super::etcd::registry::EtcdRegistry::new(
        engine,
    )))
}

#[cfg(not(feature = "etcd"))]
fn open_etcd(url: &str, _: &EtcdOptions) -> Result<AnyBackend> {
    Err(no_etcd(url))
}

#[cfg(not(feature = "etcd"))]
fn no_etcd(url: &str) -> Error {
    Error::InvalidArgument(format!(
        "registry url {:?}: this build of procreg has no etcd backend; \
         build it with the cargo feature \"etcd\" (cargo build --features etcd)",
        redact_url(url)
    ))
}

/// `url` with the value of every `password=` option and any
/// `USER:PASSWORD@` before a host replaced by `<redacted>`: what messages,
/// `Debug` and [`Registry::url`](crate::Registry::url) show of an `etcd://` url.
/// Other urls come back unchanged.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(rest) = url.strip_prefix("etcd://") else {
        return url.to_owned();
    };
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (hosts, path) = match main.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (main, None),
    };
    let hosts: Vec<String> = hosts
        .split(',')
        .map(|h| match h.rsplit_once('@') {
            Some((_, host)) => format!("<redacted>@{host}"),
            None => h.to_owned(),
        })
        .collect();
    let mut out = format!("etcd://{}", hosts.join(","));
    if let Some(p) = path {
        out.push('/');
        out.push_str(p);
    }
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some(("password", _)) => "password=<redacted>".to_owned(),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// Removes the registry at `url` (only a procreg segment, only by its creator).
/// For `etcd://`, `options.etcd` apply as in [`open`].
pub(crate) fn destroy(url: &str, options: &Options) -> Result<()> {
    let location = Location::parse(url)?;
    options.check_fit(url, &location)?;
    match location {
        Location::File(path) => segment::destroy(&path),
        Location::Mem(_) => Ok(()),
        #[cfg(feature = "etcd")]
        Location::Etcd(url) => {
            // Removes every entry under the prefix, then ends the session.
            let mut cfg = super::etcd::EtcdConfig::parse(&url)?;
            options.etcd.apply(&mut cfg);
            let engine = super::etcd::EtcdBackend::open_config(cfg)?;
            for ns in engine.namespaces()? {
                engine.clear_namespace(&ns)?;
            }
            engine.close()
        }
        #[cfg(not(feature = "etcd"))]
        Location::Etcd(url) => Err(no_etcd(&url)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_passwords_and_keeps_the_rest() {
        assert_eq!(
            redact_url("etcd://h:1,h2:2/p?user=u&password=hunter2&ttl=3s"),
            "etcd://h:1,h2:2/p?user=u&password=<redacted>&ttl=3s"
        );
        assert_eq!(
            redact_url("etcd://u:hunter2@h:1/p"),
            "etcd://<redacted>@h:1/p"
        );
        assert_eq!(redact_url("etcd://h:1/p"), "etcd://h:1/p");
        assert_eq!(redact_url("shm:x?password=y"), "shm:x?password=y");
    }

    #[test]
    fn urls_parse_to_their_locations() {
        let parse = Location::parse;
        assert_eq!(
            parse("file:/tmp/x").unwrap(),
            Location::File("/tmp/x".into())
        );
        assert_eq!(parse("mem:").unwrap(), Location::Mem(String::new()));
        assert_eq!(parse("mem:a").unwrap(), Location::Mem("a".into()));
        let Location::File(p) = parse("shm:abc").unwrap() else {
            panic!()
        };
        assert!(p.ends_with("procreg.abc"));
        assert_eq!(parse("abc").unwrap(), parse("shm:abc").unwrap());
        for bad in [
            "",
            "shm:",
            "shm:a/b",
            "http://x",
            "file:",
            "shm:..",
            "mem:a\0",
            "shm:a.creating.1.2",
        ] {
            assert!(
                matches!(parse(bad), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn options_of_another_backend_are_refused_by_name() {
        let mut o = Options::default();
        o.etcd.auth = Some(("u".into(), Secret("hunter2".into())));
        o.etcd.ttl = Some(Duration::from_secs(3));
        let m = o
            .check_fit("mem:x", &Location::Mem("x".into()))
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("etcd_auth, etcd_session_ttl apply to etcd:// registries only"),
            "{m}"
        );
        assert!(!m.contains("hunter2"), "{m}");

        let mut o = Options::default();
        o.table.capacity = Some(64);
        o.table.mode = 0o640;
        let url = "etcd://h:1/p?user=u&password=hunter2";
        let m = o
            .check_fit(url, &Location::Etcd(url.into()))
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("capacity, mode apply to the hash-table backends"),
            "{m}"
        );
        assert!(!m.contains("hunter2"), "{m}");

        // Defaults passed explicitly (as the C ABI does) are not "set".
        let mut o = Options::default();
        o.table.mode = DEFAULT_MODE;
        o.table.trust.allow_foreign_owner = false;
        assert!(o.check_fit(url, &Location::Etcd(url.into())).is_ok());
        assert!(
            Options::default()
                .check_fit("mem:", &Location::Mem(String::new()))
                .is_ok()
        );
    }

    fn temp_url(tag: &str) -> (String, PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "procreg-open-{tag}-{}-{}",
            std::process::id(),
            crate::now_ns()
        ));
        (format!("file:{}", path.display()), path)
    }

    #[test]
    fn a_segment_over_the_size_bound_is_refused_with_its_size_and_the_option() {
        let (url, path) = temp_url("bound");
        let mut o = Options::default();
        // 4096 slots x 2 metadata buffers of 1 MiB: about 8 GiB.
        o.table.max_meta_len = Some(1 << 20);
        for mode in [OpenMode::Create, OpenMode::OpenOrCreate] {
            let Err(Error::InvalidArgument(m)) = open(&url, mode, &o) else {
                panic!("an 8 GiB segment was not refused ({mode:?})");
            };
            assert!(m.contains("GiB") && m.contains("1.0 GiB"), "{m}");
            assert!(
                m.contains("max_segment_bytes") && m.contains("--max-segment-size"),
                "{m}"
            );
            assert!(!path.exists(), "nothing is created");
        }
    }

    #[test]
    fn the_size_bound_can_be_raised_and_never_applies_to_opening() {
        let (url, path) = temp_url("raise");
        let bytes = TableOptions::default().config().unwrap().total_bytes() as u64;
        let mut o = Options::default();
        o.table.max_segment_bytes = bytes - 1;
        assert!(matches!(
            open(&url, OpenMode::Create, &o),
            Err(Error::InvalidArgument(_))
        ));
        o.table.max_segment_bytes = bytes;
        let created = open(&url, OpenMode::Create, &o).expect("exactly the bound is allowed");
        // An existing segment opens whatever the bound, in both modes that open.
        o.table.max_segment_bytes = 1;
        assert!(open(&url, OpenMode::Open, &o).is_ok());
        assert!(open(&url, OpenMode::OpenOrCreate, &o).is_ok());
        drop(created);
        segment::destroy(&path).unwrap();
    }

    #[test]
    fn etcd_options_debug_hides_password_and_key() {
        let o = EtcdOptions {
            cert: Some(("/c.pem".into(), "/secret-key.pem".into())),
            auth: Some(("alice".into(), Secret("hunter2".into()))),
            ..EtcdOptions::default()
        };
        let d = format!("{o:?}");
        assert!(!d.contains("hunter2") && !d.contains("secret-key"), "{d}");
        assert!(d.contains("alice") && d.contains("/c.pem"), "{d}");
    }
}
