//! Process groups and metadata queries: join, leave, update a member,
//! members, list_members, wait_for_members, select.
//!
//! The readers lend each entry as a `procreg_entry_view` (see `list.rs`)
//! with `member` set for a group member. Unlike procreg_list they do not
//! scan the table in place: the Rust calls they wrap (`Registry::members`,
//! `list_members`, `select`, `wait_for_members`) read the whole namespace
//! into a sorted list first, so they allocate per entry read.

use super::error::{Fail, FfiResult};
use super::list::{VisitFn, procreg_visit_fn, visit_entries};
use super::registry::{procreg, registry};
use super::status::procreg_status;
use super::util::{bytes, opt_text, out_ptr, put, text};
use crate::{Error, Registry};
use std::ffi::{c_char, c_void};
use std::time::Duration;

/// The handle, namespace and group of a group call.
///
/// # Safety
/// `reg` is NULL or a live handle; `ns` and `group` are NULL or
/// NUL-terminated strings that outlive `'a`.
unsafe fn reg_group<'a>(
    reg: *const procreg,
    ns: *const c_char,
    group: *const c_char,
) -> Result<(&'a Registry, &'a str, &'a str), Fail> {
    // SAFETY: forwarded from the exported function's contract.
    unsafe { Ok((registry(reg)?, text(ns, "ns")?, text(group, "group")?)) }
}

/// `PROCREG_E_NOT_FOUND` for a pid that is not a member, in C's words.
#[cold]
fn not_member(ns: &str, group: &str, pid: u32) -> Fail {
    Fail::Said(
        procreg_status::PROCREG_E_NOT_FOUND,
        format!(
            "pid {pid} is not a member of group {group:?} in namespace {ns:?}; \
             procreg_join adds it"
        ),
        0,
    )
}

/// A library error of a member call, in C's words: the library's
/// `AlreadyExists` and `NotFound` of a member speak of a key; a C caller
/// reads of a member and the call that helps.
#[cold]
fn member_fail(e: Error, ns: &str, group: &str, pid: u32) -> Fail {
    match e {
        Error::AlreadyExists {
            pid: owner, alive, ..
        } => Fail::Said(
            procreg_status::PROCREG_E_ALREADY_EXISTS,
            format!(
                "pid {owner} is already a member of group {group:?} in namespace {ns:?} \
                 ({alive}); procreg_update_member_metadata changes its metadata, \
                 procreg_leave removes it"
            ),
            owner,
        ),
        Error::NotFound { .. } => not_member(ns, group, pid),
        e => e.into(),
    }
}

/// Adds process `pid` to `group` of namespace `ns` with its own metadata
/// (`meta_len` bytes; `meta` may be NULL when `meta_len` is 0). A group and
/// a unique key may share a name. Each member has its own liveness: a member
/// whose process dies is reclaimed like a dead entry (procreg_sweep, a
/// reaper). A group has no size limit of its own: each member takes one
/// entry of the registry.
///
/// Errors: PROCREG_E_ALREADY_EXISTS if `pid` is a live member of `group`
/// already (procreg_last_error_pid() gives it); PROCREG_E_INVALID_KEY for
/// an empty or over-long namespace or group (a group may be at most the
/// registry's max_name_len - 11 bytes: the member's stored name adds a NUL
/// and up to 10 digits); PROCREG_E_METADATA_TOO_LARGE;
/// PROCREG_E_INVALID_ARGUMENT for pid 0; PROCREG_E_PROCESS_NOT_ALIVE;
/// PROCREG_E_FULL; PROCREG_E_BUSY; PROCREG_E_NULL_ARGUMENT;
/// PROCREG_E_INVALID_UTF8. Cost: one register.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_join(
    reg: *const procreg,
    ns: *const c_char,
    group: *const c_char,
    pid: u32,
    meta: *const u8,
    meta_len: usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, group) = unsafe { reg_group(reg, ns, group) }?;
        // SAFETY: the exported function's contract.
        let meta = unsafe { bytes(meta, meta_len, "meta") }?;
        r.join(ns, group, pid, meta)
            .map_err(|e| member_fail(e, ns, group, pid))?;
        Ok(())
    })
}

/// Adds the calling process to `group` of namespace `ns` (as procreg_join,
/// with the caller's pid).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_join_self(
    reg: *const procreg,
    ns: *const c_char,
    group: *const c_char,
    meta: *const u8,
    meta_len: usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, group) = unsafe { reg_group(reg, ns, group) }?;
        // SAFETY: the exported function's contract.
        let meta = unsafe { bytes(meta, meta_len, "meta") }?;
        r.join_self(ns, group, meta)
            .map_err(|e| member_fail(e, ns, group, std::process::id()))?;
        Ok(())
    })
}

/// Removes member `pid` from `group` of `ns` (as procreg_unregister does a
/// key). PROCREG_E_NOT_FOUND if `pid` was not a member; otherwise as
/// procreg_join (PROCREG_E_INVALID_KEY, PROCREG_E_BUSY, ...).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_leave(
    reg: *const procreg,
    ns: *const c_char,
    group: *const c_char,
    pid: u32,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, group) = unsafe { reg_group(reg, ns, group) }?;
        if r.leave(ns, group, pid)? {
            Ok(())
        } else {
            Err(not_member(ns, group, pid))
        }
    })
}

/// Replaces the metadata of member `pid` of `group` (`meta` may be NULL when
/// `meta_len` is 0); readers never wait for it. PROCREG_E_NOT_FOUND if `pid`
/// is not a member; PROCREG_E_METADATA_TOO_LARGE, PROCREG_E_INVALID_KEY,
/// PROCREG_E_BUSY as procreg_join.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_update_member_metadata(
    reg: *const procreg,
    ns: *const c_char,
    group: *const c_char,
    pid: u32,
    meta: *const u8,
    meta_len: usize,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, group) = unsafe { reg_group(reg, ns, group) }?;
        // SAFETY: the exported function's contract.
        let meta = unsafe { bytes(meta, meta_len, "meta") }?;
        r.update_member_metadata(ns, group, pid, meta)
            .map_err(|e| member_fail(e, ns, group, pid))?;
        Ok(())
    })
}

/// Lends `entries` to `visit` (the body of every reader below).
///
/// # Safety
/// `visit` is a valid function taking `ctx`.
unsafe fn lend(
    r: &Registry,
    entries: crate::Result<Vec<crate::Entry>>,
    visit: VisitFn,
    ctx: *mut c_void,
) -> FfiResult {
    let entries = entries?;
    // SAFETY: forwarded.
    unsafe { visit_entries(r, &entries, visit, ctx) };
    Ok(())
}

/// Calls `fn(entry, ctx)` once per member of `group` in `ns`, sorted by pid,
/// until it returns non-zero: `entry->member` is true, `entry->name` is the
/// group and `entry->pid` the member. Lists a member whose owner died until
/// something reclaims it (procreg_sweep, a reaper), as procreg_list does.
/// An unknown group has no members: PROCREG_OK without a call.
///
/// Cost: reads the whole namespace (a scan of the table on shm:/mem:, a
/// range read on etcd://) into a list first, then calls back: it allocates
/// per entry read, unlike procreg_list. The callback may call procreg
/// functions. Errors: PROCREG_E_INVALID_KEY, PROCREG_E_BUSY,
/// PROCREG_E_NULL_ARGUMENT, PROCREG_E_INVALID_UTF8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_members(
    reg: *const procreg,
    ns: *const c_char,
    group: *const c_char,
    visit: procreg_visit_fn,
    ctx: *mut c_void,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, group) = unsafe { reg_group(reg, ns, group) }?;
        let visit = visit.ok_or(Fail::Null("fn"))?;
        // SAFETY: the caller's function and context.
        unsafe { lend(r, r.members(ns, group), visit, ctx) }
    })
}

/// Calls `fn(entry, ctx)` once per member of every group of `ns` (NULL:
/// of every namespace), sorted by namespace, group and pid, until it returns
/// non-zero (`entry->member` true, `entry->name` the group). Cost and errors
/// as procreg_members (it reads the namespace, or the whole registry when
/// `ns` is NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_list_members(
    reg: *const procreg,
    ns: *const c_char,
    visit: procreg_visit_fn,
    ctx: *mut c_void,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        // SAFETY: NULL or NUL-terminated by contract.
        let ns = unsafe { opt_text(ns, "ns") }?;
        let visit = visit.ok_or(Fail::Null("fn"))?;
        // SAFETY: the caller's function and context.
        unsafe { lend(r, r.list_members(ns), visit, ctx) }
    })
}

/// Calls `fn(entry, ctx)` once per unique entry and group member of `ns`
/// (NULL: of every namespace) whose metadata matches every term of `query`,
/// sorted by namespace and name (`entry->member` tells a member from a
/// unique entry), until it returns non-zero.
///
/// `query` is `field=value` terms separated by whitespace, `;` or `,` ("role=api
/// port=8080"); a term matches when the metadata has `field` with exactly
/// `value`. Metadata fields come from `k=v` tokens separated by whitespace,
/// ';' or ',', or from a flat JSON object (a value compared as its JSON
/// text, a string without its quotes); metadata of any other form matches
/// nothing. PROCREG_E_INVALID_ARGUMENT for a query that is not `field=value`
/// terms (empty, a term without '=' or without a field). Cost: reads the
/// namespace (or the whole registry) and parses each metadata; there is no
/// index. Other errors as procreg_members.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn procreg_select(
    reg: *const procreg,
    ns: *const c_char,
    query: *const c_char,
    visit: procreg_visit_fn,
    ctx: *mut c_void,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let r = unsafe { registry(reg) }?;
        // SAFETY: NULL or NUL-terminated by contract.
        let ns = unsafe { opt_text(ns, "ns") }?;
        // SAFETY: NUL-terminated by contract.
        let query = unsafe { text(query, "query") }?;
        let visit = visit.ok_or(Fail::Null("fn"))?;
        // SAFETY: the caller's function and context.
        unsafe { lend(r, r.select(ns, query), visit, ctx) }
    })
}

/// Waits up to `timeout_ms` until `group` of `ns` has at least `n` members
/// whose owner is alive (or cannot be judged from here); returns at once if
/// it has (always for `n` = 0: then it just counts). On PROCREG_OK `*count` is the number of live members (>= n), and
/// `fn`, unless NULL, is called once per live member, sorted by pid, as by
/// procreg_members. It never polls: it sleeps on the registry's change
/// stream (a futex shared by every process of an shm: segment; a watch on
/// etcd://) and recounts the group after each change of it.
///
/// PROCREG_E_TIMEOUT when the time runs out first (the message says how
/// many live members there were; `*count` is not written). Each count reads
/// the whole namespace, as procreg_members. Other errors as procreg_members.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn procreg_wait_for_members(
    reg: *const procreg,
    ns: *const c_char,
    group: *const c_char,
    n: usize,
    timeout_ms: u64,
    count: *mut usize,
    visit: procreg_visit_fn,
    ctx: *mut c_void,
) -> procreg_status {
    ffi!({
        // SAFETY: the exported function's contract.
        let (r, ns, group) = unsafe { reg_group(reg, ns, group) }?;
        let count = out_ptr(count, "count")?;
        let live = r.wait_for_members(ns, group, n, Duration::from_millis(timeout_ms))?;
        // SAFETY: checked non-NULL, writable by contract.
        unsafe { put(count, live.len()) };
        if let Some(visit) = visit {
            // SAFETY: the caller's function and context.
            unsafe { visit_entries(r, &live, visit, ctx) };
        }
        Ok(())
    })
}
