//! Table schemas: the column types Tributary writes, how they map to Arrow, Parquet and Athena,
//! and how a table's schema evolves as new fields arrive.
//!
//! Only types Athena reads correctly exist here: no unsigned integers, no INT96, timestamps are
//! UTC microseconds, names are lower case.

use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType, Field as ArrowField, Fields, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::json::shape::{Shape, StrKind};
use crate::naming::{self, RESCUED_COLUMN};
use crate::reject::{Reject, RejectKind};
use crate::table::PARTITION_KEYS;

/// The Arrow time zone of every timestamp column: UTC as an offset, which needs no time-zone
/// database and makes Parquet mark the column `isAdjustedToUTC`.
pub const UTC: &str = "+00:00";

/// A column type, named as Athena names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// `boolean`.
    Boolean,
    /// `int` (32 bits).
    Int,
    /// `bigint`.
    BigInt,
    /// `float` (32 bits).
    Float,
    /// `double`.
    Double,
    /// `decimal(precision, scale)`.
    Decimal(u8, i8),
    /// `string`.
    String,
    /// `binary`.
    Binary,
    /// `date`.
    Date,
    /// UTC, microseconds.
    Timestamp,
    /// `array<element>`.
    Array(Box<ColumnType>),
    /// `struct<...>`, fields in order.
    Struct(Vec<Column>),
}

/// A column, or a field of a struct column: its Athena name, the JSON key it is read from, its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// The column's name (a valid Athena identifier).
    pub name: String,
    /// The JSON key the column reads.
    pub source: String,
    /// The column's type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
}

/// Why one top-level field of a record cannot be stored in its column ([`TableSchema::misfits`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misfit {
    /// The field's JSON key.
    pub field: String,
    /// Why the value does not fit.
    pub reject: Reject,
    /// A field a pinned schema does not name (the unknown-field policy decides its fate); else a
    /// conflict (the conflict policy decides).
    pub unknown: bool,
}

/// The columns of a table, in order. `pinned` schemas come from configuration and never evolve.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    /// The data columns, in table order.
    pub columns: Vec<Column>,
    /// True for a pinned schema: types are enforced, not inferred.
    #[serde(default)]
    pub pinned: bool,
    /// The column named [`RESCUED_COLUMN`] is the rescued-data column. Without the flag a column
    /// of that name is a data column of a table from before rescue existed (when a JSON key
    /// `_rescued_data` kept its name): such a table cannot rescue, and dead-letters instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rescues: bool,
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Boolean => f.write_str("boolean"),
            ColumnType::Int => f.write_str("int"),
            ColumnType::BigInt => f.write_str("bigint"),
            ColumnType::Float => f.write_str("float"),
            ColumnType::Double => f.write_str("double"),
            ColumnType::Decimal(p, s) => write!(f, "decimal({p},{s})"),
            ColumnType::String => f.write_str("string"),
            ColumnType::Binary => f.write_str("binary"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Timestamp => f.write_str("timestamp"),
            ColumnType::Array(t) => write!(f, "array<{t}>"),
            ColumnType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, c) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{}", c.name, c.ty)?;
                }
                f.write_str(">")
            }
        }
    }
}

/// Parses Athena / Hive type syntax: `bigint`, `decimal(18,2)`, `array<struct<a:string,b:int>>`.
struct TypeParser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> TypeParser<'a> {
    fn skip_ws(&mut self) {
        while self.s[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }
    fn word(&mut self) -> &'a str {
        self.skip_ws();
        let rest = &self.s[self.pos..];
        let n = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }
    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_ws();
        if self.s[self.pos..].starts_with(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{c}' at position {} of {:?}", self.pos, self.s))
        }
    }
    fn peek(&mut self, c: char) -> bool {
        self.skip_ws();
        self.s[self.pos..].starts_with(c)
    }
    fn number<T: std::str::FromStr>(&mut self) -> Result<T, String> {
        let w = self.word();
        w.parse().map_err(|_| format!("expected a number, found {w:?} in {:?}", self.s))
    }
    fn ty(&mut self) -> Result<ColumnType, String> {
        let w = self.word().to_ascii_lowercase();
        Ok(match w.as_str() {
            "boolean" => ColumnType::Boolean,
            "int" | "integer" => ColumnType::Int,
            "bigint" => ColumnType::BigInt,
            "float" | "real" => ColumnType::Float,
            "double" => ColumnType::Double,
            "string" | "varchar" => ColumnType::String,
            "binary" | "varbinary" => ColumnType::Binary,
            "date" => ColumnType::Date,
            "timestamp" => ColumnType::Timestamp,
            "decimal" => {
                self.expect('(')?;
                let p: u8 = self.number()?;
                self.expect(',')?;
                let s: i8 = self.number()?;
                self.expect(')')?;
                if !(1..=38).contains(&p) || s < 0 || s as u8 > p {
                    return Err(format!("decimal({p},{s}) is out of range (precision 1..=38, 0 <= scale <= precision)"));
                }
                ColumnType::Decimal(p, s)
            }
            "array" => {
                self.expect('<')?;
                let t = self.ty()?;
                self.expect('>')?;
                ColumnType::Array(Box::new(t))
            }
            "struct" => {
                self.expect('<')?;
                let mut fields: Vec<Column> = Vec::new();
                loop {
                    let raw = self.word();
                    if raw.is_empty() {
                        return Err(format!("expected a field name at position {} of {:?}", self.pos, self.s));
                    }
                    self.expect(':')?;
                    let ty = self.ty()?;
                    let name = naming::column_name(raw, &[]);
                    if fields.iter().any(|f| f.name == name) {
                        return Err(format!("struct field {name:?} named twice in {:?}", self.s));
                    }
                    fields.push(Column { name, source: raw.to_string(), ty });
                    if self.peek(',') {
                        self.expect(',')?;
                    } else {
                        break;
                    }
                }
                self.expect('>')?;
                ColumnType::Struct(fields)
            }
            "" => return Err(format!("expected a type at position {} of {:?}", self.pos, self.s)),
            other => return Err(format!("unknown type {other:?} in {:?}", self.s)),
        })
    }
}

impl ColumnType {
    /// Parses an Athena type name.
    pub fn parse(s: &str) -> Result<ColumnType, String> {
        let mut p = TypeParser { s, pos: 0 };
        let t = p.ty()?;
        p.skip_ws();
        if p.pos != s.len() {
            return Err(format!("unexpected {:?} after the type in {s:?}", &s[p.pos..]));
        }
        Ok(t)
    }

    /// The Arrow type data is decoded into. Struct fields carry their `source` names when
    /// `by_source` is set (for decoding JSON), else their column names (for writing).
    pub fn arrow_type(&self, by_source: bool) -> DataType {
        match self {
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Int => DataType::Int32,
            ColumnType::BigInt => DataType::Int64,
            ColumnType::Float => DataType::Float32,
            ColumnType::Double => DataType::Float64,
            ColumnType::Decimal(p, s) => DataType::Decimal128(*p, *s),
            ColumnType::String => DataType::Utf8,
            ColumnType::Binary => DataType::Binary,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            ColumnType::Array(t) => DataType::List(Arc::new(ArrowField::new("element", t.arrow_type(by_source), true))),
            ColumnType::Struct(fields) => DataType::Struct(arrow_fields(fields, by_source)),
        }
    }

    /// The type a first-seen JSON shape gets, or `None` while the shape says nothing about the
    /// type (only nulls, empty arrays, empty objects).
    pub fn from_shape(shape: &Shape) -> Option<ColumnType> {
        Some(match shape {
            Shape::Null => return None,
            Shape::Bool => ColumnType::Boolean,
            Shape::Int => ColumnType::BigInt,
            // Exact: Athena's decimal(20,0) holds every 64-bit integer, signed or not; beyond
            // that only text does (decimal(38,0) stops below 10^38, an md5 needs 39 digits).
            Shape::UInt64 => ColumnType::Decimal(20, 0),
            Shape::HugeInt => ColumnType::String,
            Shape::Unstorable(_) => return None,
            Shape::Float => ColumnType::Double,
            Shape::Str(StrKind::Plain) => ColumnType::String,
            Shape::Str(StrKind::Date) => ColumnType::Date,
            Shape::Str(StrKind::Timestamp) => ColumnType::Timestamp,
            Shape::Array(item) => ColumnType::Array(Box::new(ColumnType::from_shape(item)?)),
            Shape::Object(fields) => {
                let cols: Vec<Column> = fields
                    .iter()
                    .filter_map(|(raw, s)| {
                        ColumnType::from_shape(s).map(|ty| Column {
                            name: naming::column_name(raw, &[]),
                            source: raw.clone(),
                            ty,
                        })
                    })
                    .collect();
                if cols.is_empty() {
                    return None;
                }
                ColumnType::Struct(cols)
            }
        })
    }
}

fn arrow_fields(cols: &[Column], by_source: bool) -> Fields {
    cols.iter().map(|c| ArrowField::new(if by_source { &c.source } else { &c.name }, c.ty.arrow_type(by_source), true)).collect()
}

/// Whether a value of this shape may be stored in a column of type `ty`.
/// Returns the reason it may not.
fn admit(ty: &mut ColumnType, shape: &Shape, path: &str, evolve: bool, unknown: Unknown) -> Result<bool, String> {
    use ColumnType as T;
    let ok = match (&mut *ty, shape) {
        (_, Shape::Unstorable(r)) => return Err(r.reason.clone()),
        (_, Shape::Null) => true,
        (T::Boolean, Shape::Bool) => true,
        (T::BigInt | T::Int | T::Decimal(..), Shape::Int) => true,
        (T::Double | T::Float | T::Decimal(..), Shape::Int | Shape::Float) => true,
        // Whether the digits fit the precision is the decoder's to check (it refuses, never rounds).
        (T::Decimal(..), Shape::UInt64 | Shape::HugeInt) => true,
        (T::String, Shape::Str(_)) => true,
        // Text is the only exact home of an integer beyond 64 bits; a pinned string column takes
        // any number or boolean as its JSON text.
        (T::String, Shape::UInt64 | Shape::HugeInt) => true,
        (T::String, Shape::Int | Shape::Float | Shape::Bool) if unknown.pinned() => true,
        (T::Date, Shape::Str(StrKind::Date)) => true,
        (T::Timestamp, Shape::Str(StrKind::Date | StrKind::Timestamp)) => true,
        (T::Array(item), Shape::Array(s)) => return admit(item, s, &format!("{path}[]"), evolve, unknown),
        (T::Struct(cols), Shape::Object(fields)) => return admit_fields(cols, fields, path, evolve, unknown, &[]),
        _ => false,
    };
    if ok { Ok(false) } else { Err(format!("field {path:?} is {} in this record but the column is {ty}", shape.describe())) }
}

#[derive(Clone, Copy)]
enum Unknown {
    Add,
    Refuse,
    Ignore,
}

impl Unknown {
    /// Only pinned schemas refuse or ignore unknown fields.
    fn pinned(self) -> bool {
        !matches!(self, Unknown::Add)
    }
}

/// Checks (and with `evolve`, extends) a list of columns against the fields of a JSON object.
/// Returns whether columns were added.
fn admit_fields(
    cols: &mut Vec<Column>,
    fields: &[(String, Shape)],
    path: &str,
    evolve: bool,
    unknown: Unknown,
    reserved: &[&str],
) -> Result<bool, String> {
    let mut changed = false;
    for (raw, shape) in fields {
        let name = naming::column_name(raw, reserved);
        let sub = if path.is_empty() { raw.clone() } else { format!("{path}.{raw}") };
        match cols.iter_mut().find(|c| c.name == name) {
            Some(col) => {
                if col.source != *raw {
                    return Err(format!(
                        "field {sub:?} maps to the same column {name:?} as field {:?}, which the table reads",
                        col.source
                    ));
                }
                changed |= admit(&mut col.ty, shape, &sub, evolve, unknown)?;
            }
            None => match unknown {
                Unknown::Add if evolve => {
                    if let Some(ty) = ColumnType::from_shape(shape) {
                        cols.push(Column { name, source: raw.clone(), ty });
                        changed = true;
                    }
                }
                // Checking, not evolving: only a conflict inside the batch leaves a storable
                // nested field without its column; its top-level field is rescued, not lost.
                Unknown::Add if ColumnType::from_shape(shape).is_some() => {
                    return Err(format!("field {sub:?} has no column of its type"));
                }
                Unknown::Add | Unknown::Ignore => {}
                Unknown::Refuse => {
                    if !matches!(shape, Shape::Null) {
                        return Err(format!("field {sub:?} is not in the pinned schema"));
                    }
                }
            },
        }
    }
    Ok(changed)
}

impl TableSchema {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Appends a column.
    pub fn push(&mut self, name: String, source: String, ty: ColumnType) {
        self.columns.push(Column { name, source, ty });
    }

    /// Adds the columns (and nested struct fields) that `batch_shape`, the merged shape of a
    /// batch's records, has and this schema lacks. Existing columns never change type.
    /// Returns whether anything was added. Pinned schemas never change.
    pub fn evolve(&mut self, batch_shape: &Shape) -> bool {
        let Shape::Object(fields) = batch_shape else { return false };
        if self.pinned {
            return false;
        }
        let mut changed = false;
        for (raw, shape) in fields {
            // Fields that conflict with the schema are refused record by record in `admit`;
            // here each field only contributes what is new.
            let one = [(raw.clone(), shape.clone())];
            let mut cols = std::mem::take(&mut self.columns);
            if let Ok(c) = admit_fields(&mut cols, &one, "", true, Unknown::Add, &PARTITION_KEYS) {
                changed |= c;
            }
            self.columns = cols;
        }
        changed
    }

    /// The top-level fields of one record (a [`Shape::Object`]) that cannot be stored in their
    /// columns as they are: a type the column does not take, another spelling of a column's key,
    /// a value no column stores, a field a pinned schema does not name (unless ignored). Nested
    /// misfits make their top-level field one.
    pub fn misfits(&self, record: &Shape, ignore_unknown: bool) -> Vec<Misfit> {
        let Shape::Object(fields) = record else { return Vec::new() };
        let unknown = match (self.pinned, ignore_unknown) {
            (false, _) => Unknown::Add, // evolve() added everything a batch has
            (true, true) => Unknown::Ignore,
            (true, false) => Unknown::Refuse,
        };
        let mut out = Vec::new();
        for (raw, shape) in fields {
            let misfit = |reject: Reject, unknown: bool| Misfit { field: raw.clone(), reject, unknown };
            let conflict = |reason: String| misfit(Reject::new(RejectKind::SchemaConflict, reason), false);
            if matches!(shape, Shape::Null) {
                continue;
            }
            let name = naming::column_name(raw, &PARTITION_KEYS);
            match (self.columns.iter().find(|c| c.name == name), shape) {
                (None, _) if self.pinned => {
                    if !ignore_unknown {
                        out.push(misfit(
                            Reject::new(RejectKind::SchemaConflict, format!("field {raw:?} is not in the pinned schema")),
                            true,
                        ));
                    }
                }
                (_, Shape::Unstorable(r)) => out.push(misfit(r.clone(), false)),
                (Some(col), _) if col.source != *raw => out.push(conflict(format!(
                    "field {raw:?} maps to the same column {name:?} as field {:?}, which the table reads",
                    col.source
                ))),
                (Some(col), _) => {
                    if let Err(reason) = admit(&mut col.ty.clone(), shape, raw, false, unknown) {
                        out.push(conflict(reason));
                    }
                }
                // Only a conflict inside the batch leaves a storable field without its column.
                (None, _) if ColumnType::from_shape(shape).is_some() => {
                    out.push(conflict(format!("field {raw:?} has no column of its type")))
                }
                (None, _) => {}
            }
        }
        out
    }

    /// Where the rescued-data column is, once the table has one.
    pub fn rescue_index(&self) -> Option<usize> {
        if !self.rescues {
            return None;
        }
        self.columns.iter().position(|c| c.name == RESCUED_COLUMN)
    }

    /// Whether fields can be rescued: the table has the column, or can add it (no data column
    /// of a table from before rescue holds the name).
    pub fn can_rescue(&self) -> bool {
        self.rescues || self.column(RESCUED_COLUMN).is_none()
    }

    /// Adds the rescued-data column after the columns so far; false if the table has it, or
    /// cannot have it ([`TableSchema::can_rescue`]).
    pub fn add_rescue_column(&mut self) -> bool {
        if self.rescues || !self.can_rescue() {
            return false;
        }
        self.push(RESCUED_COLUMN.into(), RESCUED_COLUMN.into(), ColumnType::String);
        self.rescues = true;
        true
    }

    /// The columns read from the records' JSON: all but the rescued-data column.
    pub fn decoded_columns(&self) -> impl Iterator<Item = &Column> {
        let rescue = self.rescue_index();
        self.columns.iter().enumerate().filter(move |(i, _)| Some(*i) != rescue).map(|(_, c)| c)
    }

    /// The Arrow schema arrow-json decodes with: fields named by their JSON keys, without the
    /// rescued-data column (which the plan fills, never a record's own key).
    pub fn decode_schema(&self) -> SchemaRef {
        let cols: Vec<Column> = self.decoded_columns().cloned().collect();
        Arc::new(Schema::new(arrow_fields(&cols, true)))
    }

    /// The Arrow schema of the data columns as written: fields named by column names.
    pub fn data_schema(&self) -> Fields {
        arrow_fields(&self.columns, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::shape::ShapeOptions;

    fn shape(json: &str) -> Shape {
        crate::json::shape::read_record(json.as_bytes(), &ShapeOptions::default()).unwrap().shape
    }

    #[test]
    fn type_names_round_trip() {
        for t in [
            "boolean",
            "int",
            "bigint",
            "float",
            "double",
            "decimal(18,2)",
            "string",
            "binary",
            "date",
            "timestamp",
            "array<bigint>",
            "struct<a:string,b:array<struct<c:int>>>",
        ] {
            assert_eq!(ColumnType::parse(t).unwrap().to_string(), t);
        }
        assert_eq!(ColumnType::parse(" ARRAY< INTEGER > ").unwrap(), ColumnType::Array(Box::new(ColumnType::Int)));
        for bad in ["", "bigintt", "decimal(40,2)", "decimal(5,6)", "array<int", "struct<>", "struct<a:int,a:int>", "int x"] {
            assert!(ColumnType::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arrow_types_are_athena_safe() {
        let t = ColumnType::parse("struct<When:timestamp,d:date,n:array<decimal(10,2)>>").unwrap();
        let DataType::Struct(f) = t.arrow_type(false) else { panic!() };
        assert_eq!(f[0].name(), "when");
        assert_eq!(f[0].data_type(), &DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())));
        assert_eq!(f[1].data_type(), &DataType::Date32);
        let DataType::Struct(f) = t.arrow_type(true) else { panic!() };
        assert_eq!(f[0].name(), "When");
    }

    #[test]
    fn first_batch_infers_and_later_batches_add_columns() {
        let mut s = TableSchema::default();
        assert!(
            s.evolve(&shape(r#"{"Name":"a","age":3,"score":1.5,"d":"2026-11-22","ts":"2026-11-22T03:00:00.123456","n":null}"#))
        );
        let types: Vec<String> = s.columns.iter().map(|c| format!("{}:{}", c.name, c.ty)).collect();
        assert_eq!(types, ["name:string", "age:bigint", "score:double", "d:date", "ts:timestamp"]);
        assert!(!s.evolve(&shape(r#"{"Name":"b","age":4}"#)));
        assert!(s.evolve(&shape(r#"{"n":{"x":[1]}}"#)));
        assert_eq!(s.column("n").unwrap().ty.to_string(), "struct<x:array<bigint>>");
        assert!(s.evolve(&shape(r#"{"n":{"y":true}}"#)));
        assert_eq!(s.column("n").unwrap().ty.to_string(), "struct<x:array<bigint>,y:boolean>");
        // A conflicting type never changes an existing column.
        assert!(!s.evolve(&shape(r#"{"age":"old"}"#)));
        assert_eq!(s.column("age").unwrap().ty, ColumnType::BigInt);
    }

    fn misfit_fields(s: &TableSchema, json: &str, ignore_unknown: bool) -> Vec<(String, RejectKind, String)> {
        s.misfits(&shape(json), ignore_unknown).into_iter().map(|m| (m.field, m.reject.kind, m.reject.reason)).collect()
    }

    #[test]
    fn misfits_name_the_fields_a_column_cannot_store() {
        let mut s = TableSchema::default();
        s.evolve(&shape(r#"{"age":3,"score":1.5,"d":"2026-11-22","name":"x","t":"2026-11-22T00:00:00Z","o":{"x":1}}"#));
        assert!(
            misfit_fields(&s, r#"{"age":4,"score":2,"d":"2026-01-01","name":"2026-01-01","t":"2026-01-01"}"#, false).is_empty()
        );
        let m = misfit_fields(&s, r#"{"age":"four","name":"ok"}"#, false);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].0.as_str(), m[0].1), ("age", RejectKind::SchemaConflict));
        assert!(m[0].2.contains("\"age\" is a string") && m[0].2.contains("bigint"), "{}", m[0].2);
        assert_eq!(misfit_fields(&s, r#"{"age":4.5}"#, false)[0].0, "age");
        assert_eq!(misfit_fields(&s, r#"{"d":"not a date"}"#, false)[0].0, "d");
        assert_eq!(misfit_fields(&s, r#"{"o":{"x":"s"}}"#, false)[0].0, "o");
        let m = misfit_fields(&s, r#"{"Age":4}"#, false);
        assert!(m[0].2.contains("same column"), "{}", m[0].2);
        // Integers beyond bigint: not into a bigint or double column, into a string one as text.
        assert_eq!(misfit_fields(&s, r#"{"age":18446744073709551615}"#, false)[0].0, "age");
        assert_eq!(misfit_fields(&s, r#"{"score":340282366920938463463374607431768211455}"#, false)[0].0, "score");
        assert!(misfit_fields(&s, r#"{"name":340282366920938463463374607431768211455}"#, false).is_empty());
        assert_eq!(misfit_fields(&s, r#"{"name":5}"#, false)[0].0, "name");
        // Nulls fit everywhere; an unstorable value fits nowhere, with its own reason.
        assert!(misfit_fields(&s, r#"{"age":null,"new":null}"#, false).is_empty());
        let rec = crate::json::shape::read_record(br#"{"tags":[1,"x"],"age":1}"#, &ShapeOptions::default()).unwrap();
        let m = s.misfits(&rec.shape, false);
        assert_eq!((m.len(), m[0].field.as_str(), m[0].reject.kind), (1, "tags", RejectKind::MixedArray));
    }

    #[test]
    fn wide_integers_get_exact_columns() {
        let mut s = TableSchema::default();
        s.evolve(&shape(r#"{"u":18446744073709551615,"md5":340282366920938463463374607431768211455,"i":1}"#));
        let types: Vec<String> = s.columns.iter().map(|c| format!("{}:{}", c.name, c.ty)).collect();
        assert_eq!(types, ["u:decimal(20,0)", "md5:string", "i:bigint"]);
        // A bigint value fits a decimal(20,0) column; a 128-bit one does not (the decoder refuses it).
        assert!(misfit_fields(&s, r#"{"u":-9223372036854775809,"md5":1234567890123456789012}"#, false).is_empty());
        assert!(misfit_fields(&s, r#"{"u":7}"#, false).is_empty());
    }

    #[test]
    fn the_rescued_data_column_comes_once_and_is_never_decoded() {
        let mut s = TableSchema::default();
        s.evolve(&shape(r#"{"a":1,"_rescued_data":"theirs"}"#));
        assert!(s.add_rescue_column());
        assert!(!s.add_rescue_column());
        let names: Vec<&str> = s.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "f__rescued_data", RESCUED_COLUMN]);
        assert_eq!(s.rescue_index(), Some(2));
        let decoded: Vec<String> = s.decode_schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(decoded, ["a", "_rescued_data"], "the data field keeps its JSON key; ours is not read");
        assert_eq!(s.data_schema().len(), 3);
        // A table from before rescue, whose data column took the name: it stays a data column.
        let legacy: TableSchema =
            serde_json::from_str(r#"{"columns":[{"name":"_rescued_data","source":"_rescued_data","type":"bigint"}]}"#).unwrap();
        assert!(!legacy.can_rescue() && legacy.rescue_index().is_none());
        assert_eq!(legacy.decode_schema().fields().len(), 1);
        assert!(!legacy.clone().add_rescue_column());
    }

    #[test]
    fn a_nested_field_a_conflict_kept_from_its_column_is_a_misfit() {
        let mut s = TableSchema::default();
        s.evolve(&shape(r#"{"o":{"x":1}}"#));
        // The batch's first record conflicts on o.x, so evolve adds no o.y: the second record's
        // o is rescued whole rather than o.y dropped by the decoder.
        let mut batch = shape(r#"{"o":{"x":"s"}}"#);
        crate::json::shape::absorb(&mut batch, &shape(r#"{"o":{"x":1,"y":2}}"#));
        s.evolve(&batch);
        assert_eq!(s.column("o").unwrap().ty.to_string(), "struct<x:bigint>");
        let m = misfit_fields(&s, r#"{"o":{"x":1,"y":2}}"#, false);
        assert_eq!(m.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["o"], "{m:?}");
        assert!(misfit_fields(&s, r#"{"o":{"x":1,"y":null}}"#, false).is_empty(), "a null needs no column");
    }

    #[test]
    fn reserved_names_are_renamed() {
        let mut s = TableSchema::default();
        s.evolve(&shape(r#"{"dt":"x","_kafka_offset":1}"#));
        let names: Vec<&str> = s.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["f_dt", "f__kafka_offset"]);
    }

    #[test]
    fn pinned_schemas_enforce() {
        let mut s = TableSchema { pinned: true, ..Default::default() };
        s.push("id".into(), "id".into(), ColumnType::BigInt);
        s.push("note".into(), "note".into(), ColumnType::String);
        assert!(!s.evolve(&shape(r#"{"id":1,"extra":2}"#)));
        assert!(misfit_fields(&s, r#"{"id":1}"#, false).is_empty());
        let m = s.misfits(&shape(r#"{"id":1,"extra":2}"#), false);
        assert!(m[0].unknown && m[0].reject.reason.contains("pinned"), "{m:?}");
        assert!(misfit_fields(&s, r#"{"id":1,"extra":2}"#, true).is_empty());
        // A pinned string column takes any number or boolean as its JSON text.
        assert!(misfit_fields(&s, r#"{"note":1.50}"#, false).is_empty());
        assert!(misfit_fields(&s, r#"{"note":true}"#, false).is_empty());
    }

    #[test]
    fn schema_serializes_for_the_registry() {
        let mut s = TableSchema::default();
        s.evolve(&shape(r#"{"a":{"B":[1.5]}}"#));
        let json = serde_json::to_string(&s).unwrap();
        let back: TableSchema = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
