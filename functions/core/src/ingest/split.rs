//! Splits a built batch into its time partitions by event time.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch, UInt32Array};
use arrow_schema::{ArrowError, DataType, TimeUnit};
use chrono::DateTime;

use crate::config::Granularity;
use crate::layout::time_partition::TimePartition;
use crate::table::kafka_columns::COL_TIMESTAMP;

/// Where a row's event time came from.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SplitStats {
    /// Rows whose event-time field was null or out of range: partitioned by Kafka timestamp.
    pub fallback_rows: usize,
}

fn event_micros(batch: &RecordBatch, column: Option<&str>) -> Result<Vec<Option<i64>>, String> {
    let n = batch.num_rows();
    let Some(name) = column else { return Ok(vec![None; n]) };
    let Some(col) = batch.column_by_name(name) else { return Ok(vec![None; n]) };
    let get = |i: usize, v: Option<i64>| if col.is_null(i) { None } else { v };
    Ok(match col.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let a = col.as_primitive::<TimestampMicrosecondType>();
            (0..n).map(|i| get(i, Some(a.value(i)))).collect()
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let a = col.as_primitive::<TimestampMillisecondType>();
            (0..n).map(|i| get(i, a.value(i).checked_mul(1000))).collect()
        }
        DataType::Date32 => {
            let a = col.as_primitive::<Date32Type>();
            (0..n).map(|i| get(i, (a.value(i) as i64).checked_mul(86_400_000_000))).collect()
        }
        // Integers are epoch milliseconds.
        DataType::Int64 => {
            let a = col.as_primitive::<Int64Type>();
            (0..n).map(|i| get(i, a.value(i).checked_mul(1000))).collect()
        }
        other => return Err(format!("event-time column {name:?} is {other}, not a timestamp, date or epoch milliseconds")),
    })
}

/// Splits a table batch (which must have the Kafka timestamp column) into time partitions by
/// the event-time column, falling back to the Kafka timestamp. Rows keep their order.
pub fn split(
    batch: &RecordBatch,
    event_time_column: Option<&str>,
    g: Granularity,
) -> Result<(Vec<(TimePartition, RecordBatch)>, SplitStats), ArrowError> {
    let kafka_ts = batch
        .column_by_name(COL_TIMESTAMP)
        .ok_or_else(|| ArrowError::SchemaError(format!("{COL_TIMESTAMP} missing")))?
        .as_primitive::<TimestampMillisecondType>()
        .clone();
    let (event, whole_table_fallback) = match event_micros(batch, event_time_column) {
        Ok(v) => (v, false),
        Err(_) => (vec![None; batch.num_rows()], true),
    };
    let mut stats = SplitStats::default();
    // Rows grouped by the number of their hour (or day) since the epoch: the partition's strings
    // are made once per group, not once per row.
    let width: i64 = match g {
        Granularity::Hour => 3_600_000_000,
        Granularity::Day => 86_400_000_000,
    };
    let mut groups: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (i, ev) in event.iter().enumerate() {
        let micros = match ev.filter(|us| DateTime::from_timestamp_micros(*us).is_some()) {
            Some(us) => us,
            None => {
                if event_time_column.is_some() || whole_table_fallback {
                    stats.fallback_rows += 1;
                }
                DateTime::from_timestamp_millis(kafka_ts.value(i)).unwrap_or_default().timestamp_micros()
            }
        };
        groups.entry(micros.div_euclid(width)).or_default().push(i as u32);
    }
    let mut out = Vec::with_capacity(groups.len());
    for (bucket, idx) in groups {
        let tp = TimePartition::from_datetime(DateTime::from_timestamp_micros(bucket * width).unwrap_or_default(), g);
        let rows = if idx.len() == batch.num_rows() {
            batch.clone()
        } else {
            arrow_select::take::take_record_batch(batch, &UInt32Array::from(idx))?
        };
        out.push((tp, rows));
    }
    Ok((out, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::{RowMeta, assemble, decode_values};
    use crate::json::shape::{ShapeOptions, infer_record};
    use crate::table::schema::TableSchema;

    fn batch(values: &[&str], kafka_ms: &[i64]) -> RecordBatch {
        let mut s = TableSchema::default();
        for v in values {
            s.evolve(&infer_record(v.as_bytes(), &ShapeOptions::default()).unwrap());
        }
        let bytes: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        let d = decode_values(&s, &bytes, &[]).unwrap();
        let rows: Vec<RowMeta> = kafka_ms
            .iter()
            .enumerate()
            .map(|(i, ms)| RowMeta { topic: "t", partition: 0, offset: i as i64, timestamp_ms: *ms, key: None, headers: &[] })
            .collect();
        assemble(&s, d.data.as_ref(), &rows).unwrap()
    }

    #[test]
    fn by_kafka_timestamp_by_default() {
        let b = batch(&[r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":3}"#], &[1_763_780_400_000, 1_763_784_000_000, 1_763_780_400_001]);
        let (parts, _) = split(&b, None, Granularity::Hour).unwrap();
        let paths: Vec<(String, usize)> = parts.iter().map(|(p, b)| (p.path(), b.num_rows())).collect();
        assert_eq!(paths, [("dt=2025-11-22/hr=03/".to_string(), 2), ("dt=2025-11-22/hr=04/".to_string(), 1)]);
        let (parts, _) = split(&b, None, Granularity::Day).unwrap();
        assert_eq!(parts[0].0.path(), "dt=2025-11-22/");
    }

    #[test]
    fn by_event_time_field_with_fallback() {
        let b = batch(
            &[r#"{"ts":"2026-01-02T23:59:59.999999"}"#, r#"{"ts":null}"#, r#"{"ts":"2026-01-03"}"#],
            &[1_763_780_400_000; 3],
        );
        let (parts, stats) = split(&b, Some("ts"), Granularity::Hour).unwrap();
        let paths: Vec<String> = parts.iter().map(|(p, _)| p.path()).collect();
        assert_eq!(paths, ["dt=2025-11-22/hr=03/", "dt=2026-01-02/hr=23/", "dt=2026-01-03/hr=00/"]);
        assert_eq!(stats.fallback_rows, 1);
        let b = batch(&[r#"{"ms":1767225600000}"#], &[0]);
        assert_eq!(split(&b, Some("ms"), Granularity::Day).unwrap().0[0].0.dt, "2026-01-01");
        let b = batch(&[r#"{"s":"text"}"#], &[0]);
        let (parts, stats) = split(&b, Some("s"), Granularity::Day).unwrap();
        assert_eq!((parts[0].0.dt.as_str(), stats.fallback_rows), ("1970-01-01", 1));
    }
}
