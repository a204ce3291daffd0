//! What an invocation reports: per partition, and in all (the response and its EMF metrics).

use serde::Serialize;
use tributary_core::metrics::{Emf, Unit};

/// What happened to one partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PartitionReport {
    pub table: String,
    pub partition: String,
    pub version: u32,
    pub reason: String,
    pub files_in: usize,
    pub bytes_in: u64,
    pub rows_in: usize,
    pub rows_out: usize,
    pub duplicates_removed: usize,
    pub files_out: usize,
    pub bytes_out: usize,
    /// Outputs that are sealed: never read by the compactor again.
    pub sealed_out: usize,
    /// Files copied server-side into the new version as they are (one request each, no
    /// transfer through the compactor): sealed files, compacted or ingest files the byte budget
    /// left for the next compaction, and files written during the compaction.
    pub carried: usize,
    pub carried_bytes: u64,
    /// Files whose schema conflicts with the others: left as they are, carried, reported.
    pub incompatible: Vec<String>,
    pub location: String,
    /// Columns whose compressed pages were copied from the inputs as they are (empty: every
    /// column was decoded and encoded again).
    pub copied_columns: Vec<String>,
}

// One per partition compacted: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    NotDue,
    /// Another compactor holds the partition.
    Busy,
    Compacted(PartitionReport),
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct CompactResponse {
    pub partitions_seen: usize,
    pub not_due: usize,
    pub busy: usize,
    /// Keys in the event outside the data area, or not ingest files: ignored.
    pub ignored_keys: usize,
    pub compacted: Vec<PartitionReport>,
    /// Age of the oldest ingest file not yet compacted, over the partitions looked at.
    pub lag_seconds: f64,
    /// Files replaced by earlier switches, deleted now that their retention has passed.
    pub replaced_deleted: usize,
}

impl CompactResponse {
    /// The invocation's EMF metrics line.
    pub fn emf(&self, namespace: &str, now_ms: i64) -> String {
        let r = self;
        let mut emf = Emf::new(namespace).dimension("Function", "compact");
        let sum = |f: fn(&PartitionReport) -> f64| r.compacted.iter().map(f).sum::<f64>();
        emf.metric("PartitionsCompacted", r.compacted.len() as f64, Unit::Count)
            .metric("FilesIn", sum(|p| p.files_in as f64), Unit::Count)
            .metric("BytesIn", sum(|p| p.bytes_in as f64), Unit::Bytes)
            .metric("FilesOut", sum(|p| p.files_out as f64), Unit::Count)
            .metric("BytesOut", sum(|p| p.bytes_out as f64), Unit::Bytes)
            .metric("ServerSideCopies", sum(|p| p.carried as f64), Unit::Count)
            .metric("RowsOut", sum(|p| p.rows_out as f64), Unit::Count)
            .metric("DuplicatesRemoved", sum(|p| p.duplicates_removed as f64), Unit::Count)
            .metric("IncompatibleFiles", sum(|p| p.incompatible.len() as f64), Unit::Count)
            .metric("ReplacedFilesDeleted", r.replaced_deleted as f64, Unit::Count)
            .metric("CompactionLag", r.lag_seconds, Unit::Seconds);
        emf.to_json(now_ms)
    }
}
