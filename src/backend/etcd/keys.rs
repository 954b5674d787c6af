//! Key layout under the registry's prefix.
//!
//! ```text
//! PREFIX/u/<esc ns>/<esc name>   unique names (this module)
//! PREFIX/g/...                   reserved for groups
//! ```
//!
//! `esc` keeps `[A-Za-z0-9._-]` and writes every other byte as `%XX` (upper-case
//! hex), so an escaped component never holds `/`: deleting namespace `a`
//! (range `PREFIX/u/a/`) never touches `ab`. Every range prefix this module
//! hands out ends with `/`.

/// Keys of one registry (one prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    /// `PREFIX/u/`.
    unique: String,
}

impl KeyLayout {
    /// The layout under `prefix` (`/myapp`, no trailing `/`).
    pub fn new(prefix: &str) -> Self {
        KeyLayout {
            unique: format!("{}/u/", prefix.trim_end_matches('/')),
        }
    }

    /// The key of `(ns, name)`.
    pub fn entry(&self, ns: &str, name: &str) -> String {
        format!("{}{}/{}", self.unique, escape(ns), escape(name))
    }

    /// The range prefix of every unique entry (ends with `/`).
    pub fn all(&self) -> &str {
        &self.unique
    }

    /// The range prefix of namespace `ns` (ends with `/`).
    pub fn namespace(&self, ns: &str) -> String {
        format!("{}{}/", self.unique, escape(ns))
    }

    /// `(ns, name)` of an entry key, or `None` for a key not laid out here.
    pub fn parse(&self, key: &[u8]) -> Option<(String, String)> {
        let rest = std::str::from_utf8(key).ok()?.strip_prefix(&self.unique)?;
        let (ns, name) = rest.split_once('/')?;
        if name.contains('/') {
            return None;
        }
        Some((unescape(ns)?, unescape(name)?))
    }
}

fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Escapes one key component (reversible, never yields `/`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`escape`]; `None` for text [`escape`] cannot have produced.
pub fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            if h.bytes().any(|c| c.is_ascii_lowercase()) {
                return None;
            }
            let v = u8::from_str_radix(h, 16).ok()?;
            if keep(v) {
                return None;
            }
            out.push(v);
            i += 3;
        } else if keep(b[i]) {
            out.push(b[i]);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_readable_and_ranges_end_with_slash() {
        let k = KeyLayout::new("/app");
        assert_eq!(k.entry("billing", "db-writer"), "/app/u/billing/db-writer");
        assert_eq!(k.entry("a/b", "x y"), "/app/u/a%2Fb/x%20y");
        assert_eq!(k.namespace("a"), "/app/u/a/");
        assert_eq!(k.all(), "/app/u/");
        assert!(k.namespace("%").ends_with('/'));
    }

    #[test]
    fn namespace_a_range_does_not_cover_ab() {
        let k = KeyLayout::new("/app");
        assert!(k.entry("a", "x").starts_with(&k.namespace("a")));
        assert!(!k.entry("ab", "x").starts_with(&k.namespace("a")));
        assert!(!k.entry("a/b", "x").starts_with(&k.namespace("a")));
    }

    #[test]
    fn foreign_keys_are_not_parsed() {
        let k = KeyLayout::new("/app");
        assert_eq!(k.parse(b"/app/u/ns"), None);
        assert_eq!(k.parse(b"/app/u/ns/a/b"), None);
        assert_eq!(k.parse(b"/app/g/ns/a"), None);
        assert_eq!(k.parse(b"/other/u/ns/a"), None);
        assert_eq!(
            k.parse(b"/app/u/n%2fs/a"),
            None,
            "lower-case hex is not ours"
        );
        assert_eq!(
            k.parse(b"/app/u/%61/a"),
            None,
            "escaped kept byte is not ours"
        );
    }

    proptest! {
        #[test]
        fn escape_round_trips_and_never_yields_slash(s in "\\PC{0,40}") {
            let e = escape(&s);
            prop_assert!(!e.contains('/'));
            prop_assert_eq!(unescape(&e), Some(s.clone()));
        }

        #[test]
        fn entries_parse_back_and_stay_in_their_namespace(
            ns in "\\PC{1,20}", other in "\\PC{1,20}", name in "\\PC{1,20}"
        ) {
            let k = KeyLayout::new("/p/q");
            let key = k.entry(&ns, &name);
            prop_assert_eq!(k.parse(key.as_bytes()), Some((ns.clone(), name.clone())));
            prop_assert!(key.starts_with(&k.namespace(&ns)));
            if other != ns {
                prop_assert!(!key.starts_with(&k.namespace(&other)));
            }
        }
    }
}
