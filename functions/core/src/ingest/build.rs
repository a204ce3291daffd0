//! Steps 2 and 3 of the general path: with the table's committed schema, misfit fields rescued
//! (or their records refused, by the topic's policies), records decoded by arrow-json, rows split
//! into one file per time partition and topic-partition, and bad records into dead-letter files.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::ArrowError;

use crate::config::{Config, ConflictPolicy, UnknownFieldPolicy};
use crate::ingest::dead_letter::DeadLetter;
use crate::ingest::decode::{RowMeta, assemble, decode_values};
use crate::ingest::rescue::Rescued;
use crate::ingest::screen::{Item, Outcome, Screened};
use crate::ingest::{rescue, split};
use crate::json::shape::{self, RecordShape};
use crate::kafka::{RawRecord, TopicPartitionBatch};
use crate::layout::time_partition::TimePartition;
use crate::layout::{FileRange, OffsetSet};
use crate::naming::RESCUED_COLUMN;
use crate::reject::{Reject, RejectKind};
use crate::table::kafka_columns::COL_OFFSET;
use crate::table::schema::{Misfit, TableSchema};

/// The rows of one topic-partition in one time partition: one data file.
#[derive(Debug, Clone)]
pub struct FileGroup {
    /// The time partition the rows fall in.
    pub partition: TimePartition,
    /// The offsets the batch processed: the file's name.
    pub range: FileRange,
    /// The rows, in offset order.
    pub rows: RecordBatch,
}

impl FileGroup {
    /// The offsets of the group's rows, sorted (what a claim on its range must protect).
    pub fn offsets(&self) -> Result<Vec<i64>, ArrowError> {
        let col = self.rows.column_by_name(COL_OFFSET).ok_or_else(|| ArrowError::SchemaError(format!("{COL_OFFSET} missing")))?;
        let mut v = col.as_primitive::<Int64Type>().values().to_vec();
        v.sort_unstable();
        Ok(v)
    }

    /// How many of the group's rows have fields in the rescued-data column.
    pub fn rescued_rows(&self) -> usize {
        self.rows.column_by_name(RESCUED_COLUMN).map_or(0, |c| c.len() - c.null_count())
    }

    /// Drops the rows whose offsets a time partition already holds (written by an earlier
    /// attempt with other batch boundaries). Returns the group, if rows remain, and how many
    /// rows were dropped.
    pub fn without_covered(self, coverage: &OffsetSet) -> Result<(Option<FileGroup>, usize), ArrowError> {
        if coverage.is_empty() {
            return Ok((Some(self), 0));
        }
        let offsets = self
            .rows
            .column_by_name(COL_OFFSET)
            .ok_or_else(|| ArrowError::SchemaError(format!("{COL_OFFSET} missing")))?
            .as_primitive::<Int64Type>();
        let keep: BooleanArray =
            offsets.values().iter().map(|o| Some(!coverage.contains(&self.range.topic, self.range.partition, *o))).collect();
        let kept = keep.true_count();
        let dropped = self.rows.num_rows() - kept;
        if kept == 0 {
            return Ok((None, dropped));
        }
        if dropped == 0 {
            return Ok((Some(self), 0));
        }
        let rows = arrow_select::filter::filter_record_batch(&self.rows, &keep)?;
        Ok((Some(FileGroup { rows, ..self }), dropped))
    }
}

/// Dead letters of one topic-partition batch for one Kafka date: one dead-letter file.
#[derive(Debug, Clone)]
pub struct DeadLetterGroup {
    /// The Kafka date (`YYYY-MM-DD`) of the letters.
    pub date: String,
    /// The offsets the batch processed: the file's name.
    pub range: FileRange,
    /// The letters, in offset order.
    pub letters: Vec<DeadLetter>,
}

impl DeadLetterGroup {
    /// Drops the letters an earlier attempt already wrote: a dead-letter file's range names the
    /// offsets its batch processed, and every bad record of that batch dated as the file is in
    /// it. Returns the group, if letters remain, and the letters dropped.
    pub fn without_covered(mut self, coverage: &OffsetSet) -> (Option<DeadLetterGroup>, Vec<DeadLetter>) {
        let (dropped, kept): (Vec<DeadLetter>, Vec<DeadLetter>) =
            self.letters.into_iter().partition(|l| coverage.contains(&l.topic, l.partition, l.offset));
        self.letters = kept;
        ((!self.letters.is_empty()).then_some(self), dropped)
    }
}

/// What [`build`] decided.
#[derive(Debug, Default)]
pub struct Built {
    /// The data files, one per topic-partition and time partition.
    pub files: Vec<FileGroup>,
    /// The dead-letter files, one per topic-partition batch and Kafka date.
    pub dead_letters: Vec<DeadLetterGroup>,
    /// Records read.
    pub records_in: usize,
    /// Records with a null value (dropped or dead-lettered, by policy).
    pub tombstones: usize,
    /// Dead-lettered records, by reason.
    pub rejected: BTreeMap<RejectKind, usize>,
    /// Rows partitioned by Kafka timestamp because their event-time field was missing.
    pub event_time_fallbacks: usize,
    /// Values read without the UTF-8 byte-order mark they started with.
    pub byte_order_marks: usize,
}

impl Built {
    /// How many records went to the dead-letter area.
    pub fn dead_lettered(&self) -> usize {
        self.rejected.values().sum()
    }
    /// How many rows the data files hold.
    pub fn rows(&self) -> usize {
        self.files.iter().map(|f| f.rows.num_rows()).sum()
    }
    /// Rows with fields in the rescued-data column (a part of [`Built::rows`]).
    pub fn rescued_rows(&self) -> usize {
        self.files.iter().map(FileGroup::rescued_rows).sum()
    }
}

/// Dead letters being gathered: one file per (Kafka date, topic-partition batch).
pub(super) struct Letters<'t> {
    table: &'t str,
    by_file: BTreeMap<(String, FileRange), Vec<DeadLetter>>,
}

impl<'t> Letters<'t> {
    pub(super) fn new(table: &'t str) -> Self {
        Letters { table, by_file: BTreeMap::new() }
    }

    pub(super) fn refuse(&mut self, b: &TopicPartitionBatch, r: &RawRecord, reject: &Reject, out: &mut Built) {
        let (first, last) = b.offsets().unwrap_or((r.offset, r.offset));
        let range = FileRange { topic: b.topic.clone(), partition: b.partition, first, last };
        let date = TimePartition::from_millis(r.timestamp_ms, crate::config::Granularity::Day).dt;
        self.by_file.entry((date, range)).or_default().push(DeadLetter::new(self.table, &b.topic, b.partition, r, reject));
        *out.rejected.entry(reject.kind).or_default() += 1;
    }

    pub(super) fn groups(self) -> Vec<DeadLetterGroup> {
        self.by_file
            .into_iter()
            .map(|((date, range), mut letters)| {
                letters.sort_by_key(|l| l.offset);
                DeadLetterGroup { date, range, letters }
            })
            .collect()
    }
}

/// What becomes of one good record against the table's schema.
pub(super) enum Fate {
    /// Every field fits its column: the value is decoded as it came.
    AsIs,
    /// Some fields go to the rescued-data column.
    Rescued(Rescued),
    Refused(Reject),
}

/// Decides a good record's fate by its topic's policies: misfit fields are rescued, unless a
/// policy sends the whole record to the dead-letter area.
pub(super) fn fate(cfg: &Config, topic: &str, schema: &TableSchema, rec: &RecordShape, body: &[u8], also: &[String]) -> Fate {
    // A table that cannot have the rescued-data column dead-letters what it would rescue.
    let (unknown, conflicts) = match (cfg.unknown_fields(topic), cfg.conflicts(topic)) {
        (u, c) if schema.can_rescue() => (u, c),
        (UnknownFieldPolicy::Ignore, _) => (UnknownFieldPolicy::Ignore, ConflictPolicy::DeadLetter),
        _ => (UnknownFieldPolicy::DeadLetter, ConflictPolicy::DeadLetter),
    };
    let mut misfits = schema.misfits(&rec.shape, unknown == UnknownFieldPolicy::Ignore);
    match rescue::decimal_misfits(schema, &rec.shape, body) {
        Ok(more) => misfits.extend(more.into_iter().map(|(field, reject)| Misfit { field, reject, unknown: false })),
        Err(reject) => return Fate::Refused(reject),
    }
    let dead_letter = |m: &Misfit| {
        if m.unknown { unknown == UnknownFieldPolicy::DeadLetter } else { conflicts == ConflictPolicy::DeadLetter }
    };
    if let Some(m) = misfits.iter().find(|m| dead_letter(m)) {
        return Fate::Refused(m.reject.clone());
    }
    if conflicts == ConflictPolicy::DeadLetter
        && let Some(k) = rec.repeated.first()
    {
        return Fate::Refused(Reject::new(RejectKind::DuplicateKey, format!("the key {k:?} appears twice in one object")));
    }
    if misfits.is_empty() && rec.repeated.is_empty() && also.is_empty() {
        return Fate::AsIs;
    }
    let mut keys: Vec<&str> = misfits.iter().map(|m| m.field.as_str()).collect();
    keys.extend(also.iter().map(String::as_str));
    match rescue::rescue_fields(body, &keys, &rec.repeated) {
        Ok(r) => Fate::Rescued(r),
        Err(reject) => Fate::Refused(reject),
    }
}

/// The fields of a value that the table's types cannot decode, each tried alone.
pub(super) fn undecodable_fields(schema: &TableSchema, value: &[u8]) -> Result<Vec<String>, ArrowError> {
    let Ok(fields) = shape::split_fields(value) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (key, raw) in fields {
        let alone = format!("{{{}:{raw}}}", serde_json::Value::String(key.clone()));
        if !decode_values(schema, &[alone.as_bytes()], &[])?.failed.is_empty() {
            out.push(key);
        }
    }
    Ok(out)
}

/// One topic-partition's good records decoded into its rows.
pub(super) struct Rows {
    pub(super) data: Option<RecordBatch>,
    /// Which of the records given have a row, in order.
    pub(super) kept: Vec<usize>,
}

/// Decodes good records of one topic-partition (in offset order), rescuing misfit fields or
/// refusing records as the topic's policies say. `None` when a field needs rescuing and the
/// schema has no rescued-data column yet: commit one, and build again.
pub(super) fn decode_records(
    cfg: &Config,
    schema: &TableSchema,
    b: &TopicPartitionBatch,
    goods: &[(&RawRecord, &RecordShape)],
    letters: &mut Letters<'_>,
    out: &mut Built,
) -> Result<Option<Rows>, ArrowError> {
    let mut values: Vec<std::borrow::Cow<'_, [u8]>> = Vec::with_capacity(goods.len());
    let mut rescued: Vec<Option<String>> = Vec::with_capacity(goods.len());
    let mut index: Vec<usize> = Vec::with_capacity(goods.len());
    let decide = |rec: &RecordShape, body: &[u8], also: &[String]| fate(cfg, &b.topic, schema, rec, body, also);
    for (i, (r, rec)) in goods.iter().enumerate() {
        let body = shape::without_byte_order_mark(r.value.as_deref().unwrap_or_default());
        out.byte_order_marks += usize::from(rec.byte_order_mark);
        match decide(rec, body, &[]) {
            Fate::AsIs => {
                values.push(body.into());
                rescued.push(None);
            }
            Fate::Rescued(_) if schema.rescue_index().is_none() => return Ok(None),
            Fate::Rescued(x) => {
                values.push(x.value.into());
                rescued.push(Some(x.rescued));
            }
            Fate::Refused(reject) => {
                letters.refuse(b, r, &reject, out);
                continue;
            }
        }
        index.push(i);
    }
    let mut decoded = decode_values(schema, &values, &rescued)?;
    if !decoded.failed.is_empty() && cfg.conflicts(&b.topic) == ConflictPolicy::Rescue && schema.can_rescue() {
        // What admission let through and the decoder still refuses (an int column's overflow, a
        // decimal's precision): rescue the fields at fault, then decode again.
        for (at, _) in &decoded.failed {
            let (r, rec) = goods[index[*at]];
            let body = shape::without_byte_order_mark(r.value.as_deref().unwrap_or_default());
            let also = undecodable_fields(schema, &values[*at])?;
            if also.is_empty() {
                continue;
            }
            match decide(rec, body, &also) {
                Fate::Rescued(_) if schema.rescue_index().is_none() => return Ok(None),
                Fate::Rescued(x) => {
                    values[*at] = x.value.into();
                    rescued[*at] = Some(x.rescued);
                }
                Fate::AsIs | Fate::Refused(_) => {}
            }
        }
        decoded = decode_values(schema, &values, &rescued)?;
    }
    for (at, err) in &decoded.failed {
        let reject = Reject::new(RejectKind::DecodeError, format!("the value does not decode into the table's types: {err}"));
        letters.refuse(b, goods[index[*at]].0, &reject, out);
    }
    Ok(Some(Rows { data: decoded.data, kept: decoded.kept.iter().map(|k| index[*k]).collect() }))
}

/// Step 3: with the table's (committed) schema, rescues the fields that do not fit it (or
/// refuses their records, as the topic's policies say), decodes the records, and splits them
/// into one file per (time partition, topic-partition). `None` when a field needs rescuing and
/// the schema has no rescued-data column yet: commit one, and build again.
pub fn build(cfg: &Config, screened: &Screened<'_>, schema: &TableSchema) -> Result<Option<Built>, ArrowError> {
    let mut out = Built { records_in: screened.items.len(), ..Default::default() };
    let mut letters = Letters::new(&screened.table);
    let mut good: Vec<(&Item<'_>, &RecordShape)> = Vec::new();
    for item in &screened.items {
        match &item.outcome {
            Outcome::Tombstone => out.tombstones += 1,
            Outcome::Rejected(r) => letters.refuse(item.batch, item.record, r, &mut out),
            Outcome::Good(rec) => good.push((item, rec)),
        }
    }
    // One decode per topic-partition, so each file's rows come from one decode.
    for chunk in good.chunk_by(|a, b| std::ptr::eq(a.0.batch, b.0.batch)) {
        let b = chunk[0].0.batch;
        let goods: Vec<(&RawRecord, &RecordShape)> = chunk.iter().map(|(item, rec)| (item.record, *rec)).collect();
        let Some(rows) = decode_records(cfg, schema, b, &goods, &mut letters, &mut out)? else { return Ok(None) };
        if rows.kept.is_empty() {
            continue;
        }
        let records: Vec<&RawRecord> = rows.kept.iter().map(|k| goods[*k].0).collect();
        push_files(cfg, b, rows.data.as_ref(), &records, schema, &mut out)?;
    }
    out.dead_letters = letters.groups();
    Ok(Some(out))
}

/// [`build`] for a schema held in memory: adds the rescued-data column when it asks for one.
/// (Ingest commits the column to the registry first instead.)
pub fn build_rescuing(cfg: &Config, screened: &Screened<'_>, schema: &mut TableSchema) -> Result<Built, ArrowError> {
    if let Some(built) = build(cfg, screened, schema)? {
        return Ok(built);
    }
    schema.add_rescue_column();
    build(cfg, screened, schema)?.ok_or_else(|| ArrowError::SchemaError("no rescued-data column to rescue into".into()))
}

/// Adds the Kafka metadata to one topic-partition's decoded rows and splits them into files.
pub(super) fn push_files(
    cfg: &Config,
    b: &TopicPartitionBatch,
    data: Option<&RecordBatch>,
    records: &[&RawRecord],
    schema: &TableSchema,
    out: &mut Built,
) -> Result<(), ArrowError> {
    let metas: Vec<RowMeta<'_>> = records
        .iter()
        .map(|r| RowMeta {
            topic: &b.topic,
            partition: b.partition,
            offset: r.offset,
            timestamp_ms: r.timestamp_ms,
            key: r.key.as_deref(),
            headers: &r.headers,
        })
        .collect();
    let rows = assemble(schema, data, &metas)?;
    let event_col = cfg.event_time_column(&b.topic);
    let (parts, stats) = split::split(&rows, event_col.as_deref(), cfg.granularity)?;
    out.event_time_fallbacks += stats.fallback_rows;
    let (first, last) = b.offsets().unwrap_or_default();
    for (tp, rows) in parts {
        let range = FileRange { topic: b.topic.clone(), partition: b.partition, first, last };
        out.files.push(FileGroup { partition: tp, range, rows });
    }
    Ok(())
}
