//! The value stored at an entry's key: one JSON object (docs/etcd-format.md).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// Format version written in every value (`"v"`).
pub const FORMAT_VERSION: u32 = 1;

/// Who wrote an entry: the lease it is attached to and the writing handle.
/// A retried create-if-absent that finds this token at the key knows the
/// entry is its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerToken {
    /// etcd lease id the entry is attached to.
    pub lease: i64,
    /// Random id of the writing handle (16 hex digits).
    pub handle: String,
}

/// The decoded value of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// Owner pid, on `host`.
    pub pid: u32,
    /// Host name of the owner.
    pub host: String,
    /// `/proc/sys/kernel/random/boot_id` of the owner's host.
    pub boot_id: String,
    /// Start time of `pid` (field 22 of `/proc/<pid>/stat`, clock ticks since boot).
    pub start_time: u64,
    /// Metadata bytes.
    pub metadata: Vec<u8>,
    /// Registration time, nanoseconds since the Unix epoch.
    pub registered_at_ns: u64,
    /// 1 at registration, +1 at every metadata update.
    pub version: u64,
    /// Owner token.
    pub owner: OwnerToken,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u32,
    pid: u32,
    host: String,
    boot_id: String,
    start_time: u64,
    metadata: String,
    metadata_encoding: String,
    registered_at_ns: u64,
    version: u64,
    lease: String,
    handle: String,
}

impl Value {
    /// The JSON bytes stored in etcd.
    pub fn encode(&self) -> Vec<u8> {
        let (metadata, encoding) = match std::str::from_utf8(&self.metadata) {
            Ok(s) => (s.to_owned(), "utf-8"),
            Err(_) => (B64.encode(&self.metadata), "base64"),
        };
        let w = Wire {
            v: FORMAT_VERSION,
            pid: self.pid,
            host: self.host.clone(),
            boot_id: self.boot_id.clone(),
            start_time: self.start_time,
            metadata,
            metadata_encoding: encoding.into(),
            registered_at_ns: self.registered_at_ns,
            version: self.version,
            lease: format!("{:x}", self.owner.lease),
            handle: self.owner.handle.clone(),
        };
        serde_json::to_vec(&w).expect("a struct of strings and integers serialises")
    }

    /// Decodes a stored value; `None` for bytes this format does not describe
    /// (written by something else under the prefix).
    pub fn decode(bytes: &[u8]) -> Option<Value> {
        let w: Wire = serde_json::from_slice(bytes).ok()?;
        if w.v != FORMAT_VERSION {
            return None;
        }
        let metadata = match w.metadata_encoding.as_str() {
            "utf-8" => w.metadata.into_bytes(),
            "base64" => B64.decode(w.metadata).ok()?,
            _ => return None,
        };
        Some(Value {
            pid: w.pid,
            host: w.host,
            boot_id: w.boot_id,
            start_time: w.start_time,
            metadata,
            registered_at_ns: w.registered_at_ns,
            version: w.version,
            owner: OwnerToken {
                lease: i64::from_str_radix(&w.lease, 16).ok()?,
                handle: w.handle,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(metadata: &[u8]) -> Value {
        Value {
            pid: 4242,
            host: "h1".into(),
            boot_id: "b".into(),
            start_time: 99,
            metadata: metadata.to_vec(),
            registered_at_ns: 1_700_000_000_123_456_789,
            version: 1,
            owner: OwnerToken {
                lease: 0x694d_7b7c_1a2b_3c4d,
                handle: "00ff00ff00ff00ff".into(),
            },
        }
    }

    #[test]
    fn utf8_metadata_is_stored_as_text() {
        let v = sample(b"port=5432");
        let json: serde_json::Value = serde_json::from_slice(&v.encode()).unwrap();
        assert_eq!(json["metadata"], "port=5432");
        assert_eq!(json["metadata_encoding"], "utf-8");
        assert_eq!(json["lease"], "694d7b7c1a2b3c4d");
        assert_eq!(json["pid"], 4242);
        assert_eq!(Value::decode(&v.encode()), Some(v));
    }

    #[test]
    fn binary_metadata_is_base64() {
        let v = sample(&[0xff, 0, 1]);
        let json: serde_json::Value = serde_json::from_slice(&v.encode()).unwrap();
        assert_eq!(json["metadata"], "/wAB");
        assert_eq!(json["metadata_encoding"], "base64");
        assert_eq!(Value::decode(&v.encode()), Some(v));
    }

    #[test]
    fn foreign_values_are_not_decoded() {
        assert_eq!(Value::decode(b"hello"), None);
        assert_eq!(Value::decode(b"{\"v\":2}"), None);
        let mut j: serde_json::Value = serde_json::from_slice(&sample(b"x").encode()).unwrap();
        j["metadata_encoding"] = "rot13".into();
        assert_eq!(Value::decode(&serde_json::to_vec(&j).unwrap()), None);
    }
}
