// The one list of C ABI statuses: number, C name, the message of
// procreg_strerror and the Rust `Error` variants that map to it.
//
// It is `include!`d twice: by `src/ffi/status.rs`, whose macro turns it into
// the Rust `procreg_status` enum, `procreg_strerror` and the error mapping,
// and by `build.rs`, whose macro of the same name writes the enum as plain
// Rust for cbindgen (which does not expand macros) into the header. The
// Python binding's exception table is checked against the header by
// bindings/python/tests/test_api.py.
//
// Numbers are stable: add new statuses with new numbers; never renumber or
// reuse one. A status that is retired is removed from this list and its
// number added to `RETIRED` in status.rs.
procreg_statuses! {
    /// Status of every procreg call. The numbers are stable: new values may
    /// be added, existing ones never change meaning, and retired ones are
    /// never reused.
    pub enum procreg_status {
        /// Success.
        PROCREG_OK = 0 => "success",
        /// The key is registered already by a live process
        /// (procreg_last_error_pid() tells which).
        PROCREG_E_ALREADY_EXISTS = 1 => "key already registered by a live process"
            from Error::AlreadyExists { .. },
        /// The namespace or name is empty, too long for this registry, or holds a NUL.
        PROCREG_E_INVALID_KEY = 2 => "invalid key (empty, too long for this registry, or contains NUL)"
            from Error::InvalidKey(_),
        /// The metadata is larger than this registry allows.
        PROCREG_E_METADATA_TOO_LARGE = 3 => "metadata larger than this registry allows"
            from Error::MetadataTooLarge { .. },
        /// The pid given as owner is not a running process.
        PROCREG_E_PROCESS_NOT_ALIVE = 4 => "owner process is not alive"
            from Error::ProcessNotAlive(_),
        /// The key is not registered.
        PROCREG_E_NOT_FOUND = 5 => "key not registered"
            from Error::NotFound { .. },
        /// No free slot near the key's home: sweep, unregister, or use a larger capacity.
        PROCREG_E_FULL = 6 => "registry full"
            from Error::Full { .. },
        /// A concurrent writer kept the slot or its neighbourhood busy; retry.
        PROCREG_E_BUSY = 7 => "registry busy; retry"
            from Error::Busy(_),
        /// The segment file is not one this build can use (or its limits differ
        /// from the ones asked for).
        PROCREG_E_INCOMPATIBLE_SEGMENT = 8 => "incompatible segment"
            from Error::IncompatibleSegment(_),
        /// The segment's owner, mode or permissions forbid using it.
        PROCREG_E_PERMISSION_DENIED = 9 => "permission denied"
            from Error::PermissionDenied(_),
        /// An argument other than the key is out of range (an option, a url,
        /// pid 0, a struct_size).
        PROCREG_E_INVALID_ARGUMENT = 10 => "invalid argument"
            from Error::InvalidArgument(_),
        /// No registry exists at the url and the call does not create one.
        PROCREG_E_NO_SUCH_REGISTRY = 11 => "no registry at this url"
            from Error::NoSuchRegistry(_),
        /// A registry exists at the url and the call demanded to create it.
        PROCREG_E_REGISTRY_EXISTS = 12 => "a registry already exists at this url"
            from Error::RegistryExists(_),
        /// An operating-system call failed (the message names it).
        PROCREG_E_IO = 13 => "operating-system error"
            from Error::Io { .. },
        /// A wait ended before what it waited for happened.
        PROCREG_E_TIMEOUT = 14 => "timed out"
            from Error::Timeout { .. },
        /// A watcher fell behind the change history; re-read with procreg_list
        /// and keep watching.
        PROCREG_E_LAGGED = 15 => "watcher lagged behind the change history"
            from Error::Lagged { .. },
        /// A networked registry's cluster did not answer within the handle's
        /// timeout, or this handle's session lease is lost (its writes are
        /// fenced); the message names the endpoints tried.
        PROCREG_E_UNAVAILABLE = 16 => "registry unavailable"
            from Error::Unavailable(_),
        /// A pointer argument was NULL.
        PROCREG_E_NULL_ARGUMENT = 100 => "NULL pointer argument",
        /// A string argument is not valid UTF-8.
        PROCREG_E_INVALID_UTF8 = 101 => "string argument is not valid UTF-8",
        /// The caller's buffer cannot hold the result; the call's size
        /// out-parameter (or the message) gives the size needed.
        PROCREG_E_BUFFER_TOO_SMALL = 102 => "buffer too small",
        /// procreg panicked: a bug. The registry stays consistent; please report it.
        PROCREG_E_PANIC = 103 => "internal panic (a procreg bug)",
        /// An error this version of the header does not know (a newer library).
        PROCREG_E_UNKNOWN = 199 => "unknown error (library newer than header)",
    }
}
