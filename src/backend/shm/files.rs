//! The procreg files of the shm directory: ready segments (`procreg.NAME`)
//! and the private files of creators at work (`procreg.NAME.creating.PID.NS`,
//! linked into place when complete; a creator that died left its file).
//! Listing reads headers only; it maps and locks nothing.

use crate::error::{Error, Liveness, Result};
use crate::segment::{HEADER_BYTES, Header};
use crate::types::time_from_ns;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Prefix of every procreg file in the shm directory.
const PREFIX: &str = "procreg.";
/// Infix of a creator's private file.
const CREATING: &str = ".creating.";

/// One procreg file of the shm directory (see [`list_segments`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentFile {
    /// Where it is.
    pub path: PathBuf,
    /// The url that opens it (`shm:NAME`); for a creator's file, the url of
    /// the segment it was to become.
    pub url: String,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Uid that owns the file.
    pub owner_uid: u32,
    /// When the file was last modified.
    pub modified: SystemTime,
    /// What it is.
    pub state: SegmentState,
}

/// What a [`SegmentFile`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentState {
    /// A complete segment, as its header records it.
    Ready {
        /// Pid of the process that created it.
        creator_pid: u32,
        /// Uid of that process.
        creator_uid: u32,
        /// Slot capacity.
        capacity: usize,
        /// When it was created.
        created_at: SystemTime,
    },
    /// A creator's private file (`*.creating.PID.NS`): being built, or left
    /// behind by a creator that died.
    Creating {
        /// Pid of the creator, from the file name.
        creator_pid: u32,
        /// Whether that pid runs now (`Dead` when no such process, or a
        /// zombie; a reused pid says `Alive`, which only keeps the file).
        creator: Liveness,
    },
    /// Named like a segment but not one this build can read (another
    /// layout version, corrupt, or not readable by this user).
    Unreadable(String),
}

/// Every procreg file of the shm directory (`/dev/shm`, else
/// `$XDG_RUNTIME_DIR`), sorted by name.
///
/// # Errors
/// `InvalidArgument` when there is no shm directory; `Io` when it cannot be read.
pub fn list_segments() -> Result<Vec<SegmentFile>> {
    list_in(&crate::backend::shm_dir()?)
}

/// Removes the files of creators that died while creating a segment
/// (`*.creating.*` whose pid is not running) and that were last modified
/// at least `grace` ago (a creator in another PID namespace has a pid that
/// means nothing here; it finishes within milliseconds, so the age protects
/// it). A file of a running pid is never removed. Returns what was removed.
///
/// A stale file this user may not remove (another user's, in the sticky
/// `/dev/shm`) is left alone.
///
/// # Errors
/// As [`list_segments`]; `Io` when removing a stale file fails otherwise.
pub fn remove_stale_creating(grace: Duration) -> Result<Vec<PathBuf>> {
    remove_stale_in(&crate::backend::shm_dir()?, grace)
}

pub(crate) fn remove_stale_in(dir: &Path, grace: Duration) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for f in list_in(dir)? {
        let SegmentState::Creating { creator, .. } = f.state else {
            continue;
        };
        let old = f.modified.elapsed().is_ok_and(|age| age >= grace);
        if creator != Liveness::Dead || !old {
            continue;
        }
        match std::fs::remove_file(&f.path) {
            Ok(()) => removed.push(f.path),
            // Gone meanwhile, or another user's in a sticky directory: left
            // alone (it stays listed as stale).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) => {}
            Err(e) => {
                return Err(Error::io(format!("cannot remove {}", f.path.display()), e));
            }
        }
    }
    Ok(removed)
}

pub(crate) fn list_in(dir: &Path) -> Result<Vec<SegmentFile>> {
    let read_err = |e| Error::io(format!("cannot list {}", dir.display()), e);
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir).map_err(read_err)? {
        let item = item.map_err(read_err)?;
        let Some(file_name) = item.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some(rest) = file_name.strip_prefix(PREFIX) else {
            continue;
        };
        // Never follows a link: a link is not a segment.
        let Ok(meta) = std::fs::symlink_metadata(item.path()) else {
            continue; // removed meanwhile
        };
        if !meta.file_type().is_file() || rest.is_empty() {
            continue;
        }
        let path = item.path();
        let (name, state) = match creating_parts(rest) {
            Some((name, pid)) => (name, creating(pid)),
            None => (rest, ready(&path, meta.len())),
        };
        out.push(SegmentFile {
            url: format!("shm:{name}"),
            bytes: meta.len(),
            owner_uid: meta.uid(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            state,
            path,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// `NAME.creating.PID.NS` → `(NAME, PID)`.
pub(crate) fn creating_parts(rest: &str) -> Option<(&str, u32)> {
    let at = rest.rfind(CREATING)?;
    let (name, tail) = (&rest[..at], &rest[at + CREATING.len()..]);
    let (pid, ns) = tail.split_once('.')?;
    if name.is_empty() || ns.is_empty() || !ns.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((name, pid.parse().ok()?))
}

fn creating(pid: u32) -> SegmentState {
    let creator = match crate::liveness::proc_stat(pid) {
        Ok(Some(s)) if !s.exited => Liveness::Alive,
        Ok(_) => Liveness::Dead,
        Err(_) => Liveness::Unknown,
    };
    SegmentState::Creating {
        creator_pid: pid,
        creator,
    }
}

fn ready(path: &Path, len: u64) -> SegmentState {
    let mut buf = vec![0u8; HEADER_BYTES];
    let read = std::fs::File::open(path).and_then(|f| f.read_at(&mut buf, 0));
    let n = match read {
        Ok(n) => n,
        Err(e) => return SegmentState::Unreadable(format!("cannot read it: {e}")),
    };
    match Header::decode(&buf[..n], len) {
        Ok(h) => SegmentState::Ready {
            creator_pid: h.creator_pid,
            creator_uid: h.creator_uid,
            capacity: h.config.geometry.capacity,
            created_at: time_from_ns(h.created_at_ns),
        },
        Err(bad) => SegmentState::Unreadable(bad.why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creator_file_names_parse_and_others_do_not() {
        assert_eq!(
            creating_parts("jobs.creating.4242.1795336406000000000"),
            Some(("jobs", 4242))
        );
        assert_eq!(
            creating_parts("a.creating.b.creating.7.1"),
            Some(("a.creating.b", 7))
        );
        for other in [
            "jobs",
            "jobs.creating.",
            "jobs.creating.x.1",
            ".creating.1.2",
        ] {
            assert_eq!(creating_parts(other), None, "{other}");
        }
    }
}
