//! What an ingest invocation writes, decided without I/O.
//!
//! The handler drives these steps per table, doing the I/O in between:
//! [`screen`] the records → evolve and commit the schema → [`build`] the files and dead
//! letters → drop rows already committed ([`FileGroup::without_covered`]) → encode and put.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::ArrowError;

use crate::config::{Config, TombstonePolicy, UnknownFieldPolicy};
use crate::dead_letter::DeadLetter;
use crate::decode::{COL_OFFSET, RowMeta, assemble, decode_values};
use crate::event::{RawRecord, TopicPartitionBatch};
use crate::flat::FlatDecoder;
use crate::layout::{Coverage, FileRange};
use crate::partition::{self, TimePartition};
use crate::schema::TableSchema;
use crate::shape::{self, Reject, RejectKind, Shape, ShapeOptions};

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
    Good(Shape),
    Tombstone,
    Rejected(Reject),
}

#[derive(Debug)]
pub struct Item<'a> {
    pub batch: &'a TopicPartitionBatch,
    pub record: &'a RawRecord,
    pub outcome: Outcome,
}

/// The records of one table, checked one by one, and the merged shape of the good ones.
#[derive(Debug)]
pub struct Screened<'a> {
    pub table: String,
    pub items: Vec<Item<'a>>,
    pub batch_shape: Shape,
}

pub fn shape_options(cfg: &Config) -> ShapeOptions {
    ShapeOptions { max_field_bytes: cfg.max_field_bytes, max_depth: cfg.max_depth, infer_temporal: cfg.infer_temporal }
}

/// Step 1: checks every record and merges the shapes of the good ones (in offset order; a
/// record that conflicts with what came before contributes nothing and is refused in [`build`]).
pub fn screen<'a>(cfg: &Config, table: &str, batches: &[&'a TopicPartitionBatch]) -> Screened<'a> {
    let opts = shape_options(cfg);
    let mut items = Vec::new();
    let mut batch_shape = Shape::Object(Vec::new());
    for b in batches {
        for r in &b.records {
            let outcome = match (&r.invalid, &r.value) {
                (Some(reject), _) => Outcome::Rejected(reject.clone()),
                (None, None) => match cfg.tombstones {
                    TombstonePolicy::Skip => Outcome::Tombstone,
                    TombstonePolicy::DeadLetter => {
                        Outcome::Rejected(Reject::new(RejectKind::Tombstone, "the value is null (a tombstone)"))
                    }
                },
                (None, Some(v)) => match shape::infer_record(v, &opts) {
                    Ok(s) => {
                        shape::absorb(&mut batch_shape, &s);
                        Outcome::Good(s)
                    }
                    Err(reject) => Outcome::Rejected(reject),
                },
            };
            items.push(Item { batch: b, record: r, outcome });
        }
    }
    Screened { table: table.to_string(), items, batch_shape }
}

/// The rows of one topic-partition in one time partition: one data file.
#[derive(Debug, Clone)]
pub struct FileGroup {
    pub partition: TimePartition,
    pub range: FileRange,
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

    /// Drops the rows whose offsets a time partition already holds (written by an earlier
    /// attempt with other batch boundaries). Returns the group, if rows remain, and how many
    /// rows were dropped.
    pub fn without_covered(self, coverage: &Coverage) -> Result<(Option<FileGroup>, usize), ArrowError> {
        if coverage.is_empty() {
            return Ok((Some(self), 0));
        }
        let offsets = self
            .rows
            .column_by_name(COL_OFFSET)
            .ok_or_else(|| ArrowError::SchemaError(format!("{COL_OFFSET} missing")))?
            .as_primitive::<Int64Type>();
        let keep: BooleanArray =
            offsets.values().iter().map(|o| Some(!coverage.covers(&self.range.topic, self.range.partition, *o))).collect();
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
    pub date: String,
    pub range: FileRange,
    pub letters: Vec<DeadLetter>,
}

impl DeadLetterGroup {
    /// Drops the letters an earlier attempt already wrote: a dead-letter file's range names the
    /// offsets its batch processed, and every bad record of that batch dated as the file is in
    /// it. Returns the group, if letters remain, and the letters dropped.
    pub fn without_covered(mut self, coverage: &Coverage) -> (Option<DeadLetterGroup>, Vec<DeadLetter>) {
        let (dropped, kept): (Vec<DeadLetter>, Vec<DeadLetter>) =
            self.letters.into_iter().partition(|l| coverage.covers(&l.topic, l.partition, l.offset));
        self.letters = kept;
        ((!self.letters.is_empty()).then_some(self), dropped)
    }
}

/// What [`build`] decided.
#[derive(Debug, Default)]
pub struct Built {
    pub files: Vec<FileGroup>,
    pub dead_letters: Vec<DeadLetterGroup>,
    pub records_in: usize,
    pub tombstones: usize,
    pub rejected: BTreeMap<RejectKind, usize>,
    /// Rows partitioned by Kafka timestamp because their event-time field was missing.
    pub event_time_fallbacks: usize,
}

impl Built {
    pub fn dead_lettered(&self) -> usize {
        self.rejected.values().sum()
    }
    pub fn rows(&self) -> usize {
        self.files.iter().map(|f| f.rows.num_rows()).sum()
    }
}

/// Step 3: with the table's (committed) schema, refuses records that conflict with it, decodes
/// the rest, and splits them into one file per (time partition, topic-partition).
pub fn build(cfg: &Config, screened: &Screened<'_>, schema: &TableSchema) -> Result<Built, ArrowError> {
    let mut out = Built { records_in: screened.items.len(), ..Default::default() };
    let mut letters: BTreeMap<(String, FileRange), Vec<DeadLetter>> = BTreeMap::new();
    let mut refuse = |item: &Item<'_>, reject: &Reject, rejected: &mut BTreeMap<RejectKind, usize>| {
        let b = item.batch;
        let (first, last) = b.offsets().unwrap_or((item.record.offset, item.record.offset));
        let range = FileRange { topic: b.topic.clone(), partition: b.partition, first, last };
        let date = TimePartition::from_millis(item.record.timestamp_ms, crate::config::Granularity::Day).dt;
        letters.entry((date, range)).or_default().push(DeadLetter::new(
            &screened.table,
            &b.topic,
            b.partition,
            item.record,
            reject,
        ));
        *rejected.entry(reject.kind).or_default() += 1;
    };

    // Admission against the schema, per topic (the unknown-field policy is per topic).
    let mut good: Vec<&Item<'_>> = Vec::new();
    for item in &screened.items {
        match &item.outcome {
            Outcome::Tombstone => out.tombstones += 1,
            Outcome::Rejected(r) => refuse(item, r, &mut out.rejected),
            Outcome::Good(s) => {
                let ignore = cfg.unknown_fields(&item.batch.topic) == UnknownFieldPolicy::Ignore;
                match schema.admit(s, ignore) {
                    Ok(()) => good.push(item),
                    Err(reason) => refuse(item, &Reject::new(RejectKind::SchemaConflict, reason), &mut out.rejected),
                }
            }
        }
    }

    // One decode per topic-partition, so each file's rows come from one decode.
    let mut i = 0;
    while i < good.len() {
        let b = good[i].batch;
        let mut j = i;
        while j < good.len() && std::ptr::eq(good[j].batch, b) {
            j += 1;
        }
        let chunk = &good[i..j];
        i = j;
        let values: Vec<&[u8]> = chunk.iter().map(|it| it.record.value.as_deref().unwrap_or_default()).collect();
        let decoded = decode_values(schema, &values)?;
        for (idx, err) in &decoded.failed {
            let reject = Reject::new(RejectKind::DecodeError, format!("the value does not decode into the table's types: {err}"));
            refuse(chunk[*idx], &reject, &mut out.rejected);
        }
        if decoded.kept.is_empty() {
            continue;
        }
        let records: Vec<&RawRecord> = decoded.kept.iter().map(|k| chunk[*k].record).collect();
        push_files(cfg, b, decoded.data.as_ref(), &records, schema, &mut out)?;
    }
    out.dead_letters = letters
        .into_iter()
        .map(|((date, range), mut letters)| {
            letters.sort_by_key(|l| l.offset);
            DeadLetterGroup { date, range, letters }
        })
        .collect();
    Ok(out)
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
    let (parts, stats) = partition::split(&rows, event_col.as_deref(), cfg.granularity)?;
    out.event_time_fallbacks += stats.fallback_rows;
    let (first, last) = b.offsets().unwrap_or_default();
    for (tp, rows) in parts {
        let range = FileRange { topic: b.topic.clone(), partition: b.partition, first, last };
        out.files.push(FileGroup { partition: tp, range, rows });
    }
    Ok(())
}

/// Steps 1 to 3 in one pass, for a table whose committed schema already has every field of
/// every record ([`FlatDecoder`]): `None` when any record needs screening (a bad or new field,
/// a nested value, a tombstone to dead-letter), and then [`screen`] and [`build`] decide.
/// When it returns a result, it is the one they would have given.
pub fn build_flat(cfg: &Config, batches: &[&TopicPartitionBatch], schema: &TableSchema) -> Result<Option<Built>, ArrowError> {
    let Some(decoder) = FlatDecoder::new(schema, &shape_options(cfg)) else { return Ok(None) };
    let mut out = Built::default();
    for b in batches {
        out.records_in += b.records.len();
        let mut records = Vec::with_capacity(b.records.len());
        let mut values = Vec::with_capacity(b.records.len());
        for r in &b.records {
            match (&r.invalid, &r.value) {
                (None, Some(v)) => {
                    records.push(r);
                    values.push(v.as_ref());
                }
                (None, None) if cfg.tombstones == TombstonePolicy::Skip => out.tombstones += 1,
                _ => return Ok(None),
            }
        }
        if values.is_empty() {
            continue;
        }
        let Some(data) = decoder.decode(&values) else { return Ok(None) };
        push_files(cfg, b, Some(&data), &records, schema, &mut out)?;
    }
    Ok(Some(out))
}

/// Records read to learn a schema in [`build_learned`]: enough to meet every field of a
/// regular stream, a small part of a batch's screening.
pub const LEARN_SAMPLE: usize = 1024;

/// A schema learned from a batch's first records, and the batch built with it in one pass.
#[derive(Debug)]
pub struct Learned {
    /// The shape of the sample, to commit (it evolves the table's schema into `schema`).
    pub shape: Shape,
    pub schema: TableSchema,
    pub built: Built,
}

/// For a batch the table's schema does not describe yet (the first batch of a table, a new
/// field): learns the schema its first [`LEARN_SAMPLE`] records ask for, and builds the batch
/// with it by [`build_flat`]. `None` when the sample brings nothing new, or any record of the
/// batch does not fit the learned schema: then [`screen`] and [`build`] decide.
///
/// When it returns a result, it is the one screening the whole batch would have given: every
/// record fits the learned schema as it is, so the whole batch's shape evolves the schema no
/// further (numbers already decimal stay decimal, strings stay strings), and the sample, read in
/// the same order as screening reads, puts the columns in the same order.
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
        match shape::infer_record(v, &opts) {
            Ok(s) => shape::absorb(&mut shape, &s),
            Err(_) => return Ok(None),
        }
    }
    let mut learned = schema.clone();
    if !learned.evolve(&shape) {
        return Ok(None);
    }
    Ok(build_flat(cfg, batches, &learned)?.map(|built| Learned { shape, schema: learned, built }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{SampleRecord, batches, build_event};

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
        assert_eq!(schema.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["name", "age", "new"]);
        let built = build(&cfg, &s, &schema).unwrap();
        assert_eq!(built.records_in, 6);
        assert_eq!(built.tombstones, 1);
        assert_eq!(built.dead_lettered(), 3);
        assert_eq!(built.rows(), 2);
        assert_eq!(built.records_in, built.rows() + built.dead_lettered() + built.tombstones);
        assert_eq!(built.rejected[&RejectKind::SchemaConflict], 1);
        assert_eq!(built.rejected[&RejectKind::InvalidJson], 1);
        assert_eq!(built.rejected[&RejectKind::IntegerOutOfRange], 1);
        // Kafka timestamps 30 minutes apart: hours 03 and 04 (rows 100 and 105).
        let parts: Vec<String> = built.files.iter().map(|f| f.partition.path()).collect();
        assert_eq!(parts, ["dt=2025-11-22/hr=03/", "dt=2025-11-22/hr=05/"]);
        assert!(built.files.iter().all(|f| (f.range.first, f.range.last) == (100, 105)));
        assert_eq!(built.dead_letters.len(), 1);
        let offsets: Vec<i64> = built.dead_letters[0].letters.iter().map(|l| l.offset).collect();
        assert_eq!(offsets, [101, 103, 104]);
    }

    #[test]
    fn covered_rows_are_dropped() {
        let cfg = Config::default();
        let b = event_batches(&[Some(br#"{"a":1}"#), Some(br#"{"a":2}"#)]);
        let tables = by_table(&cfg, &b);
        let s = screen(&cfg, "cust_data", &tables["cust_data"]);
        let mut schema = TableSchema::default();
        schema.evolve(&s.batch_shape);
        let built = build(&cfg, &s, &schema).unwrap();
        let g = built.files[0].clone();
        let mut cov = Coverage::default();
        cov.add(&FileRange { topic: "cust-data".into(), partition: 0, first: 90, last: 100 });
        let (g2, dropped) = g.clone().without_covered(&cov).unwrap();
        assert_eq!((g2.unwrap().rows.num_rows(), dropped), (1, 1));
        cov.add(&FileRange { topic: "cust-data".into(), partition: 0, first: 101, last: 101 });
        let (g3, dropped) = g.clone().without_covered(&cov).unwrap();
        assert!(g3.is_none());
        assert_eq!(dropped, 2);
        let (g4, dropped) = g.without_covered(&Coverage::default()).unwrap();
        assert_eq!((g4.unwrap().rows.num_rows(), dropped), (2, 0));
    }

    #[test]
    fn the_flat_path_builds_what_screen_and_build_build() {
        let cfg = Config::default();
        let mut rng = crate::sample::Rng::new(3);
        let recs: Vec<String> = (0..300).map(|i| crate::sample::customer(&mut rng, i % 4)).collect();
        let mut values: Vec<Option<&[u8]>> = recs.iter().map(|r| Some(r.as_bytes())).collect();
        values[7] = None;
        let b = event_batches(&values);
        let tables = by_table(&cfg, &b);
        let tbs = &tables["cust_data"];
        let s = screen(&cfg, "cust_data", tbs);
        let mut schema = TableSchema::default();
        schema.evolve(&s.batch_shape);
        let slow = build(&cfg, &s, &schema).unwrap();
        let fast = build_flat(&cfg, tbs, &schema).unwrap().expect("customer data takes the flat path");
        assert_eq!((fast.records_in, fast.tombstones, fast.dead_lettered()), (300, 1, 0));
        assert_eq!((slow.records_in, slow.tombstones, slow.dead_lettered()), (300, 1, 0));
        assert_eq!(fast.files.len(), slow.files.len());
        for (f, s) in fast.files.iter().zip(&slow.files) {
            assert_eq!((&f.partition, &f.range), (&s.partition, &s.range));
            assert_eq!(f.rows, s.rows);
        }
        // A record to dead-letter, or a tombstone the configuration dead-letters: screening decides.
        values[8] = Some(b"not json");
        assert!(build_flat(&cfg, &by_table(&cfg, &event_batches(&values))["cust_data"], &schema).unwrap().is_none());
        values[8] = Some(recs[8].as_bytes());
        let strict = Config { tombstones: TombstonePolicy::DeadLetter, ..Config::default() };
        assert!(build_flat(&strict, &by_table(&cfg, &event_batches(&values))["cust_data"], &schema).unwrap().is_none());
    }

    /// What screening the whole batch, evolving and building give, next to what learning from
    /// a sample and one flat pass give, on random batches of mixed and mutated records.
    #[test]
    fn a_learned_schema_builds_what_screening_the_whole_batch_builds() {
        const ALPHABET: &[u8] = b"\"\\{}[],:. -+0123456789eEtfnulZT\x00\xc3\xa9";
        let cfg = Config::default();
        let mut rng = crate::sample::Rng::new(5);
        let mut pool: Vec<String> = (0..6).map(|i| crate::sample::customer(&mut rng, i % 4)).collect();
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
            assert_eq!(l.schema, full, "{values:?}");
            let slow = build(&cfg, &s, &full).unwrap();
            let fast = &l.built;
            assert_eq!(
                (fast.records_in, fast.tombstones, fast.dead_lettered()),
                (slow.records_in, slow.tombstones, slow.dead_lettered())
            );
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
