//! The raw pass: the merged TOML document checked against the policy's JSON Schema before any
//! typed deserialisation, so every unknown key, missing key, wrong type and unparsable scalar is
//! reported at once, each with its path (and so its file, line and column).
//!
//! Why the schema and a walk over the merged `toml::Table`, rather than `toml::Spanned` fields or
//! a second typed model: the schema is generated from the typed model (`schemars`), so the keys a
//! table accepts, the required ones, the names an enum takes and the integer ranges come from one
//! source and cannot drift from what serde accepts (a test checks that both agree on mutated
//! policies). The walk is over the *merged* table because a user file only overrides the default:
//! a key is missing only if neither file has it. Spans come from the `toml_edit` documents of both
//! files through [`Locator`], which already resolves a path to the file that wrote it.
//!
//! Scalar types written as strings (durations, times, zones, dates, weekdays) are parsed with their
//! own `FromStr`, the same code serde runs, so the messages are the ones deserialisation would give.

use std::borrow::Cow;
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde_json::{Map, Value as Json};
use toml::Value as Toml;

use crate::diag::{DiagCode, Diagnostic};
use crate::model::Policy;
use crate::source::{Locator, Seg};
use crate::suggest::did_you_mean;
use crate::types::{CalSpan, Date, Dur, Holiday, LocalTime, MonthDay, Tz, Weekday};

/// The policy's JSON Schema as a JSON value (built once).
pub(crate) fn schema() -> &'static Json {
    static SCHEMA: OnceLock<Json> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::to_value(schemars::schema_for!(Policy)).expect("a schema is JSON")
    })
}

/// Check the merged document; returns every problem found (all errors). `standalone`: the file
/// sets `extends = "none"` (so a missing key could have been inherited instead).
pub(crate) fn check(doc: &toml::Table, standalone: bool, loc: &Locator<'_>) -> Vec<Diagnostic> {
    let root = schema();
    let mut walk = Walk {
        defs: root
            .get("$defs")
            .and_then(Json::as_object)
            .expect("the schema has $defs"),
        standalone,
        loc,
        out: Vec::new(),
    };
    walk.table(doc, root, &[]);
    walk.out
}

/// A scalar type the policy writes as a string and parses with `FromStr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    Dur,
    CalSpan,
    LocalTime,
    Tz,
    Date,
    MonthDay,
    Holiday,
    Weekday,
}

impl Scalar {
    pub(crate) const ALL: [Scalar; 8] = [
        Scalar::Dur,
        Scalar::CalSpan,
        Scalar::LocalTime,
        Scalar::Tz,
        Scalar::Date,
        Scalar::MonthDay,
        Scalar::Holiday,
        Scalar::Weekday,
    ];

    /// The name of its definition in the schema (`$defs/…`).
    pub(crate) fn schema_name(self) -> Cow<'static, str> {
        match self {
            Scalar::Dur => Dur::schema_name(),
            Scalar::CalSpan => CalSpan::schema_name(),
            Scalar::LocalTime => LocalTime::schema_name(),
            Scalar::Tz => Tz::schema_name(),
            Scalar::Date => Date::schema_name(),
            Scalar::MonthDay => MonthDay::schema_name(),
            Scalar::Holiday => Holiday::schema_name(),
            Scalar::Weekday => Weekday::schema_name(),
        }
    }

    fn from_schema_name(name: &str) -> Option<Scalar> {
        Scalar::ALL.into_iter().find(|s| s.schema_name() == name)
    }

    /// Parse as serde would; the error is the type's own message.
    fn parse(self, s: &str) -> Result<(), String> {
        match self {
            Scalar::Dur => s.parse::<Dur>().map(drop),
            Scalar::CalSpan => s.parse::<CalSpan>().map(drop),
            Scalar::LocalTime => s.parse::<LocalTime>().map(drop),
            Scalar::Tz => s.parse::<Tz>().map(drop),
            Scalar::Date => s.parse::<Date>().map(drop),
            Scalar::MonthDay => s.parse::<MonthDay>().map(drop),
            Scalar::Holiday => s.parse::<Holiday>().map(drop),
            Scalar::Weekday => s.parse::<Weekday>().map(drop),
        }
    }

    fn code(self) -> DiagCode {
        match self {
            Scalar::Dur | Scalar::CalSpan => DiagCode::BadDuration,
            Scalar::LocalTime => DiagCode::BadTime,
            Scalar::Tz => DiagCode::BadTimezone,
            Scalar::Date | Scalar::MonthDay | Scalar::Holiday => DiagCode::BadDate,
            Scalar::Weekday => DiagCode::UnknownValue,
        }
    }

    fn help(self, s: &str) -> String {
        match self {
            Scalar::Dur => {
                "durations are exact: combine `s`, `m`, `h` and `d` (24 hours), e.g. `1h 30m`"
                    .into()
            }
            Scalar::CalSpan => "a calendar period such as `2y`, `18mo` or `730d`".into(),
            Scalar::LocalTime => {
                "write a 24-hour local time HH:MM, e.g. `02:00`; `24:00` ends the day".into()
            }
            Scalar::Tz => {
                let db = jiff::tz::db();
                let names: Vec<String> = db.available().map(|n| n.as_str().to_string()).collect();
                match did_you_mean(s, names.iter().map(String::as_str)) {
                    Some(name) => format!("did you mean `{name}`?"),
                    None => "use an IANA time zone name such as `UTC` or `Europe/Berlin`".into(),
                }
            }
            Scalar::Date => "write a date YYYY-MM-DD, e.g. `2026-01-31`".into(),
            Scalar::MonthDay => "write a yearly day MM-DD, e.g. `12-25`".into(),
            Scalar::Holiday => "write YYYY-MM-DD for one date, or MM-DD for every year".into(),
            Scalar::Weekday => {
                let days = Weekday::ALL.map(Weekday::as_str);
                match did_you_mean(&s.to_ascii_lowercase(), days) {
                    Some(d) => format!("did you mean `{d}`?"),
                    None => format!("one of: {}", days.join(", ")),
                }
            }
        }
    }
}

struct Walk<'a> {
    defs: &'a Map<String, Json>,
    /// The file sets `extends = "none"`: nothing is inherited.
    standalone: bool,
    loc: &'a Locator<'a>,
    out: Vec<Diagnostic>,
}

/// `path` with `seg` appended.
fn with(path: &[Seg], seg: Seg) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(seg);
    p
}

/// serde's way of listing what was expected: "`a`", "`a` or `b`", "one of `a`, `b`, `c`".
fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing".into(),
        [a] => format!("`{a}`"),
        [a, b] => format!("`{a}` or `{b}`"),
        _ => format!(
            "one of {}",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A TOML value as an error message names it.
fn found(v: &Toml) -> String {
    match v {
        Toml::String(s) => format!("string {s:?}"),
        Toml::Integer(i) => format!("integer {i}"),
        Toml::Float(f) => format!("float {f}"),
        Toml::Boolean(b) => format!("boolean {b}"),
        Toml::Datetime(d) => format!("datetime {d}"),
        Toml::Array(_) => "array".into(),
        Toml::Table(_) => "table".into(),
    }
}

/// The text of a value serde reads as a string: a string, or a TOML datetime (which the `toml`
/// deserialiser hands to a string field as its text).
fn text(v: &Toml) -> Option<Cow<'_, str>> {
    match v {
        Toml::String(s) => Some(Cow::Borrowed(s)),
        Toml::Datetime(d) => Some(Cow::Owned(d.to_string())),
        _ => None,
    }
}

/// The schema's `type`, ignoring `null` (TOML has none: an absent key is an absent value).
fn type_name(schema: &Json) -> Option<&str> {
    match schema.get("type")? {
        Json::String(t) => Some(t),
        Json::Array(ts) => ts.iter().filter_map(Json::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

/// Names of a `oneOf` that lists string constants (a unit enum), if it is one.
fn constants(variants: &[Json]) -> Option<Vec<&str>> {
    variants
        .iter()
        .map(|v| v.get("const").and_then(Json::as_str))
        .collect()
}

impl Walk<'_> {
    fn report(&mut self, code: DiagCode, path: &[Seg], message: String, help: String) {
        let mut d = self.loc.diag(code, path, message, Some(help));
        if d.location.is_none() {
            d.location = self.loc.locate_file_start();
        }
        self.out.push(d);
    }

    fn wrong_type(&mut self, v: &Toml, expected: &str, path: &[Seg]) {
        self.report(
            DiagCode::WrongType,
            path,
            format!("invalid type: {}, expected {expected}", found(v)),
            "see `changegate policy schema` for the expected type".into(),
        );
    }

    fn value(&mut self, v: &Toml, schema: &Json, path: &[Seg]) {
        if let Some(r) = schema.get("$ref").and_then(Json::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r);
            if let Some(scalar) = Scalar::from_schema_name(name) {
                self.scalar(scalar, v, path);
            } else if let Some(def) = self.defs.get(name) {
                self.value(v, def, path);
            }
            return;
        }
        if let Some(alternatives) = schema.get("anyOf").and_then(Json::as_array) {
            // `Option<T>`: check against `T`.
            if let Some(s) = alternatives
                .iter()
                .find(|s| s.get("type").and_then(Json::as_str) != Some("null"))
            {
                self.value(v, s, path);
            }
            return;
        }
        if let Some(variants) = schema.get("oneOf").and_then(Json::as_array) {
            match constants(variants) {
                Some(names) => self.choice(v, &names, path),
                None => self.tagged(v, variants, path),
            }
            return;
        }
        match type_name(schema) {
            Some("object") => match v.as_table() {
                Some(t) => self.table(t, schema, path),
                None => self.wrong_type(v, "a table", path),
            },
            Some("array") => match v.as_array() {
                Some(items) => {
                    if let Some(item) = schema.get("items") {
                        for (n, x) in items.iter().enumerate() {
                            self.value(x, item, &with(path, Seg::Index(n)));
                        }
                    }
                }
                None => self.wrong_type(v, "an array", path),
            },
            Some("string") if text(v).is_none() => self.wrong_type(v, "a string", path),
            Some("boolean") if !v.is_bool() => self.wrong_type(v, "a boolean", path),
            Some("number") if !matches!(v, Toml::Float(_) | Toml::Integer(_)) => {
                self.wrong_type(v, "a number", path)
            }
            Some("integer") => self.integer(v, schema, path),
            _ => {}
        }
    }

    fn integer(&mut self, v: &Toml, schema: &Json, path: &[Seg]) {
        // schemars writes `minimum`/`maximum` for some widths only; `format` names the Rust type.
        let (fmin, fmax) = match schema.get("format").and_then(Json::as_str) {
            Some("uint8") => (Some(0), Some(i64::from(u8::MAX))),
            Some("uint16") => (Some(0), Some(i64::from(u16::MAX))),
            Some("uint32") => (Some(0), Some(i64::from(u32::MAX))),
            Some("uint64" | "uint") => (Some(0), None),
            Some("int8") => (Some(i64::from(i8::MIN)), Some(i64::from(i8::MAX))),
            Some("int16") => (Some(i64::from(i16::MIN)), Some(i64::from(i16::MAX))),
            Some("int32") => (Some(i64::from(i32::MIN)), Some(i64::from(i32::MAX))),
            _ => (None, None),
        };
        let min = schema.get("minimum").and_then(Json::as_i64).or(fmin);
        let max = schema.get("maximum").and_then(Json::as_i64).or(fmax);
        let expected = match (min, max) {
            (Some(a), Some(b)) => format!("an integer from {a} to {b}"),
            (Some(a), None) => format!("an integer of at least {a}"),
            _ => "an integer".to_string(),
        };
        match v {
            Toml::Integer(i) if min.is_some_and(|m| *i < m) || max.is_some_and(|m| *i > m) => {
                self.report(
                    DiagCode::WrongType,
                    path,
                    format!("invalid value: integer {i}, expected {expected}"),
                    "see `changegate policy schema` for the expected type".into(),
                );
            }
            Toml::Integer(_) => {}
            other => self.wrong_type(other, &expected, path),
        }
    }

    fn scalar(&mut self, scalar: Scalar, v: &Toml, path: &[Seg]) {
        let Some(s) = text(v) else {
            return self.wrong_type(v, "a string", path);
        };
        if let Err(message) = scalar.parse(&s) {
            let help = scalar.help(&s);
            self.report(scalar.code(), path, message, help);
        }
    }

    /// A unit enum written as one of its names.
    fn choice(&mut self, v: &Toml, names: &[&str], path: &[Seg]) {
        let Some(s) = v.as_str() else {
            return self.wrong_type(v, "a string", path);
        };
        if !names.contains(&s) {
            let help = match did_you_mean(s, names.iter().copied()) {
                Some(n) => format!("did you mean `{n}`?"),
                None => format!("use {}", one_of(names)),
            };
            self.report(
                DiagCode::UnknownValue,
                path,
                format!("unknown variant `{s}`, expected {}", one_of(names)),
                help,
            );
        }
    }

    /// An internally tagged enum (`[freezes.*]` with `kind = "…"`): the tag picks the variant.
    fn tagged(&mut self, v: &Toml, variants: &[Json], path: &[Seg]) {
        let Some(t) = v.as_table() else {
            return self.wrong_type(v, "a table", path);
        };
        // The tag is the property each variant pins to a constant.
        let tag_of = |variant: &'_ Json| -> Option<(String, String)> {
            variant
                .get("properties")?
                .as_object()?
                .iter()
                .find_map(|(k, p)| Some((k.clone(), p.get("const")?.as_str()?.to_string())))
        };
        let tags: Vec<(String, String)> = variants.iter().filter_map(tag_of).collect();
        let Some(tag) = tags.first().map(|(k, _)| k.clone()) else {
            return;
        };
        let names: Vec<&str> = tags.iter().map(|(_, n)| n.as_str()).collect();
        let tag_path = with(path, Seg::Key(tag.clone()));
        match t.get(&tag) {
            None => self.report(
                DiagCode::MissingKey,
                path,
                format!("missing field `{tag}`"),
                format!("add `{tag} = \"…\"`, {}", one_of(&names)),
            ),
            Some(Toml::String(s)) => match tags.iter().position(|(_, n)| n == s) {
                Some(i) => self.table(t, &variants[i], path),
                None => self.choice(&Toml::String(s.clone()), &names, &tag_path),
            },
            Some(other) => self.wrong_type(other, "a string", &tag_path),
        }
    }

    /// A table: a struct (known keys, some required) or a map of entries of one schema.
    fn table(&mut self, t: &toml::Table, schema: &Json, path: &[Seg]) {
        let Some(props) = schema.get("properties").and_then(Json::as_object) else {
            if let Some(entry) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for (k, x) in t {
                    self.value(x, entry, &with(path, Seg::Key(k.clone())));
                }
            }
            return;
        };
        // Missing keys first: they point at the table's header, above its entries.
        let missing: Vec<&str> = schema
            .get("required")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .filter(|key| !t.contains_key(*key))
            .collect();
        if !missing.is_empty() {
            let names = missing
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let (s, them) = if missing.len() == 1 {
                ("", "it")
            } else {
                ("s", "them")
            };
            let help = if self.standalone {
                format!(
                    "add the missing key{s}, or remove `extends = \"none\"` to inherit {them} from the built-in default"
                )
            } else {
                format!(
                    "add the missing key{s}; `changegate policy schema` lists what each table needs"
                )
            };
            self.report(
                DiagCode::MissingKey,
                path,
                format!("missing field{s} {names}"),
                help,
            );
        }
        let closed = schema.get("additionalProperties") == Some(&Json::Bool(false));
        // What serde lists: the fields, without an enum's tag.
        let fields: Vec<&str> = props
            .iter()
            .filter(|(_, p)| p.get("const").is_none())
            .map(|(k, _)| k.as_str())
            .collect();
        for (k, x) in t {
            let p = with(path, Seg::Key(k.clone()));
            match props.get(k) {
                Some(prop) if prop.get("const").is_some() => {}
                Some(prop) => self.value(x, prop, &p),
                None if closed => self.unknown_key(k, &fields, &p),
                None => {}
            }
        }
    }

    fn unknown_key(&mut self, key: &str, fields: &[&str], path: &[Seg]) {
        let help = match did_you_mean(key, fields.iter().copied()) {
            Some(s) => format!(
                "did you mean `{s}`? Unknown keys are rejected so that typos do not go unnoticed"
            ),
            None => {
                "remove the key; unknown keys are rejected so that typos do not go unnoticed".into()
            }
        };
        let expected = if fields.is_empty() {
            "there are no fields".to_string()
        } else {
            format!("expected {}", one_of(fields))
        };
        let mut d = self.loc.diag(
            DiagCode::UnknownKey,
            path,
            format!("unknown field `{key}`, {expected}"),
            Some(help),
        );
        // Point at the key itself, not its value.
        d.location = self
            .loc
            .locate(path, true)
            .or_else(|| self.loc.locate_file_start());
        self.out.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string type in the schema is parsed by the raw pass: a new one that is not listed in
    /// [`Scalar`] would only be checked by serde, one error at a time.
    #[test]
    fn every_string_type_of_the_schema_is_a_known_scalar() {
        let defs = schema()["$defs"].as_object().unwrap();
        for (name, def) in defs {
            let is_string_type = def.get("type") == Some(&Json::from("string"));
            assert_eq!(
                is_string_type,
                Scalar::from_schema_name(name).is_some(),
                "{name}: string types and Scalar must agree"
            );
        }
        for s in Scalar::ALL {
            assert!(defs.contains_key(s.schema_name().as_ref()), "{s:?}");
        }
    }

    #[test]
    fn lists_read_like_serde() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b"]), "`a` or `b`");
        assert_eq!(one_of(&["a", "b", "c"]), "one of `a`, `b`, `c`");
    }
}
