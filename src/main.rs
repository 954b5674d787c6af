//! `procreg`: inspect, operate and demo a process registry from a shell.
//!
//! `procreg --help` lists the subcommands and the exit codes; every
//! subcommand has its own `--help`. The pieces live in `src/cli/`.

mod cli;

use clap::{Args, Parser, Subcommand};
use cli::commands::{self, CreateOptions, Target};
use cli::error::{CliError, CliResult, exit_code_help};
use cli::fmt::parse_duration;
use cli::groups::{JoinMode, JoinRequest};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// The default registry when neither --registry nor PROCREG_URL is given.
const DEFAULT_URL: &str = "shm:default";

/// A process registry for OS processes: register services under (namespace,
/// name) in shared memory (one host) or etcd (across hosts) and find their
/// pid and metadata by name.
#[derive(Parser, Debug)]
#[command(name = "procreg", version, after_help = exit_code_help())]
struct Cli {
    /// Registry url: shm:NAME (the file /dev/shm/procreg.NAME), file:/path, or
    /// etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?ttl=10s&timeout=5s] (a build with
    /// the cargo feature "etcd") [default: $PROCREG_URL, else shm:default]
    #[arg(long, global = true, value_name = "URL")]
    registry: Option<String>,

    /// Accept a segment created by another user (a registry shared by a
    /// group, created with `put --mode 660`); refused by default, since
    /// anyone could pre-create a name in /dev/shm. See docs/group-shared.md
    #[arg(long, global = true)]
    allow_foreign_owner: bool,

    #[command(subcommand)]
    command: Cmd,
}

/// Shared `--json` flag.
#[derive(Args, Debug, Clone, Copy)]
struct Json {
    /// Print JSON (one object per line) instead of text
    #[arg(long)]
    json: bool,
}

const EXIT_NOTE: &str = "Exit codes: see `procreg --help`.";

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a 3-second tour with real processes on a fresh private segment
    ///
    /// Creates shm:procreg-demo-<pid>, spawns 4 worker processes that register
    /// services, shows the registry, measures lookups, SIGKILLs one worker,
    /// reclaims its entries with sweep, shuts the rest down and removes the
    /// segment (also on error, panic or Ctrl-C). Ignores --registry.
    #[command(after_help = EXIT_NOTE)]
    Demo,

    /// List entries: a table, or JSON lines with --json
    ///
    /// STATUS is the owner's liveness (alive, dead, unknown), judged now;
    /// listing changes nothing: a dead owner's entry stays until `procreg
    /// sweep` (or `reap`, or a `get`) reclaims it. LEASE (shown when an entry
    /// has one) is the time left of its ttl. Keys sort naturally (w2 < w14 <
    /// w140). Keys and metadata are escaped.
    ///
    /// The table fits the width in $COLUMNS, else the terminal's when stdout
    /// is a terminal; to a pipe or a file nothing is cut. A cut is marked
    /// with an ellipsis; namespace and name keep their start and end and are
    /// never cut so far that two different keys look the same. --wide (or
    /// --json) shows everything.
    ///
    /// Group members are listed too, after the unique entry of their group's
    /// name, by pid: a KIND column (unique, member) appears when one is
    /// shown, and --json gives every object "member" (true or false).
    #[command(after_help = EXIT_NOTE)]
    Ls {
        /// Only this namespace
        #[arg(value_name = "NS")]
        ns: Option<String>,
        /// Cut nothing, whatever the terminal's width
        #[arg(long)]
        wide: bool,
        #[command(flatten)]
        json: Json,
    },

    /// Show one entry; exit 3 when it is not registered or its owner is dead
    #[command(after_help = EXIT_NOTE)]
    Get {
        /// Namespace
        #[arg(value_name = "NS")]
        ns: String,
        /// Name
        name: String,
        #[command(flatten)]
        json: Json,
    },

    /// Register NS/NAME for a process (creates the registry when absent)
    ///
    /// The owner is --pid, else the process that ran procreg (your shell or
    /// script: `exec` into the service keeps the registration valid, since the
    /// pid and its start time stay the same). The entry disappears when the
    /// owner dies.
    ///
    /// On etcd:// an entry lives only as long as a lease, and procreg's own
    /// session lease ends when procreg exits; so there `put` needs one of
    /// --hold (procreg stays in the foreground keeping the entry until the
    /// owner exits) or --ttl (the entry gets a lease of its own, renewed with
    /// `procreg keepalive`). --update is refused there: only the handle that
    /// registered an etcd entry may update it.
    #[command(after_help = EXIT_NOTE)]
    Put(PutArgs),

    /// Renew the lease of NS/NAME (registered with `put --ttl`) for another ttl
    #[command(after_help = EXIT_NOTE)]
    Keepalive {
        /// Namespace
        #[arg(value_name = "NS")]
        ns: String,
        /// Name
        name: String,
    },

    /// Unregister NS/NAME; exit 3 when it is not registered
    #[command(after_help = EXIT_NOTE)]
    Rm {
        /// Namespace
        #[arg(value_name = "NS")]
        ns: String,
        /// Name
        name: String,
        /// Only if this pid owns the entry
        #[arg(long, value_name = "PID")]
        pid: Option<u32>,
    },

    /// Add a process to group NS/GROUP (creates the registry when absent)
    ///
    /// A group is a keyspace beside unique names: many processes stand
    /// behind one group name, each member one (group, pid) with its own
    /// metadata and liveness, and a group may share its name with a unique
    /// key. The member is --pid, else the process that ran procreg (your
    /// shell or script, as for `put`; never procreg itself, which exits at
    /// once: its member would be dead as soon as it joined). A member is
    /// reclaimed when its process dies (`sweep`, `reap`). Joining twice with
    /// one pid exits 4.
    /// The group name may be at most the registry's name length less 11 bytes
    /// (117 by default).
    ///
    /// On etcd:// a member lives only as long as a lease, and procreg's own
    /// session lease ends when procreg exits; so there `join` needs --hold
    /// (procreg stays in the foreground keeping the member until it exits).
    /// --update is refused there: only the handle that joined a member may
    /// update it.
    #[command(after_help = EXIT_NOTE)]
    Join(JoinArgs),

    /// Remove a process from group NS/GROUP; exit 3 when it is not a member
    ///
    /// The member is --pid, else the process that ran procreg (as for `join`).
    #[command(after_help = EXIT_NOTE)]
    Leave {
        /// Namespace
        #[arg(value_name = "NS")]
        ns: String,
        /// Group
        group: String,
        /// The member's pid [default: the parent of procreg]
        #[arg(long, value_name = "PID")]
        pid: Option<u32>,
    },

    /// List the members of group NS/GROUP: a table, or a JSON array with --json
    ///
    /// One row per member, by pid: PID, HOST, STATUS (the member's liveness
    /// judged now: alive, dead, unknown), AGE, LEASE (when one has one),
    /// METADATA. Listing changes nothing: a dead member stays until `sweep`
    /// or `reap` reclaims it. --json prints one array of objects with the
    /// fields of `ls --json`, "member" true and "name" the group. A group
    /// without members prints nothing (`[]` with --json) and exits 0.
    ///
    /// --wait N first waits until the group has N live members (alive, or
    /// on another host or PID namespace), sleeping on the registry's change
    /// stream; it also waits for the registry to appear. Exit 16 on timeout.
    #[command(after_help = EXIT_NOTE)]
    Members {
        /// Namespace
        #[arg(value_name = "NS")]
        ns: String,
        /// Group
        group: String,
        /// Wait until the group has at least N live members, then list
        #[arg(long, value_name = "N")]
        wait: Option<usize>,
        /// With --wait: give up after this long (500ms, 5s, 2m, ...) [default: wait forever]
        #[arg(long, value_parser = parse_duration, value_name = "DURATION", requires = "wait")]
        timeout: Option<Duration>,
        /// Cut nothing, whatever the terminal's width
        #[arg(long)]
        wide: bool,
        /// Print one JSON array instead of text
        #[arg(long)]
        json: bool,
    },

    /// Find entries and group members by metadata: `select [NS] QUERY`
    ///
    /// QUERY is field=value terms (separated by spaces, `;` or `,`), given as one
    /// argument (`procreg select shop 'role=api port=8080'`); an entry or
    /// member matches when its metadata has every field with exactly that
    /// value. Metadata fields are k=v tokens separated by spaces, `;` or `,`
    /// (`role=api port=8080`), or the members of a flat JSON object
    /// (`{"role":"api","port":8080}`: values compared as JSON text, strings
    /// without quotes); other metadata matches nothing. With one argument
    /// it is the query, over every namespace. Output as `ls` (KIND tells
    /// unique entries from members); --json prints one array. A query that
    /// is not field=value terms exits 14. There is no index: it reads the
    /// whole namespace (or registry).
    #[command(after_help = EXIT_NOTE)]
    Select {
        /// Namespace (then QUERY follows) or, alone, the query
        #[arg(value_name = "NS")]
        first: String,
        /// field=value terms, e.g. 'role=api port=8080'
        #[arg(value_name = "QUERY")]
        query: Option<String>,
        /// Cut nothing, whatever the terminal's width
        #[arg(long)]
        wide: bool,
        /// Print one JSON array instead of text
        #[arg(long)]
        json: bool,
    },

    /// Wait until NS/NAME is registered by a live process, then print it
    ///
    /// Sleeps on the registry's futex: a registration in any process wakes it
    /// at once. Also waits for the registry itself to appear. Exit 16 on timeout.
    #[command(after_help = EXIT_NOTE)]
    Wait {
        /// Namespace
        #[arg(value_name = "NS")]
        ns: String,
        /// Name
        name: String,
        /// Give up after this long (500ms, 5s, 2m, ...) [default: wait forever]
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        timeout: Option<Duration>,
        #[command(flatten)]
        json: Json,
    },

    /// Print registrations, updates and removals as they happen, until killed
    ///
    /// Events come from the registry's change history in revision order, as
    /// they are committed: registered, updated, unregistered, reclaimed (the
    /// owner died), expired (its lease ran out), lost (a change whose writer
    /// died before recording it). --json prints one object per event:
    /// "event" (those words), "revision", "at_ms" (when the change was
    /// committed), and the entry it concerns; for a removal that is the
    /// removed entry, with its own "registered_at_ms" (null when the watcher
    /// never saw it).
    #[command(after_help = EXIT_NOTE)]
    Watch {
        /// Only this namespace
        #[arg(value_name = "NS")]
        ns: Option<String>,
        #[command(flatten)]
        json: Json,
    },

    /// Reclaim entries of dead owners and slots of dead writers, once
    #[command(after_help = EXIT_NOTE)]
    Sweep {
        /// Print nothing (errors still go to stderr; the exit code tells)
        #[arg(long, short)]
        quiet: bool,
    },

    /// Reclaim entries as their owners die, printing reclaims, until killed
    ///
    /// Watches every owner with a pidfd (reclaims within milliseconds of a
    /// death) and sweeps every --interval as well.
    #[command(after_help = EXIT_NOTE)]
    Reap {
        /// Time between full sweeps (ms, s, m)
        #[arg(long, default_value = "100ms", value_parser = parse_duration, value_name = "DURATION")]
        interval: Duration,
    },

    /// Sizes, limits and counters of the registry
    #[command(after_help = EXIT_NOTE)]
    Stats {
        #[command(flatten)]
        json: Json,
        /// Print the Prometheus text exposition format (metrics procreg_*,
        /// labelled with the registry url and backend), e.g. for node_exporter's
        /// textfile collector
        #[arg(long, conflicts_with = "json")]
        prometheus: bool,
    },

    /// Check the registry; exit 17 when unhealthy (a container probe)
    ///
    /// Unhealthy means something an operator must act on: a broken segment,
    /// slots or locks held by dead writers, a registry over 90% full, or on
    /// etcd a lost session or members that do not answer. Entries of dead
    /// owners (and expired leases) are counted and reported, but do not make
    /// it unhealthy, so one crashed neighbour does not fail every
    /// container's probe; `sweep` or `reap` reclaims them. --strict counts
    /// them as problems too.
    #[command(after_help = EXIT_NOTE)]
    Health {
        #[command(flatten)]
        json: Json,
        /// Dead owners and expired leases make it unhealthy too
        #[arg(long)]
        strict: bool,
    },

    /// List the procreg segments of this host (the shm directory)
    ///
    /// Shows each segment's url, size, live entries of its capacity, the
    /// creator's pid and uid (from its header), and age. A file named
    /// `procreg.NAME.creating.PID.N` is a creator's work in progress; one
    /// whose pid is gone was left by a creator that crashed: --gc removes
    /// those (never one of a running pid). Ignores --registry.
    #[command(after_help = EXIT_NOTE)]
    Registries {
        /// Remove the files of crashed creators instead of listing
        #[arg(long)]
        gc: bool,
        /// With --gc: only files untouched for this long (protects a creator
        /// in another PID namespace, whose pid means nothing here)
        #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION", requires = "gc")]
        min_age: Duration,
        #[command(flatten)]
        json: Json,
    },

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    ///
    /// For example: `procreg completions bash > ~/.local/share/bash-completion/completions/procreg`
    /// or `procreg completions zsh > ~/.zfunc/_procreg`.
    #[command(after_help = EXIT_NOTE)]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },

    /// Print the manual page (roff), e.g. `procreg man | man -l -`
    ///
    /// `procreg man COMMAND` prints the page of one subcommand (procreg-COMMAND(1)).
    #[command(after_help = EXIT_NOTE)]
    Man {
        /// A subcommand, for its own page
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },

    /// Remove the registry's segment file (refused without --yes)
    #[command(after_help = EXIT_NOTE)]
    Destroy {
        /// Really remove it: every process using it loses its entries
        #[arg(long)]
        yes: bool,
    },

    /// (internal) a demo worker process
    #[command(name = "__worker", hide = true)]
    Worker {
        /// Worker number
        n: usize,
        /// Registry url
        url: String,
    },

    /// (internal) removes the demo's segment when the demo dies
    #[command(name = "__janitor", hide = true)]
    Janitor {
        /// Registry url
        url: String,
    },
}

#[derive(Args, Debug)]
struct PutArgs {
    /// Namespace
    #[arg(value_name = "NS")]
    ns: String,
    /// Name
    name: String,
    /// Owner pid [default: the parent of procreg]
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// Metadata: the text itself, @PATH for a file's bytes, or @- for stdin
    #[arg(long, value_name = "STR|@FILE", allow_hyphen_values = true)]
    meta: Option<String>,
    /// Replace the metadata of an existing entry instead of registering
    #[arg(long, conflicts_with_all = ["pid", "ttl", "hold"])]
    update: bool,
    /// Give the entry a lease of its own: it expires unless `procreg
    /// keepalive NS NAME` renews it within DURATION (etcd: whole seconds, at
    /// least 2s), even while its owner runs
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    ttl: Option<Duration>,
    /// Stay in the foreground holding the entry: unregister it and exit 0 when
    /// the owner exits; exit with an error if the entry is removed or its lease
    /// is lost meanwhile (on etcd, this process keeps the lease alive; if it
    /// is killed, the entry expires within the lease's ttl)
    #[arg(long, conflicts_with = "ttl")]
    hold: bool,
    #[command(flatten)]
    create: CreateArgs,
}

/// Options of a registry that `put` or `join` creates (ignored for an existing one).
#[derive(Args, Debug)]
struct CreateArgs {
    /// Slot capacity, if the command creates the registry (a power of two)
    #[arg(long, value_name = "N")]
    capacity: Option<usize>,
    /// Longest metadata in bytes, if the command creates the registry
    #[arg(long, value_name = "BYTES")]
    max_metadata_len: Option<usize>,
    /// File mode in octal, if the command creates the registry [default: 600];
    /// 660 shares it with the group (see --allow-foreign-owner)
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode)]
    mode: Option<u32>,
    /// Largest segment file the command may create (512MiB, 2GiB, or bytes) [default: 1GiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_segment_size: Option<u64>,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            capacity: self.capacity,
            max_metadata_len: self.max_metadata_len,
            mode: self.mode,
            max_segment_bytes: self.max_segment_size,
        }
    }

    /// Each flag and whether it was given (etcd refuses them all).
    fn given(&self) -> [(&'static str, bool); 4] {
        [
            ("--capacity", self.capacity.is_some()),
            ("--max-metadata-len", self.max_metadata_len.is_some()),
            ("--mode", self.mode.is_some()),
            ("--max-segment-size", self.max_segment_size.is_some()),
        ]
    }
}

#[derive(Args, Debug)]
struct JoinArgs {
    /// Namespace
    #[arg(value_name = "NS")]
    ns: String,
    /// Group
    group: String,
    /// The member's pid [default: the parent of procreg]
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// Metadata: the text itself, @PATH for a file's bytes, or @- for stdin
    #[arg(long, value_name = "STR|@FILE", allow_hyphen_values = true)]
    meta: Option<String>,
    /// Replace the metadata of the existing member (--pid, else the parent
    /// of procreg) instead of joining
    #[arg(long, conflicts_with = "hold")]
    update: bool,
    /// Stay in the foreground holding the member: leave and exit 0 when it
    /// exits; exit with an error if it is removed or its lease is lost
    /// meanwhile (on etcd, this process keeps the lease alive; if it is
    /// killed, the member expires within the lease's ttl)
    #[arg(long)]
    hold: bool,
    #[command(flatten)]
    create: CreateArgs,
}

/// Parses `4096`, `64KiB`, `512MiB`, `2GiB`, `1TiB` (also `K`, `M`, `G`,
/// `T` and `KB`... as the same powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size; use e.g. 4096, 512MiB, 2GiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}; use KiB, MiB, GiB or TiB"
            ));
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .map_err(|_| format!("{s:?} is not an octal mode like 600 or 0o640"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let url = cli
        .registry
        .clone()
        .or_else(|| std::env::var("PROCREG_URL").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    let target = Target {
        url,
        allow_foreign_owner: cli.allow_foreign_owner,
    };
    let mut out = std::io::stdout().lock();
    let result =
        run(cli.command, &target, &mut out).and_then(|()| out.flush().map_err(CliError::Stdout));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(msg) = e.message() {
                eprintln!("procreg: {msg}");
            }
            ExitCode::from(e.code().exit())
        }
    }
}

fn run(cmd: Cmd, target: &Target, out: &mut impl Write) -> CliResult {
    let open = || target.open();
    match cmd {
        Cmd::Demo => cli::demo::run(out),
        Cmd::Ls { ns, wide, json } => commands::ls(&open()?, ns.as_deref(), json.json, wide, out),
        Cmd::Get { ns, name, json } => commands::get(&open()?, &ns, &name, json.json, out),
        Cmd::Put(a) => {
            let meta = commands::read_meta(a.meta.as_deref())?;
            let reg = if a.update {
                open()?
            } else {
                commands::open_or_create(target, &a.create.options())?
            };
            let pid = a.pid.unwrap_or_else(std::os::unix::process::parent_id);
            let how = if a.update {
                commands::PutMode::Update
            } else if let Some(ttl) = a.ttl {
                commands::PutMode::Lease(ttl)
            } else if a.hold {
                commands::PutMode::Hold
            } else {
                commands::PutMode::Plain
            };
            let created_with = a.create.given();
            let req = commands::PutRequest {
                ns: &a.ns,
                name: &a.name,
                pid,
                meta: &meta,
                how,
                creation_options: &created_with,
            };
            commands::put(&reg, &req, out)
        }
        Cmd::Join(a) => {
            let meta = commands::read_meta(a.meta.as_deref())?;
            let reg = if a.update {
                open()?
            } else {
                commands::open_or_create(target, &a.create.options())?
            };
            let how = if a.update {
                JoinMode::Update
            } else if a.hold {
                JoinMode::Hold
            } else {
                JoinMode::Plain
            };
            let created_with = a.create.given();
            let req = JoinRequest {
                ns: &a.ns,
                group: &a.group,
                pid: a.pid.unwrap_or_else(std::os::unix::process::parent_id),
                meta: &meta,
                how,
                creation_options: &created_with,
            };
            commands::join(&reg, &req, out)
        }
        Cmd::Leave { ns, group, pid } => {
            let pid = pid.unwrap_or_else(std::os::unix::process::parent_id);
            commands::leave(&open()?, &ns, &group, pid, out)
        }
        Cmd::Members {
            ns,
            group,
            wait,
            timeout,
            wide,
            json,
        } => {
            let reg = match wait {
                Some(n) => cli::groups::wait_members(target, &ns, &group, n, timeout)?,
                None => open()?,
            };
            commands::members(&reg, &ns, &group, json, wide, out)
        }
        Cmd::Select {
            first,
            query,
            wide,
            json,
        } => {
            let (ns, query) = match query {
                Some(q) => (Some(first.as_str()), q),
                None => (None, first.clone()),
            };
            commands::select(&open()?, ns, &query, json, wide, out)
        }
        Cmd::Keepalive { ns, name } => commands::keepalive(&open()?, &ns, &name, out),
        Cmd::Rm { ns, name, pid } => commands::rm(&open()?, &ns, &name, pid, out),
        Cmd::Wait {
            ns,
            name,
            timeout,
            json,
        } => {
            let (e, status) = commands::wait(target, &ns, &name, timeout)?;
            commands::print_entry(&e, status, json.json, out)
        }
        Cmd::Watch { ns, json } => commands::watch(&open()?, ns.as_deref(), json.json, out),
        Cmd::Sweep { quiet } => commands::sweep(&open()?, quiet, out),
        Cmd::Reap { interval } => commands::reap(&open()?, interval, out),
        Cmd::Stats {
            prometheus: true, ..
        } => cli::report::prometheus(&open()?, out),
        Cmd::Stats { json, .. } => commands::stats(&open()?, json.json, out),
        Cmd::Health { json, strict } => commands::health(&open()?, json.json, strict, out),
        Cmd::Registries { gc, min_age, json } => {
            if gc {
                cli::registries::gc(min_age, json.json, out)
            } else {
                cli::registries::list(target, json.json, out)
            }
        }
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "procreg", out);
            Ok(())
        }
        Cmd::Man { command } => {
            use clap::CommandFactory;
            let mut root = Cli::command();
            // Building names the subcommands procreg-NAME, as the page's SEE ALSO does.
            root.build();
            let page = match command.as_deref() {
                None => root,
                Some(name) => root
                    .get_subcommands()
                    .find(|c| c.get_name() == name && !c.is_hide_set())
                    .map(|c| c.clone().version(env!("CARGO_PKG_VERSION")))
                    .ok_or_else(|| {
                        CliError::Usage(format!(
                            "no subcommand {name:?}; `procreg --help` lists them"
                        ))
                    })?,
            };
            clap_mangen::Man::new(page)
                .render(out)
                .map_err(CliError::Stdout)
        }
        Cmd::Destroy { yes } => commands::destroy(target, yes, out),
        Cmd::Worker { n, url } => cli::demo::worker(n, &url),
        Cmd::Janitor { url } => cli::demo::janitor(&url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cli::error::Code;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn every_exit_code_is_distinct_and_in_the_help() {
        let help = exit_code_help();
        let mut seen = std::collections::BTreeSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.exit()), "{c:?} reuses {}", c.exit());
            assert!(help.contains(c.describe()));
        }
        assert_eq!(Code::Usage.exit(), 2, "clap's usage code");
    }
}
