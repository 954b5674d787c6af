//! `procreg put` (with `--hold` and `--ttl` on etcd), `procreg keepalive`,
//! and the holding that `put --hold` and `join --hold` share.

use super::commands::*;
use super::error::{CliError, CliResult};
use super::fmt::{escape, human_duration, key_label};
use super::report::etcd_lease;
use crate::outln;
use procreg::{Error, EventKind, Registry};
use std::io::{Read, Write};
use std::time::Duration;

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

/// Refuses creation options on etcd (`options`: each flag and whether it was given).
pub fn check_etcd_creation(options: &[(&str, bool)]) -> CliResult {
    if let Some((flag, _)) = options.iter().find(|(_, given)| *given) {
        return Err(CliError::Usage(format!(
            "{flag} applies when procreg creates a shm: or file: segment; an etcd registry \
             has no segment, no capacity and fixed limits"
        )));
    }
    Ok(())
}

/// Refuses what cannot work on etcd before anything is written: an entry
/// there lives under a lease, and this process's session lease ends with it.
fn check_etcd_put(req: &PutRequest<'_>) -> CliResult {
    check_etcd_creation(req.creation_options)?;
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
        PutMode::Hold => hold(
            reg,
            Held {
                ns,
                name,
                member: false,
            },
            pid,
            meta,
            out,
        ),
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

/// What `--hold` holds: the unique entry `ns/name` (`put --hold`), or the
/// member of group `name` (`join --hold`).
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    /// Namespace.
    pub ns: &'a str,
    /// Name, or the group of a member.
    pub name: &'a str,
    /// A group member.
    pub member: bool,
}

impl Held<'_> {
    /// Whether event `e` concerns what is held (of owner `pid`).
    fn is(&self, e: &procreg::Event, pid: u32) -> bool {
        e.namespace == self.ns
            && e.name == self.name
            && e.member == self.member
            && (!self.member || e.pid == pid)
    }

    /// Whether it is still there for `pid`.
    fn still_there(&self, reg: &Registry, pid: u32) -> procreg::Result<bool> {
        if self.member {
            Ok(reg
                .members(self.ns, self.name)?
                .iter()
                .any(|m| m.pid == pid))
        } else {
            Ok(reg.lookup_pid(self.ns, self.name)? == Some(pid))
        }
    }
}

/// `procreg put --hold` and `join --hold`: registers (joins), then stays in
/// the foreground until the owner exits (then unregisters or leaves, exit
/// 0), or the entry goes away meanwhile (removed by someone else, or its
/// lease lost: an error). On etcd this process's session keeps the entry's
/// lease alive.
pub fn hold(
    reg: &Registry,
    what: Held<'_>,
    pid: u32,
    meta: &[u8],
    out: &mut impl Write,
) -> CliResult {
    let Held { ns, name, member } = what;
    let key = key_label(ns, name, member.then_some(pid));
    let born = start_time(pid).ok_or(CliError::Lib(Error::ProcessNotAlive(pid)))?;
    let from = reg.revision()?;
    let mut watcher = reg.watch(Some(ns), from)?;
    if member {
        let v = reg
            .join(ns, name, pid, meta)
            .map_err(|e| super::groups::member_error(e, ns, name, pid))?;
        outln!(
            out,
            "pid {pid} joined {} (version {v})",
            key_label(ns, name, None)
        )?;
    } else {
        let v = reg.register(ns, name, pid, meta)?;
        outln!(out, "registered {key} for pid {pid} (version {v})")?;
    }
    out.flush().map_err(CliError::Stdout)?;
    let keeper = match etcd_lease(&reg.stats()?) {
        Some((ttl, lease)) => format!(
            "this process keeps its lease {lease:x} (ttl {}) alive; if it is killed the entry \
             expires within that",
            human_duration(ttl)
        ),
        None => "the entry also goes when its owner dies".to_owned(),
    };
    let sooner = if member { "leave" } else { "rm" };
    eprintln!(
        "procreg: holding {key} until pid {pid} exits ({keeper}); `procreg {sooner}` removes it \
         sooner"
    );
    loop {
        match watcher.next(HOLD_TICK) {
            Ok(e) if what.is(&e, pid) => {
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
                if !what.still_there(reg, pid)? {
                    return Err(CliError::Lost {
                        message: format!("{key} is no longer registered for pid {pid}"),
                        expired: false,
                    });
                }
            }
            Err(e) => return Err(e.into()),
        }
        if start_time(pid) != Some(born) {
            let removed = if member {
                reg.leave(ns, name, pid)?
            } else {
                reg.unregister_if_owner(ns, name, pid)?
            };
            let done = match (removed, member) {
                (true, true) => format!("left {}", key_label(ns, name, None)),
                (true, false) => format!("unregistered {key}"),
                (false, _) => format!("{key} was already gone"),
            };
            return outln!(out, "pid {pid} exited; {done}");
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
