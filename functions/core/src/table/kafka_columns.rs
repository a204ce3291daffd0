//! The Kafka metadata columns every table ends with, after its data columns: their names and
//! types. Ingest fills them, compaction de-duplicates on them, the catalog declares them.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::naming::META_PREFIX;
use crate::table::schema::{TableSchema, UTC};

/// The record's topic.
pub const COL_TOPIC: &str = "_kafka_topic";
/// The record's Kafka partition.
pub const COL_PARTITION: &str = "_kafka_partition";
/// The record's offset: with topic and partition, its identity (compaction de-duplicates on it).
pub const COL_OFFSET: &str = "_kafka_offset";
/// The record's Kafka timestamp (ms, UTC): the event time the table is partitioned by.
pub const COL_TIMESTAMP: &str = "_kafka_timestamp";
/// The record's key, as bytes.
pub const COL_KEY: &str = "_kafka_key";
/// The record's headers, a list of (key, value) structs.
pub const COL_HEADERS: &str = "_kafka_headers";

/// The fields of one header struct: `key` (text) and `value` (bytes).
pub fn header_fields() -> Fields {
    Fields::from(vec![Field::new("key", DataType::Utf8, true), Field::new("value", DataType::Binary, true)])
}

/// The metadata columns every table ends with.
pub fn meta_fields() -> Vec<Field> {
    let fields = vec![
        Field::new(COL_TOPIC, DataType::Utf8, false),
        Field::new(COL_PARTITION, DataType::Int32, false),
        Field::new(COL_OFFSET, DataType::Int64, false),
        Field::new(COL_TIMESTAMP, DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into())), false),
        Field::new(COL_KEY, DataType::Binary, true),
        Field::new(COL_HEADERS, DataType::List(Arc::new(Field::new("element", DataType::Struct(header_fields()), true))), true),
    ];
    debug_assert!(fields.iter().all(|f| f.name().starts_with(META_PREFIX)));
    fields
}

/// The schema files of this table are written with: data columns, then metadata columns.
pub fn output_schema(schema: &TableSchema) -> SchemaRef {
    let mut fields: Vec<Field> = schema.data_schema().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(meta_fields());
    Arc::new(Schema::new(fields))
}
