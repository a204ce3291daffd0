//! What an ingest invocation writes, decided without I/O.
//!
//! The handler drives these steps per table, doing the I/O in between:
//! [`screen`] the records → evolve and commit the schema (and the rescued-data column, when
//! [`build`] asks for it) → [`build`] the files and dead letters → drop rows already committed
//! ([`FileGroup::without_covered`]) → encode ([`crate::parquet::write`]) and put. Batches of flat
//! records take the fast path first ([`build_flat`], or [`build_learned`] for a table's first
//! batch), which decodes them in one pass; whatever it declines comes back to [`screen`].
//!
//! One batch, from the event's bytes to the key of the file it writes:
//!
//! ```
//! use tributary_core::Config;
//! use tributary_core::table::schema::TableSchema;
//! use tributary_core::{ingest, kafka, layout, parquet};
//!
//! // One record, {"id":1,"amount":9.99}, as the event source mapping sends it.
//! let event = br#"{"eventSource":"aws:kafka","records":{"orders-0":[{"topic":"orders","partition":0,
//!     "offset":7,"timestamp":1763780400000,"timestampType":"CREATE_TIME","key":null,
//!     "value":"eyJpZCI6MSwiYW1vdW50Ijo5Ljk5fQ==","headers":[]}]}}"#;
//! let cfg = Config { bucket: "lake".into(), ..Config::default() };
//! let batches = kafka::read_event(event).unwrap();
//! for (table, batches) in ingest::by_table(&cfg, &batches) {
//!     let screened = ingest::screen(&cfg, &table, &batches);
//!     let mut schema = TableSchema::default(); // a new table: the batch's shape makes it
//!     schema.evolve(&screened.batch_shape);
//!     let built = ingest::build(&cfg, &screened, &schema).unwrap().expect("every field has its column");
//!     let file = &built.files[0];
//!     assert_eq!((built.records_in, file.rows.num_rows(), built.dead_lettered()), (1, 1, 0));
//!     let key = layout::data_key(&cfg, &table, &file.partition, &file.range);
//!     assert_eq!(key, "tables/orders/dt=2025-11-22/hr=03/part-orders~0~00000000000000000007~00000000000000000007.parquet");
//!     let props = parquet::write::writer_properties(cfg.zstd_level, 1 << 20).unwrap();
//!     let bytes = parquet::write::encode(std::slice::from_ref(&file.rows), props).unwrap();
//!     assert_eq!(parquet::write::decode(bytes).unwrap()[0], file.rows);
//! }
//! ```

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::ArrowError;

use crate::config::{Config, ConflictPolicy, TombstonePolicy, UnknownFieldPolicy};
use crate::ingest::dead_letter::DeadLetter;
use crate::ingest::decode::{RowMeta, assemble, decode_values};
use crate::ingest::fast_path::{FlatDecoder, Retry};
use crate::ingest::rescue::Rescued;
use crate::json::shape::{self, RecordShape, Shape, ShapeOptions};
use crate::kafka::{RawRecord, TopicPartitionBatch};
use crate::layout::time_partition::TimePartition;
use crate::layout::{FileRange, OffsetSet};
use crate::naming::RESCUED_COLUMN;
use crate::reject::{Reject, RejectKind};
use crate::table::kafka_columns::COL_OFFSET;
use crate::table::schema::{Misfit, TableSchema};

pub mod claims;
pub mod dead_letter;
pub(crate) mod decode;
pub(crate) mod fast_path;
pub(crate) mod rescue;
pub(crate) mod split;

/// Groups topic-partition batches by the table their topic maps to.
pub fn by_table<'a>(cfg: &Config, batches: &'a [TopicPartitionBatch]) -> BTreeMap<String, Vec<&'a TopicPartitionBatch>> {
    let mut out: BTreeMap<String, Vec<&TopicPartitionBatch>> = BTreeMap::new();
    for b in batches {
        out.entry(cfg.table_for(&b.topic)).or_default().push(b);
    }
    out
}

/// What became of one record after screening.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A JSON object, with its shape.
    Good(RecordShape),
    /// A null value.
    Tombstone,
    /// A record that goes to the dead-letter area, and why.
    Rejected(Reject),
}

/// One record of a table's batch, and what screening made of it.
#[derive(Debug)]
pub struct Item<'a> {
    /// The topic-partition batch the record came in.
    pub batch: &'a TopicPartitionBatch,
    /// The record.
    pub record: &'a RawRecord,
    /// What screening made of it.
    pub outcome: Outcome,
}

/// The records of one table, checked one by one, and the merged shape of the good ones.
#[derive(Debug)]
pub struct Screened<'a> {
    /// The table the records are for.
    pub table: String,
    /// Every record, in batch order.
    pub items: Vec<Item<'a>>,
    /// The merged shape of the good records.
    pub batch_shape: Shape,
}

/// The limits a record is read with, from the configuration.
pub fn shape_options(cfg: &Config) -> ShapeOptions {
    ShapeOptions { max_field_bytes: cfg.max_field_bytes, max_depth: cfg.max_depth, infer_temporal: cfg.infer_temporal }
}

/// A record's outcome before its shape is read: refused by the event reader, or a tombstone.
fn pre_screen(cfg: &Config, r: &RawRecord) -> Option<Outcome> {
    match (&r.invalid, &r.value) {
        (Some(reject), _) => Some(Outcome::Rejected(reject.clone())),
        (None, None) => Some(match cfg.tombstones {
            TombstonePolicy::Skip => Outcome::Tombstone,
            TombstonePolicy::DeadLetter => {
                Outcome::Rejected(Reject::new(RejectKind::Tombstone, "the value is null (a tombstone)"))
            }
        }),
        (None, Some(_)) => None,
    }
}

/// Step 1: checks every record and merges the shapes of the good ones (in offset order; a
/// field that conflicts with what came before contributes nothing and is rescued in [`build`]).
pub fn screen<'a>(cfg: &Config, table: &str, batches: &[&'a TopicPartitionBatch]) -> Screened<'a> {
    let opts = shape_options(cfg);
    let mut items = Vec::new();
    let mut batch_shape = Shape::Object(Vec::new());
    for b in batches {
        for r in &b.records {
            let outcome =
                pre_screen(cfg, r).unwrap_or_else(|| match shape::read_record(r.value.as_deref().unwrap_or_default(), &opts) {
                    Ok(rec) => {
                        shape::absorb(&mut batch_shape, &rec.shape);
                        Outcome::Good(rec)
                    }
                    Err(reject) => Outcome::Rejected(reject),
                });
            items.push(Item { batch: b, record: r, outcome });
        }
    }
    Screened { table: table.to_string(), items, batch_shape }
}
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
struct Letters<'t> {
    table: &'t str,
    by_file: BTreeMap<(String, FileRange), Vec<DeadLetter>>,
}

impl<'t> Letters<'t> {
    fn new(table: &'t str) -> Self {
        Letters { table, by_file: BTreeMap::new() }
    }

    fn refuse(&mut self, b: &TopicPartitionBatch, r: &RawRecord, reject: &Reject, out: &mut Built) {
        let (first, last) = b.offsets().unwrap_or((r.offset, r.offset));
        let range = FileRange { topic: b.topic.clone(), partition: b.partition, first, last };
        let date = TimePartition::from_millis(r.timestamp_ms, crate::config::Granularity::Day).dt;
        self.by_file.entry((date, range)).or_default().push(DeadLetter::new(self.table, &b.topic, b.partition, r, reject));
        *out.rejected.entry(reject.kind).or_default() += 1;
    }

    fn groups(self) -> Vec<DeadLetterGroup> {
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
enum Fate {
    /// Every field fits its column: the value is decoded as it came.
    AsIs,
    /// Some fields go to the rescued-data column.
    Rescued(Rescued),
    Refused(Reject),
}

/// Decides a good record's fate by its topic's policies: misfit fields are rescued, unless a
/// policy sends the whole record to the dead-letter area.
fn fate(cfg: &Config, topic: &str, schema: &TableSchema, rec: &RecordShape, body: &[u8], also: &[String]) -> Fate {
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
fn undecodable_fields(schema: &TableSchema, value: &[u8]) -> Result<Vec<String>, ArrowError> {
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
struct Rows {
    data: Option<RecordBatch>,
    /// Which of the records given have a row, in order.
    kept: Vec<usize>,
}

/// Decodes good records of one topic-partition (in offset order), rescuing misfit fields or
/// refusing records as the topic's policies say. `None` when a field needs rescuing and the
/// schema has no rescued-data column yet: commit one, and build again.
fn decode_records(
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
fn push_files(
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

/// Steps 1 to 3 in one pass, for a table whose committed schema already has every field of
/// the batch's records ([`FlatDecoder`]). The records the flat decoder declines (a bad value, a
/// field to rescue, a nested value) are decided one by one as [`screen`] and [`build`] decide
/// them, in the same pass. `None` when one of them would change the schema (a new field): then
/// [`screen`] and [`build`] decide the batch. When it returns a result, it is the one they would
/// have given.
pub fn build_flat(cfg: &Config, batches: &[&TopicPartitionBatch], schema: &TableSchema) -> Result<Option<Built>, ArrowError> {
    Ok(match flat_pass(cfg, batches, schema, None)? {
        Flat::Built(built) => Some(built),
        Flat::NeedsRescueColumn | Flat::Declined => None,
    })
}

enum Flat {
    Built(Built),
    NeedsRescueColumn,
    Declined,
}

/// [`build_flat`] with `schema`, which `sample` (the shape of the batch's first records, when
/// the schema was learned from them) evolved from the committed one.
fn flat_pass(
    cfg: &Config,
    batches: &[&TopicPartitionBatch],
    schema: &TableSchema,
    sample: Option<&Shape>,
) -> Result<Flat, ArrowError> {
    let Some(decoder) = FlatDecoder::new(schema, &shape_options(cfg)) else { return Ok(Flat::Declined) };
    let opts = shape_options(cfg);
    let table = batches.first().map(|b| cfg.table_for(&b.topic)).unwrap_or_default();
    let mut letters = Letters::new(&table);
    let mut out = Built::default();
    for b in batches {
        out.records_in += b.records.len();
        let mut records = Vec::with_capacity(b.records.len());
        let mut values = Vec::with_capacity(b.records.len());
        for r in &b.records {
            match pre_screen(cfg, r) {
                None => {
                    records.push(r);
                    values.push(r.value.as_deref().unwrap_or_default());
                }
                Some(Outcome::Tombstone) => out.tombstones += 1,
                Some(Outcome::Rejected(reject)) => letters.refuse(b, r, &reject, &mut out),
                Some(Outcome::Good(_)) => unreachable!("pre-screening reads no shape"),
            }
        }
        if values.is_empty() {
            continue;
        }
        // A declined record that only needs fields rescued (or a byte-order mark stripped) is
        // read again in that form, in its place: no second decoder, no interleaving.
        let (mut evolving, mut needs_column) = (false, false);
        let retry = |i: usize| {
            let rec = shape::read_record(values[i], &opts).ok()?;
            if evolves(schema, sample, &rec.shape) {
                evolving = true;
                return None;
            }
            let body = shape::without_byte_order_mark(values[i]);
            match fate(cfg, &b.topic, schema, &rec, body, &[]) {
                Fate::AsIs if rec.byte_order_mark => Some(Retry { value: body.into(), rescued: None }),
                Fate::Rescued(_) if schema.rescue_index().is_none() => {
                    needs_column = true;
                    None
                }
                Fate::Rescued(x) => Some(Retry { value: x.value.into(), rescued: Some(x.rescued) }),
                Fate::AsIs | Fate::Refused(_) => None,
            }
        };
        let Some(flat) = decoder.decode_retrying(&values, retry) else { return Ok(Flat::Declined) };
        if evolving {
            return Ok(Flat::Declined);
        }
        if needs_column {
            return Ok(Flat::NeedsRescueColumn);
        }
        out.byte_order_marks += flat.retried.iter().filter(|i| values[**i].starts_with(shape::BYTE_ORDER_MARK)).count();
        if flat.declined.is_empty() {
            push_files(cfg, b, Some(&flat.data), &records, schema, &mut out)?;
            continue;
        }
        // The declined records, as screening would read them; none may change the schema.
        let mut shapes: Vec<(usize, RecordShape)> = Vec::with_capacity(flat.declined.len());
        for &i in &flat.declined {
            match shape::read_record(values[i], &opts) {
                Err(reject) => letters.refuse(b, records[i], &reject, &mut out),
                Ok(rec) if evolves(schema, sample, &rec.shape) => return Ok(Flat::Declined),
                Ok(rec) => shapes.push((i, rec)),
            }
        }
        let goods: Vec<(&RawRecord, &RecordShape)> = shapes.iter().map(|(i, rec)| (records[*i], rec)).collect();
        let Some(rows) = decode_records(cfg, schema, b, &goods, &mut letters, &mut out)? else {
            return Ok(Flat::NeedsRescueColumn);
        };
        // Back in offset order: the flat rows and the decided ones, interleaved.
        let mut slow = rows.kept.iter().map(|k| shapes[*k].0).peekable();
        let mut declined = flat.declined.iter().peekable();
        let (mut order, mut kept) = (Vec::with_capacity(records.len()), Vec::with_capacity(records.len()));
        let mut next_flat = 0;
        let mut next_slow = 0;
        for (i, r) in records.iter().enumerate() {
            if declined.next_if_eq(&&i).is_none() {
                order.push((0, next_flat));
                next_flat += 1;
            } else if slow.next_if_eq(&i).is_some() {
                order.push((1, next_slow));
                next_slow += 1;
            } else {
                continue;
            }
            kept.push(*r);
        }
        let data = match &rows.data {
            Some(d) => arrow_select::interleave::interleave_record_batch(&[&flat.data, d], &order)?,
            None => flat.data,
        };
        push_files(cfg, b, Some(&data), &kept, schema, &mut out)?;
    }
    out.dead_letters = letters.groups();
    Ok(Flat::Built(out))
}

/// Whether a record decided alone would make screening the whole batch give another schema: a
/// field the committed schema lacks, or (for a learned schema) one its sample's shape lacks or
/// would widen.
fn evolves(schema: &TableSchema, sample: Option<&Shape>, record: &Shape) -> bool {
    match sample {
        None => schema.clone().evolve(record),
        Some(s) => {
            let mut merged = s.clone();
            shape::absorb(&mut merged, record);
            merged != *s
        }
    }
}

/// Records read to learn a schema in [`build_learned`]: enough to meet every field of a
/// regular stream, a small part of a batch's screening.
pub const LEARN_SAMPLE: usize = 1024;

/// A schema learned from a batch's first records, and the batch built with it in one pass.
#[derive(Debug)]
pub struct Learned {
    /// The shape of the sample, to commit (it evolves the table's schema into `schema`).
    pub shape: Shape,
    /// Whether `schema` also adds the rescued-data column.
    pub rescues: bool,
    /// The table's schema after the sample.
    pub schema: TableSchema,
    /// The batch, built against `schema`.
    pub built: Built,
}

/// For a batch the table's schema does not describe yet (the first batch of a table, a new
/// field, its first field to rescue): learns the schema its first [`LEARN_SAMPLE`] records ask
/// for, with the rescued-data column if a record needs it, and builds the batch with it by
/// [`build_flat`]. `None` when that teaches nothing new, or a record after the sample would
/// change the learned schema: then [`screen`] and [`build`] decide.
///
/// When it returns a result, it is the one screening the whole batch would have given: every
/// record either fits the learned schema as it is or adds nothing to the sample's shape, so the
/// whole batch's shape evolves the schema no further, and the sample, read in the same order as
/// screening reads, puts the columns in the same order.
pub fn build_learned(
    cfg: &Config,
    batches: &[&TopicPartitionBatch],
    schema: &TableSchema,
) -> Result<Option<Learned>, ArrowError> {
    learn_from(cfg, batches, schema, LEARN_SAMPLE)
}

fn learn_from(
    cfg: &Config,
    batches: &[&TopicPartitionBatch],
    schema: &TableSchema,
    sample_records: usize,
) -> Result<Option<Learned>, ArrowError> {
    let opts = shape_options(cfg);
    let mut shape = Shape::Object(Vec::new());
    let sample = batches.iter().flat_map(|b| &b.records).filter(|r| r.invalid.is_none()).filter_map(|r| r.value.as_ref());
    for v in sample.take(sample_records) {
        // A record screening refuses adds nothing to the batch's shape.
        if let Ok(rec) = shape::read_record(v, &opts) {
            shape::absorb(&mut shape, &rec.shape);
        }
    }
    let mut learned = schema.clone();
    // A sample that brings no new field still teaches the rescued-data column when a record
    // needs it: a table's first rescue then stays on the flat path too.
    let evolved = learned.evolve(&shape);
    if !evolved && (learned.rescues || !learned.can_rescue()) {
        return Ok(None); // nothing this pass could teach
    }
    let mut rescues = false;
    loop {
        match flat_pass(cfg, batches, &learned, Some(&shape))? {
            Flat::Built(built) if evolved || rescues => return Ok(Some(Learned { shape, rescues, schema: learned, built })),
            Flat::NeedsRescueColumn if !rescues && learned.add_rescue_column() => rescues = true,
            Flat::Built(_) | Flat::NeedsRescueColumn | Flat::Declined => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::batches;
    use crate::testing::events::{SampleRecord, build_event};

    fn event_batches(values: &[Option<&[u8]>]) -> Vec<TopicPartitionBatch> {
        let recs: Vec<SampleRecord> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (100 + i as i64, 1_763_780_400_000 + i as i64 * 1_800_000, None, *v, &[][..]))
            .collect();
        batches(build_event("aws:kafka", "cust-data", 0, &recs)).unwrap()
    }

    #[test]
    fn screen_evolve_build() {
        let cfg = Config::default();
        let b = event_batches(&[
            Some(br#"{"name":"a","age":1}"#),
            Some(br#"{"name":"b","age":"x"}"#),
            None,
            Some(b"not json"),
            Some(br#"{"name":"c","zip":340282366920938463463374607431768211455}"#),
            Some(br#"{"name":"d","age":4,"new":true}"#),
        ]);
        let tables = by_table(&cfg, &b);
        let (table, tbs) = tables.iter().next().unwrap();
        assert_eq!(table, "cust_data");
        let s = screen(&cfg, table, tbs);
        let mut schema = TableSchema::default();
        assert!(schema.evolve(&s.batch_shape));
        assert_eq!(schema.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["name", "age", "zip", "new"]);
        assert!(build(&cfg, &s, &schema).unwrap().is_none(), "a field to rescue asks for the column");
        let built = build_rescuing(&cfg, &s, &mut schema).unwrap();
        assert_eq!(schema.columns.last().unwrap().name, RESCUED_COLUMN);
        assert_eq!(built.records_in, 6);
        assert_eq!(built.tombstones, 1);
        assert_eq!(built.dead_lettered(), 1);
        assert_eq!(built.rows(), 4);
        assert_eq!(built.rescued_rows(), 1);
        assert_eq!(built.records_in, built.rows() + built.dead_lettered() + built.tombstones);
        assert_eq!(built.rejected[&RejectKind::InvalidJson], 1);
        // Kafka timestamps 30 minutes apart: hours 03 and 05 (rows 100, 101 and 104, 105).
        let parts: Vec<String> = built.files.iter().map(|f| f.partition.path()).collect();
        assert_eq!(parts, ["dt=2025-11-22/hr=03/", "dt=2025-11-22/hr=05/"]);
        assert!(built.files.iter().all(|f| (f.range.first, f.range.last) == (100, 105)));
        let rows = &built.files[0].rows;
        let rescued = rows.column_by_name(RESCUED_COLUMN).unwrap().as_string::<i32>();
        assert_eq!((arrow_array::Array::is_null(rescued, 0), rescued.value(1)), (true, r#"{"age":"x"}"#));
        assert!(rows.column_by_name("age").unwrap().is_null(1));
        let zip = built.files[1].rows.column_by_name("zip").unwrap().as_string::<i32>().value(0).to_string();
        assert_eq!(zip, "340282366920938463463374607431768211455", "every digit");
        assert_eq!(built.dead_letters.len(), 1);
        let offsets: Vec<i64> = built.dead_letters[0].letters.iter().map(|l| l.offset).collect();
        assert_eq!(offsets, [103]);
        // The old behaviour, per topic: conflicts dead-lettered.
        let strict = Config {
            topics: [(
                "cust-data".to_string(),
                crate::config::TopicConfig { conflicts: ConflictPolicy::DeadLetter, ..Default::default() },
            )]
            .into(),
            ..Config::default()
        };
        let mut plain = TableSchema::default();
        plain.evolve(&s.batch_shape);
        let built = build(&strict, &screen(&strict, table, tbs), &plain).unwrap().expect("nothing to rescue");
        assert_eq!((built.rows(), built.dead_lettered(), built.rejected[&RejectKind::SchemaConflict]), (3, 2, 1));
    }

    #[test]
    fn covered_rows_are_dropped() {
        let cfg = Config::default();
        let b = event_batches(&[Some(br#"{"a":1}"#), Some(br#"{"a":2}"#)]);
        let tables = by_table(&cfg, &b);
        let s = screen(&cfg, "cust_data", &tables["cust_data"]);
        let mut schema = TableSchema::default();
        schema.evolve(&s.batch_shape);
        let built = build(&cfg, &s, &schema).unwrap().unwrap();
        let g = built.files[0].clone();
        let mut cov = OffsetSet::default();
        cov.add_file(&FileRange { topic: "cust-data".into(), partition: 0, first: 90, last: 100 });
        let (g2, dropped) = g.clone().without_covered(&cov).unwrap();
        assert_eq!((g2.unwrap().rows.num_rows(), dropped), (1, 1));
        cov.add_file(&FileRange { topic: "cust-data".into(), partition: 0, first: 101, last: 101 });
        let (g3, dropped) = g.clone().without_covered(&cov).unwrap();
        assert!(g3.is_none());
        assert_eq!(dropped, 2);
        let (g4, dropped) = g.without_covered(&OffsetSet::default()).unwrap();
        assert_eq!((g4.unwrap().rows.num_rows(), dropped), (2, 0));
    }

    #[test]
    fn the_flat_path_builds_what_screen_and_build_build() {
        let cfg = Config::default();
        let mut rng = crate::testing::sample::Rng::new(3);
        let recs: Vec<String> = (0..300).map(|i| crate::testing::sample::customer(&mut rng, i % 4)).collect();
        let mut values: Vec<Option<&[u8]>> = recs.iter().map(|r| Some(r.as_bytes())).collect();
        values[7] = None;
        let b = event_batches(&values);
        let tables = by_table(&cfg, &b);
        let tbs = &tables["cust_data"];
        let s = screen(&cfg, "cust_data", tbs);
        let mut schema = TableSchema::default();
        schema.evolve(&s.batch_shape);
        let slow = build(&cfg, &s, &schema).unwrap().unwrap();
        let fast = build_flat(&cfg, tbs, &schema).unwrap().expect("customer data takes the flat path");
        assert_eq!((fast.records_in, fast.tombstones, fast.dead_lettered()), (300, 1, 0));
        assert_eq!((slow.records_in, slow.tombstones, slow.dead_lettered()), (300, 1, 0));
        assert_eq!(fast.files.len(), slow.files.len());
        for (f, s) in fast.files.iter().zip(&slow.files) {
            assert_eq!((&f.partition, &f.range), (&s.partition, &s.range));
            assert_eq!(f.rows, s.rows);
        }
        // A record to dead-letter, a tombstone the configuration dead-letters, a field to rescue:
        // decided in the same pass, as screening decides them.
        values[8] = Some(b"not json");
        values[9] = Some(br#"{"age":"not a number"}"#);
        let strict = Config { tombstones: TombstonePolicy::DeadLetter, ..Config::default() };
        schema.add_rescue_column();
        for cfg in [&cfg, &strict] {
            let b = event_batches(&values);
            let tbs = &by_table(cfg, &b)["cust_data"];
            let fast = build_flat(cfg, tbs, &schema).unwrap().expect("decided in the flat pass");
            let slow = build(cfg, &screen(cfg, "cust_data", tbs), &schema).unwrap().unwrap();
            assert_eq!((fast.records_in, fast.tombstones, &fast.rejected), (slow.records_in, slow.tombstones, &slow.rejected));
            assert_eq!(
                (fast.rescued_rows(), fast.dead_lettered()),
                (1, 1 + usize::from(cfg.tombstones == TombstonePolicy::DeadLetter))
            );
            for (f, s) in fast.files.iter().zip(&slow.files) {
                assert_eq!((&f.partition, &f.range, &f.rows), (&s.partition, &s.range, &s.rows));
            }
        }
        // A table without the rescued-data column meets its first field to rescue: the flat
        // pass asks for the column, and the learned path adds it and stays flat.
        let mut plain = TableSchema::default();
        plain.evolve(&s.batch_shape);
        let b = event_batches(&values);
        let tbs = &by_table(&cfg, &b)["cust_data"];
        assert!(build_flat(&cfg, tbs, &plain).unwrap().is_none());
        let l = build_learned(&cfg, tbs, &plain).unwrap().expect("the column is learned in the flat pass");
        assert!(l.rescues);
        assert_eq!(l.schema, schema);
        let slow = build_rescuing(&cfg, &screen(&cfg, "cust_data", tbs), &mut plain).unwrap();
        assert_eq!((l.built.rescued_rows(), l.built.dead_lettered()), (slow.rescued_rows(), slow.dead_lettered()));
        assert_eq!(l.built.files.len(), slow.files.len());
        for (f, s) in l.built.files.iter().zip(&slow.files) {
            assert_eq!((&f.partition, &f.range, &f.rows), (&s.partition, &s.range, &s.rows));
        }
        // A field the schema lacks: screening decides.
        values[9] = Some(br#"{"brand_new":1}"#);
        assert!(build_flat(&cfg, &by_table(&cfg, &event_batches(&values))["cust_data"], &schema).unwrap().is_none());
    }

    /// What screening the whole batch, evolving and building give, next to what learning from
    /// a sample and one flat pass give, on random batches of mixed and mutated records.
    #[test]
    fn a_learned_schema_builds_what_screening_the_whole_batch_builds() {
        const ALPHABET: &[u8] = b"\"\\{}[],:. -+0123456789eEtfnulZT\x00\xc3\xa9";
        let cfg = Config::default();
        let mut rng = crate::testing::sample::Rng::new(5);
        let mut pool: Vec<String> = (0..6).map(|i| crate::testing::sample::customer(&mut rng, i % 4)).collect();
        pool.extend(
            [
                r#"{"a":1,"b":"2020-01-01","c":"x","d":true}"#,
                r#"{"a":1.5,"b":"hello","c":"2020-01-01T00:00:00Z"}"#,
                r#"{"a":null,"d":false,"e":"2021-02-03"}"#,
                r#"{"b":"2020-01-02","a":-3,"e":"2021-02-03 04:05:06"}"#,
                r#"{"a":{"x":1}}"#,
                r#"{"c":"y","f":[1]}"#,
            ]
            .map(String::from),
        );
        let (mut learned, mut rounds) = (0, 0);
        for round in 0..4000 {
            let len = 1 + rng.below(8) as usize;
            let mut values: Vec<Option<Vec<u8>>> = Vec::new();
            for _ in 0..len {
                let mut v = pool[rng.below(pool.len() as u64) as usize].clone().into_bytes();
                if rng.below(4) == 0 {
                    rng.mutate(&mut v, ALPHABET);
                }
                values.push((rng.below(12) > 0).then_some(v));
            }
            let values: Vec<Option<&[u8]>> = values.iter().map(|v| v.as_deref()).collect();
            let b = event_batches(&values);
            let tables = by_table(&cfg, &b);
            let tbs = &tables["cust_data"];
            // From an empty table, or one that already has the first pool record's columns.
            let mut schema = TableSchema::default();
            if round % 2 == 1 {
                schema.evolve(&shape::infer_record(pool[round % pool.len()].as_bytes(), &shape_options(&cfg)).unwrap());
            }
            let sample = 1 + rng.below(len as u64) as usize;
            rounds += 1;
            let Some(l) = learn_from(&cfg, tbs, &schema, sample).unwrap() else { continue };
            learned += 1;
            let s = screen(&cfg, "cust_data", tbs);
            let mut full = schema.clone();
            full.evolve(&s.batch_shape);
            let slow = build_rescuing(&cfg, &s, &mut full).unwrap();
            assert_eq!(l.schema, full, "{values:?}");
            assert_eq!(l.rescues, full.rescue_index().is_some());
            let fast = &l.built;
            assert_eq!((fast.records_in, fast.tombstones, &fast.rejected), (slow.records_in, slow.tombstones, &slow.rejected));
            assert_eq!(fast.files.len(), slow.files.len());
            for (f, s) in fast.files.iter().zip(&slow.files) {
                assert_eq!((&f.partition, &f.range, &f.rows), (&s.partition, &s.range, &s.rows), "{values:?}");
            }
        }
        // Both ways are exercised: learned batches, and batches screening must decide.
        assert!(learned > rounds / 10, "{learned} of {rounds}");
        assert!(learned < rounds, "{learned} of {rounds}");
    }
}
