//! The subcommands that inspect and operate a registry.

use super::error::{CliError, CliResult};
use super::fmt::{Columns, Row, RowKey};
use super::fmt::{
    entry_header, entry_json, entry_row, escape, human_duration, lease_text, redact, table,
    unix_ms, utc,
};
use super::layout::{fit, natural_cmp, terminal_width};
use crate::outln;
use procreg::{Builder, Error, EventKind, Liveness, Registry};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};

pub use super::groups::{join, leave, members, select};
pub use super::put::{PutMode, PutRequest, keepalive, put, read_meta};
pub use super::report::{health, stats};

/// The registry's url for printing (an etcd password redacted).
pub fn shown_url(reg: &Registry) -> String {
    redact(reg.url())
}

/// Whether `url` names an etcd registry (whose entries live under leases).
pub fn is_etcd(url: &str) -> bool {
    url.starts_with("etcd://")
}

/// The registry a command works on, and the global options of opening it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Registry url.
    pub url: String,
    /// `--allow-foreign-owner`: accept a segment another user created.
    pub allow_foreign_owner: bool,
}

impl Target {
    /// A builder with the global options (an option left at its default is
    /// not set, so an etcd url never sees a table option it would refuse).
    ///
    /// # Errors
    /// `Usage` for `--allow-foreign-owner` with an etcd url.
    pub fn builder(&self) -> CliResult<Builder> {
        let b = Registry::builder();
        if !self.allow_foreign_owner {
            return Ok(b);
        }
        if is_etcd(&self.url) {
            return Err(CliError::Usage(
                "--allow-foreign-owner applies to shm: and file: registries (a segment file \
                 another user created); an etcd:// registry has no file: drop the option"
                    .into(),
            ));
        }
        Ok(b.allow_foreign_owner(true))
    }

    /// Opens the existing registry; a missing one is `NoSuchRegistry`, never created.
    pub fn open(&self) -> CliResult<Registry> {
        Ok(self.builder()?.open(&self.url)?)
    }
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
    /// Bound on the size of the segment file, in bytes.
    pub max_segment_bytes: Option<u64>,
}

/// Opens the registry, creating it with `opts` when absent (opts are ignored
/// for an existing registry).
pub fn open_or_create(target: &Target, opts: &CreateOptions) -> CliResult<Registry> {
    let url = target.url.as_str();
    match target.builder()?.open(url) {
        Err(Error::NoSuchRegistry(_)) => {}
        other => return Ok(other?),
    }
    let mut b = target.builder()?;
    if let Some(n) = opts.max_segment_bytes {
        b = b.max_segment_bytes(n);
    }
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
        Err(Error::RegistryExists(_)) => Ok(target.builder()?.open(url)?),
        other => Ok(other?),
    }
}

/// Judges owners of listed entries and members, read-only: a dead owner's
/// entry is shown as dead and left for `sweep` (or `reap`) to reclaim.
pub struct Judge;

impl Judge {
    /// Prepares a judge for `reg`.
    pub fn new(_reg: &Registry) -> CliResult<Judge> {
        Ok(Judge)
    }

    /// The liveness of `e`'s owner now (a member's by
    /// [`Registry::member_liveness`]); an entry removed since it was listed
    /// counts as dead.
    pub fn status(&mut self, reg: &Registry, e: &Row) -> CliResult<Liveness> {
        let l = if e.member {
            match reg.member_liveness(&e.namespace, &e.name, e.pid) {
                Ok(l) => l,
                // A stored group name the API refuses (a segment written by
                // a hostile or newer writer): listed, judged unknown.
                Err(Error::InvalidKey(_)) => return Ok(Liveness::Unknown),
                Err(e) => return Err(e.into()),
            }
        } else {
            reg.owner_liveness(&e.namespace, &e.name)?
        };
        Ok(l.unwrap_or(Liveness::Dead))
    }
}

/// Natural order of rows: by namespace and name (`w2 < w14 < w140`), a
/// unique entry before the members of a group of the same name, members by pid.
pub fn sort_rows(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        natural_cmp(&a.namespace, &b.namespace)
            .then_with(|| natural_cmp(&a.name, &b.name))
            .then_with(|| (a.member, a.pid).cmp(&(b.member, b.pid)))
    });
}

/// Entries and group members of `ns`, or of every namespace, in natural
/// order ([`sort_rows`]).
fn snapshot(reg: &Registry, ns: Option<&str>) -> procreg::Result<Vec<Row>> {
    let unique = match ns {
        Some(ns) => reg.list(ns),
        None => reg.list_all(),
    }?;
    let members = reg.list_members(ns)?;
    let mut rows: Vec<Row> = unique.into_iter().chain(members).map(Row::from).collect();
    sort_rows(&mut rows);
    Ok(rows)
}

/// `procreg ls`: a table fitted to the terminal (see [`super::layout`]),
/// whole with `wide`, or JSON lines. Shows unique entries and group members
/// (KIND `member`, `"member": true`).
pub fn ls(
    reg: &Registry,
    ns: Option<&str>,
    json: bool,
    wide: bool,
    out: &mut impl Write,
) -> CliResult {
    let entries = snapshot(reg, ns)?;
    let scope = ns.map_or(String::new(), |n| format!(" in namespace {:?}", n));
    let format = if json {
        Format::JsonLines
    } else {
        Format::Table { wide }
    };
    print_rows(reg, &entries, format, &format!("no entries{scope}"), out)
}

/// How [`print_rows`] prints.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// A table, fitted to the terminal unless `wide`.
    Table {
        /// Cut nothing.
        wide: bool,
    },
    /// One JSON object per line.
    JsonLines,
    /// One JSON array.
    JsonArray,
}

/// Prints `rows` with each owner's liveness judged now. An empty table
/// prints `empty` (and the registry's url) on stderr; empty JSON is nothing
/// (lines) or `[]` (array).
pub fn print_rows(
    reg: &Registry,
    rows: &[Row],
    format: Format,
    empty: &str,
    out: &mut impl Write,
) -> CliResult {
    let mut judge = Judge::new(reg)?;
    let cols = Columns::for_rows(rows);
    let mut table_rows = Vec::new();
    let mut array = Vec::new();
    for e in rows {
        let status = judge.status(reg, e)?;
        match format {
            Format::JsonLines => outln!(out, "{}", entry_json(e, Some(status)))?,
            Format::JsonArray => array.push(entry_json(e, Some(status))),
            Format::Table { .. } => table_rows.push(entry_row(e, &status.to_string(), cols)),
        }
    }
    let wide = match format {
        Format::JsonLines => return Ok(()),
        Format::JsonArray => return outln!(out, "{}", serde_json::Value::Array(array)),
        Format::Table { wide } => wide,
    };
    if table_rows.is_empty() {
        eprintln!("procreg: {empty} in {}", shown_url(reg));
        return Ok(());
    }
    let header = entry_header(cols);
    fit(&header, &mut table_rows, terminal_width(wide));
    for line in table(&header, &table_rows, "") {
        outln!(out, "{line}")?;
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
    if let Some(l) = &e.lease {
        outln!(out, "lease       {}", lease_text(l))?;
    }
    outln!(out, "metadata    {}", escape(&e.metadata))
}

/// `procreg get`: the entry if its owner is alive (or cannot be judged).
pub fn get(reg: &Registry, ns: &str, name: &str, json: bool, out: &mut impl Write) -> CliResult {
    let mut judge = Judge::new(reg)?;
    let Some(e) = reg.lookup_checked(ns, name)?.map(Row::from) else {
        // A group of that name is not the key, but is what the user may want.
        let n = reg.members(ns, name).map_or(0, |m| m.len());
        if n == 0 {
            return Err(not_found(ns, name));
        }
        return Err(CliError::Reworded {
            code: super::error::Code::NotFound,
            message: format!(
                "{}; {name:?} is a group of {n} member{}: `procreg members NS GROUP` lists them",
                Error::NotFound {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                },
                if n == 1 { "" } else { "s" }
            ),
        });
    };
    let status = judge.status(reg, &e)?;
    print_entry(&e, status, json, out)
}

fn not_found(ns: &str, name: &str) -> CliError {
    CliError::Lib(Error::NotFound {
        namespace: ns.to_owned(),
        name: name.to_owned(),
    })
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

/// How long a wait without a timeout sleeps at a time (it then waits forever).
pub const SLICE: Duration = Duration::from_secs(3600);
/// How often a wait checks whether the registry file has appeared.
const APPEAR_POLL: Duration = Duration::from_millis(5);

/// Opens the registry, waiting for it to appear (its file is checked for
/// every 5 ms) until `timeout` after `started`.
///
/// # Errors
/// `Timeout` when no registry appeared in time; the open's other errors.
pub fn open_when_present(
    target: &Target,
    started: Instant,
    timeout: Option<Duration>,
) -> CliResult<Registry> {
    loop {
        match target.open() {
            Ok(r) => return Ok(r),
            Err(CliError::Lib(Error::NoSuchRegistry(_))) => {}
            Err(e) => return Err(e),
        }
        if let Some(t) = timeout.filter(|t| started.elapsed() >= *t) {
            return Err(CliError::Timeout(format!(
                "no registry appeared at {} within {}",
                target.url,
                human_duration(t)
            )));
        }
        std::thread::sleep(APPEAR_POLL);
    }
}

/// `procreg wait`: blocks until `(ns, name)` has a live owner, sleeping on
/// the registry's futex ([`Registry::wait_for`]): a registration in any
/// process wakes it at once. The registry may not exist yet: its file is
/// checked for every 5 ms until it appears.
pub fn wait(
    target: &Target,
    ns: &str,
    name: &str,
    timeout: Option<Duration>,
) -> CliResult<(Row, Liveness)> {
    let started = Instant::now();
    let left = || timeout.map(|t| t.saturating_sub(started.elapsed()));
    let timed_out = |what: String| {
        CliError::Timeout(format!(
            "{what} within {}",
            human_duration(timeout.unwrap_or_default())
        ))
    };
    let reg = open_when_present(target, started, timeout)?;
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

/// A snapshot of entries and members by key.
pub type Snapshot = BTreeMap<RowKey, Row>;

/// Entries and members of `ns` (or all), by key.
pub fn take_snapshot(reg: &Registry, ns: Option<&str>) -> procreg::Result<Snapshot> {
    Ok(snapshot(reg, ns)?
        .into_iter()
        .map(|e| (e.key(), e))
        .collect())
}

/// One event as a line (human or JSON). `e` is the entry it concerns, and
/// `registered` whether `e.registered_at` is that entry's registration time
/// (it is unknown for a removal of an entry this watcher never saw).
pub fn event_line(ev: &procreg::Event, e: &Row, registered: bool, json: bool) -> String {
    let kind = ev.kind;
    if json {
        let mut v = entry_json(e, None);
        v["event"] = json!(kind.to_string());
        v["revision"] = json!(ev.revision);
        // The commit time of the change (unknown for a lost one).
        v["at_ms"] = match kind {
            EventKind::Lost => serde_json::Value::Null,
            _ => json!(unix_ms(ev.at)),
        };
        if !registered {
            v["registered_at_ms"] = serde_json::Value::Null;
            v["age_ms"] = serde_json::Value::Null;
        }
        return v.to_string();
    }
    // A member's label names its pid already.
    let mut s = format!("{:<12} {}", kind.to_string(), e.label());
    if !e.member {
        s.push_str(&format!(" pid {}", e.pid));
    }
    if matches!(kind, EventKind::Registered | EventKind::Updated) && !e.metadata.is_empty() {
        s.push_str(&format!(
            " meta {}",
            super::fmt::truncate(&escape(&e.metadata), 60)
        ));
    }
    s
}

/// The entries and members a watcher has seen, by key: a removal event is
/// read after its entry is gone, so what it removed (its registration time,
/// metadata and lease) comes from here.
pub struct Seen(HashMap<RowKey, Row>);

impl Seen {
    /// Starts from the entries of `ns` (or all) now.
    pub fn new(reg: &Registry, ns: Option<&str>) -> procreg::Result<Seen> {
        let map = snapshot(reg, ns)?
            .into_iter()
            .map(|e| (e.key(), e))
            .collect();
        Ok(Seen(map))
    }

    /// How many entries and members are known.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The entry event `ev` concerns, and whether its registration time is
    /// known. A registration or update is looked up (and remembered) when
    /// the entry still has the event's version; a removal takes the
    /// remembered entry of the same version.
    pub fn entry(&mut self, reg: &Registry, ev: &procreg::Event) -> (Row, bool) {
        let key = (
            ev.namespace.clone(),
            ev.name.clone(),
            ev.member.then_some(ev.pid),
        );
        let bare = Row {
            namespace: ev.namespace.clone(),
            name: ev.name.clone(),
            pid: ev.pid,
            host: ev.host.clone(),
            metadata: Vec::new(),
            registered_at: ev.at,
            version: ev.version,
            lease: None,
            member: ev.member,
        };
        match ev.kind {
            EventKind::Registered | EventKind::Updated => {
                let now = current(reg, ev)
                    .filter(|now| now.version == ev.version)
                    .map(Row::from);
                let known = self.0.get(&key).filter(|r| r.pid == ev.pid);
                let (row, registered) = match (now, ev.kind) {
                    (Some(row), _) => (row, true),
                    // Replaced since: the change's own time is the registration.
                    (None, EventKind::Registered) => (bare, true),
                    (None, _) => match known {
                        Some(k) => (
                            Row {
                                registered_at: k.registered_at,
                                ..bare
                            },
                            true,
                        ),
                        None => (bare, false),
                    },
                };
                self.0.insert(key, row.clone());
                (row, registered)
            }
            EventKind::Unregistered | EventKind::Reclaimed | EventKind::Expired => {
                match self.0.remove(&key) {
                    Some(r) if r.version == ev.version && r.pid == ev.pid => (r, true),
                    _ => (bare, false),
                }
            }
            _ => (bare, false),
        }
    }
}

/// The entry or member event `ev` concerns as it is now, if it still
/// exists (a member is found among its group's: the API has no lookup of one).
fn current(reg: &Registry, ev: &procreg::Event) -> Option<procreg::Entry> {
    if ev.member {
        reg.members(&ev.namespace, &ev.name)
            .ok()?
            .into_iter()
            .find(|m| m.pid == ev.pid)
    } else {
        reg.lookup(&ev.namespace, &ev.name).ok().flatten()
    }
}

/// `procreg watch`: streams the registry's changes as they are committed
/// ([`Registry::watch`], woken by a futex), until killed. A watcher that
/// falls behind the registry's history says so on stderr and goes on.
pub fn watch(reg: &Registry, ns: Option<&str>, json: bool, out: &mut impl Write) -> CliResult {
    let mut watcher = reg.watch(ns, reg.revision()?)?;
    let mut seen = Seen::new(reg, ns)?;
    let scope = ns.map_or("all namespaces".to_owned(), |n| format!("namespace {n:?}"));
    eprintln!(
        "procreg: watching {scope} of {} ({} entries now); Ctrl-C stops",
        shown_url(reg),
        seen.len()
    );
    loop {
        let e = match watcher.next(Duration::from_secs(3600)) {
            Ok(e) => e,
            Err(Error::Timeout { .. }) => continue,
            Err(e @ Error::Lagged { .. }) => {
                eprintln!("procreg: {e}");
                seen = Seen::new(reg, ns)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let (entry, registered) = seen.entry(reg, &e);
        let line = event_line(&e, &entry, registered, json);
        if json {
            outln!(out, "{line}")?;
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
        if e.member {
            outln!(out, "  {}", e.label())?;
        } else {
            outln!(out, "  {} (pid {})", e.label(), e.pid)?;
        }
    }
    Ok(())
}

/// `procreg sweep`; `quiet` prints nothing (errors still go to stderr).
pub fn sweep(reg: &Registry, quiet: bool, out: &mut impl Write) -> CliResult {
    if quiet {
        reg.sweep()?;
        return Ok(());
    }
    let (n, vanished) = sweep_once(reg)?;
    print_reclaimed(n, &vanished, out)
}

/// `procreg reap`: runs a reaper ([`Registry::spawn_reaper`]: pidfds, and a
/// sweep every `interval`) in the foreground and prints each reclaim as it is
/// committed, until killed.
pub fn reap(reg: &Registry, interval: Duration, out: &mut impl Write) -> CliResult {
    let mut watcher = reg.watch(None, reg.revision()?)?;
    let mut seen = Seen::new(reg, None)?;
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
            Err(Error::Timeout { .. }) => continue,
            Err(Error::Lagged { .. }) => {
                seen = Seen::new(reg, None)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let (entry, _) = seen.entry(reg, &e);
        if !matches!(
            e.kind,
            procreg::EventKind::Reclaimed | procreg::EventKind::Expired
        ) {
            continue;
        }
        let t = utc(e.at);
        write!(out, "{}  ", &t[11..19]).map_err(CliError::Stdout)?;
        print_reclaimed(1, &[entry], out)?;
        out.flush().map_err(CliError::Stdout)?;
    }
}

/// `procreg destroy`.
pub fn destroy(target: &Target, yes: bool, out: &mut impl Write) -> CliResult {
    let url = target.url.as_str();
    if !yes {
        return Err(CliError::Usage(format!(
            "refusing to destroy {url} without --yes (every process using it loses its entries)"
        )));
    }
    target.builder()?.destroy(url)?;
    outln!(out, "destroyed {url}")
}
