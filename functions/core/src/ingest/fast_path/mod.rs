//! The fast path: a batch of flat records read in one pass straight into Arrow buffers
//! ([`decoder::FlatDecoder`]), with the same result the general path would give.

use arrow_schema::ArrowError;

use crate::config::Config;
use crate::ingest::build::*;
use crate::ingest::screen::*;
use crate::json::shape::{self, RecordShape, Shape};
use crate::kafka::{RawRecord, TopicPartitionBatch};
use crate::table::schema::TableSchema;

mod decoder;

pub(crate) use decoder::{FlatDecoder, Retry};

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

pub(super) fn learn_from(
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
