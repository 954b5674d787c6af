//! The `procreg` command, run as a real binary: every subcommand, its exit
//! codes, `--json` output parsed back, waiting and watching across processes,
//! and the demo end to end.

mod common;

use common::{SegGuard, shm_url};
use procreg::{Error, Registry};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_procreg");
/// Generous bound for any single command or expected line.
const TIMEOUT: Duration = Duration::from_secs(30);

// Exit codes, as documented in `procreg --help`.
const USAGE: i32 = 2;
const NOT_FOUND: i32 = 3;
const ALREADY_EXISTS: i32 = 4;
const NO_SUCH_REGISTRY: i32 = 5;
const INVALID_KEY: i32 = 7;
const METADATA_TOO_LARGE: i32 = 8;
const PROCESS_NOT_ALIVE: i32 = 9;
const INVALID_ARGUMENT: i32 = 14;
const TIMEOUT_CODE: i32 = 16;
const UNHEALTHY: i32 = 17;

/// What a finished command did.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn command(url: &str, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("PROCREG_URL")
        .arg("--registry")
        .arg(url)
        .args(args);
    c
}

/// Runs a command to completion (killed past [`TIMEOUT`]).
fn run_cmd(mut c: Command) -> Out {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn procreg");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        so.read_to_string(&mut s).unwrap();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        se.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{c:?} did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Out {
        code: status.code().expect("exited, not killed by a signal"),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

fn run(url: &str, args: &[&str]) -> Out {
    run_cmd(command(url, args))
}

/// Runs and asserts the exit code, showing the output when it differs.
fn expect(url: &str, args: &[&str], code: i32) -> Out {
    let out = run(url, args);
    assert_eq!(out.code, code, "procreg {args:?}: {out:#?}");
    if code != 0 {
        // Errors are one line on stderr, prefixed with the program name.
        assert_eq!(out.stderr.lines().count(), 1, "procreg {args:?}: {out:#?}");
        assert!(
            out.stderr.starts_with("procreg: ") || code == USAGE,
            "{out:#?}"
        );
    }
    out
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// A long-running child that is killed and reaped when dropped.
struct Running {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

fn lines_of(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Running {
    fn start(mut c: Command) -> Running {
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn procreg");
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Running {
            child,
            stdout,
            stderr,
        }
    }

    fn next_line(rx: &Receiver<String>, what: &str) -> String {
        rx.recv_timeout(TIMEOUT)
            .unwrap_or_else(|e| panic!("no {what} line within {TIMEOUT:?}: {e}"))
    }

    /// The next stdout line that contains `needle` (earlier lines are skipped).
    fn stdout_line_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(e) => panic!("no stdout line with {needle:?} within {TIMEOUT:?}: {e}"),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process to own entries: `sleep 600`, killed when dropped.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("600")
                .spawn()
                .expect("spawn sleep"),
        )
    }
    fn pid(&self) -> String {
        self.0.id().to_string()
    }
    fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exists(url: &str) -> bool {
    match Registry::builder().open(url) {
        Ok(_) => true,
        Err(Error::NoSuchRegistry(_)) => false,
        Err(e) => panic!("{url}: {e}"),
    }
}

// ---- help and usage ----------------------------------------------------------

#[test]
fn help_lists_subcommands_and_the_exit_code_table() {
    let out = run_cmd({
        let mut c = Command::new(BIN);
        c.arg("--help");
        c
    });
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("Exit codes:"), "{}", out.stdout);
    for needle in [
        " 2  usage error",
        " 5  no registry",
        "17  health",
        "PROCREG_URL",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} in {}", out.stdout);
    }
    assert!(
        !out.stdout.contains("__worker"),
        "internal commands are hidden"
    );
    for sub in [
        "demo", "ls", "get", "put", "rm", "wait", "watch", "sweep", "reap", "stats", "health",
        "destroy",
    ] {
        assert!(out.stdout.contains(&format!("  {sub} ")), "{sub} listed");
        let h = run_cmd({
            let mut c = Command::new(BIN);
            c.args([sub, "--help"]);
            c
        });
        assert_eq!(h.code, 0, "{sub} --help: {h:#?}");
        assert!(h.stdout.contains("Usage: procreg"), "{sub}: {}", h.stdout);
        assert!(h.stdout.contains("Exit codes"), "{sub}: {}", h.stdout);
    }
}

#[test]
fn wrong_arguments_exit_with_usage_code_2() {
    let url = shm_url("cli-usage");
    let mut g = SegGuard::new(&url);
    g.must_destroy = false; // nothing may be created
    for args in [
        &["frobnicate"][..],
        &[],
        &["get", "only-namespace"],
        &["put"],
        &["wait", "ns", "name", "--timeout", "5 parsecs"],
        &["reap", "--interval", "soon"],
        &["put", "ns", "name", "--pid", "not-a-pid"],
        &["ls", "--jsonn"],
        &["put", "ns", "name", "--update", "--pid", "1"],
    ] {
        let out = run(&url, args);
        assert_eq!(out.code, USAGE, "procreg {args:?}: {out:#?}");
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
    assert!(!exists(&url), "usage errors create nothing");
}

#[test]
fn bad_registry_url_is_an_invalid_argument() {
    let out = expect("http://example.com/x", &["ls"], INVALID_ARGUMENT);
    assert!(out.stderr.contains("registry url"), "{out:#?}");
}

// ---- missing registry --------------------------------------------------------

#[test]
fn read_commands_on_a_missing_registry_exit_5_with_a_hint_and_create_nothing() {
    let url = shm_url("cli-missing");
    let mut g = SegGuard::new(&url);
    g.must_destroy = false; // nothing may be created
    for args in [
        &["ls"][..],
        &["ls", "ns", "--json"],
        &["get", "ns", "name"],
        &["rm", "ns", "name"],
        &["put", "ns", "name", "--update", "--meta", "x"],
        &["watch"],
        &["sweep"],
        &["reap"],
        &["stats"],
        &["stats", "--json"],
        &["health"],
        &["health", "--json"],
        &["destroy", "--yes"],
    ] {
        let out = expect(&url, args, NO_SUCH_REGISTRY);
        assert!(out.stderr.contains("no registry at"), "{args:?}: {out:#?}");
        assert!(
            out.stderr.contains("hint: `procreg put"),
            "{args:?}: {out:#?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {out:#?}");
    }
    assert!(!exists(&url), "read commands never create a registry");
}

#[test]
fn registry_url_comes_from_procreg_url_when_not_given() {
    let url = shm_url("cli-env");
    let _g = SegGuard::new(&url);
    let mut c = Command::new(BIN);
    c.env("PROCREG_URL", &url)
        .args(["put", "env", "svc", "--meta", "from-env"]);
    assert_eq!(run_cmd(c).code, 0);
    assert!(
        exists(&url),
        "put created the registry named by PROCREG_URL"
    );
    let e = Registry::builder()
        .open(&url)
        .unwrap()
        .lookup("env", "svc")
        .unwrap()
        .unwrap();
    assert_eq!(e.metadata, b"from-env");
}

// ---- put / ls / get / rm -----------------------------------------------------

#[test]
fn put_ls_get_rm_round_trip_with_json_parsed_back() {
    let url = shm_url("cli-roundtrip");
    let _g = SegGuard::new(&url);
    let me = std::process::id();
    let out = expect(&url, &["put", "billing", "db", "--meta", "port=5432"], 0);
    assert!(out.stdout.contains("registered billing/db"), "{out:#?}");
    expect(&url, &["put", "billing", "api", "--meta", "port=80"], 0);
    expect(&url, &["put", "search", "idx"], 0);

    // ls --json: one object per entry, sorted, owned by this test process (the
    // parent of procreg, the default owner).
    let all = json_lines(&expect(&url, &["ls", "--json"], 0).stdout);
    let keys: Vec<(&str, &str)> = all
        .iter()
        .map(|v| {
            (
                v["namespace"].as_str().unwrap(),
                v["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [("billing", "api"), ("billing", "db"), ("search", "idx")]
    );
    for v in &all {
        assert_eq!(v["pid"], me);
        assert_eq!(v["status"], "alive");
        assert!(v["version"].as_u64().is_some() && v["age_ms"].as_u64().is_some());
    }
    assert_eq!(all[1]["metadata"], "port=5432");
    assert_eq!(all[1]["metadata_len"], 9);

    // ls NS filters; the table has a header and one row per entry.
    let table = expect(&url, &["ls", "billing"], 0).stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for col in ["NAMESPACE", "NAME", "PID", "STATUS", "AGE", "METADATA"] {
        assert!(lines[0].contains(col), "{table}");
    }
    assert!(
        lines[2].contains("db") && lines[2].contains("alive") && lines[2].contains("port=5432")
    );
    assert!(!table.contains("search"));

    // get, human and JSON.
    let g = expect(&url, &["get", "billing", "db"], 0).stdout;
    assert!(g.contains(&format!("pid         {me} (alive)")), "{g}");
    assert!(g.contains("metadata    port=5432"), "{g}");
    let v: Value =
        serde_json::from_str(&expect(&url, &["get", "billing", "db", "--json"], 0).stdout).unwrap();
    assert_eq!(v["name"], "db");
    assert_eq!(v["metadata"], "port=5432");

    // Registering a live key again is refused; put --update changes the metadata.
    let dup = expect(&url, &["put", "billing", "db"], ALREADY_EXISTS);
    assert!(dup.stderr.contains("already registered by pid"), "{dup:#?}");
    expect(
        &url,
        &["put", "billing", "db", "--update", "--meta", "port=6543"],
        0,
    );
    let v: Value =
        serde_json::from_str(&expect(&url, &["get", "billing", "db", "--json"], 0).stdout).unwrap();
    assert_eq!(v["metadata"], "port=6543");
    expect(
        &url,
        &["put", "billing", "nope", "--update", "--meta", "x"],
        NOT_FOUND,
    );

    // rm, then the key is gone; removing it again is "not found".
    let out = expect(&url, &["rm", "billing", "db"], 0);
    assert!(out.stdout.contains("unregistered billing/db"));
    let miss = expect(&url, &["get", "billing", "db"], NOT_FOUND);
    assert!(miss.stderr.contains("is not registered"), "{miss:#?}");
    expect(&url, &["rm", "billing", "db"], NOT_FOUND);
    // rm --pid only removes the owner's entry.
    expect(&url, &["rm", "billing", "api", "--pid", "1"], 1);
    expect(&url, &["rm", "billing", "api", "--pid", &me.to_string()], 0);
    assert_eq!(
        json_lines(&expect(&url, &["ls", "--json"], 0).stdout).len(),
        1
    );
}

#[test]
fn put_reads_metadata_from_a_file_and_refuses_overlong_metadata() {
    let url = shm_url("cli-meta");
    let _g = SegGuard::new(&url);
    let path = std::env::temp_dir().join(format!("procreg-cli-meta-{}.bin", std::process::id()));
    let bytes: Vec<u8> = (0u8..=255).collect();
    std::fs::write(&path, &bytes).unwrap();
    let at = format!("@{}", path.display());
    expect(&url, &["put", "m", "file", "--meta", &at], 0);
    let e = Registry::builder()
        .open(&url)
        .unwrap()
        .lookup("m", "file")
        .unwrap()
        .unwrap();
    assert_eq!(e.metadata, bytes, "the file's bytes, exactly");
    // Not UTF-8: JSON carries the exact bytes as hex.
    let v: Value =
        serde_json::from_str(&expect(&url, &["get", "m", "file", "--json"], 0).stdout).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v["metadata_hex"], hex.as_str());
    assert_eq!(v["metadata_len"], 256);

    // 257 bytes: the library's typed error, nothing stored, nothing truncated.
    std::fs::write(&path, vec![b'x'; 257]).unwrap();
    let out = expect(
        &url,
        &["put", "m", "big", "--meta", &at],
        METADATA_TOO_LARGE,
    );
    assert!(
        out.stderr
            .contains("metadata is 257 bytes but this registry allows at most 256"),
        "{out:#?}"
    );
    expect(&url, &["get", "m", "big"], NOT_FOUND);
    let out = expect(
        &url,
        &["put", "m", "file", "--update", "--meta", &at],
        METADATA_TOO_LARGE,
    );
    assert!(out.stderr.contains("257"));

    let missing = format!("@{}.missing", path.display());
    let out = expect(&url, &["put", "m", "x", "--meta", &missing], 15);
    assert!(out.stderr.contains("cannot read metadata file"), "{out:#?}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn put_creation_options_apply_to_a_new_registry() {
    let url = shm_url("cli-create-opts");
    let _g = SegGuard::new(&url);
    expect(
        &url,
        &[
            "put",
            "o",
            "a",
            "--capacity",
            "64",
            "--max-metadata-len",
            "8",
            "--meta",
            "12345678",
        ],
        0,
    );
    expect(
        &url,
        &["put", "o", "b", "--meta", "123456789"],
        METADATA_TOO_LARGE,
    );
    let v: Value = serde_json::from_str(&expect(&url, &["stats", "--json"], 0).stdout).unwrap();
    assert_eq!(v["capacity"], 64);
    assert_eq!(v["max_metadata_len"], 8);
}

#[test]
fn bad_keys_and_dead_owner_pids_are_refused_with_their_codes() {
    let url = shm_url("cli-badkey");
    let _g = SegGuard::new(&url);
    expect(&url, &["put", "k", "ok"], 0);
    let long = "n".repeat(129);
    let out = expect(&url, &["put", "k", &long], INVALID_KEY);
    assert!(out.stderr.contains("invalid key"), "{out:#?}");
    expect(&url, &["get", "k", &long], INVALID_KEY);
    expect(&url, &["put", "", "x"], INVALID_KEY);

    let mut s = Sleeper::start();
    let pid = s.pid();
    s.kill();
    let out = expect(
        &url,
        &["put", "k", "dead", "--pid", &pid],
        PROCESS_NOT_ALIVE,
    );
    assert!(
        out.stderr.contains(&format!("process {pid} is not alive")),
        "{out:#?}"
    );
}

#[test]
fn ls_escapes_control_bytes_and_cuts_long_metadata() {
    let url = shm_url("cli-escape");
    let _g = SegGuard::new(&url);
    let meta = format!("\x1b[31mred\nline {}", "y".repeat(100));
    expect(&url, &["put", "e", "svc", "--meta", &meta], 0);
    let table = expect(&url, &["ls"], 0).stdout;
    assert!(
        !table.contains('\x1b'),
        "no raw escape reaches the terminal: {table:?}"
    );
    assert_eq!(
        table.lines().count(),
        2,
        "the newline is escaped: {table:?}"
    );
    let row = table.lines().nth(1).unwrap();
    assert!(row.contains("\\u{1b}[31mred\\nline"), "{row}");
    assert!(row.ends_with('…'), "cut with an ellipsis: {row}");
    // JSON shows it all.
    let v = &json_lines(&expect(&url, &["ls", "--json"], 0).stdout)[0];
    assert_eq!(v["metadata"], meta.as_str());
}

// ---- stats / health / sweep / reap -----------------------------------------------

#[test]
fn stats_and_health_in_text_and_json() {
    let url = shm_url("cli-stats");
    let _g = SegGuard::new(&url);
    expect(&url, &["put", "s", "a"], 0);
    expect(&url, &["put", "s", "b"], 0);
    let text = expect(&url, &["stats"], 0).stdout;
    assert!(text.contains("2 live of 4,096 slots"), "{text}");
    let v: Value = serde_json::from_str(&expect(&url, &["stats", "--json"], 0).stdout).unwrap();
    assert_eq!(v["live"], 2);
    assert_eq!(v["capacity"], 4096);
    assert_eq!(v["registers"], 2);
    assert_eq!(v["backend"], "shm");

    let h = expect(&url, &["health"], 0).stdout;
    assert!(h.starts_with("healthy"), "{h}");
    let v: Value = serde_json::from_str(&expect(&url, &["health", "--json"], 0).stdout).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["alive_owners"], 2);
}

#[test]
fn dead_owner_makes_health_exit_17_until_sweep_reclaims_it() {
    let url = shm_url("cli-health");
    let _g = SegGuard::new(&url);
    let mut s = Sleeper::start();
    expect(
        &url,
        &["put", "h", "worker", "--pid", &s.pid(), "--meta", "w"],
        0,
    );
    expect(&url, &["put", "h", "me"], 0);
    expect(&url, &["health"], 0);
    let victim = s.pid();
    s.kill();

    let out = run(&url, &["health"]);
    assert_eq!(out.code, UNHEALTHY, "{out:#?}");
    assert!(out.stdout.starts_with("UNHEALTHY"), "{out:#?}");
    assert!(out.stderr.is_empty(), "the report is the output: {out:#?}");
    let out = run(&url, &["health", "--json"]);
    assert_eq!(out.code, UNHEALTHY);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["dead_owners"], 1);

    let out = expect(&url, &["sweep"], 0);
    assert!(out.stdout.contains("reclaimed 1 "), "{out:#?}");
    assert!(
        out.stdout.contains(&format!("h/worker (pid {victim})")),
        "{out:#?}"
    );
    expect(&url, &["health"], 0);
    let out = expect(&url, &["sweep"], 0);
    assert!(out.stdout.contains("reclaimed 0 "), "{out:#?}");
    let left = json_lines(&expect(&url, &["ls", "--json"], 0).stdout);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["name"], "me");
}

#[test]
fn ls_shows_a_dead_owner_as_dead_and_get_misses_it() {
    let url = shm_url("cli-ls-dead");
    let _g = SegGuard::new(&url);
    let mut s = Sleeper::start();
    expect(&url, &["put", "d", "gone", "--pid", &s.pid()], 0);
    expect(&url, &["put", "d", "here"], 0);
    s.kill();
    let v = json_lines(&expect(&url, &["ls", "d", "--json"], 0).stdout);
    let status: Vec<(&str, &str)> = v
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(status, [("gone", "dead"), ("here", "alive")]);
    // Listing is read-only: the dead entry is still there to be listed again.
    let again = json_lines(&expect(&url, &["ls", "d", "--json"], 0).stdout);
    assert_eq!(again.len(), 2);
    assert_eq!(again[0]["status"], "dead");
    expect(&url, &["get", "d", "gone"], NOT_FOUND);
}

#[test]
fn reap_reclaims_the_entry_of_a_killed_process_as_it_runs() {
    let url = shm_url("cli-reap");
    let _g = SegGuard::new(&url);
    let mut s = Sleeper::start();
    expect(&url, &["put", "r", "victim", "--pid", &s.pid()], 0);
    let reaper = Running::start(command(&url, &["reap", "--interval", "20ms"]));
    let banner = Running::next_line(&reaper.stderr, "reap banner");
    assert!(banner.contains("reaping"), "{banner}");
    assert_eq!(
        json_lines(&expect(&url, &["ls", "--json"], 0).stdout).len(),
        1
    );
    let victim = s.pid();
    s.kill();
    let line = reaper.stdout_line_with("reclaimed");
    assert!(line.contains("reclaimed 1 "), "{line}");
    let detail = Running::next_line(&reaper.stdout, "reclaimed entry");
    assert!(
        detail.contains(&format!("r/victim (pid {victim})")),
        "{detail}"
    );
    assert!(json_lines(&expect(&url, &["ls", "--json"], 0).stdout).is_empty());
}

// ---- wait / watch ------------------------------------------------------------

#[test]
fn wait_returns_when_another_process_registers_the_key() {
    let url = shm_url("cli-wait");
    let _g = SegGuard::new(&url);
    // The registry does not exist yet: wait waits for it too.
    let mut waiter = Running::start(command(
        &url,
        &["wait", "w", "late", "--timeout", "30s", "--json"],
    ));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        waiter.child.try_wait().unwrap().is_none(),
        "wait must not return before the key exists"
    );
    expect(&url, &["put", "w", "late", "--meta", "ready"], 0);
    let line = Running::next_line(&waiter.stdout, "wait result");
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["name"], "late");
    assert_eq!(v["metadata"], "ready");
    assert_eq!(v["status"], "alive");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(s) = waiter.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "wait did not exit");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn wait_times_out_with_code_16() {
    let url = shm_url("cli-wait-timeout");
    let _g = SegGuard::new(&url);
    expect(&url, &["put", "w", "other"], 0);
    let t = Instant::now();
    let out = expect(
        &url,
        &["wait", "w", "never", "--timeout", "300ms"],
        TIMEOUT_CODE,
    );
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "waited the whole timeout"
    );
    assert!(
        out.stderr.contains("was not registered within 300ms"),
        "{out:#?}"
    );
    // An existing key returns at once, even with a zero timeout.
    let out = expect(&url, &["wait", "w", "other", "--timeout", "0s"], 0);
    assert!(out.stdout.contains("name        other"), "{out:#?}");
}

#[test]
fn watch_prints_puts_updates_and_removals_as_they_happen() {
    let url = shm_url("cli-watch");
    let _g = SegGuard::new(&url);
    expect(&url, &["put", "other-ns", "quiet"], 0);
    let watcher = Running::start(command(&url, &["watch", "wns", "--json"]));
    // The banner is printed once the first snapshot is taken.
    let banner = Running::next_line(&watcher.stderr, "watch banner");
    assert!(banner.contains("watching namespace \"wns\""), "{banner}");

    expect(&url, &["put", "wns", "svc", "--meta", "v1"], 0);
    let v: Value = serde_json::from_str(&Running::next_line(&watcher.stdout, "event")).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["name"].as_str()),
        (Some("registered"), Some("svc"))
    );
    assert_eq!(v["metadata"], "v1");
    assert_eq!(v["pid"], std::process::id());

    expect(&url, &["put", "wns", "svc", "--update", "--meta", "v2"], 0);
    let v: Value = serde_json::from_str(&Running::next_line(&watcher.stdout, "event")).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["metadata"].as_str()),
        (Some("updated"), Some("v2"))
    );

    expect(&url, &["rm", "wns", "svc"], 0);
    let v: Value = serde_json::from_str(&Running::next_line(&watcher.stdout, "event")).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["name"].as_str()),
        (Some("unregistered"), Some("svc"))
    );

    // Other namespaces are not reported.
    expect(&url, &["put", "other-ns", "loud"], 0);
    let mut s = Sleeper::start();
    expect(&url, &["put", "wns", "doomed", "--pid", &s.pid()], 0);
    let v: Value = serde_json::from_str(&Running::next_line(&watcher.stdout, "event")).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["name"].as_str()),
        (Some("registered"), Some("doomed"))
    );
    s.kill();
    expect(&url, &["sweep"], 0);
    let v: Value = serde_json::from_str(&Running::next_line(&watcher.stdout, "event")).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["name"].as_str()),
        (Some("reclaimed"), Some("doomed"))
    );
}

#[test]
fn watch_text_output_names_the_event_and_key() {
    let url = shm_url("cli-watch-text");
    let _g = SegGuard::new(&url);
    expect(&url, &["put", "t", "first"], 0);
    let watcher = Running::start(command(&url, &["watch"]));
    let banner = Running::next_line(&watcher.stderr, "watch banner");
    assert!(banner.contains("(1 entries now)"), "{banner}");
    expect(&url, &["put", "t", "second", "--meta", "hello"], 0);
    let line = watcher.stdout_line_with("t/second");
    assert!(
        line.contains("registered") && line.contains("meta hello"),
        "{line}"
    );
}

// ---- destroy ------------------------------------------------------------------

#[test]
fn destroy_is_refused_without_yes() {
    let url = shm_url("cli-destroy");
    let mut g = SegGuard::new(&url);
    expect(&url, &["put", "x", "y"], 0);
    let out = expect(&url, &["destroy"], USAGE);
    assert!(out.stderr.contains("without --yes"), "{out:#?}");
    assert!(exists(&url), "nothing removed");
    let out = expect(&url, &["destroy", "--yes"], 0);
    assert!(out.stdout.contains(&format!("destroyed {url}")));
    assert!(!exists(&url));
    expect(&url, &["ls"], NO_SUCH_REGISTRY);
    g.must_destroy = false;
}

// ---- demo -------------------------------------------------------------------------

#[test]
fn demo_runs_end_to_end_and_summarises() {
    let t = Instant::now();
    let child = Command::new(BIN)
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let demo_url = format!("shm:procreg-demo-{}", child.id());
    let out = child.wait_with_output().unwrap();
    let elapsed = t.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    let summary = stdout
        .split("== summary")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    let field = |name: &str| -> String {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name:?} in {summary}"));
        line.trim_start()[name.len()..].trim().to_owned()
    };
    assert_eq!(field("workers spawned"), "4");
    assert!(field("services registered").starts_with("12 "));
    assert!(field("entries reclaimed by sweep").starts_with("3 "));
    assert_eq!(field("entries unregistered at exit"), "9");
    let rate: u64 = field("lookups/s (lookup_pid, 1 thread)")
        .split(' ')
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(rate > 1000, "a measured rate: {rate}");
    assert!(field("total time").ends_with(" s"));
    assert_eq!(field("segment"), format!("{demo_url} destroyed"));
    assert!(!exists(&demo_url), "the demo removed its segment");
    // The story in between: reclaimed entries of the killed worker, and the table.
    assert_eq!(
        stdout.matches("  reclaimed    demo/").count(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains("NAMESPACE  NAME"), "{stdout}");
}

// ---- etcd:// -------------------------------------------------------------------

#[cfg(not(feature = "etcd"))]
#[test]
fn etcd_url_without_the_feature_is_refused_saying_how_to_enable_it() {
    let url = "etcd://127.0.0.1:2379/app";
    for args in [
        &["ls"][..],
        &["stats"],
        &["health"],
        &["put", "a", "b", "--hold"],
    ] {
        let out = expect(url, args, INVALID_ARGUMENT);
        assert!(
            out.stderr.contains("no etcd backend") && out.stderr.contains("--features etcd"),
            "procreg {args:?}: {out:#?}"
        );
    }
}

/// Exit code of an unreachable etcd (`procreg --help`).
#[cfg(feature = "etcd")]
const UNAVAILABLE: i32 = 18;

/// A fresh prefix on the cluster named by PROCREG_ETCD_ENDPOINTS, emptied
/// before and after.
#[cfg(feature = "etcd")]
struct EtcdPrefix {
    url: String,
}

#[cfg(feature = "etcd")]
impl EtcdPrefix {
    fn new(test: &str) -> EtcdPrefix {
        let endpoints = std::env::var("PROCREG_ETCD_ENDPOINTS").expect(
            "the etcd feature runs the CLI on etcd too: set PROCREG_ETCD_ENDPOINTS \
             (scripts/etcd-cluster start prints it)",
        );
        let url = format!(
            "etcd://{endpoints}/cli-{test}-{}?ttl=3s&timeout=5s",
            std::process::id()
        );
        Registry::destroy(&url).unwrap();
        EtcdPrefix { url }
    }
}

#[cfg(feature = "etcd")]
impl Drop for EtcdPrefix {
    fn drop(&mut self) {
        let _ = Registry::destroy(&self.url);
    }
}

/// Waits (bounded) for a finished `Running` and returns its exit code.
#[cfg(feature = "etcd")]
fn exit_code_of(r: &mut Running) -> i32 {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(s) = r.child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "procreg did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(feature = "etcd")]
#[test]
fn etcd_put_get_ls_rm_stats_health_and_sweep_through_the_cli() {
    let p = EtcdPrefix::new("round");
    let url = p.url.as_str();
    let owner = Sleeper::start();
    let pid = owner.pid();

    // A plain put would die with procreg's own session: refused, nothing written.
    let out = expect(url, &["put", "svc", "a", "--pid", &pid], USAGE);
    assert!(
        out.stderr.contains("--hold") && out.stderr.contains("--ttl"),
        "{out:#?}"
    );
    expect(url, &["get", "svc", "a"], NOT_FOUND);
    let out = expect(
        url,
        &["put", "svc", "a", "--ttl", "30s", "--capacity", "64"],
        USAGE,
    );
    assert!(out.stderr.contains("no capacity"), "{out:#?}");

    // --ttl: the entry has a lease of its own and outlives procreg.
    let out = expect(
        url,
        &[
            "put", "svc", "a", "--pid", &pid, "--ttl", "30s", "--meta", "port=7",
        ],
        0,
    );
    assert!(
        out.stdout
            .contains(&format!("registered svc/a for pid {pid}")),
        "{out:#?}"
    );
    expect(
        url,
        &["put", "svc", "a", "--pid", &pid, "--ttl", "30s"],
        ALREADY_EXISTS,
    );
    let v = &json_lines(&expect(url, &["get", "svc", "a", "--json"], 0).stdout)[0];
    assert_eq!(v["pid"].to_string(), pid);
    assert_eq!(v["metadata"], "port=7");
    assert_eq!(v["status"], "alive");
    let listed = json_lines(&expect(url, &["ls", "--json"], 0).stdout);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0]["namespace"].as_str(), listed[0]["name"].as_str()),
        (Some("svc"), Some("a"))
    );
    // Only the registering handle may update an etcd entry: refused up front.
    let out = expect(url, &["put", "svc", "a", "--update", "--meta", "x"], USAGE);
    assert!(
        out.stderr.contains("only the handle that registered"),
        "{out:#?}"
    );

    // stats: the etcd part, no table figures made up.
    let s = &json_lines(&expect(url, &["stats", "--json"], 0).stdout)[0];
    assert_eq!(s["backend"], "etcd");
    assert_eq!(s["live"], 1);
    assert!(s["capacity"].is_null() && s["tombstones"].is_null(), "{s}");
    let endpoints = std::env::var("PROCREG_ETCD_ENDPOINTS").unwrap();
    let members: Vec<&str> = endpoints.split(',').collect();
    assert_eq!(s["etcd"]["endpoints"], serde_json::json!(members));
    assert!(
        s["etcd"]["prefix"]
            .as_str()
            .unwrap()
            .starts_with("/cli-round-"),
        "{s}"
    );
    assert_eq!(s["etcd"]["ttl_ms"], 3000);
    assert_eq!(s["etcd"]["own_entries"], 0, "a new handle holds nothing");
    let text = expect(url, &["stats"], 0).stdout;
    for want in [
        "(etcd backend)",
        "entries     1 live, 0 registered through this handle",
        "members     ",
        "prefix      /cli-round-",
        "lease       ",
        "ttl 3.0s",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }

    // health: the session and every member.
    let h = &json_lines(&expect(url, &["health", "--json"], 0).stdout)[0];
    assert_eq!(h["healthy"], true);
    assert_eq!(
        (h["live"].as_u64(), h["alive_owners"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(h["liveness_mode"], "lease");
    assert!(h["etcd"]["session_lost"].is_null(), "{h}");
    assert!(h["etcd"]["lease_left_ms"].as_u64().unwrap() > 0, "{h}");
    let up: Vec<bool> = h["etcd"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["up"].as_bool().unwrap())
        .collect();
    assert_eq!(up, vec![true; members.len()], "{h}");
    let text = expect(url, &["health"], 0).stdout;
    assert!(text.starts_with("healthy"), "{text}");
    assert!(text.contains("session     lease "), "{text}");
    for m in &members {
        assert!(
            text.contains(&format!("member      {m} up")),
            "{m} in:\n{text}"
        );
    }

    // A dead owner on this host: health says so (exit 17), sweep reclaims it.
    let mut doomed = Sleeper::start();
    expect(
        url,
        &[
            "put",
            "svc",
            "doomed",
            "--pid",
            &doomed.pid(),
            "--ttl",
            "30s",
        ],
        0,
    );
    doomed.kill();
    let out = run(url, &["health"]);
    assert_eq!(out.code, UNHEALTHY, "{out:#?}");
    assert!(out.stdout.contains("1 dead"), "{out:#?}");
    assert!(
        out.stdout.contains("hint        `procreg sweep`"),
        "{out:#?}"
    );
    let out = expect(url, &["sweep"], 0);
    assert!(
        out.stdout.contains("reclaimed 1") && out.stdout.contains("svc/doomed"),
        "{out:#?}"
    );
    expect(url, &["health"], 0);

    expect(url, &["rm", "svc", "a"], 0);
    expect(url, &["get", "svc", "a"], NOT_FOUND);
    expect(url, &["rm", "svc", "a"], NOT_FOUND);
    assert!(json_lines(&expect(url, &["ls", "--json"], 0).stdout).is_empty());
}

#[cfg(feature = "etcd")]
#[test]
fn etcd_put_hold_keeps_the_entry_until_its_owner_exits_then_removes_it() {
    let p = EtcdPrefix::new("hold");
    let url = p.url.as_str();
    let mut owner = Sleeper::start();
    let pid = owner.pid();
    let mut holder = Running::start(command(
        url,
        &["put", "svc", "held", "--pid", &pid, "--hold", "--meta", "m"],
    ));
    let line = holder.stdout_line_with("registered");
    assert!(
        line.contains(&format!("registered svc/held for pid {pid}")),
        "{line}"
    );
    let note = Running::next_line(&holder.stderr, "hold note");
    assert!(
        note.contains("keeps its lease") && note.contains("ttl 3.0s"),
        "{note}"
    );
    // Past the session ttl (3 s) the entry is still there: the holder renews it.
    std::thread::sleep(Duration::from_millis(3500));
    let v = &json_lines(&expect(url, &["get", "svc", "held", "--json"], 0).stdout)[0];
    assert_eq!(v["pid"].to_string(), pid);
    let t = Instant::now();
    owner.kill();
    let line = holder.stdout_line_with("exited");
    let took = t.elapsed();
    assert_eq!(line, format!("pid {pid} exited; unregistered svc/held"));
    assert_eq!(exit_code_of(&mut holder), 0);
    assert!(
        took < Duration::from_secs(2),
        "noticed the owner's exit in {took:?}"
    );
    eprintln!("put --hold removed the entry {took:?} after its owner died");
    expect(url, &["get", "svc", "held"], NOT_FOUND);

    // Removed by someone else while held: the holder says so and fails.
    let owner = Sleeper::start();
    let mut holder = Running::start(command(
        url,
        &["put", "svc", "held", "--pid", &owner.pid(), "--hold"],
    ));
    holder.stdout_line_with("registered");
    expect(url, &["rm", "svc", "held"], 0);
    let err = holder
        .stderr
        .iter()
        .find(|l| l.starts_with("procreg: svc/held is gone"))
        .unwrap();
    assert!(err.contains("unregistered"), "{err}");
    assert_eq!(exit_code_of(&mut holder), 1);
}

#[cfg(feature = "etcd")]
#[test]
fn etcd_wait_and_watch_see_a_put_from_another_process() {
    let p = EtcdPrefix::new("ww");
    let url = p.url.as_str();
    let t = Instant::now();
    expect(
        url,
        &["wait", "w", "never", "--timeout", "300ms"],
        TIMEOUT_CODE,
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    let mut waiter = Running::start(command(
        url,
        &["wait", "w", "late", "--timeout", "20s", "--json"],
    ));
    let watcher = Running::start(command(url, &["watch", "w", "--json"]));
    let banner = Running::next_line(&watcher.stderr, "watch banner");
    assert!(banner.contains("watching namespace \"w\""), "{banner}");
    let owner = Sleeper::start();
    expect(
        url,
        &[
            "put",
            "w",
            "late",
            "--pid",
            &owner.pid(),
            "--ttl",
            "30s",
            "--meta",
            "ready",
        ],
        0,
    );
    let v: Value =
        serde_json::from_str(&Running::next_line(&waiter.stdout, "wait result")).unwrap();
    assert_eq!(
        (v["name"].as_str(), v["metadata"].as_str()),
        (Some("late"), Some("ready"))
    );
    assert_eq!(exit_code_of(&mut waiter), 0);
    let v: Value = serde_json::from_str(&Running::next_line(&watcher.stdout, "event")).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["name"].as_str()),
        (Some("registered"), Some("late"))
    );
    assert!(v["revision"].as_u64().unwrap() > 0);
    expect(url, &["rm", "w", "late"], 0);
    let v: Value = serde_json::from_str(&Running::next_line(&watcher.stdout, "event")).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["name"].as_str()),
        (Some("unregistered"), Some("late"))
    );
}

#[cfg(feature = "etcd")]
#[test]
fn etcd_dead_endpoint_exits_18_within_the_timeout_naming_it() {
    // Port 1 on loopback: nothing listens.
    let url = "etcd://127.0.0.1:1/nobody?timeout=1s";
    for args in [&["ls"][..], &["health"], &["put", "a", "b", "--ttl", "5s"]] {
        let t = Instant::now();
        let out = expect(url, args, UNAVAILABLE);
        let took = t.elapsed();
        assert!(out.stderr.contains("127.0.0.1:1"), "{out:#?}");
        assert!(
            took < Duration::from_secs(5),
            "procreg {args:?} took {took:?}"
        );
    }
    let out = expect("etcd://127.0.0.1:1/x?ttl=1s", &["ls"], INVALID_ARGUMENT);
    assert!(out.stderr.contains("ttl"), "{out:#?}");
}
