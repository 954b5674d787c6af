//! Helpers of the reliability suite (`tests/reliability_*.rs`): child
//! processes that are the test binary re-executing itself, a line protocol
//! over pipes, self-checking metadata, and latency percentiles.
//!
//! A child runs one `child_…` test of its binary (`--exact child_… --nocapture`)
//! with `PROCREG_REL_ROLE` set; a `child_…` test returns at once when that
//! variable is absent. Children print `PROCREG:<tag> <data>` lines on stdout
//! and read commands from stdin.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

pub const ROLE: &str = "PROCREG_REL_ROLE";
pub const URL: &str = "PROCREG_REL_URL";
pub const ARGS: &str = "PROCREG_REL_ARGS";
pub const MARK: &str = "PROCREG:";
/// How long the parent waits for any one message or exit of a child.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// True when `PROCREG_SOAK=1`: the long versions.
pub fn soak() -> bool {
    std::env::var("PROCREG_SOAK").is_ok_and(|v| v == "1")
}

/// `PROCREG_SOAK_<name>` as a number, else the soak or CI default.
pub fn knob(name: &str, ci: u64, soak_value: u64) -> u64 {
    std::env::var(format!("PROCREG_SOAK_{name}"))
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if soak() { soak_value } else { ci })
}

/// A child process running one `child_…` test of this binary.
pub struct Kid {
    pub what: String,
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub lines: Receiver<String>,
}

impl Kid {
    /// Spawns this test binary running `child_test` in `role`.
    pub fn spawn(child_test: &str, role: &str, url: &str, args: &str, env: &[(&str, &str)]) -> Kid {
        Self::spawn_wrapped(&[], child_test, role, url, args, env)
    }

    /// Like [`spawn`](Self::spawn), run under `wrapper` (e.g. `unshare -p -f`).
    pub fn spawn_wrapped(
        wrapper: &[&str],
        child_test: &str,
        role: &str,
        url: &str,
        args: &str,
        env: &[(&str, &str)],
    ) -> Kid {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(["--exact", child_test, "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .env(URL, url)
            .env(ARGS, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn the test binary as a child");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find(MARK) {
                    if tx.send(line[at + MARK.len()..].to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        Kid {
            what: format!("{role}[{args}] pid {}", child.id()),
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next message, split into tag and data; `None` when the child closed stdout.
    pub fn next(&mut self, timeout: Duration) -> Option<(String, String)> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                let (t, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                Some((t.to_owned(), rest.to_owned()))
            }
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!(
                "child {} said nothing for {timeout:?}; exit status {:?}",
                self.what,
                self.child.try_wait()
            ),
        }
    }

    /// Waits for the child's next message, which must carry `tag`; returns its data.
    pub fn expect(&mut self, tag: &str) -> String {
        self.expect_within(tag, TIMEOUT)
    }

    /// Like [`expect`](Self::expect) with another timeout.
    pub fn expect_within(&mut self, tag: &str, timeout: Duration) -> String {
        match self.next(timeout) {
            Some((t, rest)) => {
                assert_eq!(t, tag, "child {} said {t} {rest}", self.what);
                rest
            }
            None => {
                let st = self.wait_exit();
                panic!(
                    "child {} ended before saying {tag:?}; exit status {st:?}",
                    self.what
                )
            }
        }
    }

    pub fn send(&mut self, line: &str) {
        let w = self.stdin.as_mut().expect("stdin open");
        writeln!(w, "{line}").unwrap();
        w.flush().unwrap();
    }

    /// Waits (bounded) for the child to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "child {} did not exit",
                self.what
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn assert_success(&mut self) {
        let st = self.wait_exit();
        assert!(st.success(), "child {} failed: {st:?}", self.what);
    }

    /// SIGKILLs the child and reaps it (its pid is then free for reuse).
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.child.wait().unwrap()
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        // A test that fails half-way must not leave children behind (a
        // stopped child is continued so the kill is not delayed).
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), libc::SIGCONT);
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory preconditions; `pid` is a child of this test.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// State letter of `/proc/<pid>/stat` (field 3), e.g. `T` for stopped.
pub fn proc_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = s.rfind(')')?;
    s[close + 1..].trim_start().chars().next()
}

/// Waits (bounded) until `pid` is stopped by a signal.
pub fn wait_stopped(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if matches!(proc_state(pid), Some('T') | Some('t')) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

// ---- child side -----------------------------------------------------------

/// `(url, args)` when this process is a child started for `role`.
pub fn child_role(role: &str) -> Option<(String, String)> {
    if std::env::var(ROLE).ok()? != role {
        return None;
    }
    Some((
        std::env::var(URL).expect("child needs a url"),
        std::env::var(ARGS).unwrap_or_default(),
    ))
}

pub fn say(msg: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "\n{MARK}{msg}").unwrap();
    out.flush().unwrap();
}

/// The next command from the parent; `None` when the parent closed the pipe.
pub fn hear() -> Option<String> {
    let mut s = String::new();
    match std::io::stdin().read_line(&mut s) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(s.trim_end().to_owned()),
    }
}

/// No core files from the aborts the suite provokes.
pub fn no_core_dumps() {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads one valid rlimit struct; it only limits core dumps.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
}

// ---- self-checking metadata -------------------------------------------------

/// FNV-1a, 64 bit.
pub fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Metadata that names its key and a sequence number, of a length that
/// varies with `seq` (so a torn length shows), sealed by a checksum over
/// key + seq + padding. At most 200 bytes for keys of up to 40 bytes.
pub fn meta(key: &str, seq: u64) -> Vec<u8> {
    let pad_len = (seq.wrapping_mul(0x9E37_79B9) % 120) as usize;
    let pad_char = b'a' + (seq % 26) as u8;
    let pad = vec![pad_char; pad_len];
    let sum = fnv(&[key.as_bytes(), &seq.to_le_bytes(), &pad]);
    let mut m = format!("{seq}|{key}|").into_bytes();
    m.extend_from_slice(&pad);
    m.extend_from_slice(format!("|{sum:016x}").as_bytes());
    m
}

/// The sequence number of metadata made by [`meta`] for `key`, or why it is
/// not intact (torn, or another key's).
pub fn check_meta(key: &str, m: &[u8]) -> Result<u64, String> {
    let text = std::str::from_utf8(m).map_err(|_| format!("not utf-8: {m:?}"))?;
    let mut parts = text.splitn(4, '|');
    let (Some(seq), Some(k), Some(pad), Some(sum)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("malformed: {text:?}"));
    };
    let seq: u64 = seq.parse().map_err(|_| format!("bad seq: {text:?}"))?;
    if k != key {
        return Err(format!("metadata of key {k:?} under key {key:?}"));
    }
    let want = fnv(&[key.as_bytes(), &seq.to_le_bytes(), pad.as_bytes()]);
    if sum != format!("{want:016x}") || meta(key, seq) != m {
        return Err(format!("checksum mismatch: {text:?}"));
    }
    Ok(seq)
}

// ---- figures ------------------------------------------------------------------

/// The `p`-th percentile (0..=100) of `v` (sorted in place).
pub fn percentile(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p / 100.0).round() as usize;
    v[i]
}

/// A small xorshift generator (deterministic from a seed, no dependency).
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn from_time() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng::new(t ^ (std::process::id() as u64) << 32)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Whether `unshare` may create user-less PID (and mount) namespaces here.
pub fn can_unshare_pidns() -> bool {
    Command::new("unshare")
        .args(["-p", "-f", "--mount-proc", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The euid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
