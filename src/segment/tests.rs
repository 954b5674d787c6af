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
