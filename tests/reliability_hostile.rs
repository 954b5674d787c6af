//! Reliability suite, part 3: hostile segment files not already covered by
//! tests/bad_input.rs (which has: truncated while unmapped, garbage, layout
//! version, corrupted header, mode 0666, foreign owner, symlink to a segment).
//! Here: a squatter's file pre-created by another user, a dangling symlink at
//! create, a FIFO and a directory in place of the segment, a segment
//! truncated while another process has it mapped, and a full tmpfs at create.
//! Each is refused with its typed error; the test prints refused/total.
//!
//! ```text
//! cargo test --test reliability_hostile -- --nocapture
//! ```

mod common;
mod reliability_support;

use common::{SegGuard, file_url, shm_url};
use procreg::{Error, Registry};
use reliability_support::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The file behind a `shm:` url of the common helpers.
fn shm_path(url: &str) -> PathBuf {
    Path::new("/dev/shm").join(format!("procreg.{}", url.strip_prefix("shm:").unwrap()))
}

/// Counts the cases; each one asserts its typed error.
#[derive(Default)]
struct Tally {
    refused: usize,
    total: usize,
    skipped: Vec<String>,
}

impl Tally {
    fn case<T: std::fmt::Debug>(
        &mut self,
        what: &str,
        r: procreg::Result<T>,
        ok: impl Fn(&Error) -> bool,
    ) {
        self.total += 1;
        match r {
            Err(e) if ok(&e) => {
                self.refused += 1;
                println!("hostile: {what}: refused: {e}");
            }
            other => panic!("hostile: {what}: expected a typed refusal, got {other:?}"),
        }
    }
}

fn permission_denied(e: &Error) -> bool {
    matches!(e, Error::PermissionDenied(_))
}

fn squatter_file_of_another_user(t: &mut Tally) {
    if euid() != 0 {
        t.skipped
            .push("squatter of another user: needs root to chown (not root here)".into());
        return;
    }
    let url = shm_url("squat");
    let path = shm_path(&url);
    let _g = SegGuard::new(&url).broken().also_remove(&path);
    // uid 65534 creates the name first (0644, empty), as a squatter in /dev/shm would.
    std::fs::write(&path, b"").unwrap();
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    t.case(
        "squatter file, create",
        Registry::builder().create(&url),
        |e| matches!(e, Error::RegistryExists(_)),
    );
    t.case(
        "squatter file, open_or_create",
        Registry::open(&url),
        permission_denied,
    );
    t.case(
        "squatter file, open",
        Registry::builder().open(&url),
        permission_denied,
    );
    t.case("squatter file, destroy", Registry::destroy(&url), |e| {
        matches!(
            e,
            Error::PermissionDenied(_) | Error::IncompatibleSegment(_)
        )
    });
    assert!(path.exists(), "a squatter's file is never removed by us");
}

fn dangling_symlink_at_create(t: &mut Tally) {
    let (url, link) = file_url("dangling");
    let target = link.with_extension("target");
    let _ = std::fs::remove_file(&target);
    let _g = SegGuard::new(&url)
        .broken()
        .also_remove(&link)
        .also_remove(&target);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    t.case(
        "dangling symlink, create",
        Registry::builder().create(&url),
        |e| matches!(e, Error::RegistryExists(_) | Error::PermissionDenied(_)),
    );
    t.case(
        "dangling symlink, open_or_create",
        Registry::open(&url),
        permission_denied,
    );
    assert!(
        !target.exists(),
        "the link's target must never be created through the link"
    );
}

fn fifo_and_directory_in_place(t: &mut Tally) {
    let (url, path) = file_url("fifo");
    let _g = SegGuard::new(&url).broken().also_remove(&path);
    let st = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(st.success());
    let start = std::time::Instant::now();
    t.case(
        "FIFO, open",
        Registry::builder().open(&url),
        permission_denied,
    );
    t.case(
        "FIFO, open_or_create",
        Registry::open(&url),
        permission_denied,
    );
    assert!(
        start.elapsed().as_secs() < 5,
        "opening a FIFO must not block"
    );

    let (url, dir) = file_url("dir");
    let _ = std::fs::remove_dir(&dir);
    std::fs::create_dir(&dir).unwrap();
    struct RmDir(PathBuf);
    impl Drop for RmDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _d = RmDir(dir.clone());
    t.case("directory, open", Registry::builder().open(&url), |e| {
        matches!(e, Error::PermissionDenied(_) | Error::Io { .. })
    });
    t.case("directory, create", Registry::builder().create(&url), |e| {
        matches!(e, Error::RegistryExists(_))
    });
}

/// Holds the segment mapped, then reads when told to (after the parent truncated it).
#[test]
fn child_mapped_reader() {
    let Some((url, _)) = child_role("mapped-reader") else {
        return;
    };
    no_core_dumps();
    let reg = Registry::builder().open(&url).unwrap();
    assert!(reg.lookup("h", "k0").unwrap().is_some());
    say("ready");
    assert_eq!(hear().as_deref(), Some("read"));
    let mut found = 0;
    let mut errors = 0;
    for i in 0..200 {
        match reg.lookup("h", &format!("k{i}")) {
            Ok(Some(_)) => found += 1,
            Ok(None) => {}
            Err(_) => errors += 1,
        }
    }
    say(&format!("read {found} {errors}"));
}

/// Returns how the mapped reader ended (for RELIABILITY.md).
fn truncated_while_mapped(t: &mut Tally) -> String {
    let (url, path) = file_url("trunc-mapped");
    let _g = SegGuard::new(&url).broken();
    {
        let reg = Registry::builder().capacity(4096).create(&url).unwrap();
        for i in 0..200 {
            reg.register_self("h", &format!("k{i}"), b"v").unwrap();
        }
    }
    let full = std::fs::metadata(&path).unwrap().len();
    let mut kid = Kid::spawn("child_mapped_reader", "mapped-reader", &url, "", &[]);
    kid.expect("ready");
    // Another process truncates the file under the mapping.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(full / 4).unwrap();
    // New openers check the length with fstat before mapping: a typed error, no SIGBUS.
    t.case(
        "truncated while mapped elsewhere, open",
        Registry::builder().open(&url),
        |e| matches!(e, Error::IncompatibleSegment(m) if m.contains("truncated")),
    );
    t.case(
        "truncated while mapped elsewhere, open_or_create",
        Registry::open(&url),
        |e| matches!(e, Error::IncompatibleSegment(_)),
    );
    t.case(
        "truncated while mapped elsewhere, create",
        Registry::builder().create(&url),
        |e| matches!(e, Error::RegistryExists(_)),
    );
    // The process that had it mapped: reading pages past the new end of file
    // raises SIGBUS (documented in RELIABILITY.md; a library cannot turn it
    // into an error without a process-wide signal handler).
    kid.send("read");
    let said = kid.next(TIMEOUT);
    let st = kid.wait_exit();
    let outcome = match (&said, st.signal()) {
        (Some((tag, data)), None) if tag == "read" => format!("completed: found/errors {data}"),
        (_, Some(libc::SIGBUS)) => "killed by SIGBUS".to_owned(),
        other => panic!("mapped reader after truncation: unexpected {other:?} {st:?}"),
    };
    println!("hostile: truncated while mapped: the mapped reader {outcome}");
    outcome
}

/// Mounts a tiny tmpfs in a private mount namespace and creates segments there.
#[test]
fn child_full_tmpfs() {
    let Some((_, dir)) = child_role("full-tmpfs") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs");
    let url = format!("file:{}/seg", dir.display());
    // A default segment (~2.5 MB) cannot fit in 256 KiB: refused at create.
    let r = Registry::builder().create(&url);
    let enospc =
        matches!(&r, Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOSPC));
    let leftovers = std::fs::read_dir(&dir).unwrap().count();
    say(&format!("result {enospc} {leftovers} {r:?}"));
    // A small one fits (the filesystem itself works).
    let small = Registry::builder()
        .capacity(16)
        .max_writers(1)
        .max_metadata_len(8)
        .create(&url);
    say(&format!("small {}", small.is_ok()));
    drop(small);
    let _ = Command::new("umount").arg(&dir).status();
}

fn full_tmpfs_at_create(t: &mut Tally) {
    let ok = Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok || euid() != 0 {
        t.skipped
            .push("full tmpfs: unshare -m / mount not permitted here".into());
        return;
    }
    let dir = std::env::temp_dir().join(format!("procreg-tmpfs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut kid = Kid::spawn_wrapped(
        &["unshare", "-m", "--propagation", "private"],
        "child_full_tmpfs",
        "full-tmpfs",
        "-",
        dir.to_str().unwrap(),
        &[],
    );
    let res = kid.expect("result");
    let small = kid.expect("small");
    kid.assert_success();
    let _ = std::fs::remove_dir(&dir);
    t.total += 1;
    let mut parts = res.splitn(3, ' ');
    let (enospc, leftovers) = (parts.next().unwrap(), parts.next().unwrap());
    assert_eq!(
        (enospc, leftovers),
        ("true", "0"),
        "full tmpfs: want Io(ENOSPC) and no file left: {res}"
    );
    assert_eq!(small, "true", "a segment that fits is created");
    t.refused += 1;
    println!(
        "hostile: full tmpfs at create: refused: {}",
        parts.next().unwrap()
    );
}

#[test]
fn hostile_segment_files_are_refused_with_typed_errors() {
    let mut t = Tally::default();
    squatter_file_of_another_user(&mut t);
    dangling_symlink_at_create(&mut t);
    fifo_and_directory_in_place(&mut t);
    let mapped = truncated_while_mapped(&mut t);
    full_tmpfs_at_create(&mut t);
    for s in &t.skipped {
        println!("hostile: skipped: {s}");
    }
    println!(
        "hostile files (this test): refused {}/{}; skipped {}; mapped reader after truncation: {mapped}",
        t.refused,
        t.total,
        t.skipped.len()
    );
    assert_eq!(t.refused, t.total);
}
