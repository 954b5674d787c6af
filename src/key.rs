//! Prepared keys: a `(namespace, name)` validated, packed and hashed once.

use crate::error::{Error, Result};
use crate::registry::check_part;
use crate::table::key::PackedKey;
use std::fmt;

/// A `(namespace, name)` key validated, packed and hashed once, for lookups
/// that repeat: [`Registry::lookup_pid_key`](crate::Registry::lookup_pid_key)
/// and [`Registry::lookup_key`](crate::Registry::lookup_key) then only
/// compare its lengths with the registry's limits before they search.
///
/// A `Key` belongs to no registry: one key works with every registry whose
/// limits admit its lengths (on `shm:` and `mem:` the packed words are used
/// as they are; on `etcd://` the text is).
///
/// ```
/// # use procreg::{Key, Registry};
/// let reg = Registry::open("mem:")?;
/// reg.register_self("billing", "db", b"")?;
/// let key = Key::new("billing", "db")?;
/// assert_eq!(reg.lookup_pid_key(&key)?, Some(std::process::id()));
/// # Ok::<(), procreg::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
// `packed` first: a reader handed `&Key` passes it on as `&PackedKey` with
// no add.
#[repr(C)]
pub struct Key {
    packed: PackedKey,
    /// `ns ++ name`.
    text: Box<str>,
    ns_len: usize,
}

/// The longest namespace or name any registry admits (the row's 16-bit
/// length fields).
const FORMAT_MAX: usize = u16::MAX as usize;

impl Key {
    /// Validates, packs and hashes `(ns, name)`.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] if either part is empty, longer than 65,535
    /// bytes (no registry admits more), or contains a NUL byte. A registry
    /// with smaller limits refuses the key when it is used.
    pub fn new(ns: &str, name: &str) -> Result<Key> {
        check_part("namespace", ns, FORMAT_MAX)?;
        check_part("name", name, FORMAT_MAX)?;
        let mut text = String::with_capacity(ns.len() + name.len());
        text.push_str(ns);
        text.push_str(name);
        Ok(Key {
            packed: PackedKey::new(ns.as_bytes(), name.as_bytes()),
            text: text.into_boxed_str(),
            ns_len: ns.len(),
        })
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.text[..self.ns_len]
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.text[self.ns_len..]
    }

    /// Length of the namespace in bytes.
    #[inline(always)]
    pub(crate) fn ns_len(&self) -> usize {
        self.ns_len
    }

    /// Length of the name in bytes.
    #[inline(always)]
    pub(crate) fn name_len(&self) -> usize {
        self.text.len() - self.ns_len
    }

    /// The packed words and hash (for the table backends).
    #[inline(always)]
    pub(crate) fn packed(&self) -> &PackedKey {
        &self.packed
    }

    /// The key as the backends' borrowed key.
    pub(crate) fn as_key(&self) -> crate::backend::Key<'_> {
        crate::backend::Key::unique(self.namespace(), self.name())
    }

    /// The error for a key longer than a registry's limits allow.
    #[cold]
    #[inline(never)]
    pub(crate) fn too_long(&self, max_ns: usize, max_name: usize) -> Error {
        check_part("namespace", self.namespace(), max_ns)
            .and_then(|()| check_part("name", self.name(), max_name))
            .expect_err("the key is longer than a limit")
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("namespace", &self.namespace())
            .field("name", &self.name())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_no_registry_admits() {
        assert!(matches!(Key::new("", "a"), Err(Error::InvalidKey(_))));
        assert!(matches!(Key::new("a", ""), Err(Error::InvalidKey(_))));
        assert!(matches!(Key::new("a\0b", "c"), Err(Error::InvalidKey(_))));
        assert!(matches!(Key::new("a", "c\0"), Err(Error::InvalidKey(_))));
        let long = "x".repeat(FORMAT_MAX + 1);
        assert!(matches!(Key::new(&long, "c"), Err(Error::InvalidKey(_))));
        let k = Key::new("billing", "db").unwrap();
        assert_eq!((k.namespace(), k.name()), ("billing", "db"));
        assert_eq!(
            format!("{k:?}"),
            r#"Key { namespace: "billing", name: "db" }"#
        );
    }

    #[test]
    fn is_clone_send_sync() {
        fn is<T: Clone + Send + Sync>() {}
        is::<Key>();
    }
}
