//! Process groups and metadata queries: [`Registry::join`],
//! [`Registry::members`], [`Registry::wait_for_members`],
//! [`Registry::select`].
//!
//! A member of group `G` with pid `P` is an ordinary entry of the backend
//! under the name `"G\0P"` (`P` in decimal), in a keyspace of its own: the
//! backend key carries `member` (`backend::Key::member`), which the table
//! stores as a bit of the row's lens word (`table::MEMBER`, layout version
//! 5), so a unique key never compares equal to a member's and hashes apart
//! from it. A lookup of a unique key therefore never meets a member, and
//! its hit needs no scan for NUL bytes (its miss scans, to refuse a NUL with
//! `InvalidKey`); etcd refuses a unique key with a NUL before it is sent. A
//! group shares its name with a unique key without clashing. Being an
//! entry, a member gets all the entry machinery on every backend: owner
//! liveness, metadata, reclaim by checked reads (`member_checked`), `sweep`
//! and the reaper, and on `etcd://` the key under its owner's session
//! lease, so a dead host's members expire with it. The table's slot protocol is unchanged:
//! a member is a key like any other, so its claim, commit and reclaim are
//! the ones the loom models already cover.
//!
//! Members of one group hash apart (their pids differ), so the probe window
//! does not bound a group: the largest group is the registry's free
//! capacity, and a join past it fails with `Full` as `register` does.
//!
//! The facade decodes member names on the way out: an [`Entry`] or
//! [`Event`](crate::Event) of a member has `member == true` and `name` set
//! to the group. `list`, `list_all` and `visit` show unique entries only;
//! [`Registry::members`] and [`Registry::list_members`] show members;
//! [`Registry::select`] and watchers show both.

pub(crate) mod query;

use crate::backend::{self, Backend, Who};
use crate::error::{Error, Result};
use crate::registry::{Registry, check_part};
use crate::types::{Entry, Event, EventKind};
use std::time::{Duration, Instant};

/// Bytes a member name adds to its group's: the NUL and a pid of up to 10
/// decimal digits.
pub(crate) const MEMBER_SUFFIX: usize = 11;

/// The stored name of member `pid` of `group`.
fn member_name(group: &str, pid: u32) -> String {
    // One allocation of the final size; `format!` costs a third of a
    // join + leave (its machinery and a realloc).
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut p = pid;
    loop {
        i -= 1;
        digits[i] = b'0' + (p % 10) as u8;
        p /= 10;
        if p == 0 {
            break;
        }
    }
    let mut s = String::with_capacity(group.len() + 1 + digits.len() - i);
    s.push_str(group);
    s.push('\0');
    for &d in &digits[i..] {
        s.push(d as char);
    }
    s
}

/// Whether a stored name is a member's (holds a NUL byte).
#[inline]
pub(crate) fn is_member_name(name: &[u8]) -> bool {
    name.contains(&0)
}

/// Takes the events already queued on `w` without waiting (at most 4,096,
/// so that a flood of changes cannot hold the caller here).
fn drain(w: &mut crate::Watcher) -> Result<()> {
    for _ in 0..4096 {
        match w.next(Duration::ZERO) {
            Ok(_) | Err(Error::Lagged { .. }) => {}
            Err(Error::Timeout { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether the stored name `name` is a member of `group`.
fn in_group(name: &str, group: &str) -> bool {
    name.strip_prefix(group)
        .is_some_and(|rest| rest.starts_with('\0'))
}

/// Turns a stored member entry into its public form (`name` = the group,
/// `member` = true); a unique entry is left as it is.
pub(crate) fn decode_entry(mut e: Entry) -> Entry {
    if let Some(i) = e.name.find('\0') {
        e.name.truncate(i);
        e.member = true;
    }
    e
}

/// [`decode_entry`] for an event. The member's pid is also in its stored
/// name, which fills `pid` where the backend does not know it (an etcd
/// delete carries no value).
pub(crate) fn decode_event(mut e: Event) -> Event {
    if let Some(i) = e.name.find('\0') {
        if e.pid == 0 {
            e.pid = e.name[i + 1..].parse().unwrap_or(0);
        }
        e.name.truncate(i);
        e.member = true;
    }
    e
}

impl Registry {
    fn check_group(&self, ns: &str, group: &str) -> Result<()> {
        let l = self.limits();
        check_part("namespace", ns, l.max_namespace_len)?;
        let max = l.max_name_len.saturating_sub(MEMBER_SUFFIX);
        if group.len() > max && !group.is_empty() {
            return Err(Error::InvalidKey(format!(
                "group {:?}… is {} bytes but this registry allows at most {max} \
                 (its max_name_len {} less {MEMBER_SUFFIX} bytes that name the member); \
                 use a shorter group name",
                group.chars().take(16).collect::<String>(),
                group.len(),
                l.max_name_len
            )));
        }
        check_part("group", group, max)
    }

    fn check_meta(&self, metadata: &[u8]) -> Result<()> {
        let max = self.limits().max_metadata_len;
        if metadata.len() > max {
            return Err(Error::MetadataTooLarge {
                len: metadata.len(),
                max,
            });
        }
        Ok(())
    }

    /// Adds process `pid` to `group` of namespace `ns` with its own
    /// `metadata`; returns the member's version. A group and a unique key
    /// may share a name. Each member has its own owner liveness: a member
    /// whose process died is reclaimed by
    /// [`member_checked`](Self::member_checked), [`sweep`](Self::sweep) or
    /// the reaper, and on `etcd://` with its owner's lease. A group has no size limit of its own: each member takes one
    /// entry of the registry, so a group is bounded by the registry's
    /// capacity (`Full` past it, as for `register`).
    ///
    /// # Errors
    /// `AlreadyExists` if `pid` is a live member of `group` already (the
    /// error's `name` is the group); `InvalidKey` for a bad namespace or
    /// group (the group may be at most `max_name_len - 11` bytes);
    /// `MetadataTooLarge`; `InvalidArgument` (pid 0); `ProcessNotAlive`;
    /// `Full`; `Busy`.
    pub fn join(&self, ns: &str, group: &str, pid: u32, metadata: &[u8]) -> Result<u64> {
        if pid == 0 {
            return Err(Error::InvalidArgument(
                "pid 0 is not a process; give the member's pid".into(),
            ));
        }
        self.join_as(ns, group, pid, Who::Pid(pid), metadata)
    }

    /// Adds the calling process to `group` of namespace `ns`; returns the
    /// member's version.
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub fn join_self(&self, ns: &str, group: &str, metadata: &[u8]) -> Result<u64> {
        self.join_as(ns, group, std::process::id(), Who::Me, metadata)
    }

    fn join_as(&self, ns: &str, group: &str, pid: u32, who: Who, metadata: &[u8]) -> Result<u64> {
        self.check_group(ns, group)?;
        self.check_meta(metadata)?;
        let name = member_name(group, pid);
        self.backend_ref()
            .register(backend::Key::member(ns, &name), who, metadata, None)
            .map_err(|e| group_error(e, group, pid))
    }

    /// Removes member `pid` from `group`; false if it was not a member.
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`.
    pub fn leave(&self, ns: &str, group: &str, pid: u32) -> Result<bool> {
        self.check_group(ns, group)?;
        let name = member_name(group, pid);
        self.backend_ref()
            .unregister(backend::Key::member(ns, &name), None)
            .map_err(|e| group_error(e, group, pid))
    }

    /// Replaces the metadata of member `pid` of `group`; returns the new
    /// version. Readers never wait for it.
    ///
    /// # Errors
    /// `NotFound` if `pid` is not a member (the error's `name` is the
    /// group); `InvalidKey`, `MetadataTooLarge`, `Busy`.
    pub fn update_member_metadata(
        &self,
        ns: &str,
        group: &str,
        pid: u32,
        metadata: &[u8],
    ) -> Result<u64> {
        self.check_group(ns, group)?;
        self.check_meta(metadata)?;
        let name = member_name(group, pid);
        self.backend_ref()
            .update_metadata(backend::Key::member(ns, &name), metadata)
            .map_err(|e| group_error(e, group, pid))
    }

    /// Member `pid` of `group`, if it is one: its entry (`member` = true,
    /// `name` = the group), whatever its owner's liveness, as
    /// [`lookup`](Self::lookup) gives an entry. One read of one key.
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`; the backend's.
    pub fn member(&self, ns: &str, group: &str, pid: u32) -> Result<Option<Entry>> {
        self.check_group(ns, group)?;
        let name = member_name(group, pid);
        Ok(self
            .backend_ref()
            .lookup(backend::Key::member(ns, &name))
            .map_err(|e| group_error(e, group, pid))?
            .map(decode_entry))
    }

    /// Like [`member`](Self::member), but a member whose owner is dead is
    /// reclaimed and missed, as [`lookup_checked`](Self::lookup_checked)
    /// does for an entry: the checked read of one member.
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`; the backend's.
    pub fn member_checked(&self, ns: &str, group: &str, pid: u32) -> Result<Option<Entry>> {
        self.check_group(ns, group)?;
        let name = member_name(group, pid);
        Ok(self
            .backend_ref()
            .lookup_checked(backend::Key::member(ns, &name))
            .map_err(|e| group_error(e, group, pid))?
            .map(decode_entry))
    }

    /// The liveness of member `pid` of `group`, judged now as
    /// [`owner_liveness`](Self::owner_liveness) judges an entry's owner
    /// (`Unknown` for an owner on another host or out of sight); `None`
    /// when `pid` is not a member. Changes nothing.
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`; the backend's.
    pub fn member_liveness(
        &self,
        ns: &str,
        group: &str,
        pid: u32,
    ) -> Result<Option<crate::Liveness>> {
        self.check_group(ns, group)?;
        let name = member_name(group, pid);
        self.backend_ref()
            .owner_liveness(backend::Key::member(ns, &name))
            .map_err(|e| group_error(e, group, pid))
    }

    /// The members of `group` in namespace `ns`, sorted by pid: entries
    /// with `name` = the group and `member` = true. Like [`list`](Self::list)
    /// it shows a member whose owner died until `sweep` or the reaper
    /// reclaims it ([`wait_for_members`](Self::wait_for_members) counts only
    /// live members but reclaims none). Cost: one read of the namespace (a scan of the table's
    /// control words on `shm:`/`mem:`, a range read on `etcd://`).
    ///
    /// # Errors
    /// `InvalidKey`, `Busy`; the backend's.
    pub fn members(&self, ns: &str, group: &str) -> Result<Vec<Entry>> {
        self.check_group(ns, group)?;
        let mut v: Vec<Entry> = self
            .backend_ref()
            .list(Some(ns))?
            .into_iter()
            .filter(|e| in_group(&e.name, group))
            .map(decode_entry)
            .collect();
        v.sort_by_key(|e| e.pid);
        Ok(v)
    }

    /// Every member of every group of namespace `ns` (or of all namespaces),
    /// sorted by (namespace, group, pid).
    ///
    /// # Errors
    /// `InvalidKey` for a bad namespace, `Busy`; the backend's.
    pub fn list_members(&self, ns: Option<&str>) -> Result<Vec<Entry>> {
        if let Some(ns) = ns {
            check_part("namespace", ns, self.limits().max_namespace_len)?;
        }
        let mut v: Vec<Entry> = self
            .backend_ref()
            .list(ns)?
            .into_iter()
            .filter(|e| is_member_name(e.name.as_bytes()))
            .map(decode_entry)
            .collect();
        v.sort_by(|a, b| (&a.namespace, &a.name, a.pid).cmp(&(&b.namespace, &b.name, b.pid)));
        Ok(v)
    }

    /// Waits until `group` has at least `n` members whose owner is alive
    /// (or cannot be judged from here) and returns the members; at once if
    /// it already has. Never polls: it sleeps on the registry's change
    /// stream (a [`Watcher`](crate::Watcher) of the namespace: on `shm:` a
    /// futex shared by every process of the segment, on `etcd://` a watch),
    /// and recounts after each change of the namespace.
    ///
    /// # Errors
    /// `Timeout` when `timeout` passes first; `InvalidKey`, `Busy`; the
    /// backend's.
    pub fn wait_for_members(
        &self,
        ns: &str,
        group: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Entry>> {
        self.check_group(ns, group)?;
        let started = Instant::now();
        // Attach first, then count: a join after the count is an event the
        // watcher delivers, so no join is missed between the two.
        let mut watcher = self.watch(Some(ns), self.revision()?)?;
        let mut have = 0;
        let mut recount = true;
        loop {
            if recount {
                // A burst of joins queues many events: one recount after
                // taking what is already queued covers them all (a recount
                // per event would read the namespace once per join).
                drain(&mut watcher)?;
                let live = self.live_members(ns, group)?;
                if live.len() >= n {
                    return Ok(live);
                }
                have = live.len();
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(self.members_timeout(ns, group, n, have, started));
            }
            match watcher.next(left) {
                // A change of this group's members, or changes that were
                // lost, may change the count; other keys of the namespace
                // do not.
                Ok(ev) => recount = ev.kind == EventKind::Lost || (ev.member && ev.name == group),
                Err(Error::Lagged { .. }) => recount = true,
                Err(Error::Timeout { .. }) => {
                    let have = self.live_members(ns, group)?;
                    if have.len() >= n {
                        return Ok(have);
                    }
                    return Err(self.members_timeout(ns, group, n, have.len(), started));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn members_timeout(&self, ns: &str, group: &str, n: usize, have: usize, t: Instant) -> Error {
        Error::Timeout {
            what: format!(
                "group {group:?} in namespace {ns:?} to have {n} live members (it has {have})"
            ),
            waited: t.elapsed(),
        }
    }

    /// The members of `group` whose owner is not known to be dead: one read
    /// of the namespace with each owner judged (on `etcd://` from the listed
    /// records, not a read per member).
    fn live_members(&self, ns: &str, group: &str) -> Result<Vec<Entry>> {
        let mut v: Vec<Entry> = self
            .backend_ref()
            .list_judged(Some(ns))?
            .into_iter()
            .filter(|(e, l)| {
                in_group(&e.name, group)
                    && matches!(l, crate::Liveness::Alive | crate::Liveness::Unknown)
            })
            .map(|(e, _)| decode_entry(e))
            .collect();
        v.sort_by_key(|e| e.pid);
        Ok(v)
    }

    /// The unique entries and group members of namespace `ns` (or of all
    /// namespaces) whose metadata matches every term of `query`, sorted by
    /// (namespace, name), a unique entry before the members of a same-named
    /// group, members by pid.
    ///
    /// `query` is `field=value` terms separated by whitespace, `;` or `,`
    /// (`role=api port=8080`); a term matches when the entry's metadata has
    /// `field` with exactly `value`. Metadata fields come from `k=v` tokens
    /// separated the same way (as `procreg demo` writes them: `role=api
    /// port=8081 worker=1`), or from a JSON object
    /// (`{"role":"api","port":8081}`: a value is compared as its JSON text
    /// as written, so `1e3` is not `1000`; a string without its quotes and
    /// escapes; of two equal keys the last). A value holding whitespace, `;`
    /// or `,` cannot be queried. Metadata of any other form, or not UTF-8,
    /// matches no term.
    ///
    /// Cost: one read of the namespace (or registry) and a parse of each
    /// entry's metadata: a scan of the table on `shm:`/`mem:`, a range
    /// read on `etcd://`. There is no index.
    ///
    /// # Errors
    /// `InvalidArgument` for a query that is not `field=value` terms;
    /// `InvalidKey` for a bad namespace; `Busy`; the backend's.
    pub fn select(&self, ns: Option<&str>, query: &str) -> Result<Vec<Entry>> {
        let terms = query::parse_query(query)?;
        if let Some(ns) = ns {
            check_part("namespace", ns, self.limits().max_namespace_len)?;
        }
        let mut v: Vec<Entry> = self
            .backend_ref()
            .list(ns)?
            .into_iter()
            .filter(|e| query::matches(&terms, &e.metadata))
            .map(decode_entry)
            .collect();
        v.sort_by(|a, b| {
            (&a.namespace, &a.name, a.member, a.pid).cmp(&(&b.namespace, &b.name, b.member, b.pid))
        });
        Ok(v)
    }
}

/// A member error names the group, not the stored member name: the kinds
/// that carry a name get the group, and messages that quote the stored
/// name (`Busy`, the etcd engine's `InvalidArgument`) say "member P of
/// group G" instead.
fn group_error(e: Error, group: &str, pid: u32) -> Error {
    let fix = |m: String| {
        let stored = member_name(group, pid);
        let said = format!("member {pid} of group {group:?}");
        m.replace(&format!("{stored:?}"), &said)
            .replace(&stored, &said)
    };
    match e {
        Error::Busy(m) => Error::Busy(fix(m)),
        Error::InvalidArgument(m) => Error::InvalidArgument(fix(m)),
        Error::InvalidKey(m) => Error::InvalidKey(fix(m)),
        Error::AlreadyExists {
            namespace,
            pid,
            alive,
            ..
        } => Error::AlreadyExists {
            namespace,
            name: group.to_owned(),
            pid,
            alive,
        },
        Error::NotFound { namespace, .. } => Error::NotFound {
            namespace,
            name: group.to_owned(),
        },
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_errors_name_the_member_not_its_stored_name() {
        let raw = Error::Busy("key \"api\\04242\" in namespace \"svc\" kept changing".into());
        let e = group_error(raw, "api", 4242).to_string();
        assert!(e.contains(r#"member 4242 of group "api""#), "{e}");
        assert!(!e.contains("\\0"), "{e}");
        let raw = Error::InvalidArgument("svc/api\u{0}4242 belongs to another handle".into());
        let e = group_error(raw, "api", 4242).to_string();
        assert!(
            e.contains(r#"svc/member 4242 of group "api" belongs"#),
            "{e}"
        );
        assert!(!e.contains('\0'), "{e}");
    }

    #[test]
    fn member_names_are_group_nul_decimal_pid() {
        for pid in [0, 1, 9, 10, 4242, u32::MAX] {
            assert_eq!(member_name("api", pid), format!("api\0{pid}"));
        }
        assert_eq!(member_name("api", u32::MAX).len(), 3 + MEMBER_SUFFIX);
    }
}
