//! A tour of procreg with real processes.
//!
//! ```text
//! cargo run --release --example demo
//! ```
//!
//! The demo creates a fresh segment `shm:procreg-demo-<pid>`, re-executes
//! itself as 4 worker processes that each register 3 services, then looks them
//! up, measures lookup speed, updates metadata, SIGKILLs one worker, shows that
//! its entries are detected as dead and reclaimed by `sweep`, shuts the other
//! workers down cleanly and destroys the segment (also on error, panic or
//! Ctrl-C).
//!
//! A worker (`demo --worker N URL`) opens the registry, registers its services,
//! prints one line, and then blocks reading stdin: when the parent closes the
//! pipe (or dies) the worker unregisters its services and exits.

use procreg::{Entry, Registry};
use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn Error>>;

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
/// How long the lookup benchmark runs.
const BENCH_TIME: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("--worker") => worker(&args[2..]),
        None => parent(),
        Some(other) => Err(format!("unknown argument {other:?}; run without arguments").into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let who = match args.get(1).map(String::as_str) {
                Some("--worker") => format!("demo worker {}", args.get(2).map_or("?", |s| s)),
                _ => "demo".to_string(),
            };
            eprintln!("{who}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---- worker process ------------------------------------------------------

fn service_name(prefix: &str, n: usize) -> String {
    format!("{prefix}-{n}")
}

fn worker(args: &[String]) -> Res<()> {
    let [n, url] = args else {
        return Err("usage: demo --worker N URL".into());
    };
    let n: usize = n.parse().map_err(|_| format!("bad worker number {n:?}"))?;
    // Open only: the parent created the segment; never create a stray one.
    let reg = Registry::builder().open(url)?;
    let mut names = Vec::new();
    for (prefix, role, port) in SERVICES {
        let name = service_name(prefix, n);
        let meta = format!("role={role} port={}", port + n as u32);
        reg.register_self(NAMESPACE, &name, meta.as_bytes())?;
        names.push(name);
    }
    println!(
        "worker {n}  pid {:<7}  registered {}",
        std::process::id(),
        names
            .iter()
            .map(|s| format!("{NAMESPACE}/{s}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Sleep until the parent closes our stdin (or dies, which closes it too).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    for name in &names {
        reg.unregister_if_owner(NAMESPACE, name, std::process::id())?;
    }
    Ok(())
}

// ---- parent: guards ------------------------------------------------------

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C or SIGTERM make the demo stop at its next check and clean up, rather
/// than die with the segment left in /dev/shm.
fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

fn check_interrupted() -> Res<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err("interrupted".into());
    }
    Ok(())
}

/// Destroys the segment when dropped: at the end, on error and on panic.
struct SegmentGuard {
    url: String,
}

impl Drop for SegmentGuard {
    fn drop(&mut self) {
        if let Err(e) = Registry::destroy(&self.url) {
            eprintln!("demo: could not destroy {}: {e}", self.url);
        }
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

// ---- parent: formatting --------------------------------------------------

/// `1234567` → `"1,234,567"`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn meta(e: &Entry) -> String {
    String::from_utf8_lossy(&e.metadata).into_owned()
}

/// Prints rows as columns, each as wide as its widest cell.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::from("   ");
        for (i, (cell, w)) in cells.iter().zip(&width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    line(
        &width
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<String>>(),
    );
    for r in rows {
        line(r);
    }
}

/// The registry as a table; the OWNER column comes from `lookup_checked`,
/// which returns an entry only while its owner is alive (or cannot be judged).
fn show_registry(reg: &Registry) -> Res<()> {
    let mut rows = Vec::new();
    for e in reg.list_all()? {
        let owner = match reg.lookup_checked(&e.namespace, &e.name)? {
            Some(_) => "alive",
            None => "dead (reclaimed)",
        };
        rows.push(vec![
            e.namespace.clone(),
            e.name.clone(),
            e.pid.to_string(),
            owner.to_string(),
            e.version.to_string(),
            meta(&e),
        ]);
    }
    print_table(
        &["NAMESPACE", "NAME", "PID", "OWNER", "VERSION", "METADATA"],
        &rows,
    );
    Ok(())
}

fn section(title: &str) {
    println!();
    println!("== {title}");
}

// ---- parent --------------------------------------------------------------

fn parent() -> Res<()> {
    let t0 = Instant::now();
    catch_signals();
    let url = format!("shm:procreg-demo-{}", std::process::id());
    // A leftover of an earlier run with the same pid would make create fail.
    let _ = Registry::destroy(&url);
    let reg = Registry::builder().create(&url)?;
    let _segment = SegmentGuard { url: url.clone() };
    let st = reg.stats();
    println!("procreg demo");
    println!(
        "   segment {url}: {} backend, {} slots, {:.1} MiB, limits ns {} B / name {} B / metadata {} B",
        st.backend,
        thousands(st.capacity as u64),
        st.segment_bytes as f64 / (1024.0 * 1024.0),
        st.max_namespace_len,
        st.max_name_len,
        st.max_metadata_len,
    );

    // 1. Spawn workers.
    section(&format!(
        "1. spawn {WORKERS} worker processes (this binary, re-executed with --worker N {url})"
    ));
    let exe = std::env::current_exe()?;
    let mut workers = Workers(Vec::new());
    for n in 0..WORKERS {
        let mut child = Command::new(&exe)
            .arg("--worker")
            .arg(n.to_string())
            .arg(&url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start worker {n} ({}): {e}", exe.display()))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().ok_or("worker stdout missing")?);
        workers.0.push(Worker {
            n,
            child,
            stdin,
            stdout,
        });
    }
    let keys: Vec<(String, String)> = (0..WORKERS)
        .flat_map(|n| {
            SERVICES
                .iter()
                .map(move |(p, _, _)| (NAMESPACE.to_string(), service_name(p, n)))
        })
        .collect();
    // Poll until every key is visible, failing fast if a worker dies.
    let spawned = Instant::now();
    let deadline = spawned + Duration::from_secs(5);
    loop {
        check_interrupted()?;
        let mut seen = 0;
        for (ns, name) in &keys {
            seen += reg.lookup_pid(ns, name)?.is_some() as usize;
        }
        if seen == keys.len() {
            break;
        }
        for w in &mut workers.0 {
            if let Some(status) = w.child.try_wait()? {
                return Err(format!("worker {} exited early ({status})", w.n).into());
            }
        }
        if Instant::now() > deadline {
            return Err(
                format!("only {seen} of {} entries appeared within 5 s", keys.len()).into(),
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let visible_after = spawned.elapsed();
    for w in &mut workers.0 {
        let mut line = String::new();
        w.stdout.read_line(&mut line)?;
        print!("   {line}");
    }
    println!(
        "   all {} entries visible {:.1} ms after spawning",
        keys.len(),
        visible_after.as_secs_f64() * 1e3
    );
    std::io::stdout().flush()?;

    // 2. The table.
    check_interrupted()?;
    section("2. registry contents (list_all; OWNER from lookup_checked)");
    show_registry(&reg)?;
    let probe = service_name("cache", 1);
    if let Some(e) = reg.lookup(NAMESPACE, &probe)? {
        println!(
            "   lookup({NAMESPACE:?}, {probe:?}) -> pid {}, metadata {:?}, registered {:.0} ms ago",
            e.pid,
            meta(&e),
            e.registered_at.elapsed().unwrap_or_default().as_secs_f64() * 1e3
        );
    }
    println!(
        "   lookup({NAMESPACE:?}, \"nope\") -> {:?}",
        reg.lookup(NAMESPACE, "nope")?
    );

    // 3. Lookup speed.
    check_interrupted()?;
    section(&format!(
        "3. lookup_pid over the {} keys in a tight loop for {} s (1 thread)",
        keys.len(),
        BENCH_TIME.as_secs()
    ));
    let mut lookups: u64 = 0;
    let mut misses: u64 = 0;
    let start = Instant::now();
    let elapsed = loop {
        for _ in 0..256 {
            for (ns, name) in &keys {
                let pid = reg.lookup_pid(std::hint::black_box(ns), std::hint::black_box(name))?;
                misses += std::hint::black_box(pid).is_none() as u64;
            }
        }
        lookups += 256 * keys.len() as u64;
        let t = start.elapsed();
        if t >= BENCH_TIME || INTERRUPTED.load(Ordering::Relaxed) {
            break t;
        }
    };
    check_interrupted()?;
    let ns_per = elapsed.as_nanos() as f64 / lookups as f64;
    let per_sec = lookups as f64 / elapsed.as_secs_f64();
    println!(
        "   {} lookups in {:.3} s: {ns_per:.1} ns/lookup, {} lookups/s ({misses} misses)",
        thousands(lookups),
        elapsed.as_secs_f64(),
        thousands(per_sec as u64),
    );

    // 4. Update metadata.
    check_interrupted()?;
    let target = service_name("api", 1);
    section(&format!(
        "4. update_metadata({NAMESPACE:?}, {target:?}) from the parent"
    ));
    let before = reg
        .lookup(NAMESPACE, &target)?
        .ok_or("entry vanished before the update")?;
    let new_meta = format!("role=api port={} state=draining", 8080 + 1);
    let v = reg.update_metadata(NAMESPACE, &target, new_meta.as_bytes())?;
    let after = reg
        .lookup(NAMESPACE, &target)?
        .ok_or("entry vanished after the update")?;
    println!(
        "   before: version {:<4} {:?}",
        before.version,
        meta(&before)
    );
    println!("   after:  version {:<4} {:?}", after.version, meta(&after));
    println!(
        "   update_metadata returned version {v}; the pid stays {} (the owner is unchanged)",
        after.pid
    );

    // 5. SIGKILL one worker.
    check_interrupted()?;
    let victim = &mut workers.0[VICTIM];
    let victim_pid = victim.child.id();
    section(&format!("5. SIGKILL worker {VICTIM} (pid {victim_pid})"));
    victim.child.kill()?;
    let status = victim.child.wait()?;
    println!("   worker {VICTIM} is gone: {status}");
    println!("   lookup still sees its entries (nobody unregistered them):");
    for (prefix, _, _) in SERVICES {
        let name = service_name(prefix, VICTIM);
        match reg.lookup(NAMESPACE, &name)? {
            Some(e) => println!("     {NAMESPACE}/{name:<10} pid {}  {:?}", e.pid, meta(&e)),
            None => println!("     {NAMESPACE}/{name:<10} (missing)"),
        }
    }
    let h = reg.health_check()?;
    println!(
        "   health_check: healthy={}, live {}, alive owners {}, dead owners {}, unknown {}, stuck slots {}",
        h.healthy, h.live, h.alive_owners, h.dead_owners, h.unknown_owners, h.stuck_slots
    );
    for p in &h.problems {
        println!("     problem: {p}");
    }
    let swept = Instant::now();
    let reclaimed = reg.sweep()?;
    let sweep_time = swept.elapsed();
    println!(
        "   sweep() reclaimed {reclaimed} entries in {:.2} ms",
        sweep_time.as_secs_f64() * 1e3
    );
    let h = reg.health_check()?;
    println!(
        "   health_check: healthy={}, live {}, dead owners {}",
        h.healthy, h.live, h.dead_owners
    );
    println!(
        "   lookup_pid({NAMESPACE:?}, {:?}) -> {:?}",
        service_name("api", VICTIM),
        reg.lookup_pid(NAMESPACE, &service_name("api", VICTIM))?
    );

    // 6. The table again.
    check_interrupted()?;
    section("6. registry contents after the sweep");
    show_registry(&reg)?;

    // 7. Clean shutdown.
    check_interrupted()?;
    section("7. shut down the other workers: close their stdin, they unregister and exit");
    for w in &mut workers.0 {
        if w.n == VICTIM {
            continue;
        }
        drop(w.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        let status = loop {
            if let Some(s) = w.child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                w.child.kill()?;
                break w.child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        println!("   worker {}  pid {:<7}  {status}", w.n, w.child.id());
    }
    let left = reg.list(NAMESPACE)?;
    let st = reg.stats();
    println!(
        "   entries left in {NAMESPACE:?}: {}; counters: {} registers, {} unregisters, {} updates, {} reclaimed",
        left.len(),
        st.registers,
        st.unregisters,
        st.updates,
        st.reclaimed
    );
    if !left.is_empty() {
        return Err(format!("{} entries were not unregistered", left.len()).into());
    }

    // Summary.
    drop(reg);
    drop(workers);
    drop(_segment);
    section("summary");
    let rows = [
        ("workers spawned", WORKERS.to_string()),
        ("services registered", keys.len().to_string()),
        (
            "entries reclaimed after the kill",
            format!("{reclaimed} (sweep)"),
        ),
        (
            "lookups/s (lookup_pid, 1 thread)",
            format!("{} ({ns_per:.1} ns/lookup)", thousands(per_sec as u64)),
        ),
        ("total time", format!("{:.2} s", t0.elapsed().as_secs_f64())),
        ("segment", format!("{url} destroyed")),
    ];
    for (k, v) in rows {
        println!("   {k:<34}{v}");
    }
    Ok(())
}
