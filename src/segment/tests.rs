//! Tests of the OS layer that need `unsafe` (fork), kept in this module.

use crate::liveness::current;

#[test]
fn forked_child_sees_its_own_identity_without_getpid_per_call() {
    let parent = current();
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid out-array of two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only calls current() (a /proc read), writes one byte
    // and leaves with _exit, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let me = current();
        let ok = (me.pid != parent.pid && me.pid == std::process::id() && me.start_time != 0) as u8;
        // SAFETY: writing one byte from a live buffer, then exiting the child.
        unsafe {
            libc::write(fds[1], [ok].as_ptr().cast(), 1);
            libc::_exit(0);
        }
    }
    let mut b = [0u8];
    // SAFETY: reading one byte into a live buffer; reaping our own child.
    unsafe {
        libc::read(fds[0], b.as_mut_ptr().cast(), 1);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    assert_eq!(
        b[0], 1,
        "the child must not reuse the parent's cached identity"
    );
    assert_eq!(current(), parent);
}

use super::{Config, Explicit, OpenMode, Segment, Trust, destroy};
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
        max_owners: 8,
    }
}

fn open(path: &std::path::Path, mode: OpenMode) -> Segment {
    Segment::open(
        path,
        mode,
        small(),
        &Explicit::default(),
        0o600,
        Trust::default(),
    )
    .unwrap()
}

/// Review finding: the owner lock was taken on whatever the *path* named at
/// first write; after destroy + re-create that is another file, and a live
/// writer looked dead to everyone still on the old one.
#[test]
fn owner_lock_is_taken_on_the_mapped_file_even_after_the_name_is_recreated() {
    let path = std::env::temp_dir().join(format!("procreg-seg-recreate-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let a = open(&path, OpenMode::Create);
    let b = open(&path, OpenMode::Open);
    destroy(&path).unwrap();
    let _c = open(&path, OpenMode::Create);
    let (token, _fd, _) = a.claim_owner().unwrap();
    assert_eq!(
        b.writer_liveness(token, b.file()),
        Liveness::Alive,
        "a live writer judged from the old file"
    );
    destroy(&path).unwrap();
}

/// Review finding: a creator killed mid-initialisation left a half-made file
/// at the name that blocked it for good. Now only a private `.creating.`
/// file can be left, which blocks nothing.
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
