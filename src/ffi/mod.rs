//! The C ABI. `include/procreg.h` is generated from this module by cbindgen
//! (see `build.rs` and `cbindgen.toml`); the doc comments of the C items
//! become the header's C comments, so they speak C.
//!
//! One file per C object (`registry.rs`: the handle and its options,
//! `register.rs`, `lookup.rs`: `procreg_entry`, `key.rs`: prepared keys and
//! cached services, `list.rs`, `groups.rs`: process groups and `select`,
//! `stats.rs`,
//! `health.rs`, `watch.rs`, `lease.rs`, `reaper.rs`), beside the plumbing:
//! `panic.rs` (the `ffi!` boundary), `error.rs` (failures and the
//! per-thread last error), `status.rs` (statuses, generated from the one
//! list in `status_list.rs`), `sized.rs` (extensible structs) and `util.rs`
//! (C strings, buffers, out-pointers). Only the public Rust API is used.
//!
//! Rules every function here keeps:
//! * its body is one [`ffi!`], which catches panics (`PROCREG_E_PANIC`),
//!   so no panic ever unwinds into C;
//! * every pointer argument is checked for NULL (`PROCREG_E_NULL_ARGUMENT`);
//! * out-parameters are written only when `PROCREG_OK` is returned (the one
//!   exception: the needed length of a `PROCREG_E_BUFFER_TOO_SMALL`);
//! * every struct passed in begins with `size_t struct_size` (see `sized.rs`);
//! * strings are NUL-terminated UTF-8 (`PROCREG_E_INVALID_UTF8`), and lengths
//!   are checked against the registry's limits by the registry itself;
//! * a failure records a detailed message for `procreg_last_error_message`.
#![allow(non_camel_case_types)]
// The C names are the API; their docs are written for C readers.
#![allow(clippy::missing_safety_doc)]

#[macro_use]
mod panic;
mod error;
mod groups;
mod health;
mod key;
mod lease;
mod list;
mod lookup;
mod reaper;
mod register;
mod registry;
mod sized;
mod stats;
mod status;
mod util;
mod watch;

pub use error::{procreg_last_error_message, procreg_last_error_pid};
pub use groups::{
    procreg_join, procreg_join_self, procreg_leave, procreg_list_members, procreg_members,
    procreg_select, procreg_update_member_metadata, procreg_wait_for_members,
};
pub use health::{procreg_health, procreg_health_t, procreg_liveness_mode};
pub use key::{
    procreg_key, procreg_key_free, procreg_key_new, procreg_lookup_pid_key, procreg_service,
    procreg_service_close, procreg_service_open, procreg_service_pid,
};
pub use lease::{procreg_keepalive, procreg_register_with_lease};
pub use list::{procreg_entry_view, procreg_list, procreg_list_all, procreg_visit_fn};
pub use lookup::{
    procreg_entry, procreg_lookup, procreg_lookup_checked, procreg_lookup_metadata,
    procreg_lookup_pid, procreg_wait_for,
};
pub use reaper::{
    procreg_reaper, procreg_reaper_reclaimed, procreg_reaper_start, procreg_reaper_stop,
};
pub use register::{
    procreg_clear_namespace, procreg_register, procreg_register_self, procreg_sweep,
    procreg_unregister, procreg_unregister_if_owner, procreg_update_metadata,
};
pub use registry::{
    CreateModeArg, procreg, procreg_close, procreg_create_mode, procreg_destroy, procreg_open,
    procreg_options, procreg_options_default, procreg_version,
};
pub use stats::{procreg_revision, procreg_stats, procreg_stats_t};
pub use status::{StatusArg, procreg_status, procreg_strerror};
pub use watch::{
    procreg_event, procreg_event_kind, procreg_watch, procreg_watch_close, procreg_watch_next,
    procreg_watcher,
};
