//! The few fields of a record the report reads, deserialized straight from the stored bytes.
//!
//! Why: a monthly report reads every record of the log (a million at scale), and parsing each one
//! into a [`Record`] (a `serde_json::Value` tree, the canonical-form check, the typed event with
//! its maps) cost more than computing the report. An [`EventView`] keeps only what the fold reads
//! (docs/adr/0031-report-at-scale.md), borrowing strings from the input where the JSON has no
//! escapes and skipping every other field unparsed.
//!
//! It reads the JSON as `serde_json::Value` accessors would: a field of an unexpected type is
//! absent (`Value::as_str` of a number is `None`), never an error, so a report computed from a
//! view equals the one computed from the parsed [`Record`]. [`EventView::of`] builds the same view
//! from a parsed record (export verification, tests), through the same types.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use changegate_audit::Record;
use changegate_audit::record::{RECORD_VERSION, RecordError};
use jiff::Timestamp;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A JSON scalar, as the report reads it; an object or an array is [`Scalar::Other`].
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Scalar<'a> {
    /// Absent or `null`.
    #[default]
    Null,
    /// A string.
    Str(Cow<'a, str>),
    /// A boolean.
    Bool(bool),
    /// A non-negative integer.
    U(u64),
    /// A negative integer.
    I(i64),
    /// A float.
    F(f64),
    /// An object or an array (not read).
    Other,
}

impl Scalar<'_> {
    /// `Value::as_str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A non-empty string (the report's `s()`).
    pub fn text(&self) -> Option<&str> {
        self.as_str().filter(|s| !s.is_empty())
    }

    /// A non-empty string, owned.
    pub fn string(&self) -> Option<String> {
        self.text().map(str::to_string)
    }

    /// `Value::as_bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// `Value::as_f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Scalar::U(u) => Some(u as f64),
            Scalar::I(i) => Some(i as f64),
            Scalar::F(f) => Some(f),
            _ => None,
        }
    }

    /// `Value::as_u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Scalar::U(u) => Some(u),
            _ => None,
        }
    }

    /// `Value::as_i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Scalar::U(u) => i64::try_from(u).ok(),
            Scalar::I(i) => Some(i),
            _ => None,
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::U(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(if v >= 0 {
            Scalar::U(v as u64)
        } else {
            Scalar::I(v)
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::F(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// An object read into `T` (its fields the report reads); anything else is `T::default()`
/// (`Value::get` on a non-object is `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Obj<T>(pub T);

struct ObjVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Obj)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Obj::default())
    }
    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(Obj::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Obj::default())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Obj::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Obj::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Obj::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Obj::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Obj::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Obj::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjVisitor(PhantomData))
    }
}

/// An array of `T`; anything else is `None` (`Value::as_array`).
#[derive(Debug, Clone, PartialEq)]
pub struct Arr<T>(pub Option<Vec<T>>);

impl<T> Default for Arr<T> {
    fn default() -> Self {
        Arr(None)
    }
}

impl<T> Arr<T> {
    /// The elements (none when it is not an array).
    pub fn items(&self) -> &[T] {
        self.0.as_deref().unwrap_or(&[])
    }
}

struct ArrVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ArrVisitor<T> {
    type Value = Arr<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(x) = seq.next_element::<T>()? {
            v.push(x);
        }
        Ok(Arr(Some(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Arr(None))
    }
    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(Arr(None))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Arr(None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Arr(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Arr(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Arr(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Arr(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Arr(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Arr(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Arr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ArrVisitor(PhantomData))
    }
}

/// `what`: what changed.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct What<'a> {
    /// `commit-sha`.
    #[serde(rename = "commit-sha", borrow)]
    pub commit_sha: Scalar<'a>,
    /// `artifact-version`.
    #[serde(rename = "artifact-version", borrow)]
    pub artifact_version: Scalar<'a>,
    /// `changed-files`.
    #[serde(rename = "changed-files", borrow)]
    pub changed_files: Arr<Scalar<'a>>,
}

/// One of `who.approvers`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Approver<'a> {
    /// Person.
    #[serde(borrow)]
    pub person: Scalar<'a>,
    /// Role.
    #[serde(borrow)]
    pub role: Scalar<'a>,
    /// When (RFC 3339).
    #[serde(borrow)]
    pub at: Scalar<'a>,
}

/// `who`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Who<'a> {
    /// `deployer`.
    #[serde(borrow)]
    pub deployer: Scalar<'a>,
    /// `approvers`.
    #[serde(borrow)]
    pub approvers: Arr<Obj<Approver<'a>>>,
}

/// `when`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct When<'a> {
    /// `duration`, seconds.
    #[serde(borrow)]
    pub duration: Scalar<'a>,
}

/// `why`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Why<'a> {
    /// `pr-link`.
    #[serde(rename = "pr-link", borrow)]
    pub pr_link: Scalar<'a>,
    /// `ticket`.
    #[serde(borrow)]
    pub ticket: Scalar<'a>,
    /// `incident`.
    #[serde(borrow)]
    pub incident: Scalar<'a>,
}

/// `outcome`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Outcomes<'a> {
    /// `error-rate`.
    #[serde(rename = "error-rate", borrow)]
    pub error_rate: Scalar<'a>,
    /// `latency-impact`.
    #[serde(rename = "latency-impact", borrow)]
    pub latency_impact: Scalar<'a>,
}

/// `details.op`: the operation a state event recorded.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Op<'a> {
    /// Operation name.
    #[serde(borrow)]
    pub op: Scalar<'a>,
    /// Transition event.
    #[serde(borrow)]
    pub event: Scalar<'a>,
    /// Approver.
    #[serde(borrow)]
    pub person: Scalar<'a>,
    /// Role.
    #[serde(borrow)]
    pub role: Scalar<'a>,
    /// Exception reason.
    #[serde(borrow)]
    pub reason: Scalar<'a>,
    /// Incident of an emergency or remediation.
    #[serde(borrow)]
    pub incident: Scalar<'a>,
    /// Incident id.
    #[serde(borrow)]
    pub id: Scalar<'a>,
    /// Incident severity.
    #[serde(borrow)]
    pub severity: Scalar<'a>,
    /// Incident kind.
    #[serde(borrow)]
    pub kind: Scalar<'a>,
    /// CVSS score.
    #[serde(borrow)]
    pub cvss: Scalar<'a>,
    /// Reopened.
    #[serde(borrow)]
    pub reopen: Scalar<'a>,
}

/// One decision reason.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Reason<'a> {
    /// Code.
    #[serde(borrow)]
    pub code: Scalar<'a>,
    /// Whether it denies.
    #[serde(borrow)]
    pub denies: Scalar<'a>,
}

/// A decision (`details` of `gate.decision`, `details.decision` of a start).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Decision<'a> {
    /// Allowed.
    #[serde(borrow)]
    pub allowed: Scalar<'a>,
    /// Reasons.
    #[serde(borrow)]
    pub reasons: Arr<Obj<Reason<'a>>>,
}

/// `details.observed`: a metrics read.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Observed<'a> {
    /// `before` or `after`.
    #[serde(borrow)]
    pub phase: Scalar<'a>,
    /// Error rate, %.
    #[serde(rename = "error-rate", borrow)]
    pub error_rate: Scalar<'a>,
    /// p95 latency, ms.
    #[serde(rename = "p95-latency", borrow)]
    pub p95_latency: Scalar<'a>,
}

/// `details.checkpoint` of a sign-off.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct CheckpointRef<'a> {
    /// Tree size.
    #[serde(borrow)]
    pub size: Scalar<'a>,
}

/// `details`: the union of what the report reads from any kind's details.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Details<'a> {
    /// `change.created`: repository.
    #[serde(borrow)]
    pub repository: Scalar<'a>,
    /// `change.created`: status.
    #[serde(borrow)]
    pub status: Scalar<'a>,
    /// State events: the operation.
    #[serde(borrow)]
    pub op: Obj<Op<'a>>,
    /// `gate.decision`: allowed.
    #[serde(borrow)]
    pub allowed: Scalar<'a>,
    /// `gate.decision`: reasons.
    #[serde(borrow)]
    pub reasons: Arr<Obj<Reason<'a>>>,
    /// `deployment.start`: the decision it started under.
    #[serde(borrow)]
    pub decision: Obj<Decision<'a>>,
    /// `deployment.start`: environment.
    #[serde(borrow)]
    pub environment: Scalar<'a>,
    /// A metrics read.
    #[serde(borrow)]
    pub observed: Obj<Observed<'a>>,
    /// `report.signed`: report name.
    #[serde(borrow)]
    pub report: Scalar<'a>,
    /// `report.signed`: role.
    #[serde(borrow)]
    pub role: Scalar<'a>,
    /// `report.signed`: digest.
    #[serde(borrow)]
    pub digest: Scalar<'a>,
    /// `report.signed`: checkpoint.
    #[serde(borrow)]
    pub checkpoint: Obj<CheckpointRef<'a>>,
}

impl<'a> Details<'a> {
    /// The details as a decision (`gate.decision`).
    pub fn as_decision(&self) -> Decision<'a> {
        Decision {
            allowed: self.allowed.clone(),
            reasons: self.reasons.clone(),
        }
    }
}

/// The record as stored, only the fields the report reads.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Raw<'a> {
    #[serde(borrow)]
    v: Scalar<'a>,
    #[serde(borrow)]
    seq: Scalar<'a>,
    #[serde(borrow)]
    recorded_at: Scalar<'a>,
    #[serde(borrow)]
    kind: Scalar<'a>,
    #[serde(borrow)]
    actor: Scalar<'a>,
    #[serde(borrow)]
    change_id: Scalar<'a>,
    #[serde(borrow)]
    category: Scalar<'a>,
    #[serde(borrow)]
    what: Obj<What<'a>>,
    #[serde(borrow)]
    who: Obj<Who<'a>>,
    #[serde(borrow)]
    when: Obj<When<'a>>,
    #[serde(borrow)]
    why: Obj<Why<'a>>,
    #[serde(borrow)]
    outcome: Obj<Outcomes<'a>>,
    #[serde(borrow)]
    details: Obj<Details<'a>>,
}

/// What the report reads of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct EventView<'a> {
    /// Log position.
    pub seq: u64,
    /// When the log recorded it.
    pub recorded_at: Timestamp,
    /// Kind.
    pub kind: Cow<'a, str>,
    /// Actor.
    pub actor: Cow<'a, str>,
    /// Change id.
    pub change_id: Option<Cow<'a, str>>,
    /// Category.
    pub category: Option<Cow<'a, str>>,
    /// `what`.
    pub what: What<'a>,
    /// `who`.
    pub who: Who<'a>,
    /// `when`.
    pub when: When<'a>,
    /// `why`.
    pub why: Why<'a>,
    /// `outcome`.
    pub outcome: Outcomes<'a>,
    /// `details`.
    pub details: Details<'a>,
}

fn malformed(m: impl fmt::Display) -> RecordError {
    RecordError::Record(m.to_string())
}

fn text_of(s: Scalar<'_>) -> Option<Cow<'_, str>> {
    match s {
        Scalar::Str(c) => Some(c),
        _ => None,
    }
}

/// Read a group (`what`, `who`, ...) of a parsed record as the view's type.
fn group<'a, T: Deserialize<'a> + Default>(m: &'a BTreeMap<String, Value>) -> T {
    if m.is_empty() {
        return T::default();
    }
    let de = de::value::MapDeserializer::<_, serde_json::Error>::new(
        m.iter().map(|(k, v)| (k.as_str(), v)),
    );
    T::deserialize(de).unwrap_or_default()
}

impl<'a> EventView<'a> {
    /// Read stored record bytes (the canonical JSON the store holds). Only what the report
    /// reads is checked: the record's version, position, time, kind and actor. The canonical
    /// form is not: the store wrote it and `audit verify` checks it; `report verify` reads an
    /// export with the full check ([`Record::parse`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RecordError> {
        let raw: Raw<'a> = serde_json::from_slice(bytes).map_err(malformed)?;
        if raw.v.as_u64() != Some(RECORD_VERSION) {
            return Err(malformed(format!("unknown record version {:?}", raw.v)));
        }
        let seq = raw.seq.as_u64().ok_or_else(|| malformed("no seq"))?;
        let recorded_at = raw
            .recorded_at
            .as_str()
            .and_then(parse_time)
            .ok_or_else(|| malformed("no recorded_at"))?;
        let kind = text_of(raw.kind).ok_or_else(|| malformed("no kind"))?;
        let actor = text_of(raw.actor).ok_or_else(|| malformed("no actor"))?;
        Ok(EventView {
            seq,
            recorded_at,
            kind,
            actor,
            change_id: text_of(raw.change_id),
            category: text_of(raw.category),
            what: raw.what.0,
            who: raw.who.0,
            when: raw.when.0,
            why: raw.why.0,
            outcome: raw.outcome.0,
            details: raw.details.0,
        })
    }

    /// The view of a parsed record.
    pub fn of(r: &'a Record) -> Self {
        let e = &r.event;
        EventView {
            seq: r.seq,
            recorded_at: r.recorded_at,
            kind: Cow::Borrowed(&e.kind),
            actor: Cow::Borrowed(&e.actor),
            change_id: e.change_id.as_deref().map(Cow::Borrowed),
            category: e.category.as_deref().map(Cow::Borrowed),
            what: group(&e.what),
            who: group(&e.who),
            when: group(&e.when),
            why: group(&e.why),
            outcome: group(&e.outcome),
            details: Obj::<Details>::deserialize(&e.details)
                .map(|o| o.0)
                .unwrap_or_default(),
        }
    }
}

/// A record's `recorded_at` (RFC 3339, UTC).
fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use changegate_audit::AuditEvent;
    use changegate_audit::record::seal;
    use serde_json::json;

    #[test]
    fn the_view_of_the_bytes_is_the_view_of_the_record() {
        let at: Timestamp = "2026-11-10T10:00:00.123456Z".parse().unwrap();
        let events = [
            AuditEvent::new("deployment.start", "alice")
                .change("c\"1")
                .category("2")
                .what("commit-sha", "abc")
                .what("changed-files", json!(["a.rs", "", 3, "b\\n.rs"]))
                .who("deployer", "dee")
                .who(
                    "approvers",
                    json!([{"person": "bob", "role": "backend-lead", "at": "2026-11-09T10:00:00Z"}, 7]),
                )
                .when("duration", -3)
                .why("pr-link", json!({"url": "x"}))
                .outcome("error-rate", 1)
                .outcome("latency-impact", 2.5)
                .details(json!({
                    "environment": "production",
                    "decision": {"allowed": true, "reasons": [{"code": "window-closed", "denies": true}, "x"]},
                    "observed": {"phase": "before", "error-rate": 0.1, "p95-latency": 40},
                    "op": [1, 2],
                    "allowed": "yes",
                    "checkpoint": {"size": 18446744073709551615u64},
                    "extra": {"deep": [{"a": null}]}
                })),
            AuditEvent::new("incident", "pagerduty").details(json!({"op": {"op": "open-incident", "id": "INC-1", "cvss": -1, "reopen": true}})),
            AuditEvent::new("gate.decision", "ci").details(json!({"allowed": false, "reasons": {"code": "x"}})),
        ];
        for (i, e) in events.into_iter().enumerate() {
            let s = seal(e, i as u64, format!("ev_{i}"), at, &[1; 32]);
            let from_bytes = EventView::parse(&s.record_bytes).unwrap();
            let from_record = EventView::of(&s.record);
            assert_eq!(from_bytes, from_record, "event {i}");
        }
        let s = seal(
            AuditEvent::new("deployment.start", "alice").what("changed-files", json!(["a"])),
            0,
            "ev".into(),
            at,
            &[1; 32],
        );
        let v = EventView::parse(&s.record_bytes).unwrap();
        assert_eq!(v.what.changed_files.items().len(), 1);
        assert_eq!(v.recorded_at, at);
        assert!(EventView::parse(b"{\"v\":2,\"seq\":0}").is_err());
        assert!(EventView::parse(b"[]").is_err());
    }
}
