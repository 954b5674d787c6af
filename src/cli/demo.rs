//! `procreg demo`: a tour with real processes on a fresh private segment.
//!
//! The demo re-executes this binary as 4 workers (`procreg __worker N URL`)
//! that register services and then block reading stdin; when the pipe closes
//! they unregister and exit. A janitor (`procreg __janitor URL`), in its own
//! process group so that Ctrl-C does not reach it, destroys the segment when
//! the demo process dies in any way (its stdin pipe closes), so no segment is
//! left in /dev/shm even after Ctrl-C or SIGKILL. On a normal end, an error
//! or a panic the demo destroys the segment itself.

use super::commands::{Judge, Seen, event_line};
use super::error::{CliError, CliResult};
use super::fmt::Row;
use super::fmt::{Columns, entry_header, entry_row, escape, table, thousands};
use super::layout::{fit, terminal_width};
use crate::outln;
use procreg::{Error, EventKind, Registry};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const NAMESPACE: &str = "demo";
const WORKERS: usize = 4;
/// The services each worker registers: (name prefix, role, base port).
const SERVICES: [(&str, &str, u32); 3] = [
    ("api", "api", 8080),
    ("cache", "cache", 6379),
    ("metrics", "metrics", 9100),
];
/// Which worker gets SIGKILLed.
const VICTIM: usize = 2;
/// How long the lookup measurement runs.
const BENCH_TIME: Duration = Duration::from_millis(1000);
/// How long any wait for workers may take before the demo gives up.
const PATIENCE: Duration = Duration::from_secs(5);
/// Time between worker starts.
const SPAWN_GAP: Duration = Duration::from_millis(150);
/// A pause after each step, so the tour can be followed as it runs.
const PACE: Duration = Duration::from_millis(250);

fn service_name(prefix: &str, n: usize) -> String {
    format!("{prefix}-{n}")
}

fn failed(msg: impl Into<String>) -> CliError {
    CliError::Failed(format!("demo: {}", msg.into()))
}

// ---- helper processes ------------------------------------------------------

/// `procreg __worker N URL`: registers this process's services, prints one
/// line, and unregisters them when stdin closes.
pub fn worker(n: usize, url: &str) -> CliResult {
    // Open only: the demo created the segment; never create a stray one.
    let reg = Registry::builder().open(url)?;
    let me = std::process::id();
    let mut names = Vec::new();
    for (prefix, role, port) in SERVICES {
        let name = service_name(prefix, n);
        let meta = format!("role={role} port={} worker={n}", port + n as u32);
        reg.register_self(NAMESPACE, &name, meta.as_bytes())?;
        names.push(name);
    }
    let mut out = std::io::stdout().lock();
    outln!(
        out,
        "worker {n}  pid {me:<7}  registered {}",
        names
            .iter()
            .map(|s| format!("{NAMESPACE}/{s}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    out.flush().map_err(CliError::Stdout)?;
    drop(out);
    // Sleep until the demo closes our stdin (or dies, which closes it too).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    for name in &names {
        reg.unregister_if_owner(NAMESPACE, name, me)?;
    }
    Ok(())
}

/// `procreg __janitor URL`: waits for stdin to close, then destroys the segment
/// (a segment the demo already destroyed is fine).
pub fn janitor(url: &str) -> CliResult {
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    match Registry::destroy(url) {
        Ok(()) | Err(Error::NoSuchRegistry(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

// ---- guards ----------------------------------------------------------------

/// Destroys the segment when dropped: at the end, on error and on panic.
struct SegmentGuard {
    url: String,
}

impl Drop for SegmentGuard {
    fn drop(&mut self) {
        match Registry::destroy(&self.url) {
            Ok(()) | Err(Error::NoSuchRegistry(_)) => {}
            Err(e) => eprintln!("procreg: demo: could not destroy {}: {e}", self.url),
        }
    }
}

/// The janitor process; dropping closes its stdin and reaps it.
struct Janitor(Child);

impl Drop for Janitor {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

struct Worker {
    n: usize,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

/// Kills and reaps every worker still running when dropped.
struct Workers(Vec<Worker>);

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &mut self.0 {
            if let Ok(None) = w.child.try_wait() {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
        }
    }
}

// ---- output ----------------------------------------------------------------

fn section(out: &mut impl Write, title: &str) -> CliResult {
    outln!(out)?;
    outln!(out, "== {title}")
}

/// Flushes what the step printed and lets the reader catch up.
fn pause(out: &mut impl Write) -> CliResult {
    out.flush().map_err(CliError::Stdout)?;
    std::thread::sleep(PACE);
    Ok(())
}

fn meta(e: &procreg::Entry) -> String {
    escape(&e.metadata)
}

/// The registry as `procreg ls` prints it (STATUS from a checked lookup).
fn show_registry(reg: &Registry, out: &mut impl Write) -> CliResult {
    let mut judge = Judge::new(reg)?;
    let mut rows = Vec::new();
    for e in reg.list_all()? {
        let e = Row::from(e);
        rows.push(entry_row(
            &e,
            &judge.status(reg, &e)?.to_string(),
            Columns::default(),
        ));
    }
    let header = entry_header(Columns::default());
    // The table is indented by 3 columns.
    fit(
        &header,
        &mut rows,
        terminal_width(false).map(|w| w.saturating_sub(3)),
    );
    for line in table(&header, &rows, "   ") {
        outln!(out, "{line}")?;
    }
    Ok(())
}

/// Prints the changes the registry's watcher reports, stamped with the time
/// since `t0`: sleeps (on the registry's futex) up to `wait` for the first,
/// then takes whatever else is already there.
fn show_events(
    reg: &Registry,
    watcher: &mut procreg::Watcher,
    wait: Duration,
    t0: Instant,
    out: &mut impl Write,
) -> CliResult<Vec<(EventKind, Row)>> {
    let mut events = Vec::new();
    let mut timeout = wait;
    let mut seen = Seen::new(reg, None)?;
    loop {
        match watcher.next(timeout) {
            Ok(e) => {
                let at = t0.elapsed().as_secs_f64() * 1e3;
                let (entry, registered) = seen.entry(reg, &e);
                outln!(
                    out,
                    "   +{at:7.1} ms  {}",
                    event_line(&e, &entry, registered, false)
                )?;
                events.push((e.kind, entry));
            }
            Err(procreg::Error::Timeout { .. }) => break,
            Err(procreg::Error::Lagged { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        timeout = Duration::ZERO;
    }
    out.flush().map_err(CliError::Stdout)?;
    Ok(events)
}

// ---- the tour --------------------------------------------------------------

/// `procreg demo`.
pub fn run(out: &mut impl Write) -> CliResult {
    let t0 = Instant::now();
    let url = format!("shm:procreg-demo-{}", std::process::id());
    // A leftover of an earlier run with the same pid would make create fail.
    let _ = Registry::destroy(&url);
    let reg = Registry::builder().create(&url)?;
    let _segment = SegmentGuard { url: url.clone() };
    let exe = std::env::current_exe()
        .map_err(|e| CliError::io("cannot find this program to re-execute it", e))?;
    let _janitor = Janitor(
        Command::new(&exe)
            .arg("__janitor")
            .arg(&url)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| CliError::io("cannot start the demo's janitor", e))?,
    );

    let st = reg.stats()?;
    let (slots, bytes) = st.table().map_or((0, 0), |t| (t.capacity, t.segment_bytes));
    outln!(out, "procreg demo: a registry shared by real processes")?;
    outln!(
        out,
        "   segment {url}: {} backend, {} slots, {:.1} MiB, limits namespace {} B / name {} B / metadata {} B",
        st.backend,
        thousands(slots as u64),
        bytes as f64 / (1024.0 * 1024.0),
        st.limits.max_namespace_len,
        st.limits.max_name_len,
        st.limits.max_metadata_len,
    )?;

    // 1. Spawn workers and watch their registrations arrive.
    section(
        out,
        &format!("1. spawn {WORKERS} workers (`procreg __worker N {url}`) and watch the registry"),
    )?;
    let mut watcher = reg.watch(Some(NAMESPACE), reg.revision()?)?;
    let mut workers = Workers(Vec::new());
    let spawned = Instant::now();
    let expected = WORKERS * SERVICES.len();
    let mut registered = 0;
    // Per worker: when it was spawned, and when the last of its entries was seen.
    let mut started = Vec::new();
    let mut latency = Vec::new();
    // Workers start SPAWN_GAP apart, so their registrations arrive one by one.
    while registered < expected {
        let n = workers.0.len();
        if n < WORKERS && spawned.elapsed() >= SPAWN_GAP * n as u32 {
            let t_spawn = Instant::now();
            let mut child = Command::new(&exe)
                .arg("__worker")
                .arg(n.to_string())
                .arg(&url)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| CliError::io(format!("cannot start worker {n}"), e))?;
            let stdin = child.stdin.take();
            let stdout = BufReader::new(
                child
                    .stdout
                    .take()
                    .ok_or_else(|| failed("no worker stdout"))?,
            );
            outln!(
                out,
                "   +{:7.1} ms  spawned      worker {n}, pid {}",
                t0.elapsed().as_secs_f64() * 1e3,
                child.id()
            )?;
            workers.0.push(Worker {
                n,
                child,
                stdin,
                stdout,
            });
            started.push(t_spawn);
            latency.push(Duration::ZERO);
        }
        // Sleep until a change arrives or the next worker is due.
        let due = (SPAWN_GAP * workers.0.len() as u32).saturating_sub(spawned.elapsed());
        let wait = if workers.0.len() < WORKERS {
            due
        } else {
            Duration::from_millis(50)
        };
        for (kind, e) in show_events(&reg, &mut watcher, wait, t0, out)? {
            if kind == EventKind::Registered {
                registered += 1;
                if let Some(i) = workers.0.iter().position(|w| w.child.id() == e.pid) {
                    latency[i] = latency[i].max(started[i].elapsed());
                }
            }
        }
        for w in &mut workers.0 {
            if let Some(status) = w.child.try_wait().map_err(|e| CliError::io("wait", e))? {
                return Err(failed(format!("worker {} exited early ({status})", w.n)));
            }
        }
        if spawned.elapsed() > PATIENCE {
            return Err(failed(format!(
                "only {registered} of {expected} entries appeared within {PATIENCE:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let slowest = latency.iter().max().copied().unwrap_or_default();
    let fastest = latency.iter().min().copied().unwrap_or_default();
    for w in &mut workers.0 {
        let mut line = String::new();
        w.stdout
            .read_line(&mut line)
            .map_err(|e| CliError::io("reading a worker", e))?;
        outln!(out, "   {}", line.trim_end())?;
    }
    outln!(
        out,
        "   each worker's entries were visible {:.1}-{:.1} ms after its spawn (exec + open + 3 registers)",
        fastest.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3,
    )?;
    pause(out)?;

    // 2. The table and some lookups.
    section(out, "2. the registry (what `procreg ls` shows)")?;
    show_registry(&reg, out)?;
    let probe = service_name("cache", 1);
    let e = reg
        .lookup(NAMESPACE, &probe)?
        .ok_or_else(|| failed("an entry vanished"))?;
    outln!(
        out,
        "   lookup({NAMESPACE:?}, {probe:?}) -> pid {}, metadata {:?}, version {}",
        e.pid,
        meta(&e),
        e.version
    )?;
    outln!(
        out,
        "   lookup({NAMESPACE:?}, \"nope\") -> {:?}",
        reg.lookup(NAMESPACE, "nope")?
    )?;
    pause(out)?;

    // 3. Lookup speed.
    let keys: Vec<String> = (0..WORKERS)
        .flat_map(|n| SERVICES.iter().map(move |(p, _, _)| service_name(p, n)))
        .collect();
    section(
        out,
        &format!(
            "3. lookup_pid over the {} keys in a tight loop for {:.1} s (1 thread)",
            keys.len(),
            BENCH_TIME.as_secs_f64()
        ),
    )?;
    out.flush().map_err(CliError::Stdout)?;
    let mut lookups: u64 = 0;
    let mut misses: u64 = 0;
    let start = Instant::now();
    let elapsed = loop {
        for _ in 0..64 {
            for name in &keys {
                let pid =
                    reg.lookup_pid(std::hint::black_box(NAMESPACE), std::hint::black_box(name))?;
                misses += u64::from(std::hint::black_box(pid).is_none());
            }
        }
        lookups += 64 * keys.len() as u64;
        let t = start.elapsed();
        if t >= BENCH_TIME {
            break t;
        }
    };
    let ns_per = elapsed.as_nanos() as f64 / lookups as f64;
    let per_sec = lookups as f64 / elapsed.as_secs_f64();
    outln!(
        out,
        "   {} lookups in {:.3} s: {ns_per:.1} ns/lookup, {} lookups/s, {misses} misses",
        thousands(lookups),
        elapsed.as_secs_f64(),
        thousands(per_sec as u64),
    )?;
    pause(out)?;

    // 4. Update metadata; the watcher sees it.
    let target = service_name("api", 1);
    section(
        out,
        &format!("4. update_metadata({NAMESPACE:?}, {target:?}) from the demo process"),
    )?;
    let new_meta = format!("role=api port={} worker=1 state=draining", 8080 + 1);
    let v = reg.update_metadata(NAMESPACE, &target, new_meta.as_bytes())?;
    show_events(&reg, &mut watcher, Duration::from_secs(1), t0, out)?;
    outln!(out, "   new version {v}; the owner pid is unchanged")?;
    pause(out)?;

    // 5. SIGKILL one worker; sweep reclaims its entries.
    let victim = &mut workers.0[VICTIM];
    let victim_pid = victim.child.id();
    section(
        out,
        &format!("5. SIGKILL worker {VICTIM} (pid {victim_pid}): it cannot clean up"),
    )?;
    victim.child.kill().map_err(|e| CliError::io("kill", e))?;
    let status = victim.child.wait().map_err(|e| CliError::io("wait", e))?;
    outln!(out, "   worker {VICTIM} is gone: {status}")?;
    outln!(
        out,
        "   plain lookups still see its entries (nobody unregistered them):"
    )?;
    for (prefix, _, _) in SERVICES {
        let name = service_name(prefix, VICTIM);
        match reg.lookup(NAMESPACE, &name)? {
            Some(e) => outln!(
                out,
                "     {NAMESPACE}/{name:<10} pid {}  {}",
                e.pid,
                meta(&e)
            )?,
            None => outln!(out, "     {NAMESPACE}/{name:<10} (missing)")?,
        }
    }
    let h = reg.health_check()?;
    outln!(
        out,
        "   health_check: healthy={}, {} live, {} alive owners, {} dead owners",
        h.healthy,
        h.live,
        h.alive_owners,
        h.dead_owners
    )?;
    let swept = Instant::now();
    let reclaimed = reg.sweep()?;
    let sweep_time = swept.elapsed();
    outln!(
        out,
        "   sweep() reclaimed {reclaimed} entries in {:.2} ms:",
        sweep_time.as_secs_f64() * 1e3
    )?;
    show_events(&reg, &mut watcher, Duration::from_secs(1), t0, out)?;
    let h = reg.health_check()?;
    outln!(
        out,
        "   health_check: healthy={}, {} live, {} dead owners",
        h.healthy,
        h.live,
        h.dead_owners
    )?;
    pause(out)?;

    // 6. The table again.
    section(out, "6. the registry after the sweep")?;
    show_registry(&reg, out)?;
    pause(out)?;

    // 7. Clean shutdown.
    section(
        out,
        "7. close the other workers' stdin: they unregister their entries and exit",
    )?;
    for w in &mut workers.0 {
        drop(w.stdin.take());
    }
    let deadline = Instant::now() + PATIENCE;
    for w in &mut workers.0 {
        if w.n == VICTIM {
            continue;
        }
        let status = loop {
            if let Some(s) = w.child.try_wait().map_err(|e| CliError::io("wait", e))? {
                break s;
            }
            if Instant::now() > deadline {
                return Err(failed(format!("worker {} did not exit", w.n)));
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if !status.success() {
            return Err(failed(format!("worker {} failed ({status})", w.n)));
        }
    }
    let unregistered = show_events(&reg, &mut watcher, Duration::from_secs(1), t0, out)?
        .iter()
        .filter(|(k, _)| *k == EventKind::Unregistered)
        .count();
    let left = reg.list(NAMESPACE)?;
    if let Some(t) = reg.stats()?.table() {
        outln!(
            out,
            "   {} entries left; counters: {} registers, {} unregisters, {} updates, {} reclaimed",
            left.len(),
            t.registers,
            t.unregisters,
            t.updates,
            t.reclaimed
        )?;
    }
    if !left.is_empty() {
        return Err(failed(format!(
            "{} entries were not unregistered",
            left.len()
        )));
    }

    // Summary.
    drop(watcher);
    drop(reg);
    drop(workers);
    drop(_segment);
    section(out, "summary")?;
    let rows = [
        ("workers spawned", WORKERS.to_string()),
        (
            "services registered",
            format!(
                "{expected} (visible {:.1}-{:.1} ms after each spawn)",
                fastest.as_secs_f64() * 1e3,
                slowest.as_secs_f64() * 1e3
            ),
        ),
        (
            "worker killed (SIGKILL)",
            format!("worker {VICTIM}, pid {victim_pid}"),
        ),
        (
            "entries reclaimed by sweep",
            format!("{reclaimed} (in {:.2} ms)", sweep_time.as_secs_f64() * 1e3),
        ),
        ("entries unregistered at exit", unregistered.to_string()),
        (
            "lookups/s (lookup_pid, 1 thread)",
            format!("{} ({ns_per:.1} ns/lookup)", thousands(per_sec as u64)),
        ),
        ("total time", format!("{:.2} s", t0.elapsed().as_secs_f64())),
        ("segment", format!("{url} destroyed")),
    ];
    for (k, v) in rows {
        outln!(out, "   {k:<34}{v}")?;
    }
    Ok(())
}
