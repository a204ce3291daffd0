//! Step 1 of the general path: every record checked alone ([`crate::json::shape`]) and the
//! shapes of the good ones merged into the batch's shape.

use crate::config::{Config, TombstonePolicy};
use crate::json::shape::{self, RecordShape, Shape, ShapeOptions};
use crate::kafka::{RawRecord, TopicPartitionBatch};
use crate::reject::{Reject, RejectKind};

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
pub(super) fn pre_screen(cfg: &Config, r: &RawRecord) -> Option<Outcome> {
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
