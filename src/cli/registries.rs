//! `procreg registries`: the procreg segments of this host's shm directory,
//! and (`--gc`) removal of the files that crashed creators left behind.

use super::commands::Target;
use super::error::CliResult;
use super::fmt::{escape, human_duration, table, thousands, unix_ms};
use super::layout::natural_cmp;
use crate::outln;
use procreg::{Liveness, Registry, SegmentFile, SegmentState};
use serde_json::{Value, json};
use std::io::Write;
use std::time::Duration;

/// `1.5 GiB`, `4.1 MiB`, `512 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Live entries of a ready segment, or why they cannot be counted.
fn live_entries(target: &Target, url: &str) -> Result<usize, String> {
    let t = Target {
        url: url.to_owned(),
        allow_foreign_owner: target.allow_foreign_owner,
    };
    let reg: Registry = t.open().map_err(|e| match e {
        super::error::CliError::Lib(procreg::Error::PermissionDenied(_)) => {
            "not yours (--allow-foreign-owner reads it)".to_owned()
        }
        other => other.message().unwrap_or_default(),
    })?;
    reg.stats().map(|s| s.live).map_err(|e| e.to_string())
}

/// One segment file as a JSON object.
fn file_json(f: &SegmentFile, live: &Result<usize, String>) -> Value {
    let mut v = json!({
        "url": f.url,
        "path": f.path.display().to_string(),
        "bytes": f.bytes,
        "owner_uid": f.owner_uid,
    });
    match &f.state {
        SegmentState::Ready {
            creator_pid,
            creator_uid,
            capacity,
            created_at,
            ..
        } => {
            v["state"] = json!("ready");
            v["creator_pid"] = json!(creator_pid);
            v["creator_uid"] = json!(creator_uid);
            v["capacity"] = json!(capacity);
            v["created_at_ms"] = json!(unix_ms(*created_at));
            match live {
                Ok(n) => v["live"] = json!(n),
                Err(e) => v["error"] = json!(e),
            }
        }
        SegmentState::Creating {
            creator_pid,
            creator,
            ..
        } => {
            let stale = *creator == Liveness::Dead;
            v["state"] = json!(if stale { "stale" } else { "creating" });
            v["creator_pid"] = json!(creator_pid);
            v["creator"] = json!(creator.to_string());
        }
        SegmentState::Unreadable(why) => {
            v["state"] = json!("unreadable");
            v["error"] = json!(why);
        }
        _ => v["state"] = json!("unknown"),
    }
    v
}

/// One table row of a segment file.
fn file_row(f: &SegmentFile, live: &Result<usize, String>) -> Vec<String> {
    let url = escape(f.url.as_bytes());
    let size = human_bytes(f.bytes);
    match &f.state {
        SegmentState::Ready {
            creator_pid,
            creator_uid,
            capacity,
            created_at,
            ..
        } => vec![
            url,
            size,
            match live {
                Ok(n) => format!("{n}/{}", thousands(*capacity as u64)),
                Err(_) => "?".to_owned(),
            },
            format!("pid {creator_pid} uid {creator_uid}"),
            format!("{} ago", human_duration(super::fmt::age(*created_at))),
            match live {
                Ok(_) => "ready".to_owned(),
                Err(e) => format!("ready; entries unknown: {e}"),
            },
        ],
        SegmentState::Creating {
            creator_pid,
            creator,
            ..
        } => vec![
            url,
            size,
            "-".to_owned(),
            format!("pid {creator_pid} uid {}", f.owner_uid),
            format!("{} ago", human_duration(super::fmt::age(f.modified))),
            if *creator == Liveness::Dead {
                "stale: its creator died while creating it (--gc removes it)".to_owned()
            } else {
                format!("being created ({creator})")
            },
        ],
        SegmentState::Unreadable(why) => vec![
            url,
            size,
            "?".to_owned(),
            format!("uid {}", f.owner_uid),
            format!("{} ago", human_duration(super::fmt::age(f.modified))),
            format!("unreadable: {why}"),
        ],
        _ => vec![url, size, "?".into(), "?".into(), "?".into(), "?".into()],
    }
}

/// `procreg registries`: lists the segments (text table or JSON lines).
pub fn list(target: &Target, json: bool, out: &mut impl Write) -> CliResult {
    let mut files = procreg::list_segments()?;
    files.sort_by(|a, b| natural_cmp(&a.url, &b.url));
    if files.is_empty() {
        eprintln!("procreg: no procreg segments in the shm directory");
        return Ok(());
    }
    let mut rows = Vec::new();
    for f in &files {
        let live = match f.state {
            SegmentState::Ready { .. } => live_entries(target, &f.url),
            _ => Err("not a ready segment".to_owned()),
        };
        if json {
            outln!(out, "{}", file_json(f, &live))?;
        } else {
            rows.push(file_row(f, &live));
        }
    }
    if !json {
        let header = ["URL", "SIZE", "ENTRIES", "CREATOR", "CREATED", "STATE"];
        for line in table(&header, &rows, "") {
            outln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// `procreg registries --gc`: removes the stale `*.creating.*` files (dead
/// creator, untouched for `min_age`) and says which.
pub fn gc(min_age: Duration, json: bool, out: &mut impl Write) -> CliResult {
    let removed = procreg::remove_stale_creating(min_age)?;
    for p in &removed {
        if json {
            outln!(out, "{}", json!({ "removed": p.display().to_string() }))?;
        } else {
            outln!(out, "removed {}", p.display())?;
        }
    }
    if removed.is_empty() && !json {
        outln!(
            out,
            "no stale files (a creator's file is removed once its pid is gone and it is {} old)",
            human_duration(min_age)
        )?;
    }
    Ok(())
}
