//! Tests of the segment, and of the liveness identity across fork (which
//! needs `unsafe`, kept out of liveness.rs).

use crate::liveness::current;

#[test]
fn forked_child_sees_its_own_identity_without_getpid_per_call() {
    let parent = current();
    let child = || {
        let me = current();
        me.pid != parent.pid && me.pid == std::process::id() && me.start_time != 0
    };
    // SAFETY: the child only calls current() (a /proc read) and returns.
    let ok = unsafe { crate::sys::fork::in_forked_child(child) };
    assert!(ok, "the child must not reuse the parent's cached identity");
    assert_eq!(current(), parent);
}

use super::{Config, OpenMode, RequestedLimits, Segment, Trust, destroy};
use crate::error::Liveness;
use crate::table::Geometry;

fn small() -> Config {
    Config {
        geometry: Geometry {
            capacity: 64,
            max_ns_len: 8,
            max_name_len: 8,
            max_meta_len: 8,
        },
        max_writers: 8,
    }
}

fn open(path: &std::path::Path, mode: OpenMode) -> Segment {
    Segment::open(
        path,
        mode,
        small(),
        &RequestedLimits::default(),
        0o600,
        Trust::default(),
    )
    .unwrap()
}

/// The writer-slot lock is taken on the mapped file, not on whatever the
/// path names at first write: after destroy + re-create that is another
/// file, and a live writer would look dead to everyone on the old one.
#[test]
fn writer_slot_lock_is_taken_on_the_mapped_file_even_after_the_name_is_recreated() {
    let path = std::env::temp_dir().join(format!("procreg-seg-recreate-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let a = open(&path, OpenMode::Create);
    let b = open(&path, OpenMode::Open);
    destroy(&path).unwrap();
    let _c = open(&path, OpenMode::Create);
    let (token, _fd) = a.claim_writer_slot().unwrap();
    assert_eq!(
        b.writer_liveness(token, b.file()),
        Liveness::Alive,
        "a live writer judged from the old file"
    );
    destroy(&path).unwrap();
}

/// A creator killed mid-initialisation leaves at most a private
/// `.creating.` file, which blocks nothing (never a half-made file at the
/// name).
#[test]
fn a_stray_half_made_file_never_blocks_the_name() {
    let path = std::env::temp_dir().join(format!("procreg-seg-stray-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let stray = path.with_file_name(format!(
        "{}.creating.1.1",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&stray, b"").unwrap();
    let seg = open(&path, OpenMode::OpenOrCreate);
    assert_eq!(seg.header.config, small());
    let leftovers = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&*path.file_name().unwrap().to_string_lossy())
                && n.contains(".creating.")
                && n != stray.file_name().unwrap().to_string_lossy()
        })
        .count();
    assert_eq!(leftovers, 0, "a successful create removes its private file");
    std::fs::remove_file(&stray).unwrap();
    destroy(&path).unwrap();
}
