use super::*;
use crate::backend::mem;
use crate::backend::open::{OpenMode, TableOptions};

#[test]
fn checked_lookup_of_a_dead_owner_never_waits_for_a_writer() {
    let opts = TableOptions {
        capacity: Some(64),
        max_ns_len: Some(8),
        max_name_len: Some(8),
        max_meta_len: Some(8),
        ..TableOptions::default()
    };
    let b = mem::open(
        "",
        OpenMode::Create,
        opts.geometry(),
        &opts.requested(),
        Duration::from_secs(5),
    )
    .unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("10")
        .spawn()
        .unwrap();
    let key = Key::unique("ns", "k");
    b.register(key, crate::backend::Who::Pid(child.id()), b"", None)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // A live writer (token 2, alive in the mem backend) holds the lock.
    b.table
        .hold_home_lock_for_test(&KeyWords::new(b"ns", b"k"), 2);
    let t = Instant::now();
    assert_eq!(b.lookup_checked(key).unwrap(), None);
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "waited {:?}",
        t.elapsed()
    );
    assert_eq!(
        b.lookup_pid(key).unwrap(),
        Some(child.id()),
        "left for sweep, not reclaimed"
    );
}
