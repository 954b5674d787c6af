//! The segment file: header, layout, validation, mapping, and the writer
//! slots that give each writing process a token the kernel revokes on death.
//!
//! # File layout
//! ```text
//! [0, 4096)            header (immutable once `initialized` is set)
//! [4096, table_offset) writer slots: max_writers × 4 words
//! [table_offset, end)  table words (see crate::table)
//! ```
//! The header is read with `pread` into process memory and validated there;
//! the mapping itself is only ever accessed through atomics.
//!
//! A *writer slot* belongs to a writing process (a registry handle that has
//! written), not to an entry: it holds that process's writer token and is
//! held by an OFD lock. An entry's *owner* is the process it registers.

mod writer_slot;

use crate::error::{Error, Result};
use crate::sync::{AtomicU64, Ordering};
use crate::sys::{self, Cause, file, mmap::Mapping};
use crate::table::{Geometry, key::hash_bytes};
use std::fs::File;
use std::path::{Path, PathBuf};

/// `PROCREG` + format byte.
pub(crate) const MAGIC: [u8; 8] = *b"PROCREG\x01";
/// Bumped whenever the layout or the hash function changes. 4: a row's six
/// head key words are always written, zero past the key. 5: a group
/// member's lens word carries `table::MEMBER` (bit 32), which a version-4
/// build would not tell from a unique key. 6: each key part is padded to a
/// pair of words (`table::key::part_words`), where version 5 packed the
/// name right after the namespace's last byte. 7: a part's chunk of
/// fewer than 16 bytes is packed as overlapping words with no padding
/// (`table::bytes::pack16`), where version 6 zero-padded it.
pub(crate) const LAYOUT_VERSION: u32 = 7;
/// Header size in bytes.
pub(crate) const HEADER_BYTES: usize = 4096;
const INIT_MAGIC: u64 = 0x5245_4144_595f_4f4b; // "READY_OK"
const OFF_CHECKSUM: usize = 112;
const OFF_INITIALIZED: usize = 120;
/// Words per writer slot: `gen | pid << 32`, start time, pidns, reserved.
const SLOT_WORDS: usize = 4;
/// Largest number of writer slots (token = (index + 1) << 17 | gen).
pub(crate) const MAX_WRITERS: usize = 4095;

/// Limits of a segment, as the user asks for them and as the header records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) geometry: Geometry,
    /// Number of writer slots: processes that may write at once.
    pub(crate) max_writers: usize,
}

/// The validated header, copied into process memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) config: Config,
    pub(crate) writers_offset: usize,
    pub(crate) table_offset: usize,
    pub(crate) total_bytes: usize,
    pub(crate) created_at_ns: u64,
    pub(crate) creator_uid: u32,
    pub(crate) creator_pid: u32,
    pub(crate) mode: u32,
    pub(crate) pidns: u64,
}

impl Config {
    fn writers_offset(&self) -> usize {
        HEADER_BYTES
    }
    fn table_offset(&self) -> usize {
        (HEADER_BYTES + self.max_writers * SLOT_WORDS * 8).next_multiple_of(4096)
    }
    /// Bytes of a segment with these limits (what creating it reserves).
    pub(crate) fn total_bytes(&self) -> usize {
        self.table_offset() + self.geometry.total_words() * 8
    }
}

impl Header {
    fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut b = [0u8; HEADER_BYTES];
        let g = &self.config.geometry;
        b[0..8].copy_from_slice(&MAGIC);
        put32(&mut b, 8, LAYOUT_VERSION);
        put32(&mut b, 12, HEADER_BYTES as u32);
        put64(&mut b, 16, g.capacity as u64);
        put32(&mut b, 24, g.max_ns_len as u32);
        put32(&mut b, 28, g.max_name_len as u32);
        put32(&mut b, 32, g.max_meta_len as u32);
        put32(&mut b, 36, g.row_words() as u32);
        put32(&mut b, 40, self.config.max_writers as u32);
        put64(&mut b, 48, self.writers_offset as u64);
        put64(&mut b, 56, self.table_offset as u64);
        put64(&mut b, 64, g.total_words() as u64);
        put64(&mut b, 72, self.total_bytes as u64);
        put64(&mut b, 80, self.created_at_ns);
        put32(&mut b, 88, self.creator_uid);
        put32(&mut b, 92, self.mode);
        put32(&mut b, 96, self.creator_pid);
        put64(&mut b, 104, self.pidns);
        let sum = hash_bytes(&b[..OFF_CHECKSUM]);
        put64(&mut b, OFF_CHECKSUM, sum);
        b
    }

    /// Validates header bytes read from a file of `file_len` bytes. Every
    /// field is checked against what this build would compute for the same
    /// limits, so nothing from the file is trusted as an offset or size.
    pub(crate) fn decode(b: &[u8], file_len: u64) -> std::result::Result<Header, BadHeader> {
        let bad = |why: String| BadHeader {
            fault: HeaderFault::Invalid,
            why,
        };
        if b.len() < HEADER_BYTES || file_len < HEADER_BYTES as u64 {
            return Err(bad(format!(
                "file is {file_len} bytes, smaller than a procreg header ({HEADER_BYTES}); it is truncated or not a procreg segment"
            )));
        }
        if b[0..7] != MAGIC[0..7] {
            return Err(bad("bad magic: this file is not a procreg segment".into()));
        }
        if b[7] != MAGIC[7] || get32(b, 8) != LAYOUT_VERSION {
            return Err(bad(format!(
                "layout version {} (format byte {}) but this build reads version {LAYOUT_VERSION}; \
                 open it with a matching procreg version, or destroy and recreate it",
                get32(b, 8),
                b[7]
            )));
        }
        if get64(b, OFF_INITIALIZED) != INIT_MAGIC {
            return Err(BadHeader {
                fault: HeaderFault::NotInitialised,
                why: format!(
                    "not initialised: its creator (pid {}) has not finished or died while creating it; \
                 destroy it and create it again",
                    get32(b, 96)
                ),
            });
        }
        if hash_bytes(&b[..OFF_CHECKSUM]) != get64(b, OFF_CHECKSUM) {
            return Err(bad(
                "header checksum mismatch: the header was corrupted".into()
            ));
        }
        let geometry = Geometry {
            capacity: get64(b, 16) as usize,
            max_ns_len: get32(b, 24) as usize,
            max_name_len: get32(b, 28) as usize,
            max_meta_len: get32(b, 32) as usize,
        };
        let config = Config {
            geometry,
            max_writers: get32(b, 40) as usize,
        };
        validate_config(&config)
            .map_err(|e| bad(format!("header holds impossible limits: {e}")))?;
        let h = Header {
            config,
            writers_offset: config.writers_offset(),
            table_offset: config.table_offset(),
            total_bytes: config.total_bytes(),
            created_at_ns: get64(b, 80),
            creator_uid: get32(b, 88),
            mode: get32(b, 92),
            creator_pid: get32(b, 96),
            pidns: get64(b, 104),
        };
        let expect = [
            (get32(b, 12) as u64, HEADER_BYTES as u64, "header size"),
            (get32(b, 36) as u64, geometry.row_words() as u64, "row size"),
            (get64(b, 48), h.writers_offset as u64, "writer slots offset"),
            (get64(b, 56), h.table_offset as u64, "table offset"),
            (get64(b, 64), geometry.total_words() as u64, "table size"),
            (get64(b, 72), h.total_bytes as u64, "total size"),
        ];
        for (got, want, what) in expect {
            if got != want {
                return Err(bad(format!("{what} is {got} but the limits imply {want}")));
            }
        }
        if file_len < h.total_bytes as u64 {
            return Err(bad(format!(
                "file is {file_len} bytes but its header needs {}; it was truncated",
                h.total_bytes
            )));
        }
        Ok(h)
    }
}

/// Why [`Header::decode`] refused a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderFault {
    /// The `initialized` word is not set: a creator is still at work (or
    /// died while creating it).
    NotInitialised,
    /// Anything else: not a procreg segment, another layout, or corrupt.
    Invalid,
}

/// A refused header: its [`HeaderFault`] and the message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadHeader {
    pub(crate) fault: HeaderFault,
    pub(crate) why: String,
}

impl From<BadHeader> for Error {
    fn from(b: BadHeader) -> Error {
        Error::IncompatibleSegment(b.why)
    }
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn get64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Hard limits of this build (documented in the README).
pub(crate) mod limits {
    pub(crate) const MIN_CAPACITY: usize = 16;
    pub(crate) const MAX_CAPACITY: usize = 1 << 26;
    pub(crate) const MAX_NS_LEN: usize = 1024;
    pub(crate) const MAX_NAME_LEN: usize = 4096;
    pub(crate) const MAX_META_LEN: usize = 1 << 20;
    // A row records metadata lengths in 24 bits.
    const _: () = assert!(MAX_META_LEN <= crate::table::meta_lens::MAX_LEN);
}

/// Checks limits a user asked for (or a header claims).
pub(crate) fn validate_config(c: &Config) -> std::result::Result<(), String> {
    use limits::*;
    let g = &c.geometry;
    if !g.capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&g.capacity) {
        return Err(format!(
            "capacity {} must be a power of two from {MIN_CAPACITY} to {MAX_CAPACITY}",
            g.capacity
        ));
    }
    if !(1..=MAX_NS_LEN).contains(&g.max_ns_len) {
        return Err(format!(
            "max namespace length {} must be 1..={MAX_NS_LEN}",
            g.max_ns_len
        ));
    }
    if !(1..=MAX_NAME_LEN).contains(&g.max_name_len) {
        return Err(format!(
            "max name length {} must be 1..={MAX_NAME_LEN}",
            g.max_name_len
        ));
    }
    if g.max_meta_len > MAX_META_LEN {
        return Err(format!(
            "max metadata length {} must be at most {MAX_META_LEN}",
            g.max_meta_len
        ));
    }
    if !(1..=MAX_WRITERS).contains(&c.max_writers) {
        return Err(format!(
            "max writers {} must be 1..={MAX_WRITERS}",
            c.max_writers
        ));
    }
    Ok(())
}

/// How to treat a file that exists but is not owned by us or is world-writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Trust {
    pub(crate) allow_foreign_owner: bool,
    pub(crate) allow_world_writable: bool,
}

/// An open, validated, mapped segment.
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) header: Header,
    map: Mapping,
    file: File,
}

/// What `open` should do when the file exists or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    Create,
    Open,
    OpenOrCreate,
}

impl Segment {
    /// Creates or opens the segment at `path`. `requested` are the limits the
    /// caller asked for explicitly (`None` = accept what the segment has).
    pub(crate) fn open(
        path: &Path,
        mode: OpenMode,
        config: Config,
        explicit: &RequestedLimits,
        file_mode: u32,
        trust: Trust,
    ) -> Result<Segment> {
        validate_config(&config).map_err(Error::InvalidArgument)?;
        if mode != OpenMode::Open {
            match Self::create(path, config, file_mode) {
                Ok(seg) => return Ok(seg),
                Err(CreateError::Exists) if mode == OpenMode::OpenOrCreate => {}
                Err(CreateError::Exists) => {
                    return Err(Error::RegistryExists(path.display().to_string()));
                }
                Err(CreateError::Other(e)) => return Err(e),
            }
        }
        let seg = Self::attach(path, trust)?;
        explicit.check(&seg.header.config)?;
        Ok(seg)
    }

    fn create(
        path: &Path,
        config: Config,
        file_mode: u32,
    ) -> std::result::Result<Segment, CreateError> {
        // Build the whole segment under a private name and link it into place
        // last: a creator killed at any point leaves at most a stray
        // `*.creating.*` file, never a half-made segment at `path`.
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(
            ".creating.{}.{}",
            std::process::id(),
            crate::now_ns()
        ));
        let tmp = path.with_file_name(tmp_name);
        let file = match file::create_exclusive(&tmp, file_mode) {
            Ok(f) => f,
            Err(e) => return Err(CreateError::Other(os_error(e, "create", &tmp))),
        };
        let header = Header {
            config,
            writers_offset: config.writers_offset(),
            table_offset: config.table_offset(),
            total_bytes: config.total_bytes(),
            created_at_ns: crate::now_ns(),
            creator_uid: sys::process::euid(),
            creator_pid: std::process::id(),
            mode: file_mode,
            pidns: crate::liveness::my_pidns(),
        };
        // From here on a failure must not leave a half-made file behind.
        let undo = |e: Error| {
            let _ = std::fs::remove_file(&tmp);
            CreateError::Other(e)
        };
        file::lock_exclusive(&file).map_err(|e| undo(os_error(e, "lock", path)))?;
        file::set_mode(&file, file_mode).map_err(|e| undo(os_error(e, "chmod", path)))?;
        // Reserve every byte now: a full tmpfs fails here, not with SIGBUS later.
        file::reserve(&file, header.total_bytes as u64).map_err(|e| {
            undo(Error::io(
                format!(
                    "cannot reserve {} bytes for {} (is the filesystem full? /dev/shm is limited by its tmpfs size)",
                    header.total_bytes,
                    path.display()
                ),
                e,
            ))
        })?;
        let bytes = header.encode();
        file::write_all_at(&file, &bytes[..OFF_INITIALIZED], 0)
            .map_err(|e| undo(os_error(e, "write header of", path)))?;
        let map =
            Mapping::new(&file, header.total_bytes).map_err(|e| undo(os_error(e, "map", path)))?;
        let seg = Segment {
            path: path.to_path_buf(),
            header,
            map,
            file,
        };
        // Publish last: an opener that sees INIT_MAGIC sees a complete header.
        seg.init_word().store(INIT_MAGIC, Ordering::Release);
        file::unlock(&seg.file);
        // link() is the O_EXCL of the final name: it fails if anything is there.
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(seg),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(CreateError::Exists),
            Err(e) => Err(CreateError::Other(os_error(e, "create", path))),
        }
    }

    fn attach(path: &Path, trust: Trust) -> Result<Segment> {
        let file = file::open_existing(path).map_err(|e| match sys::cause(&e) {
            Cause::NotFound => Error::NoSuchRegistry(path.display().to_string()),
            Cause::SymbolicLink => Error::PermissionDenied(format!(
                "{} is a symbolic link; procreg never follows links to segments",
                path.display()
            )),
            _ => os_error(e, "open", path),
        })?;
        let st = file::stat(&file).map_err(|e| os_error(e, "stat", path))?;
        if !st.regular {
            return Err(Error::PermissionDenied(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        let euid = sys::process::euid();
        if st.uid != euid && !trust.allow_foreign_owner {
            return Err(Error::PermissionDenied(format!(
                "{} is owned by uid {}, not by you (uid {}); someone may have squatted its name. \
                 Use Builder::allow_foreign_owner(true) if this is intended",
                path.display(),
                st.uid,
                euid
            )));
        }
        if st.mode & 0o002 != 0 && !trust.allow_world_writable {
            return Err(Error::PermissionDenied(format!(
                "{} is world-writable (mode {:o}); any user could corrupt it. \
                 chmod o-w it, or use Builder::allow_world_writable(true)",
                path.display(),
                st.mode
            )));
        }
        // Wait (bounded) for a concurrent creator to finish initialising.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let header = loop {
            file::lock_shared(&file).map_err(|e| os_error(e, "lock", path))?;
            let mut buf = vec![0u8; HEADER_BYTES];
            let len = file::stat(&file)
                .map_err(|e| os_error(e, "stat", path))?
                .len;
            let n = file::read_at(&file, &mut buf, 0)
                .map_err(|e| os_error(e, "read header of", path))?;
            file::unlock(&file);
            match Header::decode(&buf[..n], len) {
                Ok(h) => break h,
                // The creator holds the flock while it initialises, so an
                // uninitialised header seen under our shared lock means the
                // creator is between O_EXCL and flock, or died: wait a little.
                Err(bad)
                    if (len == 0 || bad.fault == HeaderFault::NotInitialised)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(bad) => return Err(bad.into()),
            }
        };
        let map = Mapping::new(&file, header.total_bytes).map_err(|e| os_error(e, "map", path))?;
        Ok(Segment {
            path: path.to_path_buf(),
            header,
            map,
            file,
        })
    }

    fn init_word(&self) -> &AtomicU64 {
        &self.map.words()[OFF_INITIALIZED / 8]
    }

    /// The table region, as atomics.
    pub(crate) fn table_words(&self) -> &[AtomicU64] {
        let w = self.map.words();
        &w[self.header.table_offset / 8..self.header.total_bytes / 8]
    }

    /// The segment file (used to probe other processes' writer-slot locks).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Size of the mapping in bytes.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.header.total_bytes
    }
}

/// Limits the caller set explicitly; attaching to a segment with other values fails.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestedLimits {
    pub(crate) capacity: Option<usize>,
    pub(crate) max_ns_len: Option<usize>,
    pub(crate) max_name_len: Option<usize>,
    pub(crate) max_meta_len: Option<usize>,
}

impl RequestedLimits {
    fn check(&self, c: &Config) -> Result<()> {
        self.check_geometry(&c.geometry)
    }

    /// Fails when an explicitly asked limit differs from the existing one.
    pub(crate) fn check_geometry(&self, g: &Geometry) -> Result<()> {
        let pairs = [
            ("capacity", self.capacity, g.capacity),
            ("max_namespace_len", self.max_ns_len, g.max_ns_len),
            ("max_name_len", self.max_name_len, g.max_name_len),
            ("max_metadata_len", self.max_meta_len, g.max_meta_len),
        ];
        for (what, asked, has) in pairs {
            if let Some(asked) = asked {
                if asked != has {
                    return Err(Error::IncompatibleSegment(format!(
                        "you asked for {what} {asked} but the existing segment has {what} {has}; \
                         drop the option to attach, or destroy the segment to recreate it"
                    )));
                }
            }
        }
        Ok(())
    }
}

enum CreateError {
    Exists,
    Other(Error),
}

fn os_error(e: std::io::Error, what: &str, path: &Path) -> Error {
    match sys::cause(&e) {
        Cause::PermissionDenied => {
            Error::PermissionDenied(format!("cannot {what} {}: {e}", path.display()))
        }
        _ => Error::io(format!("cannot {what} {}", path.display()), e),
    }
}

/// Removes the segment at `path` after checking it is a procreg segment this
/// user created.
pub(crate) fn destroy(path: &Path) -> Result<()> {
    let file = file::open_existing(path).map_err(|e| match sys::cause(&e) {
        Cause::NotFound => Error::NoSuchRegistry(path.display().to_string()),
        Cause::SymbolicLink => Error::PermissionDenied(format!(
            "{} is a symbolic link; not removed",
            path.display()
        )),
        _ => os_error(e, "open", path),
    })?;
    let st = file::stat(&file).map_err(|e| os_error(e, "stat", path))?;
    let mut buf = vec![0u8; HEADER_BYTES];
    let n = file::read_at(&file, &mut buf, 0).map_err(|e| os_error(e, "read", path))?;
    if n < 8 || buf[0..7] != MAGIC[0..7] {
        return Err(Error::IncompatibleSegment(format!(
            "{} is not a procreg segment; refusing to remove it",
            path.display()
        )));
    }
    let creator = get32(&buf, 88);
    let euid = sys::process::euid();
    if st.uid != euid || (n >= 92 && creator != euid) {
        return Err(Error::PermissionDenied(format!(
            "{} was created by uid {creator} and is owned by uid {}; only its creator may destroy it",
            path.display(),
            st.uid
        )));
    }
    std::fs::remove_file(path).map_err(|e| os_error(e, "remove", path))
}

#[cfg(test)]
mod tests;
