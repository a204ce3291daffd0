//! One pass from JSON bytes straight into Arrow buffers, for the batch that needs nothing else:
//! every record a flat JSON object whose fields are all columns the table already has, of
//! scalar types (boolean, bigint, double, string, date, timestamp).
//!
//! The full path ([`crate::json::shape`] screening, then arrow-json decoding) reads every value twice
//! and allocates per key; this reads it once, with no allocation per record. It never decides
//! anything the full path would decide otherwise: whenever a record is not plainly one of the
//! table's rows (invalid JSON or UTF-8, a new or duplicated field, a nested value, a number or
//! string the column's type does not take as it is, a field over the size limit) the decoder
//! *declines* that record, takes back what it had read of it, and goes on; the full path decides
//! the declined records. The rows it accepts equal the full path's (the tests below check it on
//! mutated records; the `records` fuzz target on arbitrary input).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
    TimestampMicrosecondArray,
};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{Schema, SchemaRef};

use crate::json::cursor::{Cursor, Decline, STRING_STOP, Step, int_value};
use crate::json::shape::{self, ShapeOptions};
use crate::naming;
use crate::table::PARTITION_KEYS;
use crate::table::schema::{ColumnType, TableSchema, UTC};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The rescued-data column: never read from a record.
    Rescued,
    Bool,
    Int,
    Double,
    Str,
    Date,
    Timestamp,
}

/// What [`FlatDecoder::decode`] made of a batch.
#[derive(Debug)]
pub struct FlatRows {
    /// The accepted records' rows, in order.
    pub data: RecordBatch,
    /// The indexes of the records it declined, ascending.
    pub declined: Vec<usize>,
    /// The indexes of the records it took in the form their retry gave.
    pub retried: Vec<usize>,
}

/// What to read in place of a declined record ([`FlatDecoder::decode_retrying`]).
#[derive(Debug)]
pub struct Retry<'a> {
    /// The record's value, as the slow path must read it.
    pub value: std::borrow::Cow<'a, [u8]>,
    /// The row's text in the rescued-data column.
    pub rescued: Option<String>,
}

/// Decodes flat JSON records into a table's data columns, declining what it cannot.
#[derive(Debug)]
pub struct FlatDecoder {
    kinds: Vec<Kind>,
    /// Each column's key with its closing quote, as it appears in a record (none for the
    /// rescued-data column, which no key names).
    quoted: Vec<Option<Box<[u8]>>>,
    by_source: HashMap<Box<[u8]>, usize>,
    data_schema: SchemaRef,
    max_field_bytes: usize,
    /// How many columns a record can fill (all but the rescued-data column).
    fields: usize,
}

impl FlatDecoder {
    /// A decoder for this schema, if every column is one it reads: scalar, named as the full
    /// path would name its source key.
    pub fn new(schema: &TableSchema, opts: &ShapeOptions) -> Option<FlatDecoder> {
        if schema.columns.is_empty() || opts.max_depth == 0 {
            return None;
        }
        let mut kinds = Vec::with_capacity(schema.columns.len());
        let mut by_source = HashMap::new();
        for (i, c) in schema.columns.iter().enumerate() {
            if schema.rescue_index() == Some(i) {
                kinds.push(Kind::Rescued);
                continue;
            }
            let kind = match c.ty {
                ColumnType::Boolean => Kind::Bool,
                ColumnType::BigInt => Kind::Int,
                ColumnType::Double => Kind::Double,
                ColumnType::String => Kind::Str,
                // Without temporal inference every string is plain text, which these refuse.
                ColumnType::Date if opts.infer_temporal => Kind::Date,
                ColumnType::Timestamp if opts.infer_temporal => Kind::Timestamp,
                _ => return None,
            };
            // A key with a quote, backslash or control character is escaped in records.
            let plain = !c.source.bytes().any(|b| STRING_STOP[b as usize]);
            if !plain
                || naming::column_name(&c.source, &PARTITION_KEYS) != c.name
                || by_source.insert(c.source.as_bytes().into(), i).is_some()
            {
                return None;
            }
            kinds.push(kind);
        }
        let quoted = schema
            .columns
            .iter()
            .zip(&kinds)
            .map(|(c, k)| (*k != Kind::Rescued).then(|| [c.source.as_bytes(), b"\""].concat().into()))
            .collect();
        let fields = kinds.iter().filter(|k| **k != Kind::Rescued).count();
        Some(FlatDecoder {
            kinds,
            quoted,
            by_source,
            data_schema: Arc::new(Schema::new(schema.data_schema())),
            max_field_bytes: opts.max_field_bytes,
            fields,
        })
    }

    /// The data columns (named by column names) of the records it accepts, and which it
    /// declined; `None` when a string column's bytes are not UTF-8 (checked once per column).
    #[cfg(test)]
    pub fn decode(&self, values: &[&[u8]]) -> Option<FlatRows> {
        self.decode_retrying(values, |_| None)
    }

    /// [`FlatDecoder::decode`], where `retry` may give a record it declined another value to
    /// read in its place (the record with the fields its columns cannot store taken out) and
    /// the row's text in the rescued-data column: one conflicting field does not cost its
    /// record the one pass.
    pub fn decode_retrying<'a>(
        &self,
        values: &[&'a [u8]],
        mut retry: impl FnMut(usize) -> Option<Retry<'a>>,
    ) -> Option<FlatRows> {
        // String columns reserve the input's size: never more than that to copy, no regrowth.
        let bytes: usize = values.iter().map(|v| v.len()).sum();
        let mut cols: Vec<ColumnBuf> = self.kinds.iter().map(|k| ColumnBuf::new(*k, values.len(), bytes)).collect();
        let mut seen = vec![0u32; cols.len()];
        let (mut declined, mut retried, mut rescued) = (Vec::new(), Vec::new(), Vec::new());
        let mut stamp = 0u32;
        for (i, v) in values.iter().enumerate() {
            let row = i - declined.len();
            if self.read_row(v, &mut cols, &mut seen, &mut stamp, row)? {
                continue;
            }
            if let Some(r) = retry(i)
                && self.read_row(&r.value, &mut cols, &mut seen, &mut stamp, row)?
            {
                retried.push(i);
                rescued.extend(r.rescued.map(|t| (row, t)));
                continue;
            }
            declined.push(i);
        }
        let rows = values.len() - declined.len();
        let mut arrays = cols.into_iter().map(|c| c.finish(rows)).collect::<Option<Vec<ArrayRef>>>()?;
        if let Some(at) = self.kinds.iter().position(|k| *k == Kind::Rescued)
            && !rescued.is_empty()
        {
            let mut texts = rescued.into_iter().peekable();
            let column: StringArray = (0..rows).map(|r| texts.next_if(|(row, _)| *row == r).map(|(_, t)| t)).collect();
            arrays[at] = Arc::new(column);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let data = RecordBatch::try_new_with_options(self.data_schema.clone(), arrays, &options).ok()?;
        Some(FlatRows { data, declined, retried })
    }

    /// Reads one record into the columns as row `row`; false, with the columns as they were,
    /// if it declines. `None` when the stamps run out.
    fn read_row(&self, v: &[u8], cols: &mut [ColumnBuf], seen: &mut [u32], stamp: &mut u32, row: usize) -> Option<bool> {
        *stamp = stamp.checked_add(1)?;
        match self.record(v, cols, seen, *stamp) {
            Ok(fields) => {
                // Columns the record left out are null (none, usually: no second pass then).
                if fields < self.fields {
                    for (c, s) in cols.iter_mut().zip(seen.iter()) {
                        if *s != *stamp {
                            c.push_null();
                        }
                    }
                }
                Some(true)
            }
            Err(Decline) => {
                cols.iter_mut().for_each(|c| c.truncate(row));
                Some(false)
            }
        }
    }

    /// The column of the key at the cursor (after its opening quote), which it consumes with its
    /// closing quote. Keys mostly come in column order: the one after the last is tried first.
    fn column(&self, p: &mut Cursor<'_>, hint: usize) -> Step<usize> {
        if let Some(Some(q)) = self.quoted.get(hint)
            && p.b[p.i..].starts_with(q)
        {
            p.i += q.len();
            return Ok(hint);
        }
        let key = p.plain_string()?;
        self.by_source.get(key).copied().ok_or(Decline)
    }

    /// Reads one record into the columns; returns how many columns it gave a value (or null).
    fn record(&self, b: &[u8], cols: &mut [ColumnBuf], seen: &mut [u32], stamp: u32) -> Step<usize> {
        let mut p = Cursor { b, i: 0 };
        let mut fields = 0;
        p.ws();
        p.eat(b'{')?;
        p.ws();
        if p.peek() == Some(b'}') {
            p.i += 1;
        } else {
            let mut hint = 0;
            loop {
                p.eat(b'"')?;
                let c = self.column(&mut p, hint)?;
                if seen[c] == stamp {
                    return Err(Decline); // a duplicate key
                }
                seen[c] = stamp;
                fields += 1;
                hint = c + 1;
                p.ws();
                p.eat(b':')?;
                p.ws();
                cols[c].value(&mut p, self.max_field_bytes)?;
                p.ws();
                match p.next() {
                    Some(b',') => p.ws(),
                    Some(b'}') => break,
                    _ => return Err(Decline),
                }
            }
        }
        p.ws();
        if p.i == b.len() { Ok(fields) } else { Err(Decline) }
    }
}

fn two(b: &[u8], at: usize) -> Step<u32> {
    match (b.get(at), b.get(at + 1)) {
        (Some(a @ b'0'..=b'9'), Some(c @ b'0'..=b'9')) => Ok(u32::from(a - b'0') * 10 + u32::from(c - b'0')),
        _ => Err(Decline),
    }
}

/// `YYYY-MM-DD` (years 1000 to 9999, a real calendar date) as days since 1970-01-01.
fn date_days(s: &[u8]) -> Step<i32> {
    match shape::calendar_date(s) {
        Some(days) if s.len() == 10 && s[0] != b'0' => Ok(days),
        _ => Err(Decline),
    }
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][Z|±HH:MM|±HHMM]` as UTC microseconds (floored, as
/// arrow-json does); anything else declines, including forms the full path also reads.
fn timestamp_micros(s: &[u8], last: &mut LastDate) -> Step<i64> {
    if s.len() < 19 || !matches!(s[10], b'T' | b' ') || s[13] != b':' || s[16] != b':' {
        return Err(Decline);
    }
    let days = i64::from(last.days(&s[..10])?);
    let (h, m, sec) = (two(s, 11)?, two(s, 14)?, two(s, 17)?);
    if h > 23 || m > 59 || sec > 59 {
        return Err(Decline);
    }
    let mut i = 19;
    let mut micros = 0i64;
    if s.get(i) == Some(&b'.') {
        let digits = s[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return Err(Decline);
        }
        for k in 0..6 {
            let d = if k < digits { i64::from(s[i + 1 + k] - b'0') } else { 0 };
            micros = micros * 10 + d;
        }
        i += 1 + digits;
    }
    let offset = match &s[i..] {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), z @ ..] if z.len() == 5 && z[2] == b':' || z.len() == 4 => {
            let (oh, om) = (two(z, 0)?, two(z, z.len() - 2)?);
            if oh > 23 || om > 59 {
                return Err(Decline);
            }
            let o = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' { -o } else { o }
        }
        _ => return Err(Decline),
    };
    let secs = days * 86_400 + i64::from(h * 3600 + m * 60 + sec) - offset;
    Ok(secs * 1_000_000 + micros)
}

/// The last date a column read: rows of a batch mostly share their day.
#[derive(Default)]
struct LastDate {
    text: [u8; 10],
    days: Option<i32>,
}

impl LastDate {
    /// [`date_days`] of a 10-byte date.
    fn days(&mut self, s: &[u8]) -> Step<i32> {
        match self.days {
            Some(d) if self.text == s => Ok(d),
            _ => {
                let d = date_days(s)?;
                self.text.copy_from_slice(s);
                self.days = Some(d);
                Ok(d)
            }
        }
    }
}

/// One column being built: its values and validity.
struct ColumnBuf {
    nulls: NullBufferBuilder,
    values: Values,
}

enum Values {
    Bool(BooleanBufferBuilder),
    Int(Vec<i64>),
    Double(Vec<f64>),
    Date(Vec<i32>, LastDate),
    Timestamp(Vec<i64>, LastDate),
    Str {
        offsets: Vec<i32>,
        bytes: Vec<u8>,
    },
    /// The rescued-data column: NULL in every row, built at the end.
    Absent,
}

impl ColumnBuf {
    fn new(kind: Kind, rows: usize, bytes: usize) -> Self {
        let values = match kind {
            Kind::Bool => Values::Bool(BooleanBufferBuilder::new(rows)),
            Kind::Int => Values::Int(Vec::with_capacity(rows)),
            Kind::Double => Values::Double(Vec::with_capacity(rows)),
            Kind::Date => Values::Date(Vec::with_capacity(rows), LastDate::default()),
            Kind::Timestamp => Values::Timestamp(Vec::with_capacity(rows), LastDate::default()),
            Kind::Rescued => Values::Absent,
            Kind::Str => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                Values::Str { offsets, bytes: Vec::with_capacity(bytes) }
            }
        };
        ColumnBuf { nulls: NullBufferBuilder::new(rows), values }
    }

    /// Keeps the first `rows` values.
    fn truncate(&mut self, rows: usize) {
        if matches!(self.values, Values::Absent) {
            return;
        }
        self.nulls.truncate(rows);
        match &mut self.values {
            Values::Absent => {}
            Values::Bool(v) => v.truncate(rows),
            Values::Int(v) | Values::Timestamp(v, _) => v.truncate(rows),
            Values::Double(v) => v.truncate(rows),
            Values::Date(v, _) => v.truncate(rows),
            Values::Str { offsets, bytes } => {
                offsets.truncate(rows + 1);
                bytes.truncate(offsets[rows] as usize);
            }
        }
    }

    fn push_null(&mut self) {
        if matches!(self.values, Values::Absent) {
            return;
        }
        self.nulls.append_null();
        match &mut self.values {
            Values::Absent => {}
            Values::Bool(v) => v.append(false),
            Values::Int(v) | Values::Timestamp(v, _) => v.push(0),
            Values::Double(v) => v.push(0.0),
            Values::Date(v, _) => v.push(0),
            Values::Str { offsets, bytes } => offsets.push(bytes.len() as i32),
        }
    }

    /// Reads one value for this column at the cursor.
    fn value(&mut self, p: &mut Cursor<'_>, max_field_bytes: usize) -> Step<()> {
        if p.peek() == Some(b'n') {
            p.literal(b"null")?;
            self.push_null();
            return Ok(());
        }
        match &mut self.values {
            Values::Absent => return Err(Decline),
            Values::Bool(v) => match p.peek() {
                Some(b't') => p.literal(b"true").map(|_| v.append(true))?,
                Some(b'f') => p.literal(b"false").map(|_| v.append(false))?,
                _ => return Err(Decline),
            },
            Values::Int(v) => v.push(p.int()?),
            Values::Double(v) => {
                let x = match p.number()? {
                    // Exact for every i64 and rounded to nearest as a decimal parse would be.
                    (tok, true) => int_value(tok)? as f64,
                    (tok, false) => std::str::from_utf8(tok).map_err(|_| Decline)?.parse::<f64>().map_err(|_| Decline)?,
                };
                if !x.is_finite() {
                    return Err(Decline);
                }
                v.push(x);
            }
            Values::Date(v, last) => {
                p.eat(b'"')?;
                let s = p.plain_string()?;
                if s.len() != 10 {
                    return Err(Decline);
                }
                v.push(last.days(s)?);
            }
            Values::Timestamp(v, last) => {
                p.eat(b'"')?;
                v.push(timestamp_micros(p.plain_string()?, last)?);
            }
            // An integer beyond 64 bits goes into a string column as its digits, as the full
            // path decodes it; any other number declines.
            Values::Str { offsets, bytes } if matches!(p.peek(), Some(b'-' | b'0'..=b'9')) => {
                let (tok, integral) = p.number()?;
                if !integral || shape::wide_integer(tok).is_none() {
                    return Err(Decline);
                }
                bytes.extend_from_slice(tok);
                offsets.push(i32::try_from(bytes.len()).map_err(|_| Decline)?);
            }
            Values::Str { offsets, bytes } => {
                p.eat(b'"')?;
                let start = bytes.len();
                p.string_into(bytes)?;
                if bytes.len() - start > max_field_bytes {
                    return Err(Decline);
                }
                offsets.push(i32::try_from(bytes.len()).map_err(|_| Decline)?);
            }
        }
        self.nulls.append_non_null();
        Ok(())
    }

    fn finish(mut self, rows: usize) -> Option<ArrayRef> {
        let nulls = self.nulls.finish();
        Some(match self.values {
            Values::Absent => arrow_array::new_null_array(&arrow_schema::DataType::Utf8, rows),
            Values::Bool(mut v) => Arc::new(BooleanArray::new(v.finish(), nulls)),
            Values::Int(v) => Arc::new(Int64Array::new(ScalarBuffer::from(v), nulls)),
            Values::Double(v) => Arc::new(Float64Array::new(ScalarBuffer::from(v), nulls)),
            Values::Date(v, _) => Arc::new(Date32Array::new(ScalarBuffer::from(v), nulls)),
            Values::Timestamp(v, _) => Arc::new(TimestampMicrosecondArray::new(ScalarBuffer::from(v), nulls).with_timezone(UTC)),
            Values::Str { offsets, bytes } => {
                // UTF-8 is checked once for the whole column, offsets on character boundaries.
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                Arc::new(StringArray::try_new(offsets, Buffer::from_vec(bytes), nulls).ok()?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::decode_values;
    use crate::json::shape::{self, Shape};
    use crate::testing::sample::{Rng, customer};

    fn schema_of(records: &[&[u8]]) -> TableSchema {
        let opts = ShapeOptions::default();
        let mut shape = Shape::Object(Vec::new());
        for r in records {
            shape::absorb(&mut shape, &shape::infer_record(r, &opts).unwrap());
        }
        let mut schema = TableSchema::default();
        schema.evolve(&shape);
        schema
    }

    /// What the full path makes of a batch when it writes every record as it came: `None` if it
    /// refuses one, rescues a field, or would change the schema.
    fn full(schema: &TableSchema, values: &[&[u8]]) -> Option<RecordBatch> {
        let opts = ShapeOptions::default();
        let mut batch_shape = Shape::Object(Vec::new());
        for v in values {
            let rec = shape::read_record(v, &opts).ok()?;
            (schema.misfits(&rec.shape, false).is_empty() && rec.repeated.is_empty() && !rec.byte_order_mark).then_some(())?;
            shape::absorb(&mut batch_shape, &rec.shape);
        }
        if schema.clone().evolve(&batch_shape) {
            return None;
        }
        let d = decode_values(schema, values, &[]).unwrap();
        d.failed.is_empty().then_some(())?;
        d.data
    }

    /// Whether the flat decoder takes every record; the rows of those it takes are the full path's.
    fn agree(schema: &TableSchema, values: &[&[u8]]) -> bool {
        // None: a string column's bytes are not UTF-8 (checked once per column), the whole batch declines.
        let Some(flat) = FlatDecoder::new(schema, &ShapeOptions::default()).unwrap().decode(values) else { return false };
        let accepted: Vec<&[u8]> =
            values.iter().enumerate().filter(|(i, _)| !flat.declined.contains(i)).map(|(_, v)| *v).collect();
        if !accepted.is_empty() {
            assert_eq!(
                Some(&flat.data),
                full(schema, &accepted).as_ref(),
                "flat accepted {:?}",
                accepted.iter().map(|v| String::from_utf8_lossy(v)).collect::<Vec<_>>()
            );
        }
        assert_eq!(flat.data.num_rows(), accepted.len());
        flat.declined.is_empty()
    }

    fn customers(n: u64) -> Vec<String> {
        let mut rng = Rng::new(7);
        (0..n).map(|i| customer(&mut rng, i % 4)).collect()
    }

    #[test]
    fn customer_data_takes_the_flat_path_and_agrees() {
        let recs = customers(2000);
        let values: Vec<&[u8]> = recs.iter().map(|r| r.as_bytes()).collect();
        let schema = schema_of(&values[..10]);
        assert!(agree(&schema, &values));
    }

    #[test]
    fn edge_values_agree_or_decline() {
        let schema = schema_of(&[br#"{"s":"x","i":1,"d":1.5,"b":true,"dt":"2020-01-01","ts":"2020-01-01T00:00:00Z"}"#]);
        let accepted = [
            r#"{}"#,
            r#" { "s" : "a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\u0000" , "i" : -9223372036854775808 } "#,
            r#"{"i":9223372036854775807,"d":-0.0,"b":false,"s":null,"dt":null,"ts":null}"#,
            r#"{"d":1e-400,"i":0}"#,
            r#"{"d":123456789012345678,"dt":"2024-02-29"}"#,
            r#"{"d":0.1,"ts":"1999-12-31 23:59:59.999999999-05:30"}"#,
            r#"{"ts":"2020-01-01T00:00:00.5+0130"}"#,
            r#"{"ts":"1969-12-31T23:59:59.0000001"}"#,
            r#"{"ts":"2020-06-30T12:00:00+23:59","s":"2020-01-01"}"#,
            "{\"s\":\"caf\u{e9} \u{1F600}\"}",
            // Integers beyond 64 bits go into a string column as their digits.
            r#"{"s":92233720368547758080}"#,
            r#"{"s":-9223372036854775809}"#,
        ];
        for r in accepted {
            assert!(agree(&schema, &[r.as_bytes()]), "declined {r}");
        }
        let declined: [&[u8]; 30] = [
            br#"[]"#,
            br#"{"s":"x"} x"#,
            br#"{"s":"x","s":"y"}"#,
            br#"{"new":1}"#,
            br#"{"i":1.0}"#,
            br#"{"i":-0}"#,
            br#"{"i":9223372036854775808}"#,
            br#"{"d":1e400}"#,
            br#"{"d":92233720368547758080}"#,
            br#"{"d":01}"#,
            br#"{"d":1.}"#,
            br#"{"b":1}"#,
            br#"{"s":1}"#,
            br#"{"s":{"a":1}}"#,
            br#"{"s":"\ud800"}"#,
            br#"{"s":"\udc00x"}"#,
            br#"{"s":"\x"}"#,
            b"{\"s\":\"a\tb\"}",
            b"{\"s\":\"\xff\"}",
            b"\xef\xbb\xbf{}",
            br#"{"dt":"2023-02-29"}"#,
            br#"{"dt":"0999-01-01"}"#,
            br#"{"ts":"2020-01-01"}"#,
            br#"{"ts":"2020-01-01T24:00:00"}"#,
            br#"{"ts":"2020-01-01T00:00"}"#,
            br#"{"ts":"2020-01-01T00:00:60"}"#,
            br#"{"ts":"2020-01-01T00:00:00.1234567890"}"#,
            br#"{"ts":"2020-01-01T00:00:00+24:00"}"#,
            br#"{"ts":"2020-01-01T00:00:00z"}"#,
            br#"{"s":"x",}"#,
        ];
        for r in declined {
            assert!(!agree(&schema, &[r]), "accepted {}", String::from_utf8_lossy(r));
        }
        // Bytes that are UTF-8 only together, split across two records.
        assert!(!agree(&schema, &[b"{\"s\":\"\xc3\"}", b"{\"s\":\"\xa9\"}"]));
        // A field over the size limit.
        let opts = ShapeOptions { max_field_bytes: 3, ..ShapeOptions::default() };
        let d = FlatDecoder::new(&schema, &opts).unwrap();
        assert!(d.decode(&[br#"{"s":"abc"}"#]).unwrap().declined.is_empty());
        assert_eq!(d.decode(&[br#"{"s":"abcd"}"#]).unwrap().declined, [0]);
    }

    #[test]
    fn a_declined_record_leaves_the_others_rows() {
        let schema = schema_of(&[br#"{"s":"x","i":1}"#]);
        let values: [&[u8]; 5] =
            [br#"{"s":"a","i":1}"#, br#"{"s":"b","i":"two"}"#, br#"{"i":3}"#, br#"{"s":1,"i":4}"#, br#"{"s":"e"}"#];
        let flat = FlatDecoder::new(&schema, &ShapeOptions::default()).unwrap().decode(&values).unwrap();
        assert_eq!(flat.declined, [1, 3]);
        assert!(!agree(&schema, &values));
        let i = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Int64Type>(flat.data.column(1));
        assert_eq!((i.value(0), i.value(1), arrow_array::Array::is_null(i, 2)), (1, 3, true));
    }

    #[test]
    fn mutated_records_agree_whenever_accepted() {
        const ALPHABET: &[u8] = b"\"\\{}[],:. -+0123456789eEtfnulZT\x00\x1f\xc3\xa9\xff";
        let recs = customers(50);
        let values: Vec<&[u8]> = recs.iter().map(|r| r.as_bytes()).collect();
        let schema = schema_of(&values);
        let mut rng = Rng::new(11);
        let (mut accepted, mut tried) = (0, 0);
        for round in 0..20_000 {
            let mut v = values[round % values.len()].to_vec();
            for _ in 0..=rng.below(3) {
                rng.mutate(&mut v, ALPHABET);
            }
            tried += 1;
            accepted += usize::from(agree(&schema, &[&v]));
        }
        // Many mutations land inside string values and stay valid rows.
        assert!(accepted > tried / 20, "{accepted} of {tried} accepted");
        assert!(accepted < tried, "{accepted} of {tried} accepted");
    }

    #[test]
    fn schemas_it_does_not_read() {
        let nested = schema_of(&[br#"{"a":{"b":1}}"#]);
        assert!(FlatDecoder::new(&nested, &ShapeOptions::default()).is_none());
        assert!(FlatDecoder::new(&TableSchema::default(), &ShapeOptions::default()).is_none());
        let temporal = schema_of(&[br#"{"d":"2020-01-01"}"#]);
        let plain = ShapeOptions { infer_temporal: false, ..ShapeOptions::default() };
        assert!(FlatDecoder::new(&temporal, &plain).is_none());
        // Keys the full path renames (a partition key, upper case) still map one to one.
        let renamed = schema_of(&[br#"{"dt":"x","Name":"y"}"#]);
        assert!(FlatDecoder::new(&renamed, &ShapeOptions::default()).is_some());
    }
}
