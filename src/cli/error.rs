//! The command's errors and its exit-code table: the one place where exit codes
//! are defined. `procreg --help` prints the table from [`Code::ALL`].

use std::fmt::Write as _;

/// Exit codes of `procreg`. The numbers are stable: scripts and container
/// probes may rely on them; a retired number is never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Success.
    Ok = 0,
    /// Any failure not listed below.
    Failed = 1,
    /// Bad arguments (clap's own code), or `destroy` without `--yes`.
    Usage = 2,
    /// The key is not registered (or its owner is dead).
    NotFound = 3,
    /// The key is registered by a live process.
    AlreadyExists = 4,
    /// No registry at the url.
    NoSuchRegistry = 5,
    /// A registry already exists where one was to be created.
    RegistryExists = 6,
    /// The namespace or name is empty, too long or holds a NUL byte.
    InvalidKey = 7,
    /// The metadata is longer than the registry allows.
    MetadataTooLarge = 8,
    /// The owner pid is not a running process.
    ProcessNotAlive = 9,
    /// No free slot for the key.
    Full = 10,
    /// A concurrent writer kept the key busy; retry.
    Busy = 11,
    /// The file is not a segment this build can use.
    IncompatibleSegment = 12,
    /// The segment's owner or mode forbids using it.
    PermissionDenied = 13,
    /// A bad url or option value.
    InvalidArgument = 14,
    /// An operating-system call failed (including reading `--meta @FILE`).
    Io = 15,
    /// `wait` (or `members --wait`) ran out of time.
    Timeout = 16,
    /// `health` found the registry unhealthy.
    Unhealthy = 17,
    /// A networked registry (etcd) did not answer in time, or the lease an
    /// entry lived under was lost.
    Unavailable = 18,
}

impl Code {
    /// Every code, in order, for the help table.
    pub const ALL: [Code; 19] = [
        Code::Ok,
        Code::Failed,
        Code::Usage,
        Code::NotFound,
        Code::AlreadyExists,
        Code::NoSuchRegistry,
        Code::RegistryExists,
        Code::InvalidKey,
        Code::MetadataTooLarge,
        Code::ProcessNotAlive,
        Code::Full,
        Code::Busy,
        Code::IncompatibleSegment,
        Code::PermissionDenied,
        Code::InvalidArgument,
        Code::Io,
        Code::Timeout,
        Code::Unhealthy,
        Code::Unavailable,
    ];

    /// One line for the help table.
    pub fn describe(self) -> &'static str {
        match self {
            Code::Ok => "success",
            Code::Failed => "any other failure (for example a demo step)",
            Code::Usage => "usage error: bad arguments, or destroy without --yes",
            Code::NotFound => {
                "key not registered (get/rm/put --update), or its owner is dead; or not a \
                 member (leave/join --update)"
            }
            Code::AlreadyExists => "key already registered by a live process, or already a member",
            Code::NoSuchRegistry => "no registry at the url (`procreg put` creates one)",
            Code::RegistryExists => "a registry already exists where one was to be created",
            Code::InvalidKey => "namespace, name or group empty, too long, or with a NUL byte",
            Code::MetadataTooLarge => "metadata longer than the registry allows",
            Code::ProcessNotAlive => "the owner pid is not a running process",
            Code::Full => "registry full (sweep, unregister, or use a larger capacity)",
            Code::Busy => "a concurrent writer kept the key busy; retry",
            Code::IncompatibleSegment => "the file is not a segment this procreg can use",
            Code::PermissionDenied => "the segment's owner or mode forbids using it",
            Code::InvalidArgument => {
                "bad url or option value, or a select query that is not field=value"
            }
            Code::Io => "an operating-system call failed (also reading --meta @FILE)",
            Code::Timeout => {
                "wait: the key did not appear in time (members --wait: too few live members)"
            }
            Code::Unhealthy => {
                "health: a broken segment, stuck writers or nearly full (--strict: also dead owners)"
            }
            Code::Unavailable => {
                "etcd did not answer in time, or a held entry's lease was lost (put --hold)"
            }
        }
    }

    /// The process exit code.
    pub fn exit(self) -> u8 {
        self as u8
    }
}

/// The exit-code table shown at the end of `procreg --help`.
pub fn exit_code_help() -> String {
    let mut s = String::from("Exit codes:\n");
    for c in Code::ALL {
        let _ = writeln!(s, "  {:>2}  {}", c.exit(), c.describe());
    }
    s.push_str(
        "\nThe registry is --registry URL, else $PROCREG_URL, else shm:default \
         (shm:NAME is the file /dev/shm/procreg.NAME; file:/path names any file; \
         etcd://HOST:PORT[,HOST:PORT...]/PREFIX needs a build with the cargo feature \"etcd\").",
    );
    s
}

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// An error of the library, reported with its own message.
    Lib(procreg::Error),
    /// `wait` ran out of time.
    Timeout(String),
    /// `health` found problems (already printed).
    Unhealthy,
    /// A refused request that needs other arguments.
    Usage(String),
    /// `put --hold`: the held entry went away while its owner ran; `expired`
    /// when its lease ran out (or may have: the session is lost).
    Lost {
        /// What happened.
        message: String,
        /// The lease ran out (exit `Unavailable`), else it was removed (exit `Failed`).
        expired: bool,
    },
    /// An I/O error of the command itself (reading a file, spawning).
    Io {
        /// What the command was doing.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing to stdout failed (a closed pipe ends the command quietly).
    Stdout(std::io::Error),
    /// Anything else.
    Failed(String),
    /// An error of the library reworded in the command's terms (a member
    /// named as `pid P of group G`, a flag instead of an argument), with the
    /// exit code of the library error it stands for.
    Reworded {
        /// The exit code.
        code: Code,
        /// The message.
        message: String,
    },
}

impl From<procreg::Error> for CliError {
    fn from(e: procreg::Error) -> Self {
        CliError::Lib(e)
    }
}

impl CliError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            context: context.into(),
            source,
        }
    }

    /// The exit code of this error.
    pub fn code(&self) -> Code {
        use procreg::Error as E;
        match self {
            CliError::Lib(e) => match e {
                E::AlreadyExists { .. } => Code::AlreadyExists,
                E::InvalidKey(_) => Code::InvalidKey,
                E::MetadataTooLarge { .. } => Code::MetadataTooLarge,
                E::ProcessNotAlive(_) => Code::ProcessNotAlive,
                E::NotFound { .. } => Code::NotFound,
                E::Full { .. } => Code::Full,
                E::Busy(_) => Code::Busy,
                E::IncompatibleSegment(_) => Code::IncompatibleSegment,
                E::PermissionDenied(_) => Code::PermissionDenied,
                E::InvalidArgument(_) => Code::InvalidArgument,
                E::NoSuchRegistry(_) => Code::NoSuchRegistry,
                E::RegistryExists(_) => Code::RegistryExists,
                E::Io { .. } => Code::Io,
                E::Timeout { .. } => Code::Timeout,
                E::Unavailable(_) => Code::Unavailable,
                _ => Code::Failed,
            },
            CliError::Timeout(_) => Code::Timeout,
            CliError::Unhealthy => Code::Unhealthy,
            CliError::Usage(_) => Code::Usage,
            CliError::Lost { expired: true, .. } => Code::Unavailable,
            CliError::Lost { expired: false, .. } => Code::Failed,
            CliError::Io { .. } => Code::Io,
            CliError::Stdout(_) => Code::Io,
            CliError::Failed(_) => Code::Failed,
            CliError::Reworded { code, .. } => *code,
        }
    }

    /// The one-line message for stderr (`None`: print nothing).
    pub fn message(&self) -> Option<String> {
        let msg = match self {
            CliError::Lib(procreg::Error::NoSuchRegistry(at)) => format!(
                "no registry at {at}; `procreg put NS NAME` creates it, --registry URL (or \
                 $PROCREG_URL) picks another, `procreg registries` lists them"
            ),
            // The library names its Builder method; the command has a flag.
            CliError::Lib(e @ procreg::Error::PermissionDenied(_)) => e.to_string().replace(
                "Use Builder::allow_foreign_owner(true) if this is intended",
                "if it is a registry shared with your group, pass --allow-foreign-owner \
                 (see docs/group-shared.md)",
            ),
            CliError::Lib(e) => e.to_string(),
            CliError::Timeout(m) | CliError::Usage(m) | CliError::Failed(m) => m.clone(),
            CliError::Lost { message, .. } | CliError::Reworded { message, .. } => message.clone(),
            CliError::Unhealthy => return None,
            CliError::Io { context, source } => format!("{context}: {source}"),
            CliError::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return None,
            CliError::Stdout(e) => format!("cannot write to stdout: {e}"),
        };
        // One line, whatever the message holds; no etcd password.
        Some(super::fmt::redact(&msg.replace(['\n', '\r'], " ")))
    }
}

/// `Result` of a command.
pub type CliResult<T = ()> = Result<T, CliError>;
