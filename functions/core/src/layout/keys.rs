//! Every object key and location Tributary reads or writes (see [`crate::layout`]).

use crate::config::Config;

/// The directory of a table's compacted versions, beside its partitions (`tables/<t>/_v/dt=…`).
const VERSIONS_DIR: &str = "_v";
pub(crate) const DATA_FILE_EXTENSION: &str = ".parquet";
pub(crate) const DEAD_LETTER_EXTENSION: &str = ".jsonl";
use crate::layout::time_partition::TimePartition;

/// The offsets a data file holds for one topic-partition: every record of the batch
/// `first..=last` that belongs to this time partition and was written to the table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileRange {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The first offset of the batch.
    pub first: i64,
    /// The last offset of the batch.
    pub last: i64,
}

impl FileRange {
    /// The file name without extension: `part-<topic>~<partition>~<first>~<last>`, offsets zero-padded.
    pub fn file_stem(&self) -> String {
        format!("part-{}~{}~{:020}~{:020}", self.topic, self.partition, self.first, self.last)
    }

    /// Whether both ranges hold an offset of the same topic-partition.
    pub fn overlaps(&self, other: &FileRange) -> bool {
        self.topic == other.topic && self.partition == other.partition && self.first <= other.last && other.first <= self.last
    }

    /// Parses a file name (the last segment of a key) back into its range.
    pub fn parse(file_name: &str) -> Option<FileRange> {
        let stem = file_name.strip_prefix("part-")?;
        let stem = stem.rsplit_once('.').map(|(s, _)| s).unwrap_or(stem);
        let mut it = stem.split('~');
        let (topic, partition, first, last) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || topic.is_empty() {
            return None;
        }
        let r = FileRange {
            topic: topic.into(),
            partition: partition.parse().ok()?,
            first: first.parse().ok()?,
            last: last.parse().ok()?,
        };
        (r.first <= r.last).then_some(r)
    }
}

/// Where a table's files begin: its Glue location.
pub fn table_root(cfg: &Config, table: &str) -> String {
    format!("{}{table}/", cfg.table_prefix)
}

/// Where a table's files of one day begin (both granularities; not its compacted versions).
pub fn day_prefix(cfg: &Config, table: &str, day: &str) -> String {
    format!("{}dt={day}/", table_root(cfg, table))
}

/// A partition's ingest location: where ingest writes, and its first location.
pub fn partition_prefix(cfg: &Config, table: &str, tp: &TimePartition) -> String {
    format!("{}{}", table_root(cfg, table), tp.path())
}

/// The key of an ingest file in a partition's ingest location.
pub fn data_key(cfg: &Config, table: &str, tp: &TimePartition, range: &FileRange) -> String {
    data_file_key(&partition_prefix(cfg, table, tp), range)
}

/// The key of the ingest file holding `range` at `location` (an ingest location or a version).
pub fn data_file_key(location: &str, range: &FileRange) -> String {
    format!("{location}{}{DATA_FILE_EXTENSION}", range.file_stem())
}

/// The key a file gets when carried into `location`: its name is kept, so a carried ingest
/// file still names its offsets.
pub fn carried_key(key: &str, location: &str) -> String {
    format!("{location}{}", key.rsplit('/').next().unwrap_or(key))
}

/// The `s3://` URI of a key or prefix of the stack's bucket (Glue locations are URIs).
pub fn s3_uri(cfg: &Config, key: &str) -> String {
    format!("s3://{}/{key}", cfg.bucket)
}

/// The key an `s3://` URI of the stack's bucket names; `None` for another bucket or scheme.
pub fn key_of_s3_uri<'a>(cfg: &Config, uri: &'a str) -> Option<&'a str> {
    uri.strip_prefix("s3://")?.strip_prefix(cfg.bucket.as_str())?.strip_prefix('/')
}

/// The claim log of one Kafka partition's offsets in one time partition of a table
/// ([`crate::ingest::claims`]).
pub fn claim_key(cfg: &Config, table: &str, tp: &TimePartition, topic: &str, partition: i32) -> String {
    format!("{}claims/{table}/{}{topic}~{partition}.json", cfg.state_prefix, tp.path())
}

/// The key of the dead letters of `range` in a table's dead-letter area, by Kafka date.
pub fn dead_letter_key(cfg: &Config, table: &str, date: &str, range: &FileRange) -> String {
    format!("{}{}{DEAD_LETTER_EXTENSION}", dead_letter_prefix(cfg, table, date), range.file_stem())
}

/// Where a table's dead letters of one Kafka date are.
pub fn dead_letter_prefix(cfg: &Config, table: &str, date: &str) -> String {
    format!("{}{table}/dt={date}/", cfg.dead_letter_prefix)
}

/// The key of a table's schema in the registry.
pub fn schema_key(cfg: &Config, table: &str) -> String {
    format!("{}{table}.json", schemas_prefix(cfg))
}

/// Where the schema registry keeps one object per table: listing it lists the tables.
pub fn schemas_prefix(cfg: &Config) -> String {
    format!("{}schemas/", cfg.state_prefix)
}

/// The table a schema-registry key is for (`_tributary/schemas/orders.json` → `orders`).
pub fn table_of_schema_key<'a>(cfg: &Config, key: &'a str) -> Option<&'a str> {
    key.strip_prefix(&schemas_prefix(cfg))?.strip_suffix(".json")
}

/// The location of version `n` of a partition: next to, never under, the ingest location, so a
/// reader of one location never sees another's files. `attempt` keeps two compactors that both
/// think they make version `n` (one with an expired lease) out of each other's way.
pub fn version_location(cfg: &Config, table: &str, tp: &TimePartition, n: u32, attempt: &str) -> String {
    format!("{}{VERSIONS_DIR}/{}v{n:06}-{attempt}/", table_root(cfg, table), tp.path())
}

/// The version a partition location names: `n` for a `…/_v/…/v00000n-<attempt>/` directory made
/// by [`version_location`], 0 for the partition's first directory. Locations only move forward,
/// so a writer holding an older one than the catalog's has read a stale state.
pub fn location_version(location: &str) -> u32 {
    let last = location.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    match last.strip_prefix('v').and_then(|rest| rest.split_once('-')) {
        Some((digits, _)) if digits.len() == 6 && is_version_key(location) => digits.parse().unwrap_or(0),
        _ => 0,
    }
}

/// Key of a partition's state object.
pub fn state_key(cfg: &Config, table: &str, tp: &TimePartition) -> String {
    format!("{}partitions/{table}/{}", cfg.state_prefix, tp.path().trim_end_matches('/')) + ".json"
}

/// The prefix of the state keys of a table's partitions of one day (both granularities).
pub fn day_states_prefix(cfg: &Config, table: &str, day: &str) -> String {
    format!("{}partitions/{table}/dt={day}", cfg.state_prefix)
}

/// The time partition a state key ([`state_key`]) names.
pub fn partition_of_state_key(key: &str) -> Option<TimePartition> {
    TimePartition::from_key(key.strip_suffix(".json")?)
}

/// Why the sweep must visit a partition, whatever its age: an empty object per partition, so a
/// sweep lists the partitions with something to do, not the table's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A switch replaced files not all deleted yet: written before the state lists them, deleted
    /// once none is left to delete. A partition of any age that late data compacted again has its
    /// replaced files deleted, though no look-back by date reaches it.
    Retire,
    /// Compaction has work left here: ingest files, or a window not closed yet. Written by the
    /// compact function when an ingest file's event names the partition, deleted by the sweep once
    /// the window has closed and everything is folded in. The catalog's hourly sync lists these too.
    Pending,
}

impl Marker {
    fn dir(self) -> &'static str {
        match self {
            Marker::Retire => "retire",
            Marker::Pending => "pending",
        }
    }
}

/// The key of a partition's marker of `kind`.
pub fn marker_key(cfg: &Config, kind: Marker, table: &str, tp: &TimePartition) -> String {
    format!("{}{table}/{}", markers_prefix(cfg, kind), tp.path().trim_end_matches('/'))
}

/// The prefix of every marker of `kind`.
pub fn markers_prefix(cfg: &Config, kind: Marker) -> String {
    format!("{}{}/", cfg.state_prefix, kind.dir())
}

/// The prefix of a table's markers of `kind`.
pub fn table_markers_prefix(cfg: &Config, kind: Marker, table: &str) -> String {
    format!("{}{table}/", markers_prefix(cfg, kind))
}

/// The table and time partition a [`marker_key`] of `kind` names.
pub fn partition_of_marker(cfg: &Config, kind: Marker, key: &str) -> Option<(String, TimePartition)> {
    let rest = key.strip_prefix(&markers_prefix(cfg, kind))?;
    let (table, path) = rest.split_once('/')?;
    let tp = TimePartition::from_key(path)?;
    (marker_key(cfg, kind, table, &tp) == key).then(|| (table.to_string(), tp))
}

/// The day a function's last deep sweep ran (`{"day": "YYYY-MM-DD"}`): once a day, the sweep
/// also looks back over `sweep_lookback_days` of listings, for partitions whose events were lost.
pub fn deep_sweep_key(cfg: &Config, function: &str) -> String {
    format!("{}sweeps/{function}.json", cfg.state_prefix)
}

/// The key of the `k`-th compacted output file of the version at `location`.
pub fn output_key(location: &str, k: usize) -> String {
    // The version is in the name because sealed files are carried into later versions by copy,
    // keeping their names: a later version's outputs must never take one.
    format!("{location}compacted-{:06}-{k:04}.parquet", location_version(location))
}

/// True for a table's data file: an ingest file or a compacted output (Parquet).
pub fn is_data_file(key: &str) -> bool {
    key.ends_with(DATA_FILE_EXTENSION)
}

/// True for a key inside a compacted version's directory ([`version_location`]).
pub fn is_version_key(key: &str) -> bool {
    key.split('/').any(|segment| segment == VERSIONS_DIR)
}

/// True for the name of a file ingest writes (`part-…`).
pub fn is_ingest_file(key: &str) -> bool {
    key.rsplit('/').next().is_some_and(|n| n.starts_with("part-") && n.ends_with(".parquet"))
}

/// True for a compacted output.
pub fn is_compacted_file(key: &str) -> bool {
    key.rsplit('/').next().is_some_and(|n| n.starts_with("compacted-") && n.ends_with(".parquet"))
}

/// The table and time partition of a data key (`tables/<table>/dt=…/…` or `tables/<table>/_v/dt=…/…`).
pub fn table_partition(cfg: &Config, key: &str) -> Option<(String, TimePartition)> {
    let rest = key.strip_prefix(&cfg.table_prefix)?;
    let table = rest.split('/').next()?;
    if table.is_empty() {
        return None;
    }
    Some((table.to_string(), TimePartition::from_key(rest)?))
}

/// Where the stack's S3 on-failure destination puts the batches the mapping gave up on: Lambda
/// writes its invocation records under this prefix of the destination bucket.
pub const FAILED_BATCHES_PREFIX: &str = "aws/lambda/";
