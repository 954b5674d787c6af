//! A tiny command-line peer for the Python binding's interop test: it writes
//! and reads the same segment as Python, through the Rust API.
//!
//! ```text
//! cargo build --release --example interop
//! interop put URL NS NAME PID META   # registers (NS, NAME) for PID, then exits
//! interop get URL NS NAME            # prints {"pid":..,"metadata":"..","version":..}
//! ```
//!
//! Entries belong to processes, not handles, so `put` registers on behalf of
//! a pid that outlives this short-lived program (the Python test passes its
//! own pid). `get` exits with status 2 when the key is not registered, and
//! prints the metadata as text (invalid UTF-8 replaced).
use procreg::Registry;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["put", url, ns, name, pid, meta] => put(url, ns, name, pid, meta),
        ["get", url, ns, name] => get(url, ns, name),
        _ => Err("usage: interop put URL NS NAME PID META | interop get URL NS NAME".into()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("interop: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Registers `(ns, name)` for `pid` with `meta` as metadata.
fn put(
    url: &str,
    ns: &str,
    name: &str,
    pid: &str,
    meta: &str,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let pid: u32 = pid.parse().map_err(|e| format!("bad pid {pid:?}: {e}"))?;
    let reg = Registry::open(url)?;
    let version = reg.register(ns, name, pid, meta.as_bytes())?;
    println!("registered {ns}/{name} for pid {pid} (version {version})");
    Ok(ExitCode::SUCCESS)
}

/// Prints the entry of `(ns, name)` as one line of JSON.
fn get(url: &str, ns: &str, name: &str) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let reg = Registry::builder().open(url)?;
    match reg.lookup(ns, name)? {
        Some(e) => {
            let line = serde_json::json!({
                "pid": e.pid,
                "metadata": String::from_utf8_lossy(&e.metadata),
                "version": e.version,
            });
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("null");
            Ok(ExitCode::from(2))
        }
    }
}
