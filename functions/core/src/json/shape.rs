//! The shape of one JSON record: which fields, which JSON kinds, whether strings look like
//! dates or timestamps. Checking a record's shape is also where undecodable input is caught:
//! every [`Reject`] carries the reason the record goes to the dead-letter area.
//!
//! A record that parses as a JSON object is never refused here for what one of its fields holds:
//! a field no column can store (a mixed-type array, an integer beyond 64 bits inside an array or
//! object, an object with a repeated key) gets the shape [`Shape::Unstorable`], and a repeated
//! top-level key keeps its last value ([`RecordShape::repeated`]); the plan moves such fields to
//! the rescued-data column.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::reject::{Reject, RejectKind};

/// What a string value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrKind {
    /// Any other string.
    Plain,
    /// `YYYY-MM-DD`, a valid calendar date.
    Date,
    /// `YYYY-MM-DD[T ]HH:MM[:SS[.f{1,9}]][Z|±HH[:]MM]`.
    Timestamp,
}

/// The JSON kind of a value; objects keep their keys in order of first appearance.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// An integer that fits a signed 64-bit integer.
    Int,
    /// An integer beyond a signed 64-bit one whose magnitude fits 64 bits unsigned
    /// (`decimal(20,0)` holds it exactly).
    UInt64,
    /// An integer beyond 64 bits (an md5 as a number): only its digits, as text, hold it exactly.
    HugeInt,
    /// A number with a fraction or an exponent.
    Float,
    /// A string, and what it looks like.
    Str(StrKind),
    /// The merged shape of the elements (`Null` for an empty array).
    Array(Box<Shape>),
    /// An object's fields, in order of first appearance.
    Object(Vec<(String, Shape)>),
    /// A value no column can store, and why: only ever a top-level field of a record.
    Unstorable(Reject),
}

impl Shape {
    /// "a string", "an integer", ... for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Shape::Null => "null",
            Shape::Bool => "a boolean",
            Shape::Int => "an integer",
            Shape::UInt64 => "an integer beyond bigint",
            Shape::HugeInt => "an integer beyond 64 bits",
            Shape::Float => "a decimal number",
            Shape::Str(StrKind::Plain) => "a string",
            Shape::Str(StrKind::Date) => "a date string",
            Shape::Str(StrKind::Timestamp) => "a timestamp string",
            Shape::Array(_) => "an array",
            Shape::Object(_) => "an object",
            Shape::Unstorable(_) => "a value no column can store",
        }
    }
}

/// Merges two shapes of the same field: integers within 64 bits widen to `decimal(20,0)`, those
/// within bigint to double, date-like strings widen to timestamp or plain string, objects take the
/// union of their fields. Other mixes conflict (integers beyond bigint never become floats: that
/// would lose digits).
pub fn merge(a: &Shape, b: &Shape) -> Result<Shape, String> {
    use Shape as S;
    if a == b && !matches!(a, S::Unstorable(_)) {
        return Ok(a.clone());
    }
    Ok(match (a, b) {
        (S::Unstorable(r), _) | (_, S::Unstorable(r)) => return Err(r.reason.clone()),
        (S::Null, x) | (x, S::Null) => x.clone(),
        (S::Int, S::Float) | (S::Float, S::Int) => S::Float,
        // decimal(20,0) holds both; a HugeInt makes a string column, which takes no small integer.
        (S::Int, S::UInt64) | (S::UInt64, S::Int) => S::UInt64,
        (S::Str(x), S::Str(y)) => S::Str(match (x, y) {
            (StrKind::Date, StrKind::Timestamp) | (StrKind::Timestamp, StrKind::Date) => StrKind::Timestamp,
            _ => StrKind::Plain,
        }),
        (S::Array(x), S::Array(y)) => S::Array(Box::new(merge(x, y)?)),
        (S::Object(x), S::Object(y)) => {
            let mut out = x.clone();
            for (k, v) in y {
                match out.iter_mut().find(|(k2, _)| k2 == k) {
                    Some((_, existing)) => *existing = merge(existing, v).map_err(|e| format!("{k}: {e}"))?,
                    None => out.push((k.clone(), v.clone())),
                }
            }
            S::Object(out)
        }
        (x, y) => return Err(format!("{} and {}", x.describe(), y.describe())),
    })
}

/// Folds a record's shape into a batch's: like [`merge`], but a field that conflicts keeps what
/// came first while the record's other fields still count (the field itself is rescued or the
/// record refused later), and an unstorable field contributes nothing.
pub fn absorb(acc: &mut Shape, s: &Shape) {
    match (acc, s) {
        (_, Shape::Unstorable(_)) => {}
        (Shape::Object(fields), Shape::Object(new)) => {
            for (k, v) in new {
                match fields.iter_mut().find(|(k2, _)| k2 == k) {
                    Some((_, existing)) => absorb(existing, v),
                    None if matches!(v, Shape::Unstorable(_)) => {}
                    None => fields.push((k.clone(), v.clone())),
                }
            }
        }
        (acc, s) => {
            if let Ok(m) = merge(acc, s) {
                *acc = m;
            }
        }
    }
}

/// Limits applied while reading a record.
#[derive(Debug, Clone)]
pub struct ShapeOptions {
    /// A string value longer than this is refused (`field_too_large`).
    pub max_field_bytes: usize,
    /// Nesting deeper than this is refused (`too_deep`).
    pub max_depth: usize,
    /// Whether ISO-8601 strings are told apart as dates and timestamps.
    pub infer_temporal: bool,
}

impl Default for ShapeOptions {
    fn default() -> Self {
        ShapeOptions { max_field_bytes: 1 << 20, max_depth: 64, infer_temporal: true }
    }
}

/// Reads one JSON value and returns its shape, or the reason it is refused.
pub fn infer(bytes: &[u8], opts: &ShapeOptions) -> Result<Shape, Reject> {
    if bytes.starts_with(BYTE_ORDER_MARK) {
        return Err(Reject::new(RejectKind::ByteOrderMark, "the value starts with a UTF-8 byte-order mark"));
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(Reject::new(RejectKind::InvalidUtf8, format!("the value is not valid UTF-8: {e}")));
    }
    infer_at(bytes, opts, 0)
}

/// [`infer`] of valid UTF-8 nested `depth` levels deep in its record.
fn infer_at(bytes: &[u8], opts: &ShapeOptions, depth: usize) -> Result<Shape, Reject> {
    if let Some(wide) = wide_integer(bytes) {
        return Ok(wide);
    }
    if let Some(tok) = find_wide_integer(bytes) {
        let shown: String = tok.chars().take(60).collect();
        return Err(Reject::new(
            RejectKind::IntegerOutOfRange,
            format!("the integer {shown} inside an array or object does not fit in 64 bits"),
        ));
    }
    let kind = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = ShapeSeed { depth, opts, kind: &kind };
    let shape = seed.deserialize(&mut de).and_then(|s| de.end().map(|_| s)).map_err(|e| {
        let fallback = if out_of_range(&e) { RejectKind::NumberOutOfRange } else { RejectKind::InvalidJson };
        Reject::new(kind.get().unwrap_or(fallback), e.to_string())
    })?;
    Ok(shape)
}

/// Whether serde_json refused valid JSON for a number past `f64`'s range (`1e400`). It names no
/// error code publicly; the message for this one is fixed ("number out of range at line L column C").
fn out_of_range(e: &serde_json::Error) -> bool {
    e.to_string().starts_with("number out of range")
}

/// A UTF-8 byte-order mark. RFC 8259 lets a parser ignore one: records are read without it.
pub const BYTE_ORDER_MARK: &[u8] = &[0xEF, 0xBB, 0xBF];

/// The value without its byte-order mark, if it has one.
pub fn without_byte_order_mark(value: &[u8]) -> &[u8] {
    value.strip_prefix(BYTE_ORDER_MARK).unwrap_or(value)
}

/// A record that parses as a JSON object, field by field.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordShape {
    /// [`Shape::Object`], each key once, with its last value (as `JSON.parse` and Python read it).
    pub shape: Shape,
    /// The keys that appeared more than once: their earlier values are rescued.
    pub repeated: Vec<String>,
    /// Whether the value started with a byte-order mark (stripped before reading).
    pub byte_order_mark: bool,
}

/// Whether a reason concerns one field, which can be rescued, rather than the whole record.
fn field_level(kind: RejectKind) -> bool {
    matches!(
        kind,
        RejectKind::MixedArray | RejectKind::DuplicateKey | RejectKind::IntegerOutOfRange | RejectKind::NumberOutOfRange
    )
}

/// Reads one record, which must be a JSON object. Only what makes the record undecodable refuses
/// it: invalid UTF-8 or JSON, not an object, too deep, a field over the size limit.
pub fn read_record(bytes: &[u8], opts: &ShapeOptions) -> Result<RecordShape, Reject> {
    let byte_order_mark = bytes.starts_with(BYTE_ORDER_MARK);
    let body = without_byte_order_mark(bytes);
    // One pass over the whole record first: the fields one by one only when one needs it.
    match infer(body, opts) {
        Ok(shape @ Shape::Object(_)) => return Ok(RecordShape { shape, repeated: Vec::new(), byte_order_mark }),
        Ok(other) => return Err(not_an_object(&other)),
        Err(r) if field_level(r.kind) => {}
        Err(r) => return Err(r),
    }
    let mut fields: Vec<(String, Shape)> = Vec::new();
    let mut repeated: Vec<String> = Vec::new();
    for (key, raw) in split_fields(body)? {
        if key.len() > opts.max_field_bytes {
            return Err(Reject::new(RejectKind::FieldTooLarge, format!("a key of {} bytes is over the limit", key.len())));
        }
        let shape = match infer_at(raw.as_bytes(), opts, 1) {
            Ok(s) => s,
            Err(r) if field_level(r.kind) => Shape::Unstorable(Reject::new(r.kind, format!("field {key:?}: {}", r.reason))),
            Err(r) => return Err(r),
        };
        match fields.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) => {
                *existing = shape;
                if !repeated.contains(&key) {
                    repeated.push(key);
                }
            }
            None => fields.push((key, shape)),
        }
    }
    Ok(RecordShape { shape: Shape::Object(fields), repeated, byte_order_mark })
}

fn not_an_object(shape: &Shape) -> Reject {
    Reject::new(RejectKind::NotAnObject, format!("the value is {}, not a JSON object", shape.describe()))
}

/// Like [`read_record`], for callers that only need the shape.
pub fn infer_record(bytes: &[u8], opts: &ShapeOptions) -> Result<Shape, Reject> {
    read_record(bytes, opts).map(|r| r.shape)
}

/// The top-level fields of a JSON object, in order, each key decoded and each value as its exact
/// text (repeated keys included).
pub fn split_fields(body: &[u8]) -> Result<Vec<(String, &str)>, Reject> {
    struct Fields;
    impl<'de> Visitor<'de> for Fields {
        type Value = Vec<(String, &'de str)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                let raw: &'de serde_json::value::RawValue = map.next_value()?;
                out.push((key, raw.get()));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let fields = de::Deserializer::deserialize_map(&mut de, Fields).and_then(|f| de.end().map(|_| f)).map_err(|e| {
        // A number out of range here is the whole value: valid JSON, not an object.
        let kind = if e.is_data() || out_of_range(&e) { RejectKind::NotAnObject } else { RejectKind::InvalidJson };
        Reject::new(kind, e.to_string())
    })?;
    Ok(fields)
}

/// The shape of a value that is one integer beyond a signed 64-bit one.
pub(crate) fn wide_integer(raw: &[u8]) -> Option<Shape> {
    let digits = raw.strip_prefix(b"-").unwrap_or(raw);
    if digits.len() < 19 || !is_digits(digits) || digits[0] == b'0' {
        return None;
    }
    let text = std::str::from_utf8(raw).ok()?;
    if text.parse::<i64>().is_ok() {
        return None;
    }
    let magnitude = std::str::from_utf8(digits).ok()?;
    Some(if magnitude.parse::<u64>().is_ok() { Shape::UInt64 } else { Shape::HugeInt })
}

/// Finds an integer literal outside strings that does not fit in an `i64`. serde_json would
/// silently read it as a lossy float, so this is checked on the raw bytes.
fn find_wide_integer(b: &[u8]) -> Option<&str> {
    let n = b.len();
    let mut i = 0;
    while i < n {
        match b[i] {
            b'"' => {
                i += 1;
                while i < n {
                    match b[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < n && matches!(b[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                    i += 1;
                }
                let tok = &b[start..i];
                let integral = !tok.iter().any(|c| matches!(c, b'.' | b'e' | b'E'));
                if integral && tok.len() >= 19 {
                    let s = std::str::from_utf8(tok).ok()?;
                    if s.parse::<i64>().is_err() && s.bytes().skip(1).all(|c| c.is_ascii_digit()) {
                        return Some(s);
                    }
                }
            }
            _ => i += 1,
        }
    }
    None
}

fn is_digits(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_digit)
}

/// The `YYYY-MM-DD` that `b` starts with, if it is a real (proleptic Gregorian) calendar date,
/// as days since 1970-01-01.
pub(crate) fn calendar_date(b: &[u8]) -> Option<i32> {
    if b.len() < 10 || !(is_digits(&b[0..4]) && b[4] == b'-' && is_digits(&b[5..7]) && b[7] == b'-' && is_digits(&b[8..10])) {
        return None;
    }
    // Digits already checked: read them as numbers, no format parsing.
    let num = |r: std::ops::Range<usize>| b[r].iter().fold(0i32, |n, d| n * 10 + i32::from(d - b'0'));
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&d) {
        return None;
    }
    // Days from civil (H. Hinnant): years start in March, so the leap day ends the year.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let day_of_year = (153 * m + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// Classifies a string as a date, a timestamp or plain text.
pub fn classify(s: &str) -> StrKind {
    let b = s.as_bytes();
    if calendar_date(b).is_none() {
        return StrKind::Plain;
    }
    if b.len() == 10 {
        return StrKind::Date;
    }
    // Time part: [T ]HH:MM[:SS[.fraction]] then an optional zone.
    let rest = &b[10..];
    if rest.len() < 6 || !matches!(rest[0], b'T' | b' ') || !is_digits(&rest[1..3]) || rest[3] != b':' || !is_digits(&rest[4..6])
    {
        return StrKind::Plain;
    }
    let mut i = 6;
    if rest.get(i) == Some(&b':') {
        if rest.len() < i + 3 || !is_digits(&rest[i + 1..i + 3]) {
            return StrKind::Plain;
        }
        i += 3;
        if rest.get(i) == Some(&b'.') {
            let digits = rest[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if !(1..=9).contains(&digits) {
                return StrKind::Plain;
            }
            i += 1 + digits;
        }
    }
    let zone = &rest[i..];
    let zone_ok = zone.is_empty()
        || zone == b"Z"
        || (zone.len() == 6
            && matches!(zone[0], b'+' | b'-')
            && is_digits(&zone[1..3])
            && zone[3] == b':'
            && is_digits(&zone[4..6]))
        || (zone.len() == 5 && matches!(zone[0], b'+' | b'-') && is_digits(&zone[1..5]));
    if !zone_ok {
        return StrKind::Plain;
    }
    // The decoder must be able to read it (hour 25 and the like fall back to plain text).
    match arrow_cast::parse::string_to_datetime(&chrono::Utc, s) {
        Ok(_) => StrKind::Timestamp,
        Err(_) => StrKind::Plain,
    }
}

struct ShapeSeed<'a> {
    depth: usize,
    opts: &'a ShapeOptions,
    kind: &'a Cell<Option<RejectKind>>,
}

impl ShapeSeed<'_> {
    fn fail<E: de::Error>(&self, kind: RejectKind, msg: String) -> E {
        self.kind.set(Some(kind));
        E::custom(msg)
    }
    fn child(&self) -> Self {
        ShapeSeed { depth: self.depth + 1, opts: self.opts, kind: self.kind }
    }
    fn enter<E: de::Error>(&self) -> Result<(), E> {
        if self.depth >= self.opts.max_depth {
            return Err(self.fail(RejectKind::TooDeep, format!("nesting is deeper than {} levels", self.opts.max_depth)));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ShapeSeed<'_> {
    type Value = Shape;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ShapeSeed<'_> {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Bool)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Int)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Shape, E> {
        if v > i64::MAX as u64 {
            return Err(
                self.fail(RejectKind::IntegerOutOfRange, format!("the integer {v} does not fit in a signed 64-bit integer"))
            );
        }
        Ok(Shape::Int)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Float)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Shape, E> {
        if s.len() > self.opts.max_field_bytes {
            return Err(self.fail(
                RejectKind::FieldTooLarge,
                format!("a string of {} bytes is over the {}-byte limit", s.len(), self.opts.max_field_bytes),
            ));
        }
        Ok(Shape::Str(if self.opts.infer_temporal { classify(s) } else { StrKind::Plain }))
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Null)
    }
    fn visit_none<E>(self) -> Result<Shape, E> {
        Ok(Shape::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        self.enter()?;
        let mut item = Shape::Null;
        while let Some(s) = seq.next_element_seed(self.child())? {
            item = merge(&item, &s).map_err(|e| {
                self.fail(RejectKind::MixedArray, format!("an array mixes {e}; its elements must share one type"))
            })?;
        }
        Ok(Shape::Array(Box::new(item)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        self.enter()?;
        let mut fields: Vec<(String, Shape)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.len() > self.opts.max_field_bytes {
                return Err(self.fail(RejectKind::FieldTooLarge, format!("a key of {} bytes is over the limit", key.len())));
            }
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(self.fail(RejectKind::DuplicateKey, format!("the key {key:?} appears twice in one object")));
            }
            let value = map.next_value_seed(self.child())?;
            fields.push((key, value));
        }
        Ok(Shape::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(json: &str) -> Shape {
        infer(json.as_bytes(), &ShapeOptions::default()).unwrap()
    }
    fn kind(json: &[u8]) -> RejectKind {
        infer_record(json, &ShapeOptions::default()).unwrap_err().kind
    }

    #[test]
    fn shapes_of_values() {
        assert_eq!(
            ok(
                r#"{"a":1,"b":1.5,"c":"x","d":"2026-11-22","e":"2026-11-22T03:00:00.123456","f":null,"g":[1,2.5],"h":{"i":true}}"#
            ),
            Shape::Object(vec![
                ("a".into(), Shape::Int),
                ("b".into(), Shape::Float),
                ("c".into(), Shape::Str(StrKind::Plain)),
                ("d".into(), Shape::Str(StrKind::Date)),
                ("e".into(), Shape::Str(StrKind::Timestamp)),
                ("f".into(), Shape::Null),
                ("g".into(), Shape::Array(Box::new(Shape::Float))),
                ("h".into(), Shape::Object(vec![("i".into(), Shape::Bool)])),
            ])
        );
    }

    #[test]
    fn temporal_strings() {
        for ts in [
            "2026-11-22T03:00:00",
            "2026-11-22 03:00:00.123456",
            "2026-11-22T03:00:00Z",
            "2026-11-22T03:00:00.1+01:00",
            "2026-11-22T03:00:00-0500",
        ] {
            assert_eq!(classify(ts), StrKind::Timestamp, "{ts}");
        }
        assert_eq!(classify("2024-02-29"), StrKind::Date);
        for plain in [
            "2023-02-29",
            "2026-13-01",
            "2026-11-22x",
            "2026-11-22T25:00:00",
            "20261122",
            "hello",
            "2026-11-22T03:00:00 PST",
            "2026-11-22T03:00",
        ] {
            assert_eq!(classify(plain), StrKind::Plain, "{plain}");
        }
    }

    #[test]
    fn undecodable_records_get_reasons() {
        assert_eq!(kind(b"\xff\xfe"), RejectKind::InvalidUtf8);
        assert_eq!(kind(br#"{"a":"#), RejectKind::InvalidJson);
        assert_eq!(kind(br#"{"a":NaN}"#), RejectKind::InvalidJson);
        assert_eq!(kind(br#"{"a":1} {"b":2}"#), RejectKind::InvalidJson);
        assert_eq!(kind(br#"{"a":[1,"x"]} x"#), RejectKind::InvalidJson);
        assert_eq!(kind(b""), RejectKind::InvalidJson);
        assert_eq!(kind(b"[1]"), RejectKind::NotAnObject);
        assert_eq!(kind(b"[1,\"x\"]"), RejectKind::NotAnObject);
        assert_eq!(kind(b"42"), RejectKind::NotAnObject);
        assert_eq!(kind(b"340282366920938463463374607431768211455"), RejectKind::NotAnObject);
        assert_eq!(kind(b"null"), RejectKind::NotAnObject);
        assert_eq!(kind(b"\xEF\xBB\xBF\xEF\xBB\xBF{}"), RejectKind::ByteOrderMark, "one mark is stripped, not two");
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(kind(deep.as_bytes()), RejectKind::TooDeep);
        // Too deep also when another field would be rescued.
        let deep_and_mixed = format!("{{\"m\":[1,\"x\"],\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(kind(deep_and_mixed.as_bytes()), RejectKind::TooDeep);
        let opts = ShapeOptions { max_field_bytes: 10, ..Default::default() };
        assert_eq!(infer_record(br#"{"a":"01234567890"}"#, &opts).unwrap_err().kind, RejectKind::FieldTooLarge);
        assert_eq!(infer_record(br#"{"m":[1,"x"],"a":"01234567890"}"#, &opts).unwrap_err().kind, RejectKind::FieldTooLarge);
    }

    #[test]
    fn fields_no_column_stores_leave_the_record_readable() {
        let read = |json: &[u8]| read_record(json, &ShapeOptions::default()).unwrap();
        let fields = |r: RecordShape| match r.shape {
            Shape::Object(f) => f,
            _ => panic!("an object"),
        };
        let f =
            fields(read(br#"{"zip":340282366920938463463374607431768211455,"u":18446744073709551615,"n":-9223372036854775809}"#));
        assert_eq!(f.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>(), [Shape::HugeInt, Shape::UInt64, Shape::UInt64]);
        let f = fields(read(
            br#"{"a":[1,"x"],"b":{"c":1,"c":2},"d":[340282366920938463463374607431768211455],"e":1,"f":1e400,"g":{"h":-2E+999}}"#,
        ));
        let kinds: Vec<Option<RejectKind>> = f
            .iter()
            .map(|(_, s)| match s {
                Shape::Unstorable(r) => Some(r.kind),
                _ => None,
            })
            .collect();
        assert_eq!(
            kinds,
            [
                Some(RejectKind::MixedArray),
                Some(RejectKind::DuplicateKey),
                Some(RejectKind::IntegerOutOfRange),
                None,
                Some(RejectKind::NumberOutOfRange),
                Some(RejectKind::NumberOutOfRange)
            ]
        );
        // Beyond double's range is valid JSON; a malformed number is not.
        assert_eq!(kind(b"1e400"), RejectKind::NotAnObject);
        assert_eq!(kind(br#"{"a":1e}"#), RejectKind::InvalidJson);
        // A repeated key keeps its last value; a byte-order mark is stripped and counted.
        let r = read(b"\xEF\xBB\xBF{\"k\":1,\"j\":true,\"k\":\"last\"}");
        assert!(r.byte_order_mark);
        assert_eq!(r.repeated, ["k"]);
        assert_eq!(fields(r), [("k".to_string(), Shape::Str(StrKind::Plain)), ("j".to_string(), Shape::Bool)]);
        // An unstorable field adds nothing to a batch's shape; later good values still do.
        let mut acc = Shape::Object(Vec::new());
        absorb(&mut acc, &read(br#"{"a":[1,"x"]}"#).shape);
        absorb(&mut acc, &read(br#"{"a":[1,2]}"#).shape);
        assert_eq!(acc, ok(r#"{"a":[1]}"#));
    }

    #[test]
    fn integers_widen_exactly() {
        assert_eq!(merge(&Shape::Int, &Shape::UInt64).unwrap(), Shape::UInt64);
        assert_eq!(merge(&Shape::HugeInt, &Shape::HugeInt).unwrap(), Shape::HugeInt);
        // A string column takes no small integer: the first kind seen wins, the other is rescued.
        assert!(merge(&Shape::UInt64, &Shape::HugeInt).is_err());
        assert!(merge(&Shape::HugeInt, &Shape::Int).is_err());
        assert!(merge(&Shape::UInt64, &Shape::Float).is_err(), "a double would lose digits");
        assert!(merge(&Shape::HugeInt, &Shape::Str(StrKind::Plain)).is_err());
    }

    #[test]
    fn integers_at_the_edges_are_fine() {
        assert_eq!(
            ok(r#"{"a":9223372036854775807,"b":-9223372036854775808,"s":"340282366920938463463374607431768211455","f":1.0e300}"#),
            Shape::Object(vec![
                ("a".into(), Shape::Int),
                ("b".into(), Shape::Int),
                ("s".into(), Shape::Str(StrKind::Plain)),
                ("f".into(), Shape::Float)
            ])
        );
        // Digits inside strings, with escaped quotes, are not numbers.
        ok(r#"{"s":"\"123456789012345678901234567890\""}"#);
    }

    #[test]
    fn merging() {
        let m = merge(&ok(r#"{"a":1,"d":"2026-01-01"}"#), &ok(r#"{"a":2.5,"d":"2026-01-01T00:00:00","n":true}"#)).unwrap();
        assert_eq!(m, ok(r#"{"a":1.5,"d":"2026-01-01T00:00:00","n":true}"#));
        assert_eq!(merge(&Shape::Str(StrKind::Date), &Shape::Str(StrKind::Plain)).unwrap(), Shape::Str(StrKind::Plain));
        assert!(merge(&ok(r#"{"a":1}"#), &ok(r#"{"a":"x"}"#)).is_err());
        let mut acc = ok(r#"{"a":1,"o":{"x":1}}"#);
        absorb(&mut acc, &ok(r#"{"a":"x","b":true,"o":{"x":"s","y":2}}"#));
        assert_eq!(acc, ok(r#"{"a":1,"o":{"x":1,"y":2},"b":true}"#));
    }

    #[test]
    fn calendar_dates_are_chronos() {
        use chrono::{Datelike, NaiveDate};
        // Every year, month and day number from 0 to past the last, valid or not.
        for y in 0..=9999 {
            for m in 0..=13 {
                for d in 0..=32 {
                    let text = format!("{y:04}-{m:02}-{d:02}");
                    let chrono = NaiveDate::from_ymd_opt(y, m, d).map(|d| d.num_days_from_ce() - 719_163);
                    assert_eq!(calendar_date(text.as_bytes()), chrono, "{text}");
                }
            }
        }
        assert_eq!(calendar_date(b"1970-01-01"), Some(0));
        assert_eq!(calendar_date(b"2026-11-22T03:00"), Some(20_779));
        for bad in [&b"2026-1-22"[..], b"2026/11/22", b"+026-11-22", b"2026-11-2"] {
            assert_eq!(calendar_date(bad), None);
        }
    }
}
