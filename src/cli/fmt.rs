//! Formatting for humans and for JSON: escaping, previews, ages, dates,
//! durations, tables.

use super::layout::{cut_end, width};
use procreg::{Entry, Lease, Liveness};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Writes one line to `out`; a failed write becomes [`CliError::Stdout`](super::error::CliError::Stdout).
#[macro_export]
macro_rules! outln {
    ($out:expr) => {
        writeln!($out).map_err($crate::cli::error::CliError::Stdout)
    };
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).map_err($crate::cli::error::CliError::Stdout)
    };
}

/// Bytes as printable text: control characters and backslashes escaped
/// (`\n`, `\u{1b}`), bytes that are not UTF-8 as `\xNN`. Terminal escape
/// sequences in keys or metadata therefore never reach the terminal.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                s.extend(c.escape_debug());
            } else {
                s.push(c);
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

/// At most `max` columns of `s`; a cut is marked with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    cut_end(s, max)
}

/// A short human duration: `850ms`, `12.3s`, `4m05s`, `2h05m`, `3d04h`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// `text` with the value of every `password=` parameter (of an etcd url)
/// replaced by `***`: urls are printed by `stats`, `health`, `ls` and `watch`,
/// and may be quoted in error messages.
pub fn redact(text: &str) -> String {
    const KEY: &str = "password=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (head, tail) = rest.split_at(at + KEY.len());
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(tail.len());
        if end > 0 {
            out.push_str("***");
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// How long ago `t` was (0 for a time in the future).
pub fn age(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `t` as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses `500ms`, `5s`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; use e.g. 500ms, 5s, 1.5s, 2m"))?;
    let scale = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}; use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(n * scale).map_err(|e| format!("{s:?}: {e}"))
}

/// `1234567` → `"1,234,567"`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Rows as columns, each as wide as its widest cell; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>], indent: &str) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::from(indent);
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let pad = w - width(cell);
                s.push_str(cell);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = vec![line(
        &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    )];
    out.extend(rows.iter().map(|r| line(r)));
    out
}

/// What the commands show of an entry, or of the entry an event concerns
/// (the library's [`Entry`] is made only by the registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Namespace of the key.
    pub namespace: String,
    /// Name of the key.
    pub name: String,
    /// Owner pid.
    pub pid: u32,
    /// Owner host.
    pub host: String,
    /// Metadata bytes.
    pub metadata: Vec<u8>,
    /// Registration time (for an event: the time of the change).
    pub registered_at: SystemTime,
    /// Entry version.
    pub version: u64,
    /// The entry's lease, if it has one.
    pub lease: Option<Lease>,
    /// A member of the group `name` (its pid is `pid`), not a unique entry.
    pub member: bool,
}

/// What tells rows apart: (namespace, name) for a unique entry, and the
/// member's pid besides for a member (a group and a unique key may share a
/// name, and a group has many members).
pub type RowKey = (String, String, Option<u32>);

impl Row {
    /// The key of this row.
    pub fn key(&self) -> RowKey {
        (
            self.namespace.clone(),
            self.name.clone(),
            self.member.then_some(self.pid),
        )
    }

    /// `ns/name` for a unique entry, `ns/group member PID` for a member,
    /// escaped: how messages name what they concern.
    pub fn label(&self) -> String {
        key_label(&self.namespace, &self.name, self.member.then_some(self.pid))
    }
}

/// `ns/name`, or `ns/group member PID` for a member, escaped.
pub fn key_label(ns: &str, name: &str, member: Option<u32>) -> String {
    let key = format!("{}/{}", escape(ns.as_bytes()), escape(name.as_bytes()));
    match member {
        Some(pid) => format!("{key} member pid {pid}"),
        None => key,
    }
}

impl From<Entry> for Row {
    fn from(e: Entry) -> Row {
        Row {
            namespace: e.namespace,
            name: e.name,
            pid: e.pid,
            host: e.host,
            metadata: e.metadata,
            registered_at: e.registered_at,
            version: e.version,
            lease: e.lease,
            member: e.member,
        }
    }
}

/// The optional columns of an entry table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Columns {
    /// LEASE: shown when some entry has a lease.
    pub lease: bool,
    /// KIND (`unique` or `member`): shown when some row is a group member.
    pub kind: bool,
}

impl Columns {
    /// The columns `rows` need.
    pub fn for_rows(rows: &[Row]) -> Columns {
        Columns {
            lease: rows.iter().any(|e| e.lease.is_some()),
            kind: rows.iter().any(|e| e.member),
        }
    }
}

/// The table header of [`entry_row`].
pub fn entry_header(cols: Columns) -> Vec<&'static str> {
    let mut h = vec!["NAMESPACE", "NAME"];
    if cols.kind {
        h.push("KIND");
    }
    h.extend(["PID", "STATUS", "AGE"]);
    if cols.lease {
        h.push("LEASE");
    }
    h.push("METADATA");
    h
}

/// One table row for an entry, escaped and whole (`ls` cuts it to fit).
pub fn entry_row(e: &Row, status: &str, cols: Columns) -> Vec<String> {
    let mut r = vec![escape(e.namespace.as_bytes()), escape(e.name.as_bytes())];
    if cols.kind {
        r.push(if e.member { "member" } else { "unique" }.to_owned());
    }
    r.extend([
        e.pid.to_string(),
        status.to_owned(),
        human_duration(age(e.registered_at)),
    ]);
    if cols.lease {
        r.push(e.lease.as_ref().map_or("-".to_owned(), lease_text));
    }
    r.push(escape(&e.metadata));
    r
}

/// A lease for people: `12.3s/30.0s` (left of ttl), `expired/30.0s`, or
/// `etcd 694d7f3a2c1b` (an etcd lease id).
pub fn lease_text(l: &Lease) -> String {
    match (l.remaining, l.ttl, l.id) {
        (Some(left), Some(ttl), _) if left.is_zero() => {
            format!("expired/{}", human_duration(ttl))
        }
        (Some(left), Some(ttl), _) => {
            format!("{}/{}", human_duration(left), human_duration(ttl))
        }
        (_, _, Some(id)) => format!("etcd {id:x}"),
        _ => "yes".to_owned(),
    }
}

/// A lease as JSON: `ttl_ms`, `remaining_ms`, `expired`, `id` (hex), each
/// `null` where the backend does not tell.
pub fn lease_json(l: Option<&Lease>) -> Value {
    let Some(l) = l else {
        return Value::Null;
    };
    json!({
        "ttl_ms": l.ttl.map(|d| d.as_millis() as u64),
        "remaining_ms": l.remaining.map(|d| d.as_millis() as u64),
        "expired": l.remaining.map(|d| d.is_zero()),
        "id": l.id.map(|id| format!("{id:x}")),
    })
}

/// An entry as a JSON object. `metadata` is the text (invalid UTF-8 replaced);
/// `metadata_hex` is added when the bytes are not UTF-8; `member` is true for
/// a member of the group `name` (whose pid is `pid`).
pub fn entry_json(e: &Row, status: Option<Liveness>) -> Value {
    let mut v = json!({
        "namespace": e.namespace,
        "name": e.name,
        "pid": e.pid,
        "host": e.host,
        "member": e.member,
        "version": e.version,
        "registered_at_ms": unix_ms(e.registered_at),
        "age_ms": age(e.registered_at).as_millis() as u64,
        "metadata": String::from_utf8_lossy(&e.metadata),
        "metadata_len": e.metadata.len(),
        "lease": lease_json(e.lease.as_ref()),
    });
    if let Some(s) = status {
        v["status"] = json!(s.to_string());
    }
    if std::str::from_utf8(&e.metadata).is_err() {
        let hex: String = e.metadata.iter().map(|b| format!("{b:02x}")).collect();
        v["metadata_hex"] = json!(hex);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_control_bytes_and_bad_utf8() {
        assert_eq!(escape(b"a=1 b"), "a=1 b");
        assert_eq!(escape(b"x\n\x1b[31m\\"), "x\\n\\u{1b}[31m\\\\");
        assert_eq!(escape(b"\xff\xfeok"), "\\xff\\xfeok");
        assert_eq!(escape("héllo".as_bytes()), "héllo");
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde…");
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(human_duration(Duration::from_secs(7500)), "2h05m");
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_336_406);
        assert_eq!(utc(t), "2026-11-22 08:33:26 UTC");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn redact_hides_every_password_value_and_nothing_else() {
        assert_eq!(
            super::redact("registry url \"etcd://h:1/p?user=u&password=s3cr%26t&ttl=5s\": bad"),
            "registry url \"etcd://h:1/p?user=u&password=***&ttl=5s\": bad"
        );
        assert_eq!(
            super::redact("etcd://h:1/p?password=x"),
            "etcd://h:1/p?password=***"
        );
        assert_eq!(
            super::redact("a password=1 b password=2"),
            "a password=*** b password=***"
        );
        assert_eq!(super::redact("shm:default"), "shm:default");
        assert_eq!(super::redact("password="), "password=");
    }
}
