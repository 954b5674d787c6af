//! This host's identity and the liveness of local pids, read from /proc with
//! std (a networked backend does not need procreg's OS layer).

use super::value::Value;
use crate::error::Liveness;

/// Who this host is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostId {
    /// `/proc/sys/kernel/hostname`.
    pub host: String,
    /// `/proc/sys/kernel/random/boot_id`: changes at every boot, so a pid is
    /// only comparable between entries with the same boot id.
    pub boot_id: String,
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Reads this host's identity.
pub fn this_host() -> HostId {
    HostId {
        host: read_trim("/proc/sys/kernel/hostname"),
        boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
    }
}

/// Start time (field 22 of `/proc/<pid>/stat`) of a running, non-zombie `pid`.
pub fn start_time(pid: u32) -> Option<u64> {
    if pid == 0 {
        return None;
    }
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and ')': split after the last ')'.
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // state is field 3; start time is field 22.
    fields.nth(18)?.parse().ok()
}

/// The owner's liveness as judged from this host: `Unknown` unless it runs
/// under this boot of this host.
pub fn judge(v: &Value, me: &HostId) -> Liveness {
    if me.boot_id.is_empty() || v.boot_id != me.boot_id {
        return Liveness::Unknown;
    }
    match start_time(v.pid) {
        Some(t) if t == v.start_time => Liveness::Alive,
        _ => Liveness::Dead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::etcd::value::OwnerToken;

    fn value(pid: u32, start_time: u64, boot_id: &str) -> Value {
        Value {
            pid,
            host: "h".into(),
            boot_id: boot_id.into(),
            start_time,
            metadata: vec![],
            registered_at_ns: 0,
            version: 1,
            owner: OwnerToken {
                lease: 1,
                handle: "x".into(),
            },
        }
    }

    #[test]
    fn own_pid_is_alive_and_a_changed_start_time_is_dead() {
        let me = this_host();
        assert!(!me.boot_id.is_empty());
        let pid = std::process::id();
        let st = start_time(pid).unwrap();
        assert_eq!(judge(&value(pid, st, &me.boot_id), &me), Liveness::Alive);
        assert_eq!(judge(&value(pid, st + 1, &me.boot_id), &me), Liveness::Dead);
        assert_eq!(
            judge(&value(pid, st, "another-boot"), &me),
            Liveness::Unknown
        );
    }

    #[test]
    fn a_reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let st = start_time(pid);
        child.wait().unwrap();
        let me = this_host();
        assert_eq!(
            judge(&value(pid, st.unwrap_or(1), &me.boot_id), &me),
            Liveness::Dead
        );
    }
}
