//! Formatting for humans and for JSON: escaping, previews, ages, dates,
//! durations, tables.

use procreg::{Entry, Liveness};
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

/// At most `max` characters of `s`; a cut is marked with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
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
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::from(indent);
        for (i, (cell, w)) in cells.iter().zip(&width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let pad = w - cell.chars().count();
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
        }
    }
}

/// Widest key part shown in a table before it is cut with `…`.
pub const KEY_PREVIEW: usize = 32;
/// Widest metadata shown in a table before it is cut with `…`.
pub const META_PREVIEW: usize = 40;

/// The table header of [`entry_row`].
pub const ENTRY_HEADER: [&str; 6] = ["NAMESPACE", "NAME", "PID", "STATUS", "AGE", "METADATA"];

/// One table row for an entry: escaped, long cells cut with `…`.
pub fn entry_row(e: &Row, status: &str) -> Vec<String> {
    vec![
        truncate(&escape(e.namespace.as_bytes()), KEY_PREVIEW),
        truncate(&escape(e.name.as_bytes()), KEY_PREVIEW),
        e.pid.to_string(),
        status.to_owned(),
        human_duration(age(e.registered_at)),
        truncate(&escape(&e.metadata), META_PREVIEW),
    ]
}

/// An entry as a JSON object. `metadata` is the text (invalid UTF-8 replaced);
/// `metadata_hex` is added when the bytes are not UTF-8.
pub fn entry_json(e: &Row, status: Option<Liveness>) -> Value {
    let mut v = json!({
        "namespace": e.namespace,
        "name": e.name,
        "pid": e.pid,
        "version": e.version,
        "registered_at_ms": unix_ms(e.registered_at),
        "age_ms": age(e.registered_at).as_millis() as u64,
        "metadata": String::from_utf8_lossy(&e.metadata),
        "metadata_len": e.metadata.len(),
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
