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
const FULL: i32 = 10;
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
        "demo",
        "ls",
        "get",
        "put",
        "rm",
        "join",
        "leave",
        "members",
        "select",
        "wait",
        "watch",
        "sweep",
        "reap",
        "stats",
        "health",
        "destroy",
        "registries",
        "completions",
        "man",
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
        &["join", "ns"],
        &["join", "ns", "g", "--update", "--hold"],
        &["leave", "ns"],
        &["members", "ns"],
        &["select"],
        &["select", "ns", "a=1", "extra"],
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
        &["leave", "ns", "g"],
        &["members", "ns", "g"],
        &["members", "ns", "g", "--json"],
        &["select", "a=1"],
        &["join", "ns", "g", "--update", "--meta", "x"],
    ] {
        let out = expect(&url, args, NO_SUCH_REGISTRY);
        assert!(out.stderr.contains("no registry at"), "{args:?}: {out:#?}");
        // One sentence that says what to do, not the library's open-mode advice.
        assert!(
            out.stderr.contains("`procreg put NS NAME` creates it")
                && out.stderr.contains("--registry URL")
                && !out.stderr.contains("open-or-create"),
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
    let mut c = command(&url, &["ls"]);
    c.env("COLUMNS", "80");
    let table = run_cmd(c).stdout;
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
fn dead_owner_is_reported_by_health_but_fails_it_only_with_strict() {
    let url = shm_url("cli-health");
    let _g = SegGuard::new(&url);
    let mut s = Sleeper::start();
    expect(
        &url,
        &["put", "h", "worker", "--pid", &s.pid(), "--meta", "w"],
        0,
    );
    expect(&url, &["put", "h", "me"], 0);
    expect(&url, &["health", "--strict"], 0);
    let victim = s.pid();
    s.kill();

    // A crashed neighbour is counted, not a failed probe.
    let out = expect(&url, &["health"], 0);
    assert!(out.stdout.starts_with("healthy"), "{out:#?}");
    assert!(out.stdout.contains("1 dead"), "{out:#?}");
    assert!(
        out.stdout
            .contains("note        1 entries have dead owners"),
        "{out:#?}"
    );
    let v: Value = serde_json::from_str(&expect(&url, &["health", "--json"], 0).stdout).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["dead_owners"], 1);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["notes"].as_array().unwrap().len(), 1, "{v}");

    // --strict: the same dead owner is a problem (exit 17).
    let out = run(&url, &["health", "--strict"]);
    assert_eq!(out.code, UNHEALTHY, "{out:#?}");
    assert!(out.stdout.starts_with("UNHEALTHY"), "{out:#?}");
    assert!(out.stderr.is_empty(), "the report is the output: {out:#?}");
    let out = run(&url, &["health", "--json", "--strict"]);
    assert_eq!(out.code, UNHEALTHY);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["strict"], true);
    assert_eq!(v["dead_owners"], 1);

    let out = expect(&url, &["sweep"], 0);
    assert!(out.stdout.contains("reclaimed 1 "), "{out:#?}");
    assert!(
        out.stdout.contains(&format!("h/worker (pid {victim})")),
        "{out:#?}"
    );
    expect(&url, &["health", "--strict"], 0);
    let out = expect(&url, &["sweep"], 0);
    assert!(out.stdout.contains("reclaimed 0 "), "{out:#?}");
    let left = json_lines(&expect(&url, &["ls", "--json"], 0).stdout);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["name"], "me");
}

#[test]
fn health_is_unhealthy_when_the_registry_is_nearly_full() {
    let url = shm_url("cli-health-full");
    let _g = SegGuard::new(&url);
    // 16 slots: the 15th entry passes 90% load.
    for i in 0..15 {
        expect(&url, &["put", "f", &format!("k{i}"), "--capacity", "16"], 0);
    }
    let out = run(&url, &["health"]);
    assert_eq!(out.code, UNHEALTHY, "{out:#?}");
    assert!(out.stdout.contains("problem     load factor"), "{out:#?}");
    expect(&url, &["rm", "f", "k0"], 0);
    expect(&url, &["rm", "f", "k1"], 0);
    expect(&url, &["health"], 0);
}

#[test]
fn sweep_quiet_prints_nothing_and_still_reclaims() {
    let url = shm_url("cli-sweep-quiet");
    let _g = SegGuard::new(&url);
    let mut s = Sleeper::start();
    expect(&url, &["put", "q", "gone", "--pid", &s.pid()], 0);
    s.kill();
    let out = expect(&url, &["sweep", "--quiet"], 0);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    assert!(json_lines(&expect(&url, &["ls", "--json"], 0).stdout).is_empty());
    let out = expect(&url, &["sweep", "-q"], 0);
    assert!(out.stdout.is_empty(), "{out:#?}");
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

    // A killed group member is reclaimed and named as one.
    let mut s = Sleeper::start();
    let member = s.pid();
    expect(&url, &["join", "r", "pool", "--pid", &member], 0);
    s.kill();
    let detail = reaper.stdout_line_with("r/pool");
    assert_eq!(detail, format!("  r/pool member pid {member}"));
    assert_eq!(
        expect(&url, &["members", "r", "pool", "--json"], 0)
            .stdout
            .trim(),
        "[]"
    );
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

// ---- groups and queries ------------------------------------------------------

/// The `--json` array of `members` or `select`, parsed.
fn json_array(s: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {s}"))
        .clone()
}

#[test]
fn join_members_ls_select_and_leave_with_json_parsed_back() {
    let url = shm_url("cli-groups");
    let _g = SegGuard::new(&url);
    let me = std::process::id();
    let child = Sleeper::start();
    let cp = child.pid();
    // A unique key and a group of the same name do not clash.
    expect(&url, &["put", "shop", "api", "--meta", "role=front"], 0);
    // join creates nothing new here, but names the member it added.
    let out = expect(
        &url,
        &[
            "join",
            "shop",
            "api",
            "--pid",
            &cp,
            "--meta",
            "role=api port=8081",
        ],
        0,
    );
    assert!(
        out.stdout.contains(&format!("pid {cp} joined shop/api")),
        "{out:#?}"
    );
    // Without --pid the member is procreg's parent (this test), as for put.
    let out = expect(
        &url,
        &[
            "join",
            "shop",
            "api",
            "--meta",
            r#"{"role":"api","port":8080}"#,
        ],
        0,
    );
    assert!(out.stdout.contains(&format!("pid {me} joined")), "{out:#?}");
    expect(&url, &["join", "other", "workers", "--meta", "role=api"], 0);

    // members: a table by pid, and a JSON array with member true.
    let table = expect(&url, &["members", "shop", "api"], 0).stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for col in ["PID", "HOST", "STATUS", "AGE", "METADATA"] {
        assert!(lines[0].contains(col), "{table}");
    }
    let pids: Vec<u32> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    let mut sorted = pids.clone();
    sorted.sort_unstable();
    assert_eq!(pids, sorted, "sorted by pid: {table}");
    assert!(
        table.contains("role=api port=8081") && table.contains("alive"),
        "{table}"
    );
    let m = json_array(&expect(&url, &["members", "shop", "api", "--json"], 0).stdout);
    assert_eq!(m.len(), 2, "{m:?}");
    for v in &m {
        assert_eq!(
            (
                v["namespace"].as_str(),
                v["name"].as_str(),
                v["member"].as_bool()
            ),
            (Some("shop"), Some("api"), Some(true)),
            "{v}"
        );
        assert_eq!(v["status"], "alive");
        assert!(v["version"].as_u64().is_some() && v["age_ms"].as_u64().is_some());
        assert!(!v["host"].as_str().unwrap().is_empty());
    }
    let by_pid = |p: &str| {
        let p: u64 = p.parse().unwrap();
        m.iter().find(|v| v["pid"] == p).unwrap()
    };
    assert_eq!(by_pid(&cp)["metadata"], "role=api port=8081");
    assert_eq!(
        by_pid(&me.to_string())["metadata"],
        r#"{"role":"api","port":8080}"#
    );

    // ls: the unique entry, then the members, marked; --json says which.
    let all = json_lines(&expect(&url, &["ls", "--json"], 0).stdout);
    let rows: Vec<(&str, &str, bool)> = all
        .iter()
        .map(|v| {
            (
                v["namespace"].as_str().unwrap(),
                v["name"].as_str().unwrap(),
                v["member"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("other", "workers", true),
            ("shop", "api", false),
            ("shop", "api", true),
            ("shop", "api", true)
        ]
    );
    let ls = expect(&url, &["ls", "shop"], 0).stdout;
    let lines: Vec<&str> = ls.lines().collect();
    assert!(lines[0].contains("KIND"), "{ls}");
    let kinds: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(kinds, ["unique", "member", "member"], "{ls}");

    // select: one argument is the query over every namespace; k=v and JSON
    // metadata both match; unique entries match too.
    let hits = json_array(&expect(&url, &["select", "role=api", "--json"], 0).stdout);
    let found: Vec<(&str, String)> = hits
        .iter()
        .map(|v| (v["namespace"].as_str().unwrap(), v["pid"].to_string()))
        .collect();
    assert_eq!(found.len(), 3, "{hits:?}");
    assert!(hits.iter().all(|v| v["member"] == true), "{hits:?}");
    assert_eq!(found[0].0, "other");
    let json_meta =
        json_array(&expect(&url, &["select", "shop", "role=api port=8080", "--json"], 0).stdout);
    assert_eq!(json_meta.len(), 1, "{json_meta:?}");
    assert_eq!(json_meta[0]["pid"], me);
    let kv = json_array(&expect(&url, &["select", "shop", "port=8081", "--json"], 0).stdout);
    assert_eq!(kv.len(), 1, "{kv:?}");
    assert_eq!(kv[0]["pid"].to_string(), cp);
    // Only a unique entry matches: the table has no KIND column then.
    let front = expect(&url, &["select", "role=front"], 0).stdout;
    assert_eq!(front.lines().count(), 2, "{front}");
    assert!(
        !front.contains("KIND") && front.contains("role=front"),
        "{front}"
    );
    let none = expect(&url, &["select", "shop", "role=nobody", "--json"], 0);
    assert_eq!(none.stdout.trim(), "[]");

    // Joining twice is refused, naming the member; leave, then it is gone.
    let dup = expect(&url, &["join", "shop", "api", "--pid", &cp], ALREADY_EXISTS);
    assert!(
        dup.stderr
            .contains(&format!("pid {cp} is already a member of group \"api\"")),
        "{dup:#?}"
    );
    let out = expect(&url, &["leave", "shop", "api", "--pid", &cp], 0);
    assert!(
        out.stdout.contains(&format!("pid {cp} left shop/api")),
        "{out:#?}"
    );
    let miss = expect(&url, &["leave", "shop", "api", "--pid", &cp], NOT_FOUND);
    assert!(miss.stderr.contains("is not a member"), "{miss:#?}");
    // leave without --pid removes procreg's parent, as join added it.
    expect(&url, &["leave", "shop", "api"], 0);
    assert_eq!(
        expect(&url, &["members", "shop", "api", "--json"], 0)
            .stdout
            .trim(),
        "[]"
    );
    let empty = expect(&url, &["members", "shop", "api"], 0);
    assert!(
        empty.stdout.is_empty() && empty.stderr.contains("no members"),
        "{empty:#?}"
    );
    // The unique key of the same name is untouched.
    expect(&url, &["get", "shop", "api"], 0);
    // get of a name that is only a group says so.
    let out = expect(&url, &["get", "other", "workers"], NOT_FOUND);
    assert!(
        out.stderr.contains("is not registered") && out.stderr.contains("group of 1 member:"),
        "{out:#?}"
    );
}

#[test]
fn join_update_replaces_one_members_metadata() {
    let url = shm_url("cli-groups-update");
    let _g = SegGuard::new(&url);
    let child = Sleeper::start();
    let cp = child.pid();
    expect(
        &url,
        &["join", "g", "pool", "--pid", &cp, "--meta", "v=1"],
        0,
    );
    expect(&url, &["join", "g", "pool", "--meta", "v=1"], 0);
    let out = expect(
        &url,
        &[
            "join", "g", "pool", "--pid", &cp, "--update", "--meta", "v=2",
        ],
        0,
    );
    assert!(out.stdout.contains("updated g/pool member pid"), "{out:#?}");
    let m = json_array(&expect(&url, &["members", "g", "pool", "--json"], 0).stdout);
    let meta: Vec<(String, &str)> = m
        .iter()
        .map(|v| (v["pid"].to_string(), v["metadata"].as_str().unwrap()))
        .collect();
    assert!(meta.contains(&(cp.clone(), "v=2")), "{meta:?}");
    assert!(
        meta.contains(&(std::process::id().to_string(), "v=1")),
        "{meta:?}"
    );
    // Not a member: nothing to update.
    expect(
        &url,
        &["join", "g", "pool", "--pid", "1", "--update", "--meta", "x"],
        NOT_FOUND,
    );
}

#[test]
fn group_errors_exit_with_their_codes_and_say_what_to_do() {
    let url = shm_url("cli-groups-errors");
    let _g = SegGuard::new(&url);
    expect(&url, &["join", "ns", "ok", "--meta", "a=1"], 0);
    // A group name may be at most max_name_len - 11 bytes (117 by default).
    let long = "g".repeat(118);
    let out = expect(&url, &["join", "ns", &long], INVALID_KEY);
    assert!(
        out.stderr.contains("at most 117") && out.stderr.contains("shorter group name"),
        "{out:#?}"
    );
    expect(&url, &["join", "ns", &"g".repeat(117)], 0);
    expect(&url, &["members", "ns", &long], INVALID_KEY);
    expect(&url, &["join", "", "g"], INVALID_KEY);
    let out = expect(&url, &["join", "ns", "g", "--pid", "0"], INVALID_ARGUMENT);
    assert!(out.stderr.contains("pid 0"), "{out:#?}");
    let dead = dead_pid().to_string();
    expect(
        &url,
        &["join", "ns", "g", "--pid", &dead],
        PROCESS_NOT_ALIVE,
    );
    expect(
        &url,
        &["join", "ns", "g", "--meta", &"m".repeat(300)],
        METADATA_TOO_LARGE,
    );
    // Bad queries: the library's reason, with the command's example.
    for q in ["role", "=api", "a=1 b"] {
        let out = expect(&url, &["select", q], INVALID_ARGUMENT);
        assert!(
            out.stderr.contains("field=value") && out.stderr.contains("procreg select"),
            "{q:?}: {out:#?}"
        );
    }
    expect(&url, &["select", "ns", "   "], INVALID_ARGUMENT);
    // Two unquoted terms read as NS QUERY: caught, since there is no such namespace.
    let out = expect(&url, &["select", "a=1", "b=2"], USAGE);
    assert!(out.stderr.contains("as one argument"), "{out:#?}");
    // The query matched against the `ok` member still works with a namespace.
    let hit = json_array(&expect(&url, &["select", "ns", "a=1", "--json"], 0).stdout);
    assert_eq!(hit.len(), 1);
}

#[test]
fn members_wait_returns_once_the_group_has_n_live_members_or_exits_16() {
    let url = shm_url("cli-groups-wait");
    let _g = SegGuard::new(&url);
    // The registry does not exist yet: --wait waits for it too.
    let mut waiter = Running::start(command(
        &url,
        &[
            "members",
            "w",
            "pool",
            "--wait",
            "2",
            "--timeout",
            "30s",
            "--json",
        ],
    ));
    let child = Sleeper::start();
    expect(&url, &["join", "w", "pool", "--pid", &child.pid()], 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        waiter.child.try_wait().unwrap().is_none(),
        "one member of two: still waiting"
    );
    expect(&url, &["join", "w", "pool", "--meta", "second"], 0);
    let m = json_array(&Running::next_line(&waiter.stdout, "members"));
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(m.iter().all(|v| v["status"] == "alive"), "{m:?}");
    assert_eq!(exit_code_of(&mut waiter), 0);
    // Not enough live members in time: exit 16, saying how many there are.
    let t = Instant::now();
    let out = expect(
        &url,
        &["members", "w", "pool", "--wait", "3", "--timeout", "300ms"],
        TIMEOUT_CODE,
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(
        out.stderr.contains("waited 300ms") && out.stderr.contains("(it has 2)"),
        "{out:#?}"
    );
    let out = run(&url, &["members", "w", "pool", "--timeout", "1s"]);
    assert_eq!(out.code, USAGE, "--timeout needs --wait: {out:#?}");
}

#[test]
fn join_into_a_full_registry_exits_10() {
    let url = shm_url("cli-groups-full");
    let _g = SegGuard::new(&url);
    expect(&url, &["put", "f", "k0", "--capacity", "16"], 0);
    for i in 1..16 {
        expect(&url, &["put", "f", &format!("k{i}")], 0);
    }
    let out = expect(&url, &["join", "f", "pool"], FULL);
    assert!(out.stderr.contains("registry is full"), "{out:#?}");
}

#[test]
fn dead_member_shows_dead_until_sweep_reclaims_it() {
    let url = shm_url("cli-groups-dead");
    let _g = SegGuard::new(&url);
    let mut child = Sleeper::start();
    let cp = child.pid();
    expect(
        &url,
        &["join", "d", "pool", "--pid", &cp, "--meta", "w=1"],
        0,
    );
    expect(&url, &["join", "d", "pool", "--meta", "w=2"], 0);
    child.kill();
    let m = json_array(&expect(&url, &["members", "d", "pool", "--json"], 0).stdout);
    let status: Vec<(String, &str)> = m
        .iter()
        .map(|v| (v["pid"].to_string(), v["status"].as_str().unwrap()))
        .collect();
    assert!(status.contains(&(cp.clone(), "dead")), "{status:?}");
    assert!(
        status.contains(&(std::process::id().to_string(), "alive")),
        "{status:?}"
    );
    let ls = json_lines(&expect(&url, &["ls", "d", "--json"], 0).stdout);
    assert!(
        ls.iter().any(|v| v["pid"] == cp.parse::<u64>().unwrap()
            && v["status"] == "dead"
            && v["member"] == true),
        "{ls:?}"
    );
    // Listing changed nothing; sweep reclaims the dead member and names it.
    assert_eq!(
        json_array(&expect(&url, &["members", "d", "pool", "--json"], 0).stdout).len(),
        2
    );
    let out = expect(&url, &["sweep"], 0);
    assert!(out.stdout.contains("reclaimed 1 "), "{out:#?}");
    assert!(
        out.stdout.contains(&format!("d/pool member pid {cp}")),
        "{out:#?}"
    );
    let left = json_array(&expect(&url, &["members", "d", "pool", "--json"], 0).stdout);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["pid"], std::process::id());
}

#[test]
fn watch_marks_member_events_in_json_and_text() {
    let url = shm_url("cli-groups-watch");
    let _g = SegGuard::new(&url);
    expect(&url, &["put", "wg", "api"], 0);
    let json = Running::start(command(&url, &["watch", "wg", "--json"]));
    Running::next_line(&json.stderr, "watch banner");
    let text = Running::start(command(&url, &["watch", "wg"]));
    Running::next_line(&text.stderr, "watch banner");
    let child = Sleeper::start();
    let cp = child.pid();
    expect(
        &url,
        &["join", "wg", "api", "--pid", &cp, "--meta", "m=1"],
        0,
    );
    let v: Value = serde_json::from_str(&Running::next_line(&json.stdout, "join")).unwrap();
    assert_eq!(
        (
            v["event"].as_str(),
            v["name"].as_str(),
            v["member"].as_bool()
        ),
        (Some("registered"), Some("api"), Some(true)),
        "{v}"
    );
    assert_eq!(v["pid"].to_string(), cp);
    assert_eq!(v["metadata"], "m=1");
    let line = text.stdout_line_with("registered");
    assert!(
        line.contains(&format!("wg/api member pid {cp}")) && line.contains("meta m=1"),
        "{line}"
    );
    // A leave is the member's removal; the unique key of the same name stays.
    expect(&url, &["leave", "wg", "api", "--pid", &cp], 0);
    let v: Value = serde_json::from_str(&Running::next_line(&json.stdout, "leave")).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["member"].as_bool()),
        (Some("unregistered"), Some(true)),
        "{v}"
    );
    assert_eq!(
        v["metadata"], "m=1",
        "the removed member, as it was seen: {v}"
    );
    let line = text.stdout_line_with("unregistered");
    assert!(line.contains("member pid"), "{line}");
    expect(&url, &["rm", "wg", "api"], 0);
    let v: Value = serde_json::from_str(&Running::next_line(&json.stdout, "rm")).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["member"].as_bool()),
        (Some("unregistered"), Some(false)),
        "{v}"
    );
}

#[test]
fn join_hold_leaves_when_the_member_exits_and_ignores_a_unique_key_of_that_name() {
    let url = shm_url("cli-groups-hold");
    let _g = SegGuard::new(&url);
    let mut owner = Sleeper::start();
    let pid = owner.pid();
    let mut holder = Running::start(command(
        &url,
        &["join", "h", "svc", "--pid", &pid, "--hold", "--meta", "m"],
    ));
    let line = holder.stdout_line_with("joined");
    assert!(line.contains(&format!("pid {pid} joined h/svc")), "{line}");
    let note = Running::next_line(&holder.stderr, "hold note");
    assert!(note.contains("procreg leave"), "{note}");
    // A unique key named like the group, of the same owner, comes and goes:
    // the hold goes on.
    expect(&url, &["put", "h", "svc", "--pid", &pid], 0);
    expect(&url, &["rm", "h", "svc"], 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(holder.child.try_wait().unwrap().is_none(), "still holding");
    owner.kill();
    let line = holder.stdout_line_with("exited");
    assert_eq!(line, format!("pid {pid} exited; left h/svc"));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(s) = holder.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "join --hold did not exit");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        expect(&url, &["members", "h", "svc", "--json"], 0)
            .stdout
            .trim(),
        "[]"
    );

    // And the other way round: `put --hold` outlives a member of its owner
    // joining and leaving a group of its name.
    let owner = Sleeper::start();
    let pid = owner.pid();
    let mut holder = Running::start(command(&url, &["put", "h", "svc", "--pid", &pid, "--hold"]));
    holder.stdout_line_with("registered");
    expect(&url, &["join", "h", "svc", "--pid", &pid], 0);
    expect(&url, &["leave", "h", "svc", "--pid", &pid], 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(holder.child.try_wait().unwrap().is_none(), "still holding");
    expect(&url, &["get", "h", "svc"], 0);
}

#[test]
fn ls_fits_the_width_with_the_members_of_a_group() {
    let url = shm_url("cli-groups-fit");
    let _g = SegGuard::new(&url);
    let group = format!("{}-pool", "a-rather-long-group-name".repeat(2));
    let kids: Vec<Sleeper> = (0..3).map(|_| Sleeper::start()).collect();
    for k in &kids {
        expect(
            &url,
            &[
                "join",
                "fit",
                &group,
                "--pid",
                &k.pid(),
                "--meta",
                &"m".repeat(80),
            ],
            0,
        );
    }
    expect(&url, &["put", "fit", "other-name", "--meta", "x"], 0);
    let lines = ls_in_columns(&url, 70, &[]);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let widest = lines.iter().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= 70, "{widest} > 70: {lines:#?}");
    let members: Vec<&String> = lines.iter().filter(|l| l.contains(" member ")).collect();
    assert_eq!(members.len(), 3, "{lines:#?}");
    for l in &members {
        assert!(
            l.contains('…') && !l.contains(&group),
            "group name cut: {l}"
        );
    }
    let wide = ls_in_columns(&url, 70, &["--wide"]).join("\n");
    assert_eq!(wide.matches(&group).count(), 3, "{wide}");
    assert!(!wide.contains('…'), "{wide}");
    // members fits too, cutting only the metadata.
    let mut c = command(&url, &["members", "fit", &group]);
    c.env("COLUMNS", "50");
    let out = run_cmd(c);
    assert_eq!(out.code, 0, "{out:#?}");
    for l in out.stdout.lines().skip(1) {
        assert!(l.chars().count() <= 50 && l.ends_with('…'), "{l}");
    }
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

// ---- ls layout -------------------------------------------------------------------

/// `ls` with `COLUMNS` set (as a shell does for a terminal).
fn ls_in_columns(url: &str, columns: usize, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["ls"];
    args.extend_from_slice(extra);
    let mut c = command(url, &args);
    c.env("COLUMNS", columns.to_string());
    let out = run_cmd(c);
    assert_eq!(out.code, 0, "{out:#?}");
    out.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn ls_sorts_names_naturally() {
    let url = shm_url("cli-ls-natural");
    let _g = SegGuard::new(&url);
    for n in ["w140", "w15", "w2", "w14", "a"] {
        expect(&url, &["put", "n", n], 0);
    }
    let names: Vec<String> = expect(&url, &["ls"], 0)
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(names, ["a", "w2", "w14", "w15", "w140"]);
    let json: Vec<String> = json_lines(&expect(&url, &["ls", "--json"], 0).stdout)
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(json, names, "--json lists in the same order");
}

#[test]
fn ls_fits_the_width_without_making_two_keys_look_alike() {
    let url = shm_url("cli-ls-fit");
    let _g = SegGuard::new(&url);
    // Three keys of 50+ characters that differ only after the 32nd (the old
    // fixed cut made them print identically).
    let stem = "service-with-a-rather-long-common-prefix-";
    let mut keys = vec![
        format!("{stem}alpha-1"),
        format!("{stem}alpha-2"),
        format!("{stem}beta-10"),
    ];
    for k in &keys {
        expect(&url, &["put", "fit", k, "--meta", &"m".repeat(80)], 0);
    }
    let names_of = |lines: &[String]| -> std::collections::HashSet<String> {
        lines[1..]
            .iter()
            .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
            .collect()
    };
    for columns in [60, 80, 100] {
        let lines = ls_in_columns(&url, columns, &[]);
        assert_eq!(lines.len(), keys.len() + 1, "{lines:#?}");
        assert_eq!(
            names_of(&lines).len(),
            keys.len(),
            "distinct at {columns}: {lines:#?}"
        );
        for l in &lines[1..] {
            assert!(l.contains('…'), "cut at {columns}: {l}");
            assert!(l.ends_with('…'), "metadata cut at its end: {l}");
        }
        let widest = lines.iter().map(|l| l.chars().count()).max().unwrap();
        assert!(widest <= columns, "{widest} > {columns}: {lines:#?}");
    }
    // Keys that differ only in their middle stay distinct: their column
    // widens past the terminal rather than show two equal keys.
    for m in ["A", "B"] {
        let k = format!("pre-{}-mid-{m}-{}", "x".repeat(30), "y".repeat(20));
        expect(&url, &["put", "fit", &k], 0);
        keys.push(k);
    }
    let lines = ls_in_columns(&url, 60, &[]);
    assert_eq!(names_of(&lines).len(), keys.len(), "{lines:#?}");
    // --wide, and a pipe without COLUMNS: every byte.
    for out in [
        ls_in_columns(&url, 60, &["--wide"]).join("\n"),
        expect(&url, &["ls"], 0).stdout,
    ] {
        assert!(!out.contains('…'), "{out}");
        for k in &keys {
            assert!(out.contains(k.as_str()), "{k} in {out}");
        }
    }
}

#[test]
fn ls_on_a_terminal_takes_the_terminals_width() {
    let url = shm_url("cli-ls-tty");
    let _g = SegGuard::new(&url);
    let name = format!("a-long-name-{}", "x".repeat(80));
    expect(&url, &["put", "n", &name, "--meta", &"m".repeat(80)], 0);
    // `script` runs the command on a pseudo-terminal of 70 columns.
    let out = Command::new("script")
        .env_remove("COLUMNS")
        .env_remove("PROCREG_URL")
        .args(["-qec"])
        .arg(format!("stty rows 24 cols 70; {BIN} --registry {url} ls"))
        .arg("/dev/null")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs a command on a pseudo-terminal");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap().replace('\r', "");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].contains("a-long-n") && lines[1].contains('…'),
        "{text}"
    );
    for l in &lines {
        assert!(l.chars().count() <= 70, "{l}");
    }
}

// ---- leases ------------------------------------------------------------------------

#[test]
fn ls_and_get_show_the_lease_of_an_entry_that_has_one() {
    let url = shm_url("cli-lease-show");
    let _g = SegGuard::new(&url);
    expect(&url, &["put", "l", "leased", "--ttl", "60s"], 0);
    expect(&url, &["put", "l", "plain"], 0);
    let table = expect(&url, &["ls"], 0).stdout;
    let header = table.lines().next().unwrap();
    assert!(header.contains("LEASE"), "{table}");
    let leased = table.lines().find(|l| l.contains("leased")).unwrap();
    assert!(leased.contains("/1m00s"), "time left of the ttl: {leased}");
    let plain = table.lines().find(|l| l.contains("plain")).unwrap();
    assert_eq!(plain.split_whitespace().nth(5), Some("-"), "{plain}");

    let v = json_lines(&expect(&url, &["ls", "--json"], 0).stdout);
    assert_eq!(v[0]["name"], "leased");
    assert_eq!(v[0]["lease"]["ttl_ms"], 60_000);
    let left = v[0]["lease"]["remaining_ms"].as_u64().unwrap();
    assert!(left > 0 && left <= 60_000, "{}", v[0]);
    assert_eq!(v[0]["lease"]["expired"], false);
    assert!(v[1]["lease"].is_null(), "{}", v[1]);

    let text = expect(&url, &["get", "l", "leased"], 0).stdout;
    assert!(
        text.contains("\nlease       ") && text.contains("/1m00s"),
        "{text}"
    );
    let text = expect(&url, &["get", "l", "plain"], 0).stdout;
    assert!(!text.contains("lease"), "{text}");
    let v: Value =
        serde_json::from_str(&expect(&url, &["get", "l", "leased", "--json"], 0).stdout).unwrap();
    assert_eq!(v["lease"]["ttl_ms"], 60_000);

    // Without leased entries there is no LEASE column.
    expect(&url, &["rm", "l", "leased"], 0);
    assert!(!expect(&url, &["ls"], 0).stdout.contains("LEASE"));
}

// ---- watch --json ---------------------------------------------------------------------

#[test]
fn watch_json_removals_carry_the_removed_entrys_registration_time_and_expiry_is_expired() {
    let url = shm_url("cli-watch-removal");
    let _g = SegGuard::new(&url);
    // Registered before the watcher starts: known from its first snapshot.
    expect(&url, &["put", "wr", "early", "--meta", "e"], 0);
    let early = Registry::builder()
        .open(&url)
        .unwrap()
        .lookup("wr", "early")
        .unwrap()
        .unwrap();
    let early_ms = early
        .registered_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let watcher = Running::start(command(&url, &["watch", "wr", "--json"]));
    Running::next_line(&watcher.stderr, "watch banner");
    std::thread::sleep(Duration::from_millis(30));
    expect(&url, &["rm", "wr", "early"], 0);
    let v: Value = serde_json::from_str(&watcher.stdout_line_with("\"early\"")).unwrap();
    assert_eq!(v["event"], "unregistered");
    assert_eq!(v["registered_at_ms"], early_ms, "the entry's own time: {v}");
    assert!(v["at_ms"].as_u64().unwrap() >= early_ms + 30, "{v}");
    assert_eq!(v["metadata"], "e");

    // Registered and removed while watching, through a lease that runs out.
    expect(&url, &["put", "wr", "leased", "--ttl", "100ms"], 0);
    let reg: Value = serde_json::from_str(&watcher.stdout_line_with("\"leased\"")).unwrap();
    assert_eq!(reg["event"], "registered");
    std::thread::sleep(Duration::from_millis(200));
    expect(&url, &["sweep"], 0);
    let v: Value = serde_json::from_str(&watcher.stdout_line_with("\"leased\"")).unwrap();
    assert_eq!(v["event"], "expired", "{v}");
    assert!(
        v.get("kind").is_none_or(|k| k == &v["event"]),
        "one word for the event: {v}"
    );
    assert_eq!(v["registered_at_ms"], reg["registered_at_ms"], "{v}");
    assert!(v["at_ms"].as_u64() > reg["at_ms"].as_u64(), "{v}");
}

#[test]
fn watch_help_uses_the_librarys_event_words() {
    let out = run_cmd({
        let mut c = Command::new(BIN);
        c.args(["watch", "--help"]);
        c
    });
    for word in [
        "registered",
        "updated",
        "unregistered",
        "reclaimed",
        "expired",
        "lost",
    ] {
        assert!(out.stdout.contains(word), "{word}: {}", out.stdout);
    }
    assert!(!out.stdout.contains("gone"), "{}", out.stdout);
}

// ---- group-shared registries ----------------------------------------------------------

#[test]
fn a_registry_owned_by_another_user_needs_allow_foreign_owner() {
    let url = shm_url("cli-foreign");
    let _g = SegGuard::new(&url);
    expect(&url, &["put", "g", "svc", "--mode", "660"], 0);
    let path = format!("/dev/shm/procreg.{}", url.strip_prefix("shm:").unwrap());
    // Hand the file to another user, as a group member would find it.
    if let Err(e) = std::os::unix::fs::chown(&path, Some(65534), None) {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root; chown failed: {e}"
        );
        eprintln!("skipped: chown needs root ({e})");
        return;
    }
    let out = expect(&url, &["ls"], 13);
    assert!(
        out.stderr.contains("--allow-foreign-owner"),
        "the refusal names the CLI option: {out:#?}"
    );
    let out = expect(&url, &["--allow-foreign-owner", "ls", "--json"], 0);
    assert_eq!(json_lines(&out.stdout)[0]["name"], "svc");
    expect(&url, &["put", "g", "other", "--allow-foreign-owner"], 0);
    expect(&url, &["get", "g", "other", "--allow-foreign-owner"], 0);
    std::os::unix::fs::chown(&path, Some(0), None).unwrap();
}

// ---- segment size bound -------------------------------------------------------------

#[test]
fn put_refuses_a_segment_over_the_size_bound_and_the_bound_can_be_raised() {
    let url = shm_url("cli-bound");
    let mut g = SegGuard::new(&url);
    g.must_destroy = false;
    // 1 MiB of metadata per slot: an 8 GiB segment.
    let out = expect(
        &url,
        &["put", "b", "svc", "--max-metadata-len", "1048576"],
        INVALID_ARGUMENT,
    );
    assert!(
        out.stderr.contains("8.0 GiB") && out.stderr.contains("--max-segment-size"),
        "{out:#?}"
    );
    assert!(!exists(&url), "nothing reserved");
    // The default segment (4.1 MiB) under a 1 MiB bound, then a 5 MiB one.
    let out = expect(
        &url,
        &["put", "b", "svc", "--max-segment-size", "1MiB"],
        INVALID_ARGUMENT,
    );
    assert!(out.stderr.contains("4.1 MiB"), "{out:#?}");
    assert!(!exists(&url));
    expect(&url, &["put", "b", "svc", "--max-segment-size", "5MiB"], 0);
    assert!(exists(&url));
    g.must_destroy = true;
    let out = run(&url, &["put", "b", "x", "--max-segment-size", "lots"]);
    assert_eq!(out.code, USAGE, "{out:#?}");
}

// ---- registries ------------------------------------------------------------------------

#[test]
fn registries_lists_segments_with_size_entries_and_creator() {
    let url = shm_url("cli-registries");
    let _g = SegGuard::new(&url);
    expect(&url, &["put", "r", "one"], 0);
    expect(&url, &["put", "r", "two"], 0);
    let v = json_lines(&expect(&url, &["registries", "--json"], 0).stdout);
    let mine = v
        .iter()
        .find(|s| s["url"] == url.as_str())
        .unwrap_or_else(|| panic!("{url} in {v:#?}"));
    assert_eq!(mine["state"], "ready");
    assert_eq!(mine["live"], 2);
    assert_eq!(mine["capacity"], 4096);
    assert_eq!(mine["bytes"], 4_272_256);
    assert!(mine["creator_pid"].as_u64().unwrap() > 0);
    assert!(mine["creator_uid"].is_u64());
    let text = expect(&url, &["registries"], 0).stdout;
    assert!(text.starts_with("URL"), "{text}");
    let line = text.lines().find(|l| l.starts_with(&url)).unwrap();
    assert!(
        line.contains("4.1 MiB") && line.contains("2/4,096") && line.contains("ready"),
        "{line}"
    );
}

/// A pid that ran and is gone.
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[test]
fn registries_gc_removes_files_of_dead_creators_only() {
    let tag = format!("t-cli-gc-{}", std::process::id());
    let stale = format!("/dev/shm/procreg.{tag}.creating.{}.1", dead_pid());
    let young = format!("/dev/shm/procreg.{tag}-young.creating.{}.1", dead_pid());
    let live = format!(
        "/dev/shm/procreg.{tag}-live.creating.{}.1",
        std::process::id()
    );
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    for p in [&stale, &young, &live] {
        let f = std::fs::File::create(p).unwrap();
        if p != &young {
            f.set_modified(old).unwrap();
        }
    }
    let listed = json_lines(&expect("shm:unused", &["registries", "--json"], 0).stdout);
    let state = |path: &str| {
        listed
            .iter()
            .find(|v| v["path"] == path)
            .map(|v| v["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state(&stale).as_deref(), Some("stale"));
    assert_eq!(state(&live).as_deref(), Some("creating"));

    let out = expect("shm:unused", &["registries", "--gc"], 0);
    let exists = |p: &str| std::path::Path::new(p).exists();
    let (s, y, l) = (exists(&stale), exists(&young), exists(&live));
    for p in [&stale, &young, &live] {
        let _ = std::fs::remove_file(p);
    }
    assert!(out.stdout.contains(&format!("removed {stale}")), "{out:#?}");
    assert!(!s, "a dead creator's old file is removed");
    assert!(y, "a file younger than --min-age is kept");
    assert!(l, "a running creator's file is never removed");
}

// ---- completions, man page, prometheus ---------------------------------------------

#[test]
fn completions_are_valid_shell_and_know_every_subcommand() {
    let out = expect("shm:unused", &["completions", "bash"], 0);
    for sub in [
        "registries",
        "completions",
        "health",
        "--allow-foreign-owner",
        "join",
        "leave",
        "members",
        "select",
    ] {
        assert!(out.stdout.contains(sub), "{sub}");
    }
    let script = std::env::temp_dir().join(format!("procreg-compl-{}.bash", std::process::id()));
    std::fs::write(&script, &out.stdout).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&script);
    assert!(check.status.success(), "bash -n: {check:?}");
    let zsh = expect("shm:unused", &["completions", "zsh"], 0).stdout;
    assert!(zsh.starts_with("#compdef procreg"), "{zsh}");
    assert_eq!(run("shm:unused", &["completions", "tcsh"]).code, USAGE);
}

#[test]
fn man_prints_a_roff_page_with_the_commands() {
    let page = expect("shm:unused", &["man"], 0).stdout;
    assert!(page.contains(".TH procreg 1"), "{page}");
    for needle in [
        "registries",
        "health",
        "allow\\-foreign\\-owner",
        "Exit codes",
    ] {
        assert!(page.contains(needle), "{needle} in the page");
    }
    // Each subcommand the page refers to (procreg-ls(1)) has its own.
    let ls = expect("shm:unused", &["man", "ls"], 0).stdout;
    assert!(ls.contains(".TH procreg-ls 1"), "{ls}");
    assert!(ls.contains("\\-\\-wide"), "{ls}");
    let join = expect("shm:unused", &["man", "join"], 0).stdout;
    assert!(join.contains(".TH procreg-join 1"), "{join}");
    assert!(join.contains("\\-\\-hold"), "{join}");
    assert!(
        page.contains("procreg\\-select"),
        "select in SEE ALSO: {page}"
    );
    expect("shm:unused", &["man", "frobnicate"], USAGE);
}

/// One sample of the Prometheus text format: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// A strict reader of the Prometheus text exposition format (0.0.4): every
/// sample's metric has `# HELP` and `# TYPE` before it, names and label
/// names are valid, label values are quoted and escaped, values are numbers.
fn parse_prometheus(text: &str) -> (Vec<Sample>, Vec<(String, String)>) {
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let (mut helped, mut types, mut samples) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            helped.push(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            assert_eq!(
                helped.last().map(String::as_str),
                Some(name),
                "HELP first: {line}"
            );
            types.push((name.to_owned(), kind.to_owned()));
        } else {
            let open = line.find('{').expect("labels");
            let close = line.rfind('}').expect("labels end");
            let name = &line[..open];
            assert!(valid_name(name), "{line}");
            assert_eq!(
                types.last().map(|(n, _)| n.as_str()),
                Some(name),
                "TYPE before the sample: {line}"
            );
            let mut labels = Vec::new();
            let mut rest = &line[open + 1..close];
            while !rest.is_empty() {
                let (lname, after) = rest.split_once("=\"").expect("label=\"value\"");
                assert!(valid_name(lname), "{line}");
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next().expect("closing quote") {
                        (_, '\\') => match chars.next().expect("escape").1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            c => panic!("bad escape \\{c} in {line}"),
                        },
                        (i, '"') => break i,
                        (_, c) => value.push(c),
                    }
                };
                labels.push((lname.to_owned(), value));
                rest = after[end + 1..]
                    .strip_prefix(',')
                    .unwrap_or(&after[end + 1..]);
            }
            let value: f64 = line[close + 1..].trim().parse().expect("numeric value");
            samples.push((name.to_owned(), labels, value));
        }
    }
    (samples, types)
}

#[test]
fn stats_prometheus_is_the_text_exposition_format_with_the_registrys_figures() {
    let url = shm_url("cli-prom");
    let _g = SegGuard::new(&url);
    expect(&url, &["put", "p", "a"], 0);
    expect(&url, &["put", "p", "b"], 0);
    expect(&url, &["rm", "p", "b"], 0);
    let out = expect(&url, &["stats", "--prometheus"], 0);
    let (samples, types) = parse_prometheus(&out.stdout);
    let value = |name: &str| {
        samples
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("{name} in {}", out.stdout))
            .2
    };
    assert_eq!(value("procreg_entries"), 1.0);
    assert_eq!(value("procreg_capacity"), 4096.0);
    assert_eq!(value("procreg_registers_total"), 2.0);
    assert_eq!(value("procreg_unregisters_total"), 1.0);
    assert_eq!(value("procreg_changes_total"), 3.0);
    assert_eq!(value("procreg_segment_bytes"), 4_272_256.0);
    assert!((value("procreg_load_factor") - 1.0 / 4096.0).abs() < 1e-12);
    for (name, labels, _) in &samples {
        assert!(name.starts_with("procreg_"), "{name}");
        assert!(
            labels.contains(&("registry".to_owned(), url.clone()))
                && labels.contains(&("backend".to_owned(), "shm".to_owned())),
            "{name} {labels:?}"
        );
    }
    for (name, kind) in &types {
        assert_eq!(name.ends_with("_total"), kind == "counter", "{name} {kind}");
    }
    assert_eq!(run(&url, &["stats", "--prometheus", "--json"]).code, USAGE);
}

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
    // etcd has no segment file another user could own.
    let out = expect(url, &["--allow-foreign-owner", "ls"], USAGE);
    assert!(out.stderr.contains("no file"), "{out:#?}");
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
    // Its own lease, by id (etcd keeps the ttl with the lease, not the entry).
    let id = v["lease"]["id"].as_str().expect("an etcd lease id");
    assert!(i64::from_str_radix(id, 16).unwrap() > 0, "{v}");
    let table = expect(url, &["ls"], 0).stdout;
    assert!(
        table.contains("LEASE") && table.contains(&format!("etcd {id}")),
        "{table}"
    );
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

    // A dead owner on this host: health reports it (exit 17 with --strict),
    // sweep reclaims it.
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
    let out = expect(url, &["health"], 0);
    assert!(out.stdout.contains("1 dead"), "{out:#?}");
    let out = run(url, &["health", "--strict"]);
    assert_eq!(out.code, UNHEALTHY, "{out:#?}");
    assert!(out.stdout.contains("1 dead"), "{out:#?}");
    assert!(out.stdout.contains("`procreg sweep`"), "{out:#?}");
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

#[cfg(feature = "etcd")]
#[test]
fn etcd_join_needs_hold_and_the_held_member_is_listed_until_its_owner_exits() {
    let p = EtcdPrefix::new("join");
    let url = p.url.as_str();
    let mut owner = Sleeper::start();
    let pid = owner.pid();
    // A plain join would die with procreg's own session: refused, nothing written.
    let out = expect(url, &["join", "svc", "pool", "--pid", &pid], USAGE);
    assert!(out.stderr.contains("--hold"), "{out:#?}");
    let out = expect(
        url,
        &["join", "svc", "pool", "--hold", "--capacity", "64"],
        USAGE,
    );
    assert!(out.stderr.contains("no capacity"), "{out:#?}");
    let out = expect(
        url,
        &["join", "svc", "pool", "--update", "--meta", "x"],
        USAGE,
    );
    assert!(
        out.stderr.contains("only the handle that joined"),
        "{out:#?}"
    );
    assert_eq!(
        expect(url, &["members", "svc", "pool", "--json"], 0)
            .stdout
            .trim(),
        "[]"
    );

    let mut holder = Running::start(command(
        url,
        &[
            "join", "svc", "pool", "--pid", &pid, "--hold", "--meta", "role=api",
        ],
    ));
    let line = holder.stdout_line_with("joined");
    assert!(
        line.contains(&format!("pid {pid} joined svc/pool")),
        "{line}"
    );
    // Past the session ttl (3 s) the member is still there: the holder renews it.
    std::thread::sleep(Duration::from_millis(3500));
    let m = json_array(&expect(url, &["members", "svc", "pool", "--json"], 0).stdout);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["pid"].to_string(), pid);
    assert_eq!(m[0]["member"], true);
    assert_eq!(m[0]["status"], "alive", "an owner on this host: {m:?}");
    let ls = json_lines(&expect(url, &["ls", "--json"], 0).stdout);
    assert!(ls.iter().any(|v| v["member"] == true), "{ls:?}");
    let hits = json_array(&expect(url, &["select", "role=api", "--json"], 0).stdout);
    assert_eq!(hits.len(), 1, "{hits:?}");
    owner.kill();
    let line = holder.stdout_line_with("exited");
    assert_eq!(line, format!("pid {pid} exited; left svc/pool"));
    assert_eq!(exit_code_of(&mut holder), 0);
    assert_eq!(
        expect(url, &["members", "svc", "pool", "--json"], 0)
            .stdout
            .trim(),
        "[]"
    );
}
