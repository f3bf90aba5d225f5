//! Audit events, their canonical record, the salted commitment and the leaf layout.
//!
//! Stability across versions comes from two rules (docs/audit.md has the full layout):
//! 1. The record is written once as canonical JSON (sorted keys, no insignificant whitespace,
//!    version field `"v": 1`), and those exact bytes are stored and hashed. Verification hashes
//!    the stored bytes; it never re-serialises, so a later serde or float-formatting change
//!    cannot break old logs.
//! 2. The leaf is a fixed binary layout starting with a version byte ([`LEAF_VERSION`]):
//!    `0x01 ‖ seq (u64 BE) ‖ recorded_at (i64 BE, µs since the Unix epoch, UTC) ‖ commitment`.
//!    The commitment is `SHA-256("changegate/audit/record/v1" ‖ 0x00 ‖ salt ‖ record)`. The
//!    leaf keeps position and time in the clear, so once retention deletes a record (and its
//!    salt), the leaf still proves when it was written and what remains still verifies; the
//!    salt keeps a deleted small record from being guessed back from its commitment.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::codes::Code;
use crate::tree::Hash;

/// Version byte of the leaf layout.
pub const LEAF_VERSION: u8 = 1;
/// Length of a v1 leaf.
pub const LEAF_LEN: usize = 1 + 8 + 8 + 32;
/// Record schema version (`"v"` in the record).
pub const RECORD_VERSION: u64 = 1;
const COMMIT_TAG: &[u8] = b"changegate/audit/record/v1\0";

/// Errors building or decoding events and leaves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// An event field is not allowed.
    #[error(
        "{code}: `{group}.{field}` is not an audit field of the policy (allowed: {allowed})",
        code = Code::FieldUnknown
    )]
    UnknownField {
        /// what / who / when / why / outcome.
        group: String,
        /// The field.
        field: String,
        /// The policy's list for that group.
        allowed: String,
    },
    /// Kind, actor or id is empty or malformed.
    #[error("{code}: {0}", code = Code::EventInvalid)]
    Invalid(String),
    /// A leaf has the wrong length or version.
    #[error("{code}: {0}", code = Code::LeafMalformed)]
    Leaf(String),
    /// A stored record is not the canonical JSON of an event.
    #[error("{code}: {0}", code = Code::RecordMalformed)]
    Record(String),
}

impl RecordError {
    /// Stable code (the start of the message).
    pub fn code(&self) -> Code {
        match self {
            RecordError::UnknownField { .. } => Code::FieldUnknown,
            RecordError::Invalid(_) => Code::EventInvalid,
            RecordError::Leaf(_) => Code::LeafMalformed,
            RecordError::Record(_) => Code::RecordMalformed,
        }
    }
}

/// The policy's audit fields (`policy.audit.fields`), by question.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPolicy {
    groups: BTreeMap<&'static str, Vec<String>>,
}

impl FieldPolicy {
    /// From the policy model.
    pub fn from_policy(f: &changegate_policy::AuditFields) -> Self {
        let mut groups = BTreeMap::new();
        groups.insert("what", f.what.clone());
        groups.insert("who", f.who.clone());
        groups.insert("when", f.when.clone());
        groups.insert("why", f.why.clone());
        groups.insert("outcome", f.outcome.clone());
        FieldPolicy { groups }
    }

    /// Fields allowed in a group.
    pub fn allowed(&self, group: &str) -> &[String] {
        self.groups.get(group).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// An audit event as the product hands it in: what happened, by whom, about which change, and
/// the policy's what / who / when / why / outcome fields. Position, id and time are assigned by
/// the log when it is appended.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// Dotted kind, e.g. `change.approved`, `deployment.step`, `rollback.triggered`.
    pub kind: String,
    /// Person or service that caused it.
    pub actor: String,
    /// Change request id, when the event is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
    /// Change category (policy category id), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// What changed (e.g. `commit-sha`, `artifact-version`, `changed-files`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub what: BTreeMap<String, Value>,
    /// Who (e.g. `deployer`, `approvers`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub who: BTreeMap<String, Value>,
    /// When (e.g. `deployed-at-utc`, `duration`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub when: BTreeMap<String, Value>,
    /// Why (e.g. `pr-link`, `ticket`, `incident`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub why: BTreeMap<String, Value>,
    /// Outcome (e.g. `result`, `error-rate`, `latency-impact`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outcome: BTreeMap<String, Value>,
    /// Anything else the event needs (decision reasons, trigger metric values, ...).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
    /// The stored document this event's write left behind (set by the store on the writes of
    /// changes and of the world document, never by a caller: [`AuditEvent::validate`] refuses
    /// it). `audit verify` checks every stored document against the latest of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateRef>,
}

/// Which kind of stored document a [`StateRef`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateTable {
    /// A change request (`server_change`, by change id).
    Change,
    /// The world document (`server_world`: incidents, announcements, teams); id `world`.
    World,
    /// An API token row (`server_token`, by token id). Its document is the row's columns in a
    /// fixed JSON form (the store's `token_doc`), digest included: a token whose digest, person,
    /// kind, scopes, expiry or revocation was edited is found like an edited change.
    Token,
}

impl StateTable {
    /// `change`, `world` or `token`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateTable::Change => "change",
            StateTable::World => "world",
            StateTable::Token => "token",
        }
    }

    /// From [`StateTable::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "change" => Some(StateTable::Change),
            "world" => Some(StateTable::World),
            "token" => Some(StateTable::Token),
            _ => None,
        }
    }
}

/// The id a [`StateRef`] of the world document carries.
pub const WORLD_ID: &str = "world";

/// What a state-changing event left in the state tables: the document's table, id, version and
/// the SHA-256 of the document exactly as stored (its bytes, never re-serialised, like records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRef {
    /// Which table.
    pub table: StateTable,
    /// Change id, or [`WORLD_ID`].
    pub id: String,
    /// The version the write stored.
    pub version: i64,
    /// SHA-256 of the stored document bytes, lowercase hex.
    pub sha256: String,
}

impl StateRef {
    /// The reference to `doc`, stored as `version` of `id` in `table`.
    pub fn of(table: StateTable, id: impl Into<String>, version: i64, doc: &[u8]) -> Self {
        StateRef {
            table,
            id: id.into(),
            version,
            sha256: hex::encode(state_hash(doc)),
        }
    }
}

/// SHA-256 of a stored document's bytes (what a [`StateRef`] records).
pub fn state_hash(doc: &[u8]) -> Hash {
    Sha256::digest(doc).into()
}

macro_rules! setter {
    ($name:ident) => {
        #[doc = concat!("Set a `", stringify!($name), "` field.")]
        pub fn $name(mut self, field: &str, value: impl Into<Value>) -> Self {
            self.$name.insert(field.to_string(), value.into());
            self
        }
    };
}

impl AuditEvent {
    /// A new event of `kind` caused by `actor`.
    pub fn new(kind: impl Into<String>, actor: impl Into<String>) -> Self {
        AuditEvent {
            kind: kind.into(),
            actor: actor.into(),
            ..Default::default()
        }
    }

    /// About change `id`.
    pub fn change(mut self, id: impl Into<String>) -> Self {
        self.change_id = Some(id.into());
        self
    }

    /// Of category `c`.
    pub fn category(mut self, c: impl Into<String>) -> Self {
        self.category = Some(c.into());
        self
    }

    /// Extra details.
    pub fn details(mut self, v: Value) -> Self {
        self.details = v;
        self
    }

    setter!(what);
    setter!(who);
    setter!(when);
    setter!(why);
    setter!(outcome);

    /// Check kind and actor, and every field against the policy's list (fail closed: a field the
    /// policy does not name is refused, so auditors find what the policy promises).
    pub fn validate(&self, fields: Option<&FieldPolicy>) -> Result<(), RecordError> {
        let kind_ok = !self.kind.is_empty()
            && self.kind.len() <= 64
            && self.kind.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'_'
            });
        if !kind_ok {
            return Err(RecordError::Invalid(format!(
                "kind `{}` must be 1-64 chars of a-z 0-9 . - _",
                self.kind
            )));
        }
        if self.actor.trim().is_empty() {
            return Err(RecordError::Invalid("actor is empty".into()));
        }
        if !(self.details.is_null() || self.details.is_object()) {
            return Err(RecordError::Invalid("details must be a JSON object".into()));
        }
        if self.state.is_some() {
            // Only the store's own writes of a document say what they stored; a caller that
            // could set it would vouch for a row it never wrote.
            return Err(RecordError::Invalid(
                "state is recorded by the store with the write it proves, never by a caller".into(),
            ));
        }
        if let Some(fp) = fields {
            for (group, map) in self.groups() {
                let allowed = fp.allowed(group);
                for field in map.keys() {
                    if !allowed.iter().any(|a| a == field) {
                        return Err(RecordError::UnknownField {
                            group: group.into(),
                            field: field.clone(),
                            allowed: allowed.join(", "),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn groups(&self) -> [(&'static str, &BTreeMap<String, Value>); 5] {
        [
            ("what", &self.what),
            ("who", &self.who),
            ("when", &self.when),
            ("why", &self.why),
            ("outcome", &self.outcome),
        ]
    }
}

/// The record of an appended event: the event plus what the log assigned.
// No `deny_unknown_fields` here: serde does not support it next to `flatten`; `parse` checks
// the canonical form and the event part denies unknown fields itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Record schema version ([`RECORD_VERSION`]).
    pub v: u64,
    /// Event id (unique, assigned at append).
    pub id: String,
    /// Position in the log (leaf index).
    pub seq: u64,
    /// When the log accepted it (UTC, microsecond precision).
    pub recorded_at: Timestamp,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
}

impl Record {
    /// Canonical JSON bytes: keys sorted, no whitespace (see the module docs).
    pub fn canonical(&self) -> Vec<u8> {
        let v = serde_json::to_value(self).expect("a record always serialises");
        let mut out = Vec::with_capacity(256);
        write_canonical(&v, &mut out);
        out
    }

    /// Parse stored record bytes and check they are canonical.
    pub fn parse(bytes: &[u8]) -> Result<Record, RecordError> {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| RecordError::Record(e.to_string()))?;
        let mut again = Vec::with_capacity(bytes.len());
        write_canonical(&v, &mut again);
        if again != bytes {
            return Err(RecordError::Record("not in canonical form".into()));
        }
        let r: Record =
            serde_json::from_value(v).map_err(|e| RecordError::Record(e.to_string()))?;
        if r.v != RECORD_VERSION {
            return Err(RecordError::Record(format!(
                "unknown record version {}",
                r.v
            )));
        }
        Ok(r)
    }
}

/// Canonical JSON: objects with keys sorted by their UTF-8 bytes, no whitespace, strings and
/// numbers as serde_json writes them (integers in decimal; finite floats in shortest round-trip
/// form).
pub fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("string serialises");
                out.push(b':');
                write_canonical(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("scalar serialises"),
    }
}

/// Salted commitment to a record: `SHA-256("changegate/audit/record/v1\0" ‖ salt ‖ record)`.
pub fn commitment(salt: &[u8], record: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(COMMIT_TAG);
    h.update(salt);
    h.update(record);
    h.finalize().into()
}

/// The bytes of one leaf (v1 layout, see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafData {
    /// Position in the log.
    pub seq: u64,
    /// When the log accepted the event, µs since the Unix epoch (UTC).
    pub recorded_at_us: i64,
    /// Salted commitment to the record.
    pub commitment: Hash,
}

impl LeafData {
    /// Encode (49 bytes).
    pub fn encode(&self) -> [u8; LEAF_LEN] {
        let mut b = [0u8; LEAF_LEN];
        b[0] = LEAF_VERSION;
        b[1..9].copy_from_slice(&self.seq.to_be_bytes());
        b[9..17].copy_from_slice(&self.recorded_at_us.to_be_bytes());
        b[17..].copy_from_slice(&self.commitment);
        b
    }

    /// Decode, checking length and version.
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        if b.len() != LEAF_LEN || b[0] != LEAF_VERSION {
            return Err(RecordError::Leaf(format!(
                "expected {LEAF_LEN} bytes starting with version {LEAF_VERSION}, got {} bytes",
                b.len()
            )));
        }
        Ok(LeafData {
            seq: u64::from_be_bytes(b[1..9].try_into().expect("8 bytes")),
            recorded_at_us: i64::from_be_bytes(b[9..17].try_into().expect("8 bytes")),
            commitment: b[17..].try_into().expect("32 bytes"),
        })
    }

    /// The timestamp.
    pub fn recorded_at(&self) -> Option<Timestamp> {
        Timestamp::from_microsecond(self.recorded_at_us).ok()
    }
}

/// Truncate a timestamp to whole microseconds (what the leaf can hold).
pub fn to_micros(t: Timestamp) -> (Timestamp, i64) {
    let us = t.as_microsecond();
    (Timestamp::from_microsecond(us).expect("in range"), us)
}

/// Everything one append writes, computed purely from the event, the position, the time, the
/// id and the salt (the caller supplies randomness and the clock).
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    /// The record.
    pub record: Record,
    /// Its canonical bytes.
    pub record_bytes: Vec<u8>,
    /// The leaf.
    pub leaf: LeafData,
}

/// Seal an event at position `seq`.
pub fn seal(event: AuditEvent, seq: u64, id: String, at: Timestamp, salt: &[u8]) -> Sealed {
    let (recorded_at, us) = to_micros(at);
    let record = Record {
        v: RECORD_VERSION,
        id,
        seq,
        recorded_at,
        event,
    };
    let record_bytes = record.canonical();
    let leaf = LeafData {
        seq,
        recorded_at_us: us,
        commitment: commitment(salt, &record_bytes),
    };
    Sealed {
        record,
        record_bytes,
        leaf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_keys_recursively_and_round_trips() {
        let ev = AuditEvent::new("change.approved", "alice")
            .change("CR-1")
            .what("commit-sha", "abc")
            .outcome("error-rate", 0.5)
            .details(json!({"z": 1, "a": {"y": [3, {"b": 1, "a": 2}]}}));
        let at: Timestamp = "2026-03-01T10:00:00.123456789Z".parse().unwrap();
        let s = seal(ev, 7, "ev-1".into(), at, &[9; 32]);
        let text = String::from_utf8(s.record_bytes.clone()).unwrap();
        assert_eq!(
            text,
            r#"{"actor":"alice","change_id":"CR-1","details":{"a":{"y":[3,{"a":2,"b":1}]},"z":1},"id":"ev-1","kind":"change.approved","outcome":{"error-rate":0.5},"recorded_at":"2026-03-01T10:00:00.123456Z","seq":7,"v":1,"what":{"commit-sha":"abc"}}"#
        );
        assert_eq!(Record::parse(&s.record_bytes).unwrap(), s.record);
        assert!(Record::parse(b"{\"v\": 1}").is_err());
        let leaf = LeafData::decode(&s.leaf.encode()).unwrap();
        assert_eq!(leaf, s.leaf);
        assert_eq!(
            leaf.recorded_at().unwrap().to_string(),
            "2026-03-01T10:00:00.123456Z"
        );
    }

    /// Any finite float an event carries (a metric value, a ratio, a duration in seconds) is
    /// stored and read back as the same bytes: parsing must be exact (serde_json's
    /// `float_roundtrip`), or the verifier calls an honest record `audit-record-malformed`.
    #[test]
    fn every_float_round_trips_through_a_stored_record() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut values = vec![
            0.1 + 0.2,
            1.0 / 3.0,
            0.004_999_999_999_999_999,
            123.456e-9,
            1e300,
        ];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                values.push(f);
            }
            values.push((x % 1_000_000_007) as f64 / 997.0);
        }
        let at: Timestamp = "2026-03-01T10:00:00Z".parse().unwrap();
        for (i, chunk) in values.chunks(500).enumerate() {
            let ev = AuditEvent::new("deployment.step", "integration:changegate-rollout")
                .details(json!({ "values": chunk }));
            let s = seal(ev, i as u64, format!("ev-{i}"), at, &[1; 32]);
            let back = Record::parse(&s.record_bytes)
                .unwrap_or_else(|e| panic!("chunk {i} does not round-trip: {e}"));
            assert_eq!(back, s.record);
        }
    }

    #[test]
    fn commitment_depends_on_salt_and_record() {
        assert_ne!(commitment(&[1; 32], b"x"), commitment(&[2; 32], b"x"));
        assert_ne!(commitment(&[1; 32], b"x"), commitment(&[1; 32], b"y"));
    }

    #[test]
    fn leaf_rejects_wrong_version_and_length() {
        let mut b = LeafData {
            seq: 1,
            recorded_at_us: 2,
            commitment: [3; 32],
        }
        .encode();
        assert!(LeafData::decode(&b[..48]).is_err());
        b[0] = 2;
        assert!(LeafData::decode(&b).is_err());
    }

    #[test]
    fn validate_refuses_fields_the_policy_does_not_name() {
        let fp = FieldPolicy::from_policy(&changegate_policy::load_default().policy.audit.fields);
        let ok = AuditEvent::new("deployment.finish", "ci")
            .what("commit-sha", "abc")
            .outcome("result", "success");
        ok.validate(Some(&fp)).unwrap();
        let bad = AuditEvent::new("deployment.finish", "ci").what("colour", "blue");
        let err = bad.validate(Some(&fp)).unwrap_err();
        assert!(err.to_string().starts_with("audit-field-unknown"), "{err}");
        assert!(AuditEvent::new("Bad Kind", "x").validate(None).is_err());
        assert!(AuditEvent::new("ok", " ").validate(None).is_err());
    }
}
