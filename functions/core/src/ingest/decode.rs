//! JSON values to Arrow, by arrow-json, straight into the table's types; and the Kafka
//! metadata columns' values ([`meta_columns`]).
//!
//! Values reach this step already checked against the schema ([`crate::table::schema::TableSchema::misfits`]),
//! so the bulk decode normally succeeds. If it does not, each value is decoded alone to find
//! the ones at fault, which the plan rescues field by field or dead-letters: one bad value never
//! fails a batch. The rescued-data column is never decoded from JSON: the plan hands it in.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, ListBuilder, StringBuilder, StructBuilder};
use arrow_array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray, TimestampMillisecondArray, make_array,
};
use arrow_json::ReaderBuilder;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use crate::table::kafka_columns::{header_fields, output_schema};
use crate::table::schema::{TableSchema, UTC};

/// Kafka metadata of one row.
#[derive(Debug, Clone, Copy)]
pub struct RowMeta<'a> {
    /// The record's topic.
    pub topic: &'a str,
    /// The record's partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's Kafka timestamp (ms since the epoch).
    pub timestamp_ms: i64,
    /// The record's key.
    pub key: Option<&'a [u8]>,
    /// The record's headers.
    pub headers: &'a [(String, Vec<u8>)],
}

fn decode_all(decode_schema: &SchemaRef, values: &[&[u8]]) -> Result<Option<RecordBatch>, ArrowError> {
    // Coercion lets a string column take a number or boolean as its exact JSON text (the tape
    // keeps numbers as text); admission decides which columns may.
    let mut decoder = ReaderBuilder::new(decode_schema.clone())
        .with_batch_size(values.len().max(1))
        .with_coerce_primitive(true)
        .build_decoder()?;
    for v in values {
        let read = decoder.decode(v)?;
        if read != v.len() {
            return Err(ArrowError::JsonError(format!("decoder stopped after {read} of {} bytes", v.len())));
        }
        decoder.decode(b"\n")?;
    }
    decoder.flush()
}

/// Gives an array the (structurally identical) target type: struct and list field names change
/// from JSON keys to column names.
fn retype(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    if array.data_type() == to {
        return Ok(array.clone());
    }
    fn retype_data(data: arrow_array::ArrayRef, to: &DataType) -> Result<arrow_data::ArrayData, ArrowError> {
        let data = data.to_data();
        let children = match to {
            DataType::Struct(fields) => fields
                .iter()
                .zip(data.child_data())
                .map(|(f, c)| retype_data(make_array(c.clone()), f.data_type()))
                .collect::<Result<Vec<_>, _>>()?,
            DataType::List(f) => vec![retype_data(make_array(data.child_data()[0].clone()), f.data_type())?],
            _ => return Ok(data),
        };
        data.into_builder().data_type(to.clone()).child_data(children).build()
    }
    Ok(make_array(retype_data(array.clone(), to)?))
}

/// The outcome of decoding: the data columns of the rows that decoded, and the index (into
/// the input) and error of each value that did not.
pub struct Decoded {
    /// The decoded values, in the table's data columns (`None` when none decoded).
    pub data: Option<RecordBatch>,
    /// The indexes of the values in `data`.
    pub kept: Vec<usize>,
    /// The values that failed alone, with the decoder's message.
    pub failed: Vec<(usize, String)>,
}

/// Decodes values into the table's data columns (named by column names). `rescued` (by value,
/// or empty for none) fills the rescued-data column, if the table has one.
pub fn decode_values<V: AsRef<[u8]>>(
    schema: &TableSchema,
    values: &[V],
    rescued: &[Option<String>],
) -> Result<Decoded, ArrowError> {
    let values: Vec<&[u8]> = values.iter().map(AsRef::as_ref).collect();
    let values = values.as_slice();
    let decode_schema = schema.decode_schema();
    let (batch, kept, failed) = match decode_all(&decode_schema, values) {
        Ok(b) => (b, (0..values.len()).collect(), Vec::new()),
        Err(_) => {
            let mut kept = Vec::new();
            let mut failed = Vec::new();
            for (i, v) in values.iter().enumerate() {
                match decode_all(&decode_schema, std::slice::from_ref(v)) {
                    Ok(_) => kept.push(i),
                    Err(e) => failed.push((i, e.to_string())),
                }
            }
            let good: Vec<&[u8]> = kept.iter().map(|i| values[*i]).collect();
            (decode_all(&decode_schema, &good)?, kept, failed)
        }
    };
    let data_fields = schema.data_schema();
    let data = match batch {
        None => None,
        Some(b) => {
            let mut decoded = b.columns().iter();
            let mut cols = Vec::with_capacity(data_fields.len());
            let rescue = schema.rescue_index();
            for (i, (c, f)) in schema.columns.iter().zip(data_fields.iter()).enumerate() {
                if Some(i) == rescue {
                    let texts: StringArray = kept.iter().map(|i| rescued.get(*i).and_then(|r| r.as_deref())).collect();
                    cols.push(Arc::new(texts) as ArrayRef);
                } else {
                    let col = decoded.next().ok_or_else(|| ArrowError::SchemaError(format!("{} not decoded", c.name)))?;
                    cols.push(retype(col, f.data_type())?);
                }
            }
            // A table without data columns yet (records of only nulls and empty objects) still
            // has its rows: the count says how many.
            let options = RecordBatchOptions::new().with_row_count(Some(b.num_rows()));
            Some(RecordBatch::try_new_with_options(Arc::new(Schema::new(data_fields.clone())), cols, &options)?)
        }
    };
    Ok(Decoded { data, kept, failed })
}

/// Builds the metadata columns for rows, in order.
pub fn meta_columns(rows: &[RowMeta<'_>]) -> Vec<ArrayRef> {
    let topic: StringArray = rows.iter().map(|r| Some(r.topic)).collect();
    let partition: Int32Array = rows.iter().map(|r| r.partition).collect();
    let offset: Int64Array = rows.iter().map(|r| r.offset).collect();
    let ts = TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.timestamp_ms)).with_timezone(UTC);
    let mut key = BinaryBuilder::with_capacity(rows.len(), 0);
    for r in rows {
        key.append_option(r.key);
    }
    let struct_builder = StructBuilder::new(
        header_fields(),
        vec![Box::new(StringBuilder::new()) as Box<dyn arrow_array::builder::ArrayBuilder>, Box::new(BinaryBuilder::new())],
    );
    let mut headers =
        ListBuilder::new(struct_builder).with_field(Arc::new(Field::new("element", DataType::Struct(header_fields()), true)));
    for r in rows {
        let s = headers.values();
        for (k, v) in r.headers {
            s.field_builder::<StringBuilder>(0).expect("key builder").append_value(k);
            s.field_builder::<BinaryBuilder>(1).expect("value builder").append_value(v);
            s.append(true);
        }
        headers.append(true);
    }
    vec![Arc::new(topic), Arc::new(partition), Arc::new(offset), Arc::new(ts), Arc::new(key.finish()), Arc::new(headers.finish())]
}

/// Data columns plus metadata columns, in the table's output schema. `data` may be `None` when
/// the schema has no data columns yet (every field so far was null).
pub fn assemble(schema: &TableSchema, data: Option<&RecordBatch>, rows: &[RowMeta<'_>]) -> Result<RecordBatch, ArrowError> {
    let out = output_schema(schema);
    let mut cols: Vec<ArrayRef> = match data {
        Some(d) => d.columns().to_vec(),
        None => Vec::new(),
    };
    if cols.len() != schema.columns.len() {
        // No data columns decoded: all-null columns of the table's types.
        cols = schema.data_schema().iter().map(|f| arrow_array::new_null_array(f.data_type(), rows.len())).collect();
    }
    cols.extend(meta_columns(rows));
    RecordBatch::try_new(out, cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::shape::{ShapeOptions, infer_record};
    use crate::table::kafka_columns::{COL_HEADERS, COL_KEY, COL_OFFSET, COL_PARTITION, COL_TIMESTAMP, COL_TOPIC};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Int64Type, TimestampMicrosecondType};

    fn schema_for(values: &[&str]) -> TableSchema {
        let mut s = TableSchema::default();
        for v in values {
            s.evolve(&infer_record(v.as_bytes(), &ShapeOptions::default()).unwrap());
        }
        s
    }

    #[test]
    fn decodes_into_inferred_types_with_renamed_fields() {
        let vals = [
            r#"{"Name":"a","age":3,"d":"2026-11-22","ts":"2026-11-22T03:00:00.123456","Nested":{"InnerX":[1,2]}}"#,
            r#"{"Name":"b","age":null,"ts":"2026-11-22T04:00:00Z","Nested":{"InnerX":[]}}"#,
        ];
        let s = schema_for(&vals);
        let bytes: Vec<&[u8]> = vals.iter().map(|v| v.as_bytes()).collect();
        let d = decode_values(&s, &bytes, &[]).unwrap();
        assert!(d.failed.is_empty());
        let b = d.data.unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.schema().field(0).name(), "name");
        assert_eq!(b.column(1).as_primitive::<Int64Type>().value(0), 3);
        assert!(b.column(1).is_null(1));
        assert_eq!(b.column(2).as_primitive::<Date32Type>().value(0), 20779);
        assert_eq!(b.column(3).as_primitive::<TimestampMicrosecondType>().value(0), 1_795_316_400_123_456);
        let DataType::Struct(f) = b.schema().field(4).data_type().clone() else { panic!() };
        assert_eq!(f[0].name(), "innerx");
    }

    #[test]
    fn a_value_that_fails_is_isolated() {
        let s = schema_for(&[r#"{"n":1,"s":"x"}"#]);
        // Both pass shape admission for an int column, but the second overflows nothing arrow
        // can't hold... so force a decoder failure with a pinned int column instead.
        let mut pinned = s.clone();
        pinned.columns[0].ty = crate::table::schema::ColumnType::Int;
        let vals: Vec<&[u8]> = vec![br#"{"n":1,"s":"a"}"#, br#"{"n":99999999999,"s":"b"}"#, br#"{"n":3,"s":"c"}"#];
        let d = decode_values(&pinned, &vals, &[]).unwrap();
        assert_eq!(d.kept, vec![0, 2]);
        assert_eq!(d.failed.len(), 1);
        assert_eq!(d.failed[0].0, 1);
        assert_eq!(d.data.unwrap().num_rows(), 2);
    }

    #[test]
    fn metadata_columns() {
        let s = schema_for(&[r#"{"a":1}"#]);
        let headers = vec![("h".to_string(), vec![1u8, 2])];
        let rows = [
            RowMeta { topic: "t", partition: 2, offset: 10, timestamp_ms: 5, key: Some(b"k"), headers: &headers },
            RowMeta { topic: "t", partition: 2, offset: 11, timestamp_ms: 6, key: None, headers: &[] },
        ];
        let d = decode_values(&s, &[br#"{"a":1}"#, br#"{"a":2}"#], &[]).unwrap();
        let b = assemble(&s, d.data.as_ref(), &rows).unwrap();
        let names: Vec<String> = b.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["a", COL_TOPIC, COL_PARTITION, COL_OFFSET, COL_TIMESTAMP, COL_KEY, COL_HEADERS]);
        assert!(b.column(5).is_null(1));
        assert_eq!(b.column(6).as_list::<i32>().value(0).len(), 1);
    }
}
