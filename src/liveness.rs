//! Is a process still the one that registered? pid + start time + PID namespace.
//!
//! `kill(pid, 0)` alone is never trusted: a reused pid says "alive", and a pid
//! of another PID namespace means another process. An owner is recorded as
//! `(pid, start time in clock ticks since boot, PID-namespace inode)`; it is
//! `Dead` when `/proc/<pid>` is gone, is a zombie, or has another start time,
//! and `Unknown` when the checker lives in another PID namespace.

use crate::error::Liveness;
use crate::sys::{Cause, cause};
use crate::table::Owner;
use std::sync::OnceLock;

/// What `/proc/<pid>/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Start time in clock ticks after boot (field 22).
    pub(crate) start_time: u64,
    /// Zombie or dead (`Z`, `X`, `x` in field 3).
    pub(crate) exited: bool,
}

/// Reads `/proc/<pid>/stat`; `Ok(None)` when there is no such process.
pub(crate) fn proc_stat(pid: u32) -> std::io::Result<Option<ProcStat>> {
    if pid == 0 {
        return Ok(None);
    }
    let mut buf = [0u8; 1024];
    let path = format!("/proc/{pid}/stat");
    let n = match read_small(&path, &mut buf) {
        Ok(n) => n,
        Err(e) if matches!(cause(&e), Cause::NotFound | Cause::NoSuchProcess) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    Ok(parse_stat(&buf[..n]))
}

fn read_small(path: &str, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after the *last* `)`.
pub(crate) fn parse_stat(text: &[u8]) -> Option<ProcStat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?; // field 3
    // Fields 4..=21 are skipped; field 22 is the start time.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat {
        start_time,
        exited: matches!(state, "Z" | "X" | "x"),
    })
}

/// Inode of the PID namespace of process `pid` ("self" for the caller).
pub(crate) fn pidns_of(pid: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|m| m.ino())
}

/// This process: pid, start time and PID namespace. Read once per thread and
/// fork generation, so the common call makes no syscall (not even getpid).
pub(crate) fn current() -> Owner {
    thread_local! {
        static SELF: std::cell::Cell<Option<(u64, Owner)>> = const { std::cell::Cell::new(None) };
    }
    let generation = crate::sys::fork::generation();
    SELF.with(|c| match c.get() {
        Some((g, o)) if g == generation => o,
        _ => {
            let o = read_self(std::process::id());
            c.set(Some((generation, o)));
            o
        }
    })
}

fn read_self(pid: u32) -> Owner {
    Owner {
        pid,
        start_time: proc_stat(pid).ok().flatten().map_or(0, |s| s.start_time),
        pidns: my_pidns(),
    }
}

/// The caller's PID namespace inode (0 when /proc does not say).
pub(crate) fn my_pidns() -> u64 {
    static NS: OnceLock<u64> = OnceLock::new();
    *NS.get_or_init(|| pidns_of("self").unwrap_or(0))
}

/// The owner identity of `pid` as seen now, or `None` if no such live process.
pub(crate) fn owner_of(pid: u32) -> std::io::Result<Option<Owner>> {
    Ok(proc_stat(pid)?.filter(|s| !s.exited).map(|s| Owner {
        pid,
        start_time: s.start_time,
        pidns: my_pidns(),
    }))
}

/// Whether `owner` is still the running process it was at registration.
pub(crate) fn check(owner: &Owner) -> Liveness {
    if owner.pid == 0 {
        return Liveness::Dead;
    }
    if *owner == current() {
        // This very process (same pid, start time and namespace): no /proc read.
        return Liveness::Alive;
    }
    if owner.pidns == 0 || my_pidns() == 0 || owner.pidns != my_pidns() {
        // The pid means another process here, or nothing: cannot tell.
        return Liveness::Unknown;
    }
    match proc_stat(owner.pid) {
        Ok(None) => Liveness::Dead,
        Ok(Some(s)) if s.exited => Liveness::Dead,
        Ok(Some(s)) if owner.start_time != 0 && s.start_time != owner.start_time => Liveness::Dead,
        Ok(Some(_)) => Liveness::Alive,
        // EACCES and the like (hidepid=2): never guess "dead".
        Err(_) => Liveness::Unknown,
    }
}

#[cfg(all(test, not(procreg_loom)))]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_parentheses_and_spaces_in_the_command() {
        let line = b"4242 (we ird) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.start_time, 987654);
        assert!(!s.exited);
        let z = b"7 (a) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        assert!(parse_stat(z).unwrap().exited);
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b"1 (x) S 1 2"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_forged_start_time_is_dead() {
        let me = current();
        assert!(me.start_time > 0 && me.pidns > 0);
        assert_eq!(check(&me), Liveness::Alive);
        let reused = Owner {
            start_time: me.start_time + 1,
            ..me
        };
        assert_eq!(
            check(&reused),
            Liveness::Dead,
            "a pid with another start time is a reused pid"
        );
        let other_ns = Owner {
            pidns: me.pidns + 1,
            ..me
        };
        assert_eq!(
            check(&other_ns),
            Liveness::Unknown,
            "another PID namespace is never judged dead"
        );
    }

    #[test]
    fn exited_child_is_dead_even_as_a_zombie() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let owner = owner_of(child.id()).unwrap();
        // Wait until it exits but do not reap it yet: it is a zombie.
        for _ in 0..200 {
            if proc_stat(child.id()).unwrap().is_none_or(|s| s.exited) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if let Some(o) = owner {
            assert_eq!(check(&o), Liveness::Dead);
        }
        child.wait().unwrap();
        assert_eq!(owner_of(child.id()).unwrap(), None);
    }
}
