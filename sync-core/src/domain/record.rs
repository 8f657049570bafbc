//! Records, their content hash, and what changed between two versions.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Identifies a stream of data: which source (e.g. `yclients:company-123`)
/// and which part of it (e.g. `records`). Checkpoints and runs are kept per
/// stream; records are keyed by (source, entity, external id).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId {
    /// The source instance, e.g. `yclients:company-123` or `kennel:example.com`.
    pub source: String,
    /// The stream within the source, e.g. `records` or `boardings`.
    pub stream: String,
}

impl StreamId {
    /// A stream id from its two parts.
    pub fn new(source: impl Into<String>, stream: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            stream: stream.into(),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.source, self.stream)
    }
}

/// The unit of coverage a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A local calendar day in the business's time zone.
    Day(NaiveDate),
    /// An integer key (e.g. a client id).
    Key(i64),
}

impl Unit {
    /// The unit as the `(unit_kind, day, key)` columns stores keep it:
    /// `("day", Some(day), None)` or `("key", None, Some(key))`.
    pub fn parts(self) -> (&'static str, Option<NaiveDate>, Option<i64>) {
        match self {
            Self::Day(day) => ("day", Some(day), None),
            Self::Key(key) => ("key", None, Some(key)),
        }
    }

    /// The unit stored as [`Unit::parts`]; `None` when the kind is unknown
    /// or its column is empty.
    pub fn from_parts(kind: &str, day: Option<NaiveDate>, key: Option<i64>) -> Option<Self> {
        match (kind, day, key) {
            ("day", Some(day), _) => Some(Self::Day(day)),
            ("key", _, Some(key)) => Some(Self::Key(key)),
            _ => None,
        }
    }
}

/// A content hash of a record's payload: equal hashes mean no change.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContentHash(#[serde(with = "hex32")] pub [u8; 32]);

impl ContentHash {
    /// The hash of a JSON value, independent of the order of object keys,
    /// leaving out the top-level fields named in `volatile` (fields that
    /// change without the record changing, like a last-seen time).
    pub fn of_json(value: &Value, volatile: &[&str]) -> Self {
        let mut hasher = blake3::Hasher::new();
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map
                    .keys()
                    .filter(|k| !volatile.contains(&k.as_str()))
                    .collect();
                keys.sort();
                hasher.update(b"{");
                for k in keys {
                    hash_str(&mut hasher, k);
                    hash_value(&mut hasher, &map[k]);
                }
                hasher.update(b"}");
            }
            other => hash_value(&mut hasher, other),
        }
        Self(*hasher.finalize().as_bytes())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex32::encode(&self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        hex32::decode(s).map(Self)
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

// Canonical, unambiguous encoding: a type tag, then a length-prefixed body.
fn hash_str(h: &mut blake3::Hasher, s: &str) {
    h.update(&(s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

fn hash_value(h: &mut blake3::Hasher, v: &Value) {
    match v {
        Value::Null => {
            h.update(b"n");
        }
        Value::Bool(b) => {
            h.update(if *b { b"t" } else { b"f" });
        }
        Value::Number(n) => {
            h.update(b"#");
            hash_str(h, &n.to_string());
        }
        Value::String(s) => {
            h.update(b"s");
            hash_str(h, s);
        }
        Value::Array(items) => {
            h.update(b"[");
            h.update(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|i| hash_value(h, i));
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            h.update(b"{");
            h.update(&(keys.len() as u64).to_le_bytes());
            for k in keys {
                hash_str(h, k);
                hash_value(h, &map[k]);
            }
        }
    }
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn encode(bytes: &[u8; 32]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(super) fn decode(s: &str) -> Option<[u8; 32]> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(out)
    }

    pub(super) fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        decode(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex characters"))
    }
}

/// One record fetched from a source, ready to store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The kind of entity, e.g. `client`, `visit`, `boarding`.
    pub entity: String,
    /// The id the source gives it.
    pub external_id: String,
    /// The day or key the record belongs to (coverage is counted by it).
    pub unit: Unit,
    /// When the record happens (a visit's start, a boarding's check-in), UTC.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The record as the source gave it (raw JSON, or fields parsed from HTML).
    pub payload: Value,
    /// Hash of the payload without volatile fields.
    pub hash: ContentHash,
    /// The source says the record was deleted or cancelled.
    pub deleted: bool,
}

impl Record {
    /// A record whose hash covers the whole payload.
    pub fn new(
        entity: impl Into<String>,
        external_id: impl Into<String>,
        unit: Unit,
        payload: Value,
    ) -> Self {
        Self::with_volatile(entity, external_id, unit, payload, &[])
    }

    /// A record whose hash leaves out the top-level fields in `volatile`.
    pub fn with_volatile(
        entity: impl Into<String>,
        external_id: impl Into<String>,
        unit: Unit,
        payload: Value,
        volatile: &[&str],
    ) -> Self {
        let hash = ContentHash::of_json(&payload, volatile);
        Self {
            entity: entity.into(),
            external_id: external_id.into(),
            unit,
            occurred_at: None,
            payload,
            hash,
            deleted: false,
        }
    }

    /// Sets when the record happens.
    pub fn occurred_at(mut self, at: DateTime<Utc>) -> Self {
        self.occurred_at = Some(at);
        self
    }

    /// Marks the record deleted (or cancelled) at the source.
    pub fn deleted(mut self, deleted: bool) -> Self {
        self.deleted = deleted;
        self
    }
}

/// A record as a store holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// The kind of entity.
    pub entity: String,
    /// The id the source gives it.
    pub external_id: String,
    /// The day or key it belongs to.
    pub unit: Unit,
    /// The stored payload.
    pub payload: Value,
    /// The stored content hash.
    pub hash: ContentHash,
    /// Marked deleted.
    pub deleted: bool,
    /// When it was last seen to change.
    pub last_changed: DateTime<Utc>,
}

/// What happened to one record in one commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// First time seen.
    Created,
    /// Seen before with another content hash.
    Updated,
    /// Newly marked deleted.
    Deleted,
}

impl ChangeKind {
    /// `created`, `updated` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }

    /// Parses [`ChangeKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => Self::Created,
            "updated" => Self::Updated,
            "deleted" => Self::Deleted,
            _ => return None,
        })
    }
}

/// One field that differs between the stored and the new payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// JSON pointer of the field, e.g. `/client/phone`.
    pub path: String,
    /// The stored value (`null` when absent).
    pub old: Value,
    /// The new value (`null` when absent).
    pub new: Value,
}

/// A change log entry: what a run changed in one record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordChange {
    /// The kind of entity.
    pub entity: String,
    /// The id the source gives it.
    pub external_id: String,
    /// Created, updated or deleted.
    pub kind: ChangeKind,
    /// The fields that changed (empty for a creation).
    pub fields: Vec<FieldChange>,
}

/// The fields that differ between two payloads, as JSON pointers, descending
/// into objects (arrays are compared whole). Sorted by path.
pub fn diff_payloads(old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    diff_into(&mut out, String::new(), old, new);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn diff_into(out: &mut Vec<FieldChange>, path: String, old: &Value, new: &Value) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}/{}", escape_pointer(k));
                match b.get(k) {
                    Some(vb) => diff_into(out, p, va, vb),
                    None => out.push(FieldChange {
                        path: p,
                        old: va.clone(),
                        new: Value::Null,
                    }),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push(FieldChange {
                        path: format!("{path}/{}", escape_pointer(k)),
                        old: Value::Null,
                        new: vb.clone(),
                    });
                }
            }
        }
        (a, b) if a != b => out.push(FieldChange {
            path: if path.is_empty() { "/".into() } else { path },
            old: a.clone(),
            new: b.clone(),
        }),
        _ => {}
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_ignores_key_order_and_volatile_fields() {
        let a = json!({"id": 1, "name": "Rex", "seen": "10:00", "nested": {"x": 1, "y": 2}});
        let b = json!({"nested": {"y": 2, "x": 1}, "seen": "11:00", "name": "Rex", "id": 1});
        assert_ne!(ContentHash::of_json(&a, &[]), ContentHash::of_json(&b, &[]));
        assert_eq!(
            ContentHash::of_json(&a, &["seen"]),
            ContentHash::of_json(&b, &["seen"])
        );
        let c = json!({"id": 1, "name": "Max", "seen": "10:00", "nested": {"x": 1, "y": 2}});
        assert_ne!(
            ContentHash::of_json(&a, &["seen"]),
            ContentHash::of_json(&c, &["seen"])
        );
    }

    #[test]
    fn hash_distinguishes_types_and_boundaries() {
        let h = |v: Value| ContentHash::of_json(&v, &[]);
        assert_ne!(h(json!({"a": "1"})), h(json!({"a": 1})));
        assert_ne!(h(json!(["ab", "c"])), h(json!(["a", "bc"])));
        assert_ne!(h(json!(null)), h(json!({})));
    }

    #[test]
    fn unit_parts_round_trip() {
        let day: NaiveDate = "2024-03-31".parse().unwrap();
        for unit in [Unit::Day(day), Unit::Key(-7), Unit::Key(i64::MAX)] {
            let (kind, d, k) = unit.parts();
            assert_eq!(Unit::from_parts(kind, d, k), Some(unit));
        }
        assert_eq!(Unit::Day(day).parts(), ("day", Some(day), None));
        assert_eq!(Unit::Key(3).parts(), ("key", None, Some(3)));
        assert_eq!(Unit::from_parts("day", None, Some(3)), None);
        assert_eq!(Unit::from_parts("key", Some(day), None), None);
        assert_eq!(Unit::from_parts("week", Some(day), Some(3)), None);
    }

    #[test]
    fn change_kind_names_round_trip() {
        for kind in [
            ChangeKind::Created,
            ChangeKind::Updated,
            ChangeKind::Deleted,
        ] {
            assert_eq!(ChangeKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
        }
        assert_eq!(ChangeKind::parse("moved"), None);
    }

    #[test]
    fn hex_round_trip() {
        let h = ContentHash::of_json(&json!({"a": 1}), &[]);
        assert_eq!(ContentHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(ContentHash::from_hex("zz"), None);
        let s = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<ContentHash>(&s).unwrap(), h);
    }

    #[test]
    fn diff_lists_changed_added_and_removed_fields() {
        let old = json!({"name": "Rex", "client": {"phone": "1", "mail": "a"}, "gone": 1});
        let new = json!({"name": "Rex", "client": {"phone": "2", "mail": "a"}, "new/x": true});
        let d = diff_payloads(&old, &new);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["/client/phone", "/gone", "/new~1x"]);
        assert_eq!(d[0].old, json!("1"));
        assert_eq!(d[0].new, json!("2"));
        assert_eq!(d[1].new, Value::Null);
        assert!(diff_payloads(&old, &old).is_empty());
    }
}
