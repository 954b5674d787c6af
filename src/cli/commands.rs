//! The subcommands that inspect and operate a registry.

use super::error::{CliError, CliResult};
use super::fmt::Row;
use super::fmt::{
    ENTRY_HEADER, entry_json, entry_row, escape, human_duration, redact, table, thousands, unix_ms,
    utc,
};
use crate::outln;
use procreg::{Error, EventKind, Health, Liveness, LivenessMode, Registry, Stats};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime};

/// The registry's url for printing (an etcd password redacted).
fn shown_url(reg: &Registry) -> String {
    redact(reg.url())
}

/// Whether `url` names an etcd registry (whose entries live under leases).
pub fn is_etcd(url: &str) -> bool {
    url.starts_with("etcd://")
}

/// Opens an existing registry; a missing one is `NoSuchRegistry`, never created.
pub fn open_existing(url: &str) -> CliResult<Registry> {
    Ok(Registry::builder().open(url)?)
}

/// Options used only when `put` creates the registry.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    /// Slot capacity.
    pub capacity: Option<usize>,
    /// Longest metadata in bytes.
    pub max_metadata_len: Option<usize>,
    /// File mode (octal).
    pub mode: Option<u32>,
}

/// Opens the registry, creating it with `opts` when absent (opts are ignored
/// for an existing registry).
pub fn open_or_create(url: &str, opts: &CreateOptions) -> CliResult<Registry> {
    match Registry::builder().open(url) {
        Err(Error::NoSuchRegistry(_)) => {}
        other => return Ok(other?),
    }
    let mut b = Registry::builder();
    if let Some(n) = opts.capacity {
        b = b.capacity(n);
    }
    if let Some(n) = opts.max_metadata_len {
        b = b.max_metadata_len(n);
    }
    if let Some(m) = opts.mode {
        b = b.mode(m);
    }
    match b.create(url) {
        // Another process created it in between: use theirs.
        Err(Error::RegistryExists(_)) => Ok(Registry::builder().open(url)?),
        other => Ok(other?),
    }
}

/// Judges owners of listed entries, read-only: a dead owner's entry is shown
/// as dead and left for `sweep` (or `reap`) to reclaim.
pub struct Judge;

impl Judge {
    /// Prepares a judge for `reg`.
    pub fn new(_reg: &Registry) -> CliResult<Judge> {
        Ok(Judge)
    }

    /// The liveness of `e`'s owner now; an entry removed since it was listed
    /// counts as dead.
    pub fn status(&self, reg: &Registry, e: &Row) -> CliResult<Liveness> {
        Ok(reg
            .owner_liveness(&e.namespace, &e.name)?
            .unwrap_or(Liveness::Dead))
    }
}

/// Entries of `ns`, or of every namespace.
fn snapshot(reg: &Registry, ns: Option<&str>) -> procreg::Result<Vec<Row>> {
    match ns {
        Some(ns) => reg.list(ns),
        None => reg.list_all(),
    }
    .map(|v| v.into_iter().map(Row::from).collect())
}

/// `procreg ls`.
pub fn ls(reg: &Registry, ns: Option<&str>, json: bool, out: &mut impl Write) -> CliResult {
    let entries = snapshot(reg, ns)?;
    let judge = Judge::new(reg)?;
    let mut rows = Vec::new();
    for e in &entries {
        let status = judge.status(reg, e)?;
        if json {
            outln!(out, "{}", entry_json(e, Some(status)))?;
        } else {
            rows.push(entry_row(e, &status.to_string()));
        }
    }
    if !json {
        if rows.is_empty() {
            let scope = ns.map_or(String::new(), |n| format!(" in namespace {:?}", n));
            eprintln!("procreg: no entries{scope} in {}", shown_url(reg));
        } else {
            for line in table(&ENTRY_HEADER, &rows, "") {
                outln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

/// Prints one entry (human: `key  value` lines; JSON: one object).
pub fn print_entry(e: &Row, status: Liveness, json: bool, out: &mut impl Write) -> CliResult {
    if json {
        return outln!(out, "{}", entry_json(e, Some(status)));
    }
    let age = human_duration(super::fmt::age(e.registered_at));
    outln!(out, "namespace   {}", escape(e.namespace.as_bytes()))?;
    outln!(out, "name        {}", escape(e.name.as_bytes()))?;
    outln!(out, "pid         {} ({status})", e.pid)?;
    outln!(out, "registered  {} ({age} ago)", utc(e.registered_at))?;
    outln!(out, "version     {}", e.version)?;
    outln!(out, "metadata    {}", escape(&e.metadata))
}

/// `procreg get`: the entry if its owner is alive (or cannot be judged).
pub fn get(reg: &Registry, ns: &str, name: &str, json: bool, out: &mut impl Write) -> CliResult {
    let judge = Judge::new(reg)?;
    let e = reg
        .lookup_checked(ns, name)?
        .map(Row::from)
        .ok_or_else(|| not_found(ns, name))?;
    let status = judge.status(reg, &e)?;
    print_entry(&e, status, json, out)
}

fn not_found(ns: &str, name: &str) -> CliError {
    CliError::Lib(Error::NotFound {
        namespace: ns.to_owned(),
        name: name.to_owned(),
    })
}

/// Reads `--meta`: the string itself, `@PATH` for a file's bytes, `@-` for stdin.
pub fn read_meta(arg: Option<&str>) -> CliResult<Vec<u8>> {
    match arg {
        None => Ok(Vec::new()),
        Some("@-") => {
            let mut v = Vec::new();
            std::io::stdin()
                .read_to_end(&mut v)
                .map_err(|e| CliError::io("cannot read metadata from stdin", e))?;
            Ok(v)
        }
        Some(s) => match s.strip_prefix('@') {
            Some(path) => std::fs::read(path)
                .map_err(|e| CliError::io(format!("cannot read metadata file {path:?}"), e)),
            None => Ok(s.as_bytes().to_vec()),
        },
    }
}

/// How `put` registers.
#[derive(Debug, Clone, Copy)]
pub enum PutMode {
    /// Registers; the entry lives while its owner does (shm, file, mem).
    Plain,
    /// Replaces the metadata of an existing entry.
    Update,
    /// Registers with a lease of its own of this ttl ([`Registry::register_with_lease`]).
    Lease(Duration),
    /// Registers, then holds the entry in the foreground until its owner exits.
    Hold,
}

/// What `put` was asked to do.
#[derive(Debug)]
pub struct PutRequest<'a> {
    /// Namespace.
    pub ns: &'a str,
    /// Name.
    pub name: &'a str,
    /// Owner pid.
    pub pid: u32,
    /// Metadata.
    pub meta: &'a [u8],
    /// How to register.
    pub how: PutMode,
    /// Options that only apply when `put` creates a segment, and whether each was given.
    pub creation_options: &'a [(&'a str, bool)],
}

/// Refuses what cannot work on etcd before anything is written: an entry
/// there lives under a lease, and this process's session lease ends with it.
fn check_etcd_put(req: &PutRequest<'_>) -> CliResult {
    if let Some((flag, _)) = req.creation_options.iter().find(|(_, given)| *given) {
        return Err(CliError::Usage(format!(
            "{flag} applies when put creates a shm: or file: segment; an etcd registry has \
             no segment, no capacity and fixed limits"
        )));
    }
    match req.how {
        PutMode::Plain => Err(CliError::Usage(format!(
            "on etcd an entry lives only as long as the lease of the handle that registered it, \
             and this procreg process (and its lease) ends at once: the entry would expire \
             within the url's ttl. Use --hold (procreg stays in the foreground keeping the \
             entry until pid {} exits) or --ttl DURATION (the entry gets a lease of its own; \
             renew it with `procreg keepalive NS NAME` within DURATION)",
            req.pid
        ))),
        PutMode::Update => Err(CliError::Usage(
            "on etcd only the handle that registered an entry may update its metadata (the \
             update is fenced by its lease), and procreg opens a new handle; remove the entry \
             and register it again, or update it from the process that holds it"
                .into(),
        )),
        PutMode::Lease(_) | PutMode::Hold => Ok(()),
    }
}

/// `procreg put`: registers (or updates the metadata of) a key; with
/// [`PutMode::Hold`] it then holds it until its owner exits.
pub fn put(reg: &Registry, req: &PutRequest<'_>, out: &mut impl Write) -> CliResult {
    let (ns, name, pid, meta) = (req.ns, req.name, req.pid, req.meta);
    if is_etcd(reg.url()) {
        check_etcd_put(req)?;
    }
    let key = format!("{}/{}", escape(ns.as_bytes()), escape(name.as_bytes()));
    match req.how {
        PutMode::Update => {
            let v = reg.update_metadata(ns, name, meta)?;
            outln!(
                out,
                "updated {key} ({} bytes of metadata, version {v})",
                meta.len()
            )
        }
        PutMode::Lease(ttl) => {
            let v = reg.register_with_lease(ns, name, pid, meta, ttl)?;
            outln!(
                out,
                "registered {key} for pid {pid} (version {v}) with a lease of {}; \
                 renew it with `procreg keepalive` within that",
                human_duration(ttl)
            )
        }
        PutMode::Plain => {
            let v = reg.register(ns, name, pid, meta)?;
            outln!(out, "registered {key} for pid {pid} (version {v})")
        }
        PutMode::Hold => hold(reg, ns, name, pid, meta, out),
    }
}

/// Field 22 of `/proc/PID/stat` (start time in clock ticks since boot).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and ')': fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// How often `put --hold` checks its owner.
const HOLD_TICK: Duration = Duration::from_millis(100);

/// `procreg put --hold`: registers, then stays in the foreground until the
/// owner exits (then unregisters, exit 0), or the entry goes away meanwhile
/// (removed by someone else, or its lease lost: an error). On etcd this
/// process's session keeps the entry's lease alive.
fn hold(
    reg: &Registry,
    ns: &str,
    name: &str,
    pid: u32,
    meta: &[u8],
    out: &mut impl Write,
) -> CliResult {
    let key = format!("{}/{}", escape(ns.as_bytes()), escape(name.as_bytes()));
    let born = start_time(pid).ok_or(CliError::Lib(Error::ProcessNotAlive(pid)))?;
    let from = reg.revision()?;
    let mut watcher = reg.watch(Some(ns), from)?;
    let v = reg.register(ns, name, pid, meta)?;
    outln!(out, "registered {key} for pid {pid} (version {v})")?;
    out.flush().map_err(CliError::Stdout)?;
    let keeper = match etcd_lease(&reg.stats()?) {
        Some((ttl, lease)) => format!(
            "this process keeps its lease {lease:x} (ttl {}) alive; if it is killed the entry \
             expires within that",
            human_duration(ttl)
        ),
        None => "the entry also goes when its owner dies".to_owned(),
    };
    eprintln!(
        "procreg: holding {key} until pid {pid} exits ({keeper}); `procreg rm` removes it sooner"
    );
    loop {
        match watcher.next(HOLD_TICK) {
            Ok(e) if e.namespace == ns && e.name == name => {
                let gone = match e.kind {
                    EventKind::Registered | EventKind::Updated => None,
                    EventKind::Expired => Some(true),
                    _ => Some(false),
                };
                if let Some(expired) = gone {
                    return Err(CliError::Lost {
                        message: format!(
                            "{key} is gone while pid {pid} still runs ({}): {}",
                            e.kind,
                            if expired {
                                "its lease ran out or this process lost its session"
                            } else {
                                "another process removed or reclaimed it"
                            }
                        ),
                        expired,
                    });
                }
            }
            Ok(_) | Err(Error::Timeout { .. }) => {}
            Err(Error::Lagged { .. }) => {
                if reg.lookup_pid(ns, name)? != Some(pid) {
                    return Err(CliError::Lost {
                        message: format!("{key} is no longer registered for pid {pid}"),
                        expired: false,
                    });
                }
            }
            Err(e) => return Err(e.into()),
        }
        if start_time(pid) != Some(born) {
            let removed = reg.unregister_if_owner(ns, name, pid)?;
            return outln!(
                out,
                "pid {pid} exited; {}",
                if removed {
                    format!("unregistered {key}")
                } else {
                    format!("{key} was already gone")
                }
            );
        }
    }
}

/// `procreg keepalive`: renews the lease of an entry registered with `put --ttl`.
pub fn keepalive(reg: &Registry, ns: &str, name: &str, out: &mut impl Write) -> CliResult {
    reg.keepalive(ns, name)?;
    outln!(
        out,
        "renewed the lease of {}/{}",
        escape(ns.as_bytes()),
        escape(name.as_bytes())
    )
}

/// `procreg rm`.
pub fn rm(
    reg: &Registry,
    ns: &str,
    name: &str,
    pid: Option<u32>,
    out: &mut impl Write,
) -> CliResult {
    let removed = match pid {
        Some(p) => reg.unregister_if_owner(ns, name, p)?,
        None => reg.unregister(ns, name)?,
    };
    if !removed {
        if let (Some(p), Some(e)) = (pid, reg.lookup(ns, name)?) {
            return Err(CliError::Failed(format!(
                "key {name:?} in namespace {ns:?} is owned by pid {}, not {p}; not removed",
                e.pid
            )));
        }
        return Err(not_found(ns, name));
    }
    outln!(
        out,
        "unregistered {}/{}",
        escape(ns.as_bytes()),
        escape(name.as_bytes())
    )
}

/// `procreg wait`: blocks until `(ns, name)` has a live owner, sleeping on
/// the registry's futex ([`Registry::wait_for`]): a registration in any
/// process wakes it at once. The registry may not exist yet: its file is
/// checked for every 5 ms until it appears.
pub fn wait(
    url: &str,
    ns: &str,
    name: &str,
    timeout: Option<Duration>,
) -> CliResult<(Row, Liveness)> {
    const APPEAR_POLL: Duration = Duration::from_millis(5);
    /// `wait_for` slices when there is no timeout (it then waits forever).
    const SLICE: Duration = Duration::from_secs(3600);
    let started = Instant::now();
    let left = || timeout.map(|t| t.saturating_sub(started.elapsed()));
    let timed_out = |what: String| {
        CliError::Timeout(format!(
            "{what} within {}",
            human_duration(timeout.unwrap_or_default())
        ))
    };
    let reg = loop {
        match open_existing(url) {
            Ok(r) => break r,
            Err(CliError::Lib(Error::NoSuchRegistry(_))) => {}
            Err(e) => return Err(e),
        }
        if left().is_some_and(|l| l.is_zero()) {
            return Err(timed_out(format!("no registry appeared at {url}")));
        }
        std::thread::sleep(APPEAR_POLL);
    };
    loop {
        match reg.wait_for(ns, name, left().unwrap_or(SLICE)) {
            Ok(e) => {
                let e = Row::from(e);
                let status = Judge::new(&reg)?.status(&reg, &e)?;
                return Ok((e, status));
            }
            Err(Error::Timeout { .. }) if timeout.is_none() => {}
            Err(Error::Timeout { .. }) => {
                return Err(timed_out(format!(
                    "key {name:?} in namespace {ns:?} was not registered"
                )));
            }
            Err(Error::Busy(_)) => std::thread::sleep(APPEAR_POLL),
            Err(e) => return Err(e.into()),
        }
    }
}

/// A snapshot of entries by key.
pub type Snapshot = BTreeMap<(String, String), Row>;

/// Entries of `ns` (or all), keyed by (namespace, name).
pub fn take_snapshot(reg: &Registry, ns: Option<&str>) -> procreg::Result<Snapshot> {
    Ok(snapshot(reg, ns)?
        .into_iter()
        .map(|e| ((e.namespace.clone(), e.name.clone()), e))
        .collect())
}

/// One event as a line (human or JSON).
pub fn event_line(kind: EventKind, e: &Row, json: bool) -> String {
    if json {
        let mut v = entry_json(e, None);
        v["event"] = json!(kind.to_string());
        v["at_ms"] = json!(unix_ms(SystemTime::now()));
        return v.to_string();
    }
    let mut s = format!(
        "{:<12} {}/{} pid {}",
        kind.to_string(),
        escape(e.namespace.as_bytes()),
        escape(e.name.as_bytes()),
        e.pid
    );
    if matches!(kind, EventKind::Registered | EventKind::Updated) && !e.metadata.is_empty() {
        s.push_str(&format!(
            " meta {}",
            super::fmt::truncate(&escape(&e.metadata), 60)
        ));
    }
    s
}

/// An event of the library's watcher as the entry it concerns. For a
/// registration or update the metadata is looked up (shown only if the entry
/// still has that version).
pub fn event_entry(reg: &Registry, e: &procreg::Event) -> (EventKind, Row) {
    let kind = e.kind;
    let metadata = match kind {
        EventKind::Registered | EventKind::Updated => reg
            .lookup(&e.namespace, &e.name)
            .ok()
            .flatten()
            .filter(|now| now.version == e.version)
            .map(|now| now.metadata)
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let entry = Row {
        namespace: e.namespace.clone(),
        name: e.name.clone(),
        pid: e.pid,
        host: e.host.clone(),
        metadata,
        registered_at: e.at,
        version: e.version,
    };
    (kind, entry)
}

/// `procreg watch`: streams the registry's changes as they are committed
/// ([`Registry::watch`], woken by a futex), until killed. A watcher that
/// falls behind the registry's history says so on stderr and goes on.
pub fn watch(reg: &Registry, ns: Option<&str>, json: bool, out: &mut impl Write) -> CliResult {
    let mut watcher = reg.watch(ns, reg.revision()?)?;
    let count = snapshot(reg, ns)?.len();
    let scope = ns.map_or("all namespaces".to_owned(), |n| format!("namespace {n:?}"));
    eprintln!(
        "procreg: watching {scope} of {} ({count} entries now); Ctrl-C stops",
        shown_url(reg)
    );
    loop {
        let e = match watcher.next(Duration::from_secs(3600)) {
            Ok(e) => e,
            Err(Error::Timeout { .. }) => continue,
            Err(e @ Error::Lagged { .. }) => {
                eprintln!("procreg: {e}");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let (kind, entry) = event_entry(reg, &e);
        let line = event_line(kind, &entry, json);
        if json {
            let mut v: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| CliError::Failed(e.to_string()))?;
            v["revision"] = json!(e.revision);
            outln!(out, "{v}")?;
        } else {
            let t = utc(e.at);
            outln!(out, "{}  {line}", &t[11..19])?;
        }
        out.flush().map_err(CliError::Stdout)?;
    }
}

/// One sweep; returns how many were reclaimed and which entries vanished meanwhile.
pub fn sweep_once(reg: &Registry) -> CliResult<(usize, Vec<Row>)> {
    let before = take_snapshot(reg, None)?;
    let n = reg.sweep()?;
    if n == 0 {
        return Ok((0, Vec::new()));
    }
    let after = take_snapshot(reg, None)?;
    let vanished = before
        .into_iter()
        .filter(|(k, e)| {
            after
                .get(k)
                .is_none_or(|a| a.version != e.version || a.pid != e.pid)
        })
        .map(|(_, e)| e)
        .collect();
    Ok((n, vanished))
}

fn print_reclaimed(n: usize, vanished: &[Row], out: &mut impl Write) -> CliResult {
    outln!(
        out,
        "reclaimed {n} {}",
        if n == 1 {
            "entry or slot"
        } else {
            "entries or slots"
        }
    )?;
    for e in vanished {
        outln!(
            out,
            "  {}/{} (pid {})",
            escape(e.namespace.as_bytes()),
            escape(e.name.as_bytes()),
            e.pid
        )?;
    }
    Ok(())
}

/// `procreg sweep`.
pub fn sweep(reg: &Registry, out: &mut impl Write) -> CliResult {
    let (n, vanished) = sweep_once(reg)?;
    print_reclaimed(n, &vanished, out)
}

/// `procreg reap`: runs a reaper ([`Registry::spawn_reaper`]: pidfds, and a
/// sweep every `interval`) in the foreground and prints each reclaim as it is
/// committed, until killed.
pub fn reap(reg: &Registry, interval: Duration, out: &mut impl Write) -> CliResult {
    let mut watcher = reg.watch(None, reg.revision()?)?;
    // Runs until this process ends (or an error returns and drops it).
    let _reaper = reg.spawn_reaper(interval)?;
    eprintln!(
        "procreg: reaping {} (owners watched with pidfds, a sweep every {}); Ctrl-C stops",
        shown_url(reg),
        human_duration(interval)
    );
    loop {
        let e = match watcher.next(Duration::from_secs(1)) {
            Ok(e) => e,
            Err(Error::Timeout { .. } | Error::Lagged { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        if !matches!(
            e.kind,
            procreg::EventKind::Reclaimed | procreg::EventKind::Expired
        ) {
            continue;
        }
        let (_, entry) = event_entry(reg, &e);
        let t = utc(e.at);
        write!(out, "{}  ", &t[11..19]).map_err(CliError::Stdout)?;
        print_reclaimed(1, &[entry], out)?;
        out.flush().map_err(CliError::Stdout)?;
    }
}

/// `procreg stats`: the part every backend has, then the backend's own.
pub fn stats(reg: &Registry, json: bool, out: &mut impl Write) -> CliResult {
    let s = reg.stats()?;
    let t = s.table();
    if json {
        let mut v = json!({
            "url": shown_url(reg),
            "backend": s.backend,
            "capacity": s.limits.capacity,
            "live": s.live,
            "load_factor": s.load_factor(),
            "max_namespace_len": s.limits.max_namespace_len,
            "max_name_len": s.limits.max_name_len,
            "max_metadata_len": s.limits.max_metadata_len,
            "changes": s.revision,
        });
        if let Some((part, _)) = etcd_stats_part(&s) {
            v["etcd"] = part;
        }
        if let Some(t) = t {
            let table = json!({
                "tombstones": t.tombstones,
                "claimed": t.claimed,
                "max_probe_distance": t.max_probe_distance,
                "mean_miss_groups": t.mean_miss_groups,
                "segment_bytes": t.segment_bytes,
                "created_at_ms": unix_ms(t.created_at),
                "registers": t.registers,
                "unregisters": t.unregisters,
                "updates": t.updates,
                "reclaimed": t.reclaimed,
                "stuck_recovered": t.stuck_recovered,
                "locks_stolen": t.locks_stolen,
            });
            if let (Some(v), Some(table)) = (v.as_object_mut(), table.as_object()) {
                v.extend(table.clone());
            }
        }
        return outln!(out, "{v}");
    }
    outln!(
        out,
        "registry    {} ({} backend)",
        shown_url(reg),
        s.backend
    )?;
    outln!(
        out,
        "limits      namespace {} B, name {} B, metadata {} B",
        s.limits.max_namespace_len,
        s.limits.max_name_len,
        s.limits.max_metadata_len
    )?;
    let Some(t) = t else {
        let (own, lines) = etcd_stats_part(&s).unwrap_or_default();
        match own.get("own_entries") {
            Some(n) => outln!(
                out,
                "entries     {} live, {n} registered through this handle",
                s.live
            )?,
            None => outln!(out, "entries     {} live", s.live)?,
        }
        for l in lines {
            outln!(out, "{l}")?;
        }
        return outln!(out, "counters    {} changes", s.revision);
    };
    let age = human_duration(super::fmt::age(t.created_at));
    outln!(
        out,
        "entries     {} live of {} slots ({:.1}% full), {} tombstones, {} claimed",
        s.live,
        thousands(t.capacity as u64),
        s.load_factor() * 100.0,
        t.tombstones,
        t.claimed
    )?;
    outln!(
        out,
        "segment     {} bytes, created {} ({age} ago)",
        thousands(t.segment_bytes as u64),
        utc(t.created_at)
    )?;
    outln!(
        out,
        "probing     max distance {} groups, a miss reads {:.2} groups on average",
        t.max_probe_distance,
        t.mean_miss_groups
    )?;
    outln!(
        out,
        "counters    {} registers, {} unregisters, {} updates, {} reclaimed, \
         {} stuck slots recovered, {} locks stolen, {} changes",
        t.registers,
        t.unregisters,
        t.updates,
        t.reclaimed,
        t.stuck_recovered,
        t.locks_stolen,
        s.revision
    )
}

/// The ttl and id of this handle's etcd session lease, for an etcd registry.
#[cfg(feature = "etcd")]
fn etcd_lease(s: &Stats) -> Option<(Duration, i64)> {
    match &s.detail {
        procreg::BackendStats::Etcd(e) => Some((e.ttl, e.lease)),
        _ => None,
    }
}

#[cfg(not(feature = "etcd"))]
fn etcd_lease(_: &Stats) -> Option<(Duration, i64)> {
    None
}

/// The etcd part of `stats`: JSON, and text lines.
#[cfg(feature = "etcd")]
fn etcd_stats_part(s: &Stats) -> Option<(serde_json::Value, Vec<String>)> {
    let procreg::BackendStats::Etcd(e) = &s.detail else {
        return None;
    };
    let v = json!({
        "endpoints": e.endpoints,
        "prefix": e.prefix,
        "lease": format!("{:x}", e.lease),
        "ttl_ms": e.ttl.as_millis() as u64,
        "own_entries": e.own_entries,
    });
    let lines = vec![
        format!("members     {}", e.endpoints.join(", ")),
        format!("prefix      {}", e.prefix),
        format!(
            "lease       {:x} (this handle's session, ttl {})",
            e.lease,
            human_duration(e.ttl)
        ),
    ];
    Some((v, lines))
}

#[cfg(not(feature = "etcd"))]
fn etcd_stats_part(_: &Stats) -> Option<(serde_json::Value, Vec<String>)> {
    None
}

/// The etcd part of `health`: JSON, and text lines.
#[cfg(feature = "etcd")]
fn etcd_health_part(h: &Health) -> Option<(serde_json::Value, Vec<String>)> {
    let procreg::BackendHealth::Etcd(e) = &h.detail else {
        return None;
    };
    let v = json!({
        "lease": format!("{:x}", e.lease),
        "lease_left_ms": e.lease_left.as_millis() as u64,
        "session_lost": e.session_lost,
        "members": e.endpoints.iter().map(|(ep, up)| json!({"endpoint": ep, "up": up})).collect::<Vec<_>>(),
    });
    let mut lines = vec![match &e.session_lost {
        None => format!(
            "session     lease {:x}, {} left before it must be renewed",
            e.lease,
            human_duration(e.lease_left)
        ),
        Some(why) => format!("session     LOST (lease {:x}): {why}", e.lease),
    }];
    for (ep, up) in &e.endpoints {
        lines.push(format!(
            "member      {ep} {}",
            if *up { "up" } else { "DOWN (no answer)" }
        ));
    }
    Some((v, lines))
}

#[cfg(not(feature = "etcd"))]
fn etcd_health_part(_: &Health) -> Option<(serde_json::Value, Vec<String>)> {
    None
}

/// `procreg health`: prints the check; `Unhealthy` (exit 17) when not healthy.
pub fn health(reg: &Registry, json: bool, out: &mut impl Write) -> CliResult {
    let h = reg.health_check()?;
    let mode = match h.liveness_mode {
        LivenessMode::ProcStartTime => "proc-start-time",
        LivenessMode::ForeignPidNamespace => "foreign-pid-namespace",
        LivenessMode::InProcess => "in-process",
        LivenessMode::Lease => "lease",
        _ => "other",
    };
    let t = h.table();
    if json {
        let mut v = json!({
            "url": shown_url(reg),
            "healthy": h.healthy,
            "header_valid": t.map(|t| t.header_valid),
            "load_factor": t.map(|t| t.load_factor),
            "live": h.live,
            "alive_owners": h.alive_owners,
            "dead_owners": h.dead_owners,
            "unknown_owners": h.unknown_owners,
            "expired_leases": h.expired_leases,
            "stuck_slots": t.map(|t| t.stuck_slots),
            "liveness_mode": mode,
            "problems": h.problems,
        });
        if let Some((part, _)) = etcd_health_part(&h) {
            v["etcd"] = part;
        }
        outln!(out, "{v}")?;
    } else {
        outln!(
            out,
            "{:<11} {}",
            if h.healthy { "healthy" } else { "UNHEALTHY" },
            shown_url(reg)
        )?;
        outln!(
            out,
            "entries     {} live: {} alive, {} dead, {} unknown owners, {} expired leases",
            h.live,
            h.alive_owners,
            h.dead_owners,
            h.unknown_owners,
            h.expired_leases
        )?;
        if let Some(t) = t {
            outln!(
                out,
                "stuck       {} slots or locks of dead writers",
                t.stuck_slots
            )?;
            outln!(out, "load        {:.1}%", t.load_factor * 100.0)?;
        }
        if let Some((_, lines)) = etcd_health_part(&h) {
            for l in lines {
                outln!(out, "{l}")?;
            }
        }
        outln!(out, "liveness    {mode}")?;
        for p in &h.problems {
            outln!(out, "problem     {p}")?;
        }
        if !h.healthy && t.is_some() {
            outln!(
                out,
                "hint        `procreg sweep` reclaims dead owners and stuck slots"
            )?;
        } else if h.dead_owners > 0 {
            outln!(
                out,
                "hint        `procreg sweep` reclaims the entries of dead owners on this host"
            )?;
        }
    }
    if h.healthy {
        Ok(())
    } else {
        Err(CliError::Unhealthy)
    }
}

/// `procreg destroy`.
pub fn destroy(url: &str, yes: bool, out: &mut impl Write) -> CliResult {
    if !yes {
        return Err(CliError::Usage(format!(
            "refusing to destroy {url} without --yes (every process using it loses its entries)"
        )));
    }
    Registry::destroy(url)?;
    outln!(out, "destroyed {url}")
}
