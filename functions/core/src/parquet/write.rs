//! Parquet encoding with Athena-safe settings: zstd, dictionary encoding where it pays
//! ([`without_dictionary`]), page statistics,
//! format 1.0 data pages (readable by every Athena engine version, Spark and Hive), INT64 UTC
//! timestamps (never INT96), no unsigned types (the schema never produces them).

use bytes::Bytes;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

/// Writer settings for every file Tributary writes, at a zstd level and a row group size.
pub fn writer_properties(zstd_level: i32, row_group_rows: usize) -> Result<WriterProperties, ParquetError> {
    Ok(WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(zstd_level)?))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_created_by(format!("tributary {}", env!("CARGO_PKG_VERSION")))
        .build())
}

/// Rows sampled to decide whether a column's values repeat.
const DICTIONARY_SAMPLE: usize = 1024;

/// The top-level columns whose values are mostly distinct in the batch's first rows (offsets,
/// event timestamps, e-mail addresses): a dictionary would not shrink them, and building one
/// costs a hash per value before the writer gives up on it. Only fixed-width and string
/// columns are judged; a sample under 256 rows keeps every dictionary.
pub fn without_dictionary(batch: &RecordBatch) -> Vec<String> {
    use std::collections::HashSet;
    let rows = batch.num_rows().min(DICTIONARY_SAMPLE);
    if rows < 256 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let col = col.slice(0, rows);
        let distinct = if let Some(s) = col.as_string_opt::<i32>() {
            s.iter().collect::<HashSet<_>>().len()
        } else if let Some(width) = col.data_type().primitive_width().filter(|_| col.data_type().is_primitive()) {
            let data = col.to_data();
            let bytes = &data.buffers()[0].as_slice()[data.offset() * width..(data.offset() + rows) * width];
            bytes.chunks_exact(width).collect::<HashSet<_>>().len()
        } else {
            continue;
        };
        if distinct * 2 > rows {
            out.push(field.name().clone());
        }
    }
    out
}

/// [`writer_properties`] for files that hold batches like `sample`, with dictionaries only where
/// values repeat ([`without_dictionary`]).
pub fn writer_properties_for(
    sample: &RecordBatch,
    zstd_level: i32,
    row_group_rows: usize,
) -> Result<WriterProperties, ParquetError> {
    let mut b = writer_properties(zstd_level, row_group_rows)?.into_builder();
    for name in without_dictionary(sample) {
        b = b.set_column_dictionary_enabled(ColumnPath::new(vec![name]), false);
    }
    Ok(b.build())
}

/// Encodes batches of one schema into one Parquet file in memory.
pub fn encode(batches: &[RecordBatch], props: WriterProperties) -> Result<Vec<u8>, ParquetError> {
    let schema = batches.first().map(|b| b.schema()).ok_or_else(|| ParquetError::General("no batches to encode".into()))?;
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, schema, Some(props))?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(buf)
}

/// Reads a whole Parquet file from memory.
pub fn decode(bytes: impl Into<Bytes>) -> Result<Vec<RecordBatch>, ParquetError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.into())?.build()?;
    reader.map(|b| b.map_err(ParquetError::from)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::{RowMeta, assemble, decode_values};
    use crate::json::shape::{ShapeOptions, infer_record};
    use crate::table::schema::TableSchema;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    #[test]
    fn athena_safe_physical_types() {
        let v = r#"{"s":"x","i":1,"f":1.5,"b":true,"d":"2026-11-22","t":"2026-11-22T03:00:00.5","a":[1],"o":{"x":"y"}}"#;
        let mut s = TableSchema::default();
        s.evolve(&infer_record(v.as_bytes(), &ShapeOptions::default()).unwrap());
        let d = decode_values(&s, &[v.as_bytes()], &[]).unwrap();
        let rows = [RowMeta { topic: "t", partition: 0, offset: 0, timestamp_ms: 0, key: None, headers: &[] }];
        let batch = assemble(&s, d.data.as_ref(), &rows).unwrap();
        let bytes = encode(std::slice::from_ref(&batch), writer_properties(1, 1 << 20).unwrap()).unwrap();
        let back = decode(bytes.clone()).unwrap();
        assert_eq!(back[0], batch);

        let r = SerializedFileReader::new(Bytes::from(bytes)).unwrap();
        let meta = r.metadata().file_metadata();
        let text = format!("{:?}", meta.schema_descr());
        assert!(!text.contains("INT96"), "{text}");
        assert!(!text.contains("is_signed: false"), "{text}");
        for c in meta.schema_descr().columns() {
            assert_eq!(c.name(), c.name().to_lowercase());
        }
        let rg = r.metadata().row_group(0);
        assert!(rg.columns().iter().all(|c| c.compression() == Compression::ZSTD(ZstdLevel::try_new(1).unwrap())));
    }

    #[test]
    fn dictionaries_only_where_values_repeat() {
        use arrow_array::{Int64Array, StringArray};
        let n = 1000;
        let batch = RecordBatch::try_from_iter([
            ("offset", std::sync::Arc::new(Int64Array::from_iter_values(0..n)) as arrow_array::ArrayRef),
            ("country", std::sync::Arc::new(StringArray::from_iter_values((0..n).map(|i| ["fr", "de"][i as usize % 2])))),
            ("mail", std::sync::Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("u{i}@example.com"))))),
            ("age", std::sync::Arc::new(Int64Array::from_iter_values((0..n).map(|i| 18 + i % 60))) as arrow_array::ArrayRef),
        ])
        .unwrap();
        assert_eq!(without_dictionary(&batch), ["offset", "mail"]);
        assert!(without_dictionary(&batch.slice(0, 100)).is_empty(), "a small sample keeps every dictionary");
        // The file reads back the same, and its unique columns are not dictionary encoded.
        let bytes = encode(std::slice::from_ref(&batch), writer_properties_for(&batch, 1, 1 << 20).unwrap()).unwrap();
        assert_eq!(decode(bytes.clone()).unwrap()[0], batch);
        let r = SerializedFileReader::new(Bytes::from(bytes)).unwrap();
        let dict: Vec<bool> = r.metadata().row_group(0).columns().iter().map(|c| c.dictionary_page_offset().is_some()).collect();
        assert_eq!(dict, [false, true, false, true]);
    }
}
