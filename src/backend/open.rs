//! Construction: a registry url names a backend and where it lives;
//! [`open`] builds it and [`destroy`] removes what it stores.

use super::{AnyBackend, mem, shm};
use crate::error::{Error, Result};
use crate::segment::{self, Config, RequestedLimits, Segment, Trust};
use crate::table::Geometry;
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

/// Every option of [`open`]: generic ones, and those of one kind of backend.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) table: TableOptions,
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
fn shm_dir() -> Result<PathBuf> {
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
        Ok(Location::File(shm_dir()?.join(format!("procreg.{name}"))))
    }
}

/// Opens (or creates, per `mode`) the registry at `url`.
pub(crate) fn open(url: &str, mode: OpenMode, options: &Options) -> Result<AnyBackend> {
    let t = &options.table;
    let config = t.config()?;
    Ok(match Location::parse(url)? {
        Location::File(path) => {
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
        Location::Etcd(url) => open_etcd(&url)?,
    })
}

/// An etcd cluster has no file to create: every mode connects, and a
/// prefix with no entries is an empty registry.
#[cfg(feature = "etcd")]
fn open_etcd(url: &str) -> Result<AnyBackend> {
    let engine = super::etcd::EtcdBackend::open(url)?;
    Ok(AnyBackend::Etcd(super::etcd::registry::EtcdRegistry::new(
        engine,
    )))
}

#[cfg(not(feature = "etcd"))]
fn open_etcd(url: &str) -> Result<AnyBackend> {
    Err(no_etcd(url))
}

#[cfg(not(feature = "etcd"))]
fn no_etcd(url: &str) -> Error {
    Error::InvalidArgument(format!(
        "registry url {url:?}: this build of procreg has no etcd backend; \
         build it with the cargo feature \"etcd\" (cargo build --features etcd)"
    ))
}

/// Removes the registry at `url` (only a procreg segment, only by its creator).
pub(crate) fn destroy(url: &str) -> Result<()> {
    match Location::parse(url)? {
        Location::File(path) => segment::destroy(&path),
        Location::Mem(_) => Ok(()),
        #[cfg(feature = "etcd")]
        Location::Etcd(url) => {
            // Removes every entry under the prefix, then ends the session.
            let engine = super::etcd::EtcdBackend::open(&url)?;
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
            "", "shm:", "shm:a/b", "http://x", "file:", "shm:..", "mem:a\0",
        ] {
            assert!(
                matches!(parse(bad), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }
}
