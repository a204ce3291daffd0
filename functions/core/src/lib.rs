//! Tributary's pure core: everything that decides *what* to write, with no I/O and no AWS SDK.
//!
//! The ingest path is a pipeline of small, separately tested steps:
//!
//! 1. [`event`]: an MSK / self-managed Kafka event becomes [`event::TopicPartitionBatch`]es of raw records.
//! 2. [`shape`]: each record value is checked (UTF-8, JSON object, 64-bit integers, sizes, duplicate
//!    keys) and its shape inferred, or it gets a dead-letter [`shape::Reject`] reason.
//! 3. [`schema`]: the shapes evolve the table's schema (or are checked against a pinned one).
//! 4. [`decode`]: accepted values are decoded by arrow-json straight into an Arrow batch, with the
//!    Kafka metadata columns added.
//! 5. [`partition`]: rows are split by event time into Hive partitions.
//! 6. [`layout`]: object keys derive from topic, partition, offsets and time partition only,
//!    so a retried batch writes the same objects again.
//!
//! [`flat`] decodes a batch of flat records whose fields the table already has in one pass,
//! doing steps 2 to 4 at once; anything else it gives back to them.
//!
//! 7. [`parquet_io`]: Parquet encoding with Athena-safe types.
//!
//! Compaction: [`compaction`] decides when and where, [`splice`] merges files by copying the
//! compressed pages of columns that need no re-encoding.
//!
//! Operations: [`watch`] tells a stopped event source mapping from an idle topic.

pub mod catalog;
pub mod claims;
pub mod compaction;
pub mod config;
pub mod dead_letter;
pub mod decode;
pub mod esm;
pub mod event;
mod event_scan;
pub mod flat;
pub mod fuzzing;
mod json_lex;
pub mod layout;
pub mod metrics;
pub mod naming;
pub mod parquet_io;
pub mod partition;
pub mod plan;
pub mod rescue;
pub mod sample;
pub mod schema;
pub mod shape;
pub mod splice;
pub mod watch;

pub use config::Config;
