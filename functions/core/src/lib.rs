//! Tributary's pure core: everything that decides *what* to write, with no I/O and no AWS SDK.
//! `core::X` decides; the crate `functions/X` does X's I/O.
//!
//! Modules, bottom to top (a module uses only those above it in this list):
//!
//! | layer | modules |
//! |---|---|
//! | vocabulary | [`naming`], [`reject`], [`metrics`] |
//! | JSON | [`json`] (cursor, shape inference and the record checks) |
//! | Kafka | [`kafka`] (records; the strict and lenient event readers) |
//! | table | [`table`] (schema and its evolution; the Kafka metadata columns) |
//! | configuration | [`config`] |
//! | layout | [`layout`] (every object key, time partitions, S3 event keys, [`layout::OffsetSet`]) |
//! | decisions | [`ingest`], [`compaction`], [`catalog`], [`watch`] |
//! | leaf | [`parquet`] (writer settings, page-copying merge): uses nothing above |
//! | tests | `testing` (feature `testing`): sample data, event builders, fuzz entry points |
//!
//! `tests/layers.rs` fails on a `use` against this order; `docs/architecture.md` has the same map.
//!
//! One ingest batch: [`kafka::read_event`] reads the event into
//! [`kafka::TopicPartitionBatch`]es; [`ingest::by_table`] groups them; the fast path
//! ([`ingest::build_flat`], [`ingest::build_learned`]) decodes flat records straight into Arrow,
//! and anything it declines is [`ingest::screen`]ed record by record and built by
//! [`ingest::build`] into files per time partition ([`layout::time_partition`]) and dead
//! letters ([`ingest::dead_letter`]), each under the key [`layout`] derives from its offsets;
//! [`ingest::FileGroup::without_covered`] drops rows an [`layout::OffsetSet`] says are written;
//! [`parquet::write`] encodes them.
//!
//! One compaction: [`compaction::plan`] says whether a partition is due and which of its files
//! to merge (ingest files, partial files; sealed files are only copied), within a byte budget;
//! the partition state
//! ([`compaction::PartitionState`]) makes the switch to a new version atomic for readers;
//! [`compaction::union_schema`] merges the files' schemas; [`parquet::splice`] copies the pages
//! of columns that need no re-encoding; an [`layout::OffsetSet`] de-duplicates the rows.

#![warn(missing_docs)]

pub mod catalog;
pub mod compaction;
pub mod config;
pub mod ingest;
pub mod json;
pub mod kafka;
pub mod layout;
pub mod metrics;
pub mod naming;
pub mod parquet;
pub mod reject;
pub mod table;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod watch;

pub use config::Config;
