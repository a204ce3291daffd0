//! The table: its schema and how it evolves ([`schema`]), and the Kafka metadata columns that
//! end every table ([`kafka_columns`]).

pub mod kafka_columns;
pub mod schema;

/// The Hive partition keys, in order: the event's UTC date and (for hourly tables) hour. No data
/// column may take these names.
pub const PARTITION_KEYS: [&str; 2] = ["dt", "hr"];
