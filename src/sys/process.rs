//! This process's identity and signals to it (rustix).

/// The effective uid of this process.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Fault injection: stops the calling process with SIGSTOP (it resumes on SIGCONT).
#[cfg(feature = "fault-injection")]
pub(crate) fn stop_self() {
    use rustix::process::{Signal, getpid, kill_process};
    // SIGSTOP cannot be caught or fail for our own pid; it only suspends this
    // process until someone sends SIGCONT.
    let _ = kill_process(getpid(), Signal::STOP);
}
