//! How `ls` lays its table out: natural order of keys, display widths, and
//! fitting the rows into the terminal without making two keys look alike.
//!
//! The width is `--wide` (no limit), else `$COLUMNS`, else the terminal's
//! when stdout is one, else no limit: a pipe or a file gets every byte, so
//! `procreg ls | grep` never misses a cut name.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::io::IsTerminal;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns of `s` on a terminal (wide characters count 2).
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// The widest prefix of `s` that takes at most `max` columns.
fn head(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += c.width().unwrap_or(0);
        if used > max {
            return &s[..i];
        }
    }
    s
}

/// The widest suffix of `s` that takes at most `max` columns.
fn tail(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices().rev() {
        used += c.width().unwrap_or(0);
        if used > max {
            return &s[i + c.len_utf8()..];
        }
    }
    s
}

/// At most `max` columns of `s`; a cut keeps the start and is marked with `…`.
pub fn cut_end(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    format!("{}…", head(s, max.saturating_sub(1)))
}

/// At most `max` columns of `s`; a cut keeps the start and the end (where
/// keys usually differ: `worker-14`, `worker-140`) and puts `…` between.
pub fn cut_middle(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    let room = max.saturating_sub(1);
    let end = room / 2;
    format!("{}…{}", head(s, room - end), tail(s, end))
}

/// Natural order: runs of ASCII digits compare as numbers, so `w14 < w15 <
/// w140`; equal numbers with more leading zeros sort after; the rest compares
/// by character. Hand-written: a dozen lines, where the crates for it either
/// allocate per comparison or are unmaintained.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (run(a), run(b));
                let strip = |s: &'_ [u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
                let (za, zb) = (strip(&a[..na]), strip(&b[..nb]));
                let (da, db) = (&a[za..na], &b[zb..nb]);
                let ord = da.len().cmp(&db.len()).then(da.cmp(db)).then(za.cmp(&zb));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (&a[na..], &b[nb..]);
            }
            (Some(_), Some(_)) => {
                // Whole characters, so multi-byte text compares as text.
                let ca = std::str::from_utf8(a).ok().and_then(|s| s.chars().next());
                let cb = std::str::from_utf8(b).ok().and_then(|s| s.chars().next());
                let (ca, cb) = (ca.unwrap_or('\u{fffd}'), cb.unwrap_or('\u{fffd}'));
                if ca != cb {
                    return ca.cmp(&cb);
                }
                (a, b) = (&a[ca.len_utf8()..], &b[cb.len_utf8()..]);
            }
        }
    }
}

/// The width `ls` fits its table into (`None`: no limit). See the module doc.
pub fn terminal_width(wide: bool) -> Option<usize> {
    if wide {
        return None;
    }
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return Some(n);
    }
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(&stdout).map(|(w, _)| usize::from(w.0))
}

/// Narrowest a key column gets (the width of `NAMESPACE`).
const KEY_MIN: usize = 9;
/// Narrowest the last column (metadata) gets.
const LAST_MIN: usize = 12;

/// Cuts the cells of `rows` so that the table (columns separated by two
/// spaces) fits in `max` columns where it can. Columns 0 and 1 are the key
/// (namespace, name): cut in the middle, and never so far that two different
/// keys look the same (rows of one key, such as a group's members, may); the last column is cut at its end; the others are never cut.
/// A table that cannot fit (too many narrow columns) stays wider than `max`.
pub fn fit(header: &[&str], rows: &mut [Vec<String>], max: Option<usize>) {
    let (Some(max), n) = (max, header.len()) else {
        return;
    };
    if n < 3 || rows.is_empty() {
        return;
    }
    let natural: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .map(|r| width(&r[c]))
                .chain([width(header[c])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let sep = 2 * (n - 1);
    if natural.iter().sum::<usize>() + sep <= max {
        return;
    }
    let fixed: usize = natural[2..n - 1].iter().sum();
    let avail = max.saturating_sub(fixed + sep);
    let last_min = natural[n - 1].min(LAST_MIN);
    let keys = avail.saturating_sub(last_min);
    let (mut w_ns, mut w_name) = (natural[0], natural[1]);
    if w_ns + w_name > keys {
        // The namespace gets up to a third, the name what is left; either
        // keeps at least KEY_MIN (or its natural width, if narrower).
        let (min_ns, min_name) = (natural[0].min(KEY_MIN), natural[1].min(KEY_MIN));
        w_ns = natural[0].min(min_ns.max(keys / 3));
        w_name = natural[1].min(min_name.max(keys.saturating_sub(w_ns)));
        w_ns = natural[0].min(w_ns.max(keys.saturating_sub(w_name)));
    }
    // Widen the key columns until every key shows as a key of its own. Rows
    // may share a key (the members of a group): distinct keys must stay
    // distinct, equal ones stay equal.
    let keys: HashSet<(&str, &str)> = rows.iter().map(|r| (&*r[0], &*r[1])).collect();
    loop {
        let shown: HashSet<(String, String)> = keys
            .iter()
            .map(|(ns, name)| (cut_middle(ns, w_ns), cut_middle(name, w_name)))
            .collect();
        if shown.len() == keys.len() {
            break;
        }
        if w_name < natural[1] {
            w_name += 1;
        } else if w_ns < natural[0] {
            w_ns += 1;
        } else {
            break;
        }
    }
    let w_last = avail.saturating_sub(w_ns + w_name).max(last_min);
    for r in rows.iter_mut() {
        r[0] = cut_middle(&r[0], w_ns);
        r[1] = cut_middle(&r[1], w_name);
        r[n - 1] = cut_end(&r[n - 1], w_last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_digit_runs_as_numbers() {
        let mut v = vec![
            "w140", "w15", "w14", "w2", "a", "w014", "w", "x1y10", "x1y9",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "a", "w", "w2", "w14", "w014", "w15", "w140", "x1y9", "x1y10"
            ]
        );
        assert_eq!(natural_cmp("é2", "é10"), Ordering::Less);
        assert_eq!(natural_cmp("abc", "abc"), Ordering::Equal);
    }

    #[test]
    fn cuts_are_marked_and_respect_wide_characters() {
        assert_eq!(cut_end("abcdef", 6), "abcdef");
        assert_eq!(cut_end("abcdefg", 6), "abcde…");
        assert_eq!(cut_middle("worker-pool-140", 9), "work…-140");
        assert_eq!(width(&cut_middle("日本語のサービス名", 9)), 9);
        assert!(width(&cut_end("日本語のサービス名", 6)) <= 6);
    }

    fn rows(keys: &[(&str, &str)]) -> Vec<Vec<String>> {
        keys.iter()
            .map(|(ns, n)| vec![ns.to_string(), n.to_string(), "1".into(), "meta".repeat(20)])
            .collect()
    }

    #[test]
    fn fitting_keeps_distinct_keys_distinct_and_fits_the_width() {
        let long = "a-very-long-service-name-that-differs-only-in-the-";
        let keys: Vec<(String, String)> = ["x-one-tail", "y-two-tail", "z"]
            .iter()
            .map(|s| ("ns".to_string(), format!("{long}{s}")))
            .collect();
        let keys: Vec<(&str, &str)> = keys.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let header = ["NAMESPACE", "NAME", "PID", "METADATA"];
        let mut r = rows(&keys);
        fit(&header, &mut r, Some(60));
        let shown: HashSet<_> = r.iter().map(|r| r[1].clone()).collect();
        assert_eq!(shown.len(), 3, "{r:?}");
        for row in &r {
            assert!(row[1].contains('…') && row[3].ends_with('…'), "{row:?}");
            let line = width(&row.join("  "));
            assert!(line <= 60 + 9, "{line}: {row:?}");
        }
        // Keys that differ only in the middle widen their column until they differ.
        let mid = [
            ("ns", "prefix-prefix-AAAA-suffix-suffix"),
            ("ns", "prefix-prefix-BBBB-suffix-suffix"),
        ];
        let mut r = rows(&mid);
        fit(&header, &mut r, Some(30));
        assert_ne!(r[0][1], r[1][1], "{r:?}");
        // Rows may share a key (the members of one group): they are cut
        // like the rest, and the distinct keys stay distinct.
        let other = format!("{long}y-two-tail");
        let shared = [("ns", long), ("ns", long), ("ns", long), ("ns", &*other)];
        let mut r = rows(&shared);
        fit(&header, &mut r, Some(60));
        assert!(r.iter().all(|row| row[1].contains('…')), "{r:?}");
        assert_eq!(r[0][1], r[2][1]);
        assert_ne!(r[0][1], r[3][1], "{r:?}");
        // No limit: nothing is cut.
        let mut r = rows(&keys);
        fit(&header, &mut r, None);
        assert_eq!(r, rows(&keys));
    }
}
