//! Every bad input gives its typed error, and nothing panics: keys, metadata,
//! pids, urls, builder options, and segment files that are truncated, garbage,
//! of another layout version, corrupted, too permissive, foreign-owned or links.

mod common;

use common::{SegGuard, file_url, shm_url};
use procreg::{Error, Registry};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// A `mem:` registry and a fresh `shm:` one with default limits.
fn both(test: &str) -> (SegGuard, Vec<(&'static str, Registry)>) {
    let url = shm_url(test);
    let guard = SegGuard::new(&url);
    let shm = Registry::builder().create(&url).unwrap();
    let mem = Registry::builder().create("mem:").unwrap();
    (guard, vec![("mem", mem), ("shm", shm)])
}

fn assert_invalid_key<T: std::fmt::Debug>(r: procreg::Result<T>, what: &str) {
    match r {
        Err(Error::InvalidKey(msg)) => assert!(!msg.is_empty(), "{what}: empty message"),
        other => panic!("{what}: expected InvalidKey, got {other:?}"),
    }
}

/// Runs every keyed operation with `(ns, name)` and expects `InvalidKey` from each.
fn every_keyed_op_refuses(reg: &Registry, ns: &str, name: &str, ctx: &str) {
    let me = std::process::id();
    assert_invalid_key(
        reg.register_self(ns, name, b"m"),
        &format!("{ctx} register_self"),
    );
    assert_invalid_key(reg.register(ns, name, me, b"m"), &format!("{ctx} register"));
    assert_invalid_key(reg.lookup(ns, name), &format!("{ctx} lookup"));
    assert_invalid_key(reg.lookup_pid(ns, name), &format!("{ctx} lookup_pid"));
    assert_invalid_key(
        reg.lookup_checked(ns, name),
        &format!("{ctx} lookup_checked"),
    );
    assert_invalid_key(reg.unregister(ns, name), &format!("{ctx} unregister"));
    assert_invalid_key(
        reg.unregister_if_owner(ns, name, me),
        &format!("{ctx} unregister_if_owner"),
    );
    assert_invalid_key(
        reg.update_metadata(ns, name, b"m"),
        &format!("{ctx} update_metadata"),
    );
}

#[test]
fn empty_namespace_or_name_is_invalid_key_for_every_operation() {
    let (_g, regs) = both("empty");
    for (kind, reg) in &regs {
        every_keyed_op_refuses(reg, "", "name", &format!("{kind} empty ns"));
        every_keyed_op_refuses(reg, "ns", "", &format!("{kind} empty name"));
        every_keyed_op_refuses(reg, "", "", &format!("{kind} both empty"));
        assert_invalid_key(reg.list(""), &format!("{kind} list"));
        assert_invalid_key(reg.clear_namespace(""), &format!("{kind} clear_namespace"));
        assert_eq!(reg.stats().unwrap().live, 0, "{kind}: nothing was stored");
    }
}

#[test]
fn over_long_namespace_and_name_are_invalid_key_and_the_limits_themselves_fit() {
    let (_g, regs) = both("long");
    let ns64 = "n".repeat(64);
    let ns65 = "n".repeat(65);
    let name128 = "a".repeat(128);
    let name129 = "a".repeat(129);
    for (kind, reg) in &regs {
        every_keyed_op_refuses(reg, &ns65, "x", &format!("{kind} ns 65"));
        every_keyed_op_refuses(reg, "ns", &name129, &format!("{kind} name 129"));
        assert_invalid_key(reg.list(&ns65), &format!("{kind} list ns 65"));
        // Exactly at the limits: stored whole, never truncated.
        reg.register_self(&ns64, &name128, b"edge").unwrap();
        let e = reg.lookup(&ns64, &name128).unwrap().unwrap();
        assert_eq!((e.namespace.len(), e.name.len()), (64, 128), "{kind}");
        assert_eq!(e.metadata, b"edge");
        // A truncating implementation would find the 128-byte name under 129.
        assert_invalid_key(reg.lookup(&ns64, &name129), &format!("{kind} lookup 129"));
        assert_eq!(reg.stats().unwrap().live, 1, "{kind}");
    }
}

#[test]
fn names_containing_nul_are_invalid_key() {
    let (_g, regs) = both("nul");
    for (kind, reg) in &regs {
        every_keyed_op_refuses(reg, "ns", "a\0b", &format!("{kind} NUL in name"));
        every_keyed_op_refuses(reg, "n\0s", "name", &format!("{kind} NUL in ns"));
        every_keyed_op_refuses(reg, "ns", "\0", &format!("{kind} name is NUL"));
        assert_invalid_key(reg.list("a\0"), &format!("{kind} list"));
        assert_eq!(reg.stats().unwrap().live, 0, "{kind}");
    }
}

#[test]
fn metadata_of_257_bytes_is_too_large_and_256_fits() {
    let (_g, regs) = both("meta");
    let m256 = vec![7u8; 256];
    let m257 = vec![7u8; 257];
    for (kind, reg) in &regs {
        match reg.register_self("ns", "big", &m257) {
            Err(Error::MetadataTooLarge { len: 257, max: 256 }) => {}
            other => panic!("{kind}: expected MetadataTooLarge{{257,256}}, got {other:?}"),
        }
        match reg.register("ns", "big", std::process::id(), &m257) {
            Err(Error::MetadataTooLarge { len: 257, max: 256 }) => {}
            other => panic!("{kind}: expected MetadataTooLarge{{257,256}}, got {other:?}"),
        }
        assert_eq!(reg.lookup("ns", "big").unwrap(), None, "{kind}");
        reg.register_self("ns", "big", &m256).unwrap();
        match reg.update_metadata("ns", "big", &m257) {
            Err(Error::MetadataTooLarge { len: 257, max: 256 }) => {}
            other => panic!("{kind}: expected MetadataTooLarge{{257,256}}, got {other:?}"),
        }
        assert_eq!(
            reg.lookup("ns", "big").unwrap().unwrap().metadata,
            m256,
            "{kind}: a refused update leaves the old metadata"
        );
    }
}

#[test]
fn pid_zero_is_invalid_argument() {
    let (_g, regs) = both("pid0");
    for (kind, reg) in &regs {
        match reg.register("ns", "p", 0, b"") {
            Err(Error::InvalidArgument(_)) => {}
            other => panic!("{kind}: expected InvalidArgument, got {other:?}"),
        }
        assert_eq!(reg.lookup("ns", "p").unwrap(), None, "{kind}");
    }
}

/// A pid with no process behind it (searched downwards from pid_max).
fn unused_pid() -> u32 {
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768);
    (2..max)
        .rev()
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .expect("some pid is free")
}

#[test]
fn pid_of_no_process_or_of_a_zombie_is_process_not_alive() {
    let (_g, regs) = both("deadpid");
    let gone = unused_pid();
    // A child that exited but is not reaped yet: a zombie still has /proc/<pid>.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let zombie = child.id();
    let mut is_zombie = false;
    for _ in 0..400 {
        let stat = std::fs::read_to_string(format!("/proc/{zombie}/stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .map(str::trim_start)
            .is_some_and(|s| s.starts_with('Z'))
        {
            is_zombie = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(is_zombie, "child {zombie} did not become a zombie");
    for (kind, reg) in &regs {
        for pid in [gone, zombie] {
            match reg.register("ns", "p", pid, b"") {
                Err(Error::ProcessNotAlive(p)) => assert_eq!(p, pid, "{kind}"),
                other => panic!("{kind}: pid {pid}: expected ProcessNotAlive, got {other:?}"),
            }
        }
        assert_eq!(reg.lookup("ns", "p").unwrap(), None, "{kind}");
    }
    child.wait().unwrap();
}

/// Creates a real segment at `url` (default limits, one entry), closes it,
/// and checks it reopens, so later failures are due to the test's damage.
/// Opens a segment file for reading and writing its raw bytes.
fn open_rw(path: &Path) -> std::fs::File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

fn make_segment(url: &str) -> u64 {
    let reg = Registry::builder().create(url).unwrap();
    reg.register_self("ns", "k", b"v").unwrap();
    drop(reg);
    let reg = Registry::builder()
        .open(url)
        .expect("pristine segment reopens");
    assert!(reg.lookup("ns", "k").unwrap().is_some());
    reg.stats().unwrap().table().unwrap().segment_bytes as u64
}

fn expect_incompatible(url: &str, ctx: &str) -> String {
    for (how, r) in [
        ("Builder::open", Registry::builder().open(url)),
        ("Registry::open", Registry::open(url)),
    ] {
        match r {
            Err(Error::IncompatibleSegment(msg)) => {
                if how == "Registry::open" {
                    return msg;
                }
            }
            other => panic!("{ctx} via {how}: expected IncompatibleSegment, got {other:?}"),
        }
    }
    unreachable!()
}

#[test]
fn truncated_segment_is_incompatible() {
    let (url, path) = file_url("trunc");
    let _g = SegGuard::new(&url).broken();
    let size = make_segment(&url);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(size / 2).unwrap();
    let msg = expect_incompatible(&url, "half size");
    assert!(msg.contains("truncated"), "{msg}");
    f.set_len(100).unwrap();
    expect_incompatible(&url, "100 bytes");
    // Empty: looks like a creator that has not started; refused after a bounded wait.
    f.set_len(0).unwrap();
    let t = std::time::Instant::now();
    match Registry::builder().open(&url) {
        Err(Error::IncompatibleSegment(_)) => {}
        other => panic!("0 bytes: expected IncompatibleSegment, got {other:?}"),
    }
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}

/// 64 KiB of xorshift bytes, written with mode 0600 whatever the umask.
fn write_garbage(path: &Path) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id());
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(&bytes).unwrap();
    bytes
}

#[test]
fn garbage_file_is_incompatible_and_destroy_refuses_to_remove_it() {
    let (url, path) = file_url("garbage");
    let _g = SegGuard::new(&url).broken();
    let bytes = write_garbage(&path);
    expect_incompatible(&url, "garbage");
    match Registry::destroy(&url) {
        Err(Error::IncompatibleSegment(_)) => {}
        other => panic!("destroy of garbage: expected IncompatibleSegment, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the foreign file is left untouched"
    );
}

#[test]
fn layout_version_99_is_incompatible_and_the_error_says_version() {
    let (url, path) = file_url("version");
    let _g = SegGuard::new(&url);
    make_segment(&url);
    let f = open_rw(&path);
    let mut old = [0u8; 4];
    f.read_exact_at(&mut old, 8).unwrap();
    assert_eq!(u32::from_le_bytes(old), 7, "layout version field at 8..12");
    f.write_all_at(&99u32.to_le_bytes(), 8).unwrap();
    let msg = expect_incompatible(&url, "version 99");
    assert!(msg.contains("version"), "{msg}");
    assert!(msg.contains("99"), "{msg}");
    // Version 2 rows have no metadata write sequences, version 3 segments
    // no tag words, version 4 builds do not know member keys, version 5
    // packs the name right after the namespace, version 6 zero-pads a
    // part's last chunk: refused as well.
    for v in [2u32, 3, 4, 5, 6] {
        f.write_all_at(&v.to_le_bytes(), 8).unwrap();
        let msg = expect_incompatible(&url, &format!("version {v}"));
        assert!(msg.contains(&format!("layout version {v}")), "{msg}");
    }
    // Restored, it opens again: the version field alone caused the refusal.
    f.write_all_at(&old, 8).unwrap();
    Registry::builder().open(&url).unwrap();
}

#[test]
fn flipped_header_byte_fails_the_checksum() {
    let (url, path) = file_url("checksum");
    let _g = SegGuard::new(&url);
    make_segment(&url);
    let f = open_rw(&path);
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 20).unwrap();
    f.write_all_at(&[b[0] ^ 0xFF], 20).unwrap();
    let msg = expect_incompatible(&url, "byte 20 flipped");
    assert!(msg.contains("checksum"), "{msg}");
    f.write_all_at(&b, 20).unwrap();
    Registry::builder().open(&url).unwrap();
}

#[test]
fn world_writable_segment_is_permission_denied_unless_allowed() {
    let (url, path) = file_url("worldw");
    let _g = SegGuard::new(&url);
    make_segment(&url);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    for (how, r) in [
        ("Builder::open", Registry::builder().open(&url)),
        ("Registry::open", Registry::open(&url)),
    ] {
        match r {
            Err(Error::PermissionDenied(msg)) => assert!(msg.contains("world-writable"), "{msg}"),
            other => panic!("{how}: expected PermissionDenied, got {other:?}"),
        }
    }
    let reg = Registry::builder()
        .allow_world_writable(true)
        .open(&url)
        .unwrap();
    assert!(reg.lookup("ns", "k").unwrap().is_some());
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[test]
fn foreign_owned_segment_is_permission_denied_unless_allowed() {
    if euid() != 0 {
        eprintln!("note: not root, skipping the foreign-owner case (needs chown)");
        return;
    }
    let (url, path) = file_url("foreign");
    let _g = SegGuard::new(&url);
    make_segment(&url);
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    // Give back ownership before the guard destroys it, even if an assertion fails.
    struct ChownBack<'a>(&'a Path);
    impl Drop for ChownBack<'_> {
        fn drop(&mut self) {
            let _ = std::os::unix::fs::chown(self.0, Some(0), Some(0));
        }
    }
    let back = ChownBack(&path);
    match Registry::builder().open(&url) {
        Err(Error::PermissionDenied(msg)) => assert!(msg.contains("65534"), "{msg}"),
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    match Registry::destroy(&url) {
        Err(Error::PermissionDenied(_)) => {}
        other => {
            panic!("destroy of a foreign-owned segment: expected PermissionDenied, got {other:?}")
        }
    }
    assert!(path.exists(), "only the owner's destroy unlinks");
    let reg = Registry::builder()
        .allow_foreign_owner(true)
        .open(&url)
        .unwrap();
    assert!(reg.lookup("ns", "k").unwrap().is_some());
    drop(reg);
    drop(back);
}

#[test]
fn symlink_in_place_of_a_segment_is_permission_denied() {
    let (url, target) = file_url("symtarget");
    let _g = SegGuard::new(&url);
    make_segment(&url);
    let (link_url, link) = file_url("symlink");
    let _lg = SegGuard::new(&link_url).broken().also_remove(&link);
    std::os::unix::fs::symlink(target.as_path(), &link).unwrap();
    for (how, r) in [
        ("Builder::open", Registry::builder().open(&link_url)),
        ("Registry::open", Registry::open(&link_url)),
    ] {
        match r {
            Err(Error::PermissionDenied(_)) => {}
            other => panic!("{how} through a symlink: expected PermissionDenied, got {other:?}"),
        }
    }
    match Registry::builder().create(&link_url) {
        Err(Error::RegistryExists(_) | Error::PermissionDenied(_)) => {}
        other => panic!("create over a symlink: expected a refusal, got {other:?}"),
    }
    match Registry::destroy(&link_url) {
        Err(Error::PermissionDenied(_)) => {}
        other => panic!("destroy through a symlink: expected PermissionDenied, got {other:?}"),
    }
    assert!(target.exists(), "the link's target survives");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
}

#[test]
fn opening_a_missing_registry_without_create_is_no_such_registry() {
    let shm = shm_url("missing");
    let (file, _) = file_url("missing");
    let _g1 = SegGuard::new(&shm).broken();
    let _g2 = SegGuard::new(&file).broken();
    let mem = format!("mem:t-missing-{}", std::process::id());
    for url in [shm.as_str(), file.as_str(), mem.as_str(), "mem:"] {
        match Registry::builder().open(url) {
            Err(Error::NoSuchRegistry(_)) => {}
            other => panic!("{url}: expected NoSuchRegistry, got {other:?}"),
        }
    }
    for url in [&shm, &file] {
        match Registry::destroy(url) {
            Err(Error::NoSuchRegistry(_)) => {}
            other => panic!("destroy {url}: expected NoSuchRegistry, got {other:?}"),
        }
    }
}

#[test]
fn create_on_an_existing_registry_is_registry_exists() {
    let url = shm_url("exists");
    let _g = SegGuard::new(&url);
    let first = Registry::builder().create(&url).unwrap();
    first.register_self("ns", "k", b"keep").unwrap();
    match Registry::builder().create(&url) {
        Err(Error::RegistryExists(_)) => {}
        other => panic!("expected RegistryExists, got {other:?}"),
    }
    // The refused create did not reinitialise it.
    assert_eq!(
        first.lookup("ns", "k").unwrap().unwrap().metadata,
        b"keep".to_vec()
    );
    let mem = format!("mem:t-exists-{}", std::process::id());
    let _m = Registry::builder().create(&mem).unwrap();
    match Registry::builder().create(&mem) {
        Err(Error::RegistryExists(_)) => {}
        other => panic!("{mem}: expected RegistryExists, got {other:?}"),
    }
}

#[test]
fn attaching_with_another_explicit_capacity_is_incompatible_and_names_both() {
    let url = shm_url("capmismatch");
    let _g = SegGuard::new(&url);
    let _reg = Registry::builder().capacity(256).create(&url).unwrap();
    for (how, r) in [
        ("open", Registry::builder().capacity(512).open(&url)),
        (
            "open_or_create",
            Registry::builder().capacity(512).open_or_create(&url),
        ),
    ] {
        match r {
            Err(Error::IncompatibleSegment(msg)) => {
                assert!(msg.contains("256") && msg.contains("512"), "{how}: {msg}");
            }
            other => panic!("{how}: expected IncompatibleSegment, got {other:?}"),
        }
    }
    // Without the explicit option it attaches and reports the real capacity.
    let other = Registry::builder().open(&url).unwrap();
    assert_eq!(other.stats().unwrap().table().unwrap().capacity, 256);
    assert_eq!(
        Registry::builder()
            .capacity(256)
            .open(&url)
            .unwrap()
            .stats()
            .unwrap()
            .table()
            .unwrap()
            .capacity,
        256
    );
}

#[test]
fn bad_urls_are_invalid_argument() {
    let long = format!("shm:{}", "x".repeat(201));
    for url in [
        "",
        "shm:",
        "shm:a/b",
        "shm:.",
        "shm:..",
        "shm:a\0b",
        "http://example.com/x",
        "ftp:x",
        "file:",
        "file:/tmp/a\0b",
        "mem:a\0",
        long.as_str(),
    ] {
        for (how, r) in [
            ("Registry::open", Registry::open(url)),
            ("create", Registry::builder().create(url)),
            ("open", Registry::builder().open(url)),
        ] {
            match r {
                Err(Error::InvalidArgument(_)) => {}
                other => panic!("{how}({url:?}): expected InvalidArgument, got {other:?}"),
            }
        }
        match Registry::destroy(url) {
            Err(Error::InvalidArgument(_)) => {}
            other => panic!("destroy({url:?}): expected InvalidArgument, got {other:?}"),
        }
    }
}

#[test]
fn bad_builder_options_are_invalid_argument_and_create_nothing() {
    let url = shm_url("badopts");
    let (file, path) = file_url("badopts");
    let _g1 = SegGuard::new(&url).broken();
    let _g2 = SegGuard::new(&file).broken();
    let cases = [
        ("capacity 1000", Registry::builder().capacity(1000)),
        ("capacity 8", Registry::builder().capacity(8)),
        ("capacity 0", Registry::builder().capacity(0)),
        ("max_name_len 0", Registry::builder().max_name_len(0)),
        (
            "max_namespace_len 0",
            Registry::builder().max_namespace_len(0),
        ),
        ("max_writers 0", Registry::builder().max_writers(0)),
        ("mode 0o1777", Registry::builder().mode(0o1777)),
    ];
    for (what, b) in &cases {
        for u in [url.as_str(), file.as_str(), "mem:"] {
            for (how, r) in [
                ("create", b.create(u)),
                ("open_or_create", b.open_or_create(u)),
            ] {
                match r {
                    Err(Error::InvalidArgument(_)) => {}
                    other => panic!("{what} {how} {u}: expected InvalidArgument, got {other:?}"),
                }
            }
        }
    }
    assert!(!path.exists(), "a refused option must not leave a file");
    match Registry::builder().open(&url) {
        Err(Error::NoSuchRegistry(_)) => {}
        other => panic!("expected nothing created, got {other:?}"),
    }
}

/// Sets the umask for its lifetime.
struct Umask(libc::mode_t);
impl Umask {
    fn set(m: libc::mode_t) -> Umask {
        // SAFETY: umask has no preconditions and cannot fail.
        Umask(unsafe { libc::umask(m) })
    }
}
impl Drop for Umask {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::umask(self.0) };
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn created_segment_is_0600_by_default_and_follows_the_mode_option_whatever_the_umask() {
    let (u1, p1) = file_url("mode-default");
    let (u2, p2) = file_url("mode-640");
    let (u3, p3) = file_url("mode-660");
    let _g1 = SegGuard::new(&u1);
    let _g2 = SegGuard::new(&u2);
    let _g3 = SegGuard::new(&u3);
    {
        // A permissive umask must not widen the default.
        let _m = Umask::set(0);
        drop(Registry::builder().create(&u1).unwrap());
    }
    assert_eq!(mode_of(&p1), 0o600);
    {
        // A strict umask must not narrow an explicit mode.
        let _m = Umask::set(0o077);
        drop(Registry::builder().mode(0o640).create(&u2).unwrap());
        let _m2 = Umask::set(0o022);
        drop(Registry::builder().mode(0o660).create(&u3).unwrap());
    }
    assert_eq!(mode_of(&p2), 0o640);
    assert_eq!(mode_of(&p3), 0o660);
    // And the created segments are usable.
    for u in [&u1, &u2, &u3] {
        Registry::builder().open(u).unwrap();
    }
}
