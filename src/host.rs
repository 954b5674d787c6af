//! This host's identity: the name shown to users and the boot id the code
//! judges by. An owner is a (host, pid, start time); a pid means something
//! only on its own host and boot.

use std::sync::OnceLock;

/// This host's name (`/proc/sys/kernel/hostname`), read once.
pub(crate) fn name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| read_trimmed("/proc/sys/kernel/hostname").unwrap_or_default())
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), read once: a pid and
/// its start time identify a process only within one boot of one host.
#[allow(dead_code)] // used by the networked backend
pub(crate) fn boot_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default())
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_name_and_boot_id_are_read() {
        assert!(!super::name().is_empty());
        assert_eq!(super::boot_id().len(), 36, "{:?}", super::boot_id());
    }
}
