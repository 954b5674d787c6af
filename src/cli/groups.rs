//! `procreg join`, `leave`, `members` and `select`: process groups and
//! metadata queries (the library's `Registry::join` and the rest, in
//! `src/groups/`).

use super::commands::{
    Format, Judge, SLICE, Target, is_etcd, open_when_present, print_rows, shown_url, sort_rows,
};
use super::error::{CliError, CliResult, Code};
use super::fmt::{Row, entry_json, human_duration, key_label, lease_text, table};
use super::layout::{fit, terminal_width};
use super::put::{Held, check_etcd_creation, hold};
use crate::outln;
use procreg::{Error, Registry};
use std::io::Write;
use std::time::{Duration, Instant};

/// How `join` adds the member.
#[derive(Debug, Clone, Copy)]
pub enum JoinMode {
    /// Joins; the member lives while its owner does (shm, file, mem).
    Plain,
    /// Replaces the metadata of an existing member.
    Update,
    /// Joins, then holds the member in the foreground until its owner exits.
    Hold,
}

/// What `join` was asked to do.
#[derive(Debug)]
pub struct JoinRequest<'a> {
    /// Namespace.
    pub ns: &'a str,
    /// Group.
    pub group: &'a str,
    /// The member's pid.
    pub pid: u32,
    /// Its metadata.
    pub meta: &'a [u8],
    /// How to join.
    pub how: JoinMode,
    /// Options that only apply when `join` creates a segment, and whether each was given.
    pub creation_options: &'a [(&'a str, bool)],
}

/// A library error of an operation on member `pid` of `group`, in the
/// command's words: the library names the group where it would name a key
/// (`key "api" ... is already registered by pid 4242`), which reads wrong
/// for a member. Other errors keep the library's message.
pub fn member_error(e: Error, ns: &str, group: &str, pid: u32) -> CliError {
    let reworded = |code, message| CliError::Reworded { code, message };
    match e {
        Error::AlreadyExists { alive, .. } => reworded(
            Code::AlreadyExists,
            format!(
                "pid {pid} is already a member of group {group:?} in namespace {ns:?} \
                 ({alive}); `procreg leave NS GROUP --pid {pid}` removes it, `procreg join \
                 --update` replaces its metadata"
            ),
        ),
        Error::NotFound { .. } => reworded(
            Code::NotFound,
            format!(
                "pid {pid} is not a member of group {group:?} in namespace {ns:?}; `procreg \
                 members NS GROUP` lists the members"
            ),
        ),
        e => CliError::Lib(e),
    }
}

/// Refuses on etcd what cannot work there, before anything is written: a
/// member there lives under the lease of the handle that joined it, and
/// this procreg process (and its lease) ends at once.
fn check_etcd_join(req: &JoinRequest<'_>) -> CliResult {
    check_etcd_creation(req.creation_options)?;
    match req.how {
        JoinMode::Plain => Err(CliError::Usage(format!(
            "on etcd a member lives only as long as the lease of the handle that joined it, \
             and this procreg process (and its lease) ends at once: the member would expire \
             within the url's ttl. Use --hold (procreg stays in the foreground keeping the \
             member until pid {} exits), or join from the process itself with the library",
            req.pid
        ))),
        JoinMode::Update => Err(CliError::Usage(
            "on etcd only the handle that joined a member may update its metadata (the update \
             is fenced by its lease), and procreg opens a new handle; leave and join again, or \
             update it from the process that holds it"
                .into(),
        )),
        JoinMode::Hold => Ok(()),
    }
}

/// `procreg join`: adds a member (or replaces its metadata); with
/// [`JoinMode::Hold`] it then holds it until its owner exits.
pub fn join(reg: &Registry, req: &JoinRequest<'_>, out: &mut impl Write) -> CliResult {
    let (ns, group, pid, meta) = (req.ns, req.group, req.pid, req.meta);
    if is_etcd(reg.url()) {
        check_etcd_join(req)?;
    }
    let err = |e| member_error(e, ns, group, pid);
    match req.how {
        JoinMode::Plain => {
            let v = reg.join(ns, group, pid, meta).map_err(err)?;
            outln!(
                out,
                "pid {pid} joined {} (version {v})",
                key_label(ns, group, None)
            )
        }
        JoinMode::Update => {
            let v = reg
                .update_member_metadata(ns, group, pid, meta)
                .map_err(err)?;
            outln!(
                out,
                "updated {} ({} bytes of metadata, version {v})",
                key_label(ns, group, Some(pid)),
                meta.len()
            )
        }
        JoinMode::Hold => hold(
            reg,
            Held {
                ns,
                name: group,
                member: true,
            },
            pid,
            meta,
            out,
        ),
    }
}

/// `procreg leave`: removes member `pid` of `group`; exit 3 when it is not one.
pub fn leave(reg: &Registry, ns: &str, group: &str, pid: u32, out: &mut impl Write) -> CliResult {
    let left = reg
        .leave(ns, group, pid)
        .map_err(|e| member_error(e, ns, group, pid))?;
    if !left {
        return Err(member_error(
            Error::NotFound {
                namespace: ns.to_owned(),
                name: group.to_owned(),
            },
            ns,
            group,
            pid,
        ));
    }
    outln!(out, "pid {pid} left {}", key_label(ns, group, None))
}

/// `procreg members`: the members of a group, by pid, with each owner's
/// liveness judged now: a table (PID, HOST, STATUS, AGE, LEASE when one has
/// one, METADATA) fitted to the terminal unless `wide`, or a JSON array.
pub fn members(
    reg: &Registry,
    ns: &str,
    group: &str,
    json: bool,
    wide: bool,
    out: &mut impl Write,
) -> CliResult {
    let rows: Vec<Row> = reg.members(ns, group)?.into_iter().map(Row::from).collect();
    let mut judge = Judge::new(reg)?;
    let with_lease = rows.iter().any(|e| e.lease.is_some());
    let mut cells = Vec::new();
    let mut array = Vec::new();
    for e in &rows {
        let status = judge.status(reg, e)?;
        if json {
            array.push(entry_json(e, Some(status)));
            continue;
        }
        let mut r = vec![
            e.pid.to_string(),
            super::fmt::escape(e.host.as_bytes()),
            status.to_string(),
            human_duration(super::fmt::age(e.registered_at)),
        ];
        if with_lease {
            r.push(e.lease.as_ref().map_or("-".to_owned(), lease_text));
        }
        r.push(super::fmt::escape(&e.metadata));
        cells.push(r);
    }
    if json {
        return outln!(out, "{}", serde_json::Value::Array(array));
    }
    if cells.is_empty() {
        eprintln!(
            "procreg: no members of group {group:?} in namespace {ns:?} in {}",
            shown_url(reg)
        );
        return Ok(());
    }
    let mut header = vec!["PID", "HOST", "STATUS", "AGE"];
    if with_lease {
        header.push("LEASE");
    }
    header.push("METADATA");
    // PID and HOST are the "key" columns of `fit`: a pid is never cut (it is
    // narrower than a key column's minimum) and (pid, host) stay distinct.
    fit(&header, &mut cells, terminal_width(wide));
    for line in table(&header, &cells, "") {
        outln!(out, "{line}")?;
    }
    Ok(())
}

/// `procreg members --wait N`: opens the registry (waiting for it to
/// appear) and blocks until `group` has at least `n` members whose owner is
/// alive or cannot be judged from here ([`Registry::wait_for_members`],
/// which sleeps on the registry's change stream), or `timeout` passes
/// (exit 16).
pub fn wait_members(
    target: &Target,
    ns: &str,
    group: &str,
    n: usize,
    timeout: Option<Duration>,
) -> CliResult<Registry> {
    let started = Instant::now();
    let reg = open_when_present(target, started, timeout)?;
    loop {
        let left = timeout.map_or(SLICE, |t| t.saturating_sub(started.elapsed()));
        match reg.wait_for_members(ns, group, n, left) {
            Ok(_) => return Ok(reg),
            Err(Error::Timeout { .. }) if timeout.is_none() => {}
            Err(Error::Timeout { what, .. }) => {
                return Err(CliError::Timeout(format!(
                    "waited {} for {what}",
                    human_duration(timeout.unwrap_or_default())
                )));
            }
            Err(Error::Busy(_)) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The command's wording of the library's refusal of a bad query.
fn query_error(e: Error) -> CliError {
    match e {
        Error::InvalidArgument(m) => CliError::Reworded {
            code: Code::InvalidArgument,
            message: m.replace(
                "give field=value terms separated by whitespace, ';' or ',', \
                 e.g. \"role=api port=8080\"",
                "give field=value terms, several as one argument: `procreg select [NS] \
                 'role=api port=8080'`",
            ),
        },
        e => CliError::Lib(e),
    }
}

/// `procreg select`: the unique entries and group members of `ns` (or of
/// every namespace) whose metadata matches every `field=value` term of
/// `query`, as `ls` shows them (a table, or with `json` a JSON array).
pub fn select(
    reg: &Registry,
    ns: Option<&str>,
    query: &str,
    json: bool,
    wide: bool,
    out: &mut impl Write,
) -> CliResult {
    let found = reg.select(ns, query).map_err(query_error)?;
    if let Some(ns) = ns.filter(|n| found.is_empty() && n.contains('=')) {
        // `procreg select role=api port=8080`: two terms, read as NS QUERY.
        if !reg.namespaces()?.iter().any(|n| n == ns) {
            return Err(CliError::Usage(format!(
                "there is no namespace {ns:?}, and it looks like a query term: give several \
                 terms as one argument, `procreg select {:?}` (every namespace) or `procreg \
                 select NS {:?}`",
                format!("{ns} {query}"),
                format!("{ns} {query}")
            )));
        }
    }
    let mut rows: Vec<Row> = found.into_iter().map(Row::from).collect();
    sort_rows(&mut rows);
    let format = if json {
        Format::JsonArray
    } else {
        Format::Table { wide }
    };
    let scope = ns.map_or(String::new(), |n| format!(" in namespace {n:?}"));
    print_rows(
        reg,
        &rows,
        format,
        &format!("nothing matches {query:?}{scope}"),
        out,
    )
}
