//! Canonical JSON of a serialisable value, written straight from it: the same bytes as
//! `write_canonical(&serde_json::to_value(v))` (the audit crate's canonical form: object keys
//! sorted by their UTF-8 bytes, no whitespace, scalars as serde_json writes them), without the
//! `Value` tree.
//!
//! Why: a report's digest is the SHA-256 of the canonical JSON of its body, and a monthly body at
//! a million events holds 200,000 change rows; building a `Value` of each (a map with a `String`
//! key per field) and sorting it was 60 % of computing the report
//! (docs/adr/0031-report-at-scale.md). Here each object writes its fields' values into one
//! scratch buffer, then copies them out in key order.
//!
//! What `to_value` would write differently is refused ([`Unsupported`]) and the caller falls
//! back to the `Value` path: map keys that are not strings, 128-bit integers, `f32`, bytes. The
//! test below checks the two paths agree on a body with every field set.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::ser::{self, Serialize};

/// A construct this writer does not reproduce exactly; use the `Value` path.
#[derive(Debug)]
pub struct Unsupported(String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "canonical writer: {}", self.0)
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Unsupported(msg.to_string())
    }
}

fn unsupported<T>(what: &str) -> Result<T, Unsupported> {
    Err(Unsupported(what.into()))
}

/// Append the canonical JSON of `v` to `out`.
pub fn write<T: Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) -> Result<(), Unsupported> {
    let cx = Cx::default();
    v.serialize(Canon { out, cx: &cx })
}

fn string(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, s).expect("a string serialises");
}

struct Canon<'a> {
    out: &'a mut Vec<u8>,
    cx: &'a Cx,
}

/// The key order of each struct shape seen (its keys as written, by address: `&'static str`
/// field names), so a struct written 200,000 times is sorted and its keys escaped once.
/// Per write: the struct layouts, and buffers reused from one object to the next (a body writes
/// a million small objects; allocating two buffers for each was a third of the time).
#[derive(Default)]
struct Cx {
    layouts: RefCell<Vec<Layout>>,
    bufs: RefCell<Vec<Vec<u8>>>,
    entries: RefCell<Vec<Entries>>,
    scratch: RefCell<String>,
}

/// An object's keys and the range of each value in its buffer.
type Entries = Vec<(Cow<'static, str>, usize, usize)>;

/// At most this many shapes are remembered (a body has a handful).
const MAX_LAYOUTS: usize = 256;

struct Layout {
    /// The keys in the order the struct wrote them.
    keys: Vec<&'static str>,
    /// Indices into `keys`, in canonical (sorted) order.
    order: Vec<usize>,
    /// For each position of `order`: the escaped key and `:`.
    heads: Vec<Vec<u8>>,
}

impl Layout {
    fn of(keys: Vec<&'static str>) -> Result<Layout, Unsupported> {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by(|a, b| keys[*a].as_bytes().cmp(keys[*b].as_bytes()));
        if order.windows(2).any(|w| keys[w[0]] == keys[w[1]]) {
            return unsupported("duplicate key");
        }
        let heads = order
            .iter()
            .map(|i| {
                let mut h = Vec::with_capacity(keys[*i].len() + 3);
                string(keys[*i], &mut h);
                h.push(b':');
                h
            })
            .collect();
        Ok(Layout { keys, order, heads })
    }

    fn matches(&self, entries: &[(Cow<'static, str>, usize, usize)]) -> bool {
        self.keys.len() == entries.len()
            && self
                .keys
                .iter()
                .zip(entries)
                .all(|(k, (c, ..))| matches!(c, Cow::Borrowed(b) if std::ptr::eq(*k, *b)))
    }
}

/// An array being written.
struct Seq<'a> {
    out: &'a mut Vec<u8>,
    cx: &'a Cx,
    first: bool,
    /// `Some(variant)`: a tuple variant, closed with `]}`.
    variant: bool,
}

/// An object being collected: each value's bytes in `buf`, sorted by key when it ends.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    cx: &'a Cx,
    /// Every key is a struct field name (`&'static str`): the layout can be remembered.
    fields: bool,
    buf: Vec<u8>,
    /// Key, start and end of its value in `buf`.
    entries: Entries,
    pending_key: Option<String>,
    /// A struct variant, closed with an extra `}`.
    variant: bool,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>, cx: &'a Cx, len: Option<usize>, variant: bool) -> Self {
        let buf = cx.bufs.borrow_mut().pop().unwrap_or_default();
        let mut entries = cx.entries.borrow_mut().pop().unwrap_or_default();
        entries.reserve(len.unwrap_or(8));
        Object {
            out,
            cx,
            fields: true,
            buf,
            entries,
            pending_key: None,
            variant,
        }
    }

    fn value<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        v: &T,
    ) -> Result<(), Unsupported> {
        let start = self.buf.len();
        v.serialize(Canon {
            out: &mut self.buf,
            cx: self.cx,
        })?;
        self.fields &= matches!(key, Cow::Borrowed(_));
        self.entries.push((key, start, self.buf.len()));
        Ok(())
    }

    fn finish(mut self) -> Result<(), Unsupported> {
        let done = if self.fields && !self.entries.is_empty() {
            self.write_struct()
        } else {
            self.write_sorted()
        };
        let (mut buf, mut entries) = (self.buf, self.entries);
        buf.clear();
        entries.clear();
        self.cx.bufs.borrow_mut().push(buf);
        self.cx.entries.borrow_mut().push(entries);
        done
    }

    fn write_sorted(&mut self) -> Result<(), Unsupported> {
        self.entries
            .sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if self.entries.windows(2).any(|w| w[0].0 == w[1].0) {
            return unsupported("duplicate key");
        }
        self.out.push(b'{');
        for (i, (k, s, e)) in self.entries.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            string(k, self.out);
            self.out.push(b':');
            self.out.extend_from_slice(&self.buf[*s..*e]);
        }
        self.out.push(b'}');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

impl Object<'_> {
    /// [`Object::finish`] of a struct: its layout looked up by its keys' addresses (and checked
    /// key by key), computed and remembered the first time.
    fn write_struct(&mut self) -> Result<(), Unsupported> {
        let mut layouts = self.cx.layouts.borrow_mut();
        let fresh;
        let l = match layouts.iter().position(|l| l.matches(&self.entries)) {
            Some(i) => &layouts[i],
            None => {
                let keys = self
                    .entries
                    .iter()
                    .map(|(k, ..)| match k {
                        Cow::Borrowed(k) => *k,
                        Cow::Owned(_) => unreachable!("only struct fields"),
                    })
                    .collect();
                let l = Layout::of(keys)?;
                if layouts.len() < MAX_LAYOUTS {
                    layouts.push(l);
                    layouts.last().expect("just pushed")
                } else {
                    fresh = l;
                    &fresh
                }
            }
        };
        self.out.push(b'{');
        for (j, (i, head)) in l.order.iter().zip(&l.heads).enumerate() {
            if j > 0 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(head);
            let (_, s, e) = &self.entries[*i];
            self.out.extend_from_slice(&self.buf[*s..*e]);
        }
        self.out.push(b'}');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

/// A map key: only strings (what `to_value` also writes as the key itself).
struct Key;

impl ser::Serializer for Key {
    type Ok = String;
    type Error = Unsupported;
    type SerializeSeq = ser::Impossible<String, Unsupported>;
    type SerializeTuple = ser::Impossible<String, Unsupported>;
    type SerializeTupleStruct = ser::Impossible<String, Unsupported>;
    type SerializeTupleVariant = ser::Impossible<String, Unsupported>;
    type SerializeMap = ser::Impossible<String, Unsupported>;
    type SerializeStruct = ser::Impossible<String, Unsupported>;
    type SerializeStructVariant = ser::Impossible<String, Unsupported>;

    fn serialize_str(self, v: &str) -> Result<String, Unsupported> {
        Ok(v.to_string())
    }
    fn serialize_bool(self, _: bool) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_i8(self, _: i8) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_i16(self, _: i16) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_i32(self, _: i32) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_i64(self, _: i64) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_u8(self, _: u8) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_u16(self, _: u16) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_u32(self, _: u32) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_u64(self, _: u64) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_f32(self, _: f32) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_f64(self, _: f64) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_char(self, _: char) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_none(self) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_unit(self) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, Unsupported> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String, Unsupported> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        unsupported("non-string key")
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        unsupported("non-string key")
    }
}

impl<'a> ser::Serializer for Canon<'a> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        serde_json::to_writer(&mut *self.out, &v).expect("an integer serialises");
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        serde_json::to_writer(&mut *self.out, &v).expect("an integer serialises");
        Ok(())
    }
    fn serialize_i128(self, _: i128) -> Result<(), Unsupported> {
        unsupported("i128")
    }
    fn serialize_u128(self, _: u128) -> Result<(), Unsupported> {
        unsupported("u128")
    }
    fn serialize_f32(self, _: f32) -> Result<(), Unsupported> {
        unsupported("f32")
    }
    fn serialize_f64(self, v: f64) -> Result<(), Unsupported> {
        // `to_value` keeps a finite float as a number and turns the rest into null; writing the
        // float does the same, through the same formatter.
        serde_json::to_writer(&mut *self.out, &v).expect("a float serialises");
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        string(v.encode_utf8(&mut [0; 4]), self.out);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        string(v, self.out);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unsupported> {
        unsupported("bytes")
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, v: &T) -> Result<(), Unsupported> {
        // Timestamps: formatted into one reused string instead of a new one each.
        use std::fmt::Write as _;
        let mut s = self.cx.scratch.borrow_mut();
        s.clear();
        write!(s, "{v}").map_err(|e| Unsupported(e.to_string()))?;
        string(&s, self.out);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Unsupported> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        self.out.push(b'{');
        string(variant, self.out);
        self.out.push(b':');
        v.serialize(Canon {
            out: &mut *self.out,
            cx: self.cx,
        })?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, Unsupported> {
        self.out.push(b'[');
        Ok(Seq {
            out: self.out,
            cx: self.cx,
            first: true,
            variant: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, Unsupported> {
        self.out.push(b'{');
        string(variant, self.out);
        self.out.extend_from_slice(b":[");
        Ok(Seq {
            out: self.out,
            cx: self.cx,
            first: true,
            variant: true,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Object<'a>, Unsupported> {
        Ok(Object::new(self.out, self.cx, len, false))
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Object<'a>, Unsupported> {
        Ok(Object::new(self.out, self.cx, Some(len), false))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Object<'a>, Unsupported> {
        self.out.push(b'{');
        string(variant, self.out);
        self.out.push(b':');
        Ok(Object::new(self.out, self.cx, Some(len), true))
    }
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        v.serialize(Canon {
            out: &mut *self.out,
            cx: self.cx,
        })
    }

    fn close(self) -> Result<(), Unsupported> {
        self.out.push(b']');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        self.element(v)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.close()
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        self.element(v)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        self.element(v)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.close()
    }
}

impl ser::SerializeTupleVariant for Seq<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        self.element(v)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.close()
    }
}

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Unsupported> {
        self.pending_key = Some(k.serialize(Key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| Unsupported("a map value without its key".into()))?;
        self.value(Cow::Owned(key), v)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.finish()
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        self.value(Cow::Borrowed(key), v)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Object<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        self.value(Cow::Borrowed(key), v)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use changegate_audit::record::write_canonical;
    use serde_json::json;

    fn via_value<T: Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        write_canonical(&serde_json::to_value(v).unwrap(), &mut out);
        out
    }

    fn direct<T: Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        write(v, &mut out).unwrap();
        out
    }

    #[derive(serde::Serialize)]
    enum E {
        Unit,
        New(u8),
        Tuple(u8, String),
        Struct { z: i64, a: Option<f64> },
    }

    #[derive(serde::Serialize)]
    struct S {
        zeta: Vec<E>,
        alpha: (String, f64, f64, f64),
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        map: std::collections::BTreeMap<String, serde_json::Value>,
        ch: char,
        neg: i32,
        big: u64,
        t: jiff::Timestamp,
        unit: (),
    }

    #[derive(serde::Serialize)]
    struct R {
        zz: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        a: Option<u8>,
        m: u8,
    }

    #[test]
    fn a_remembered_layout_is_used_only_for_the_same_keys() {
        let rows: Vec<R> = (0..7)
            .map(|i| R {
                zz: i,
                a: (i % 3 == 1).then_some(i),
                m: 2 * i,
            })
            .collect();
        let v = (
            rows,
            vec![
                E::Struct { z: 1, a: None },
                E::Struct { z: 2, a: Some(1.5) },
            ],
        );
        assert_eq!(
            String::from_utf8(direct(&v)).unwrap(),
            String::from_utf8(via_value(&v)).unwrap()
        );
    }

    #[test]
    fn it_writes_what_the_value_path_writes() {
        let s = S {
            zeta: vec![
                E::Unit,
                E::New(3),
                E::Tuple(1, "x\"y\u{1}é".into()),
                E::Struct {
                    z: -5,
                    a: Some(0.1 + 0.2),
                },
            ],
            alpha: ("".into(), 2.0, f64::NAN, 1e300),
            skipped: None,
            map: [
                (
                    "b".to_string(),
                    json!({"y": [1, {"b": 2, "a": 1}], "x": null}),
                ),
                ("a".to_string(), json!(-0.0)),
                ("ä".to_string(), json!("z")),
                ("Z".to_string(), json!(true)),
            ]
            .into_iter()
            .collect(),
            ch: 'q',
            neg: -7,
            big: u64::MAX,
            t: "2026-11-10T10:00:00.123456Z".parse().unwrap(),
            unit: (),
        };
        assert_eq!(
            String::from_utf8(direct(&s)).unwrap(),
            String::from_utf8(via_value(&s)).unwrap()
        );
        let mut out = Vec::new();
        assert!(write(&std::collections::BTreeMap::from([(1u8, 2u8)]), &mut out).is_err());
    }
}
