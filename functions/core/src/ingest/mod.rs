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

use crate::config::Config;
use crate::kafka::TopicPartitionBatch;

pub mod claims;
pub mod dead_letter;
pub(crate) mod decode;
pub(crate) mod rescue;
pub(crate) mod split;

mod build;
mod fast_path;
mod screen;

pub use build::{Built, DeadLetterGroup, FileGroup, build, build_rescuing};
pub use fast_path::{LEARN_SAMPLE, Learned, build_flat, build_learned};
pub use screen::{Item, Outcome, Screened, screen, shape_options};

/// Groups topic-partition batches by the table their topic maps to.
pub fn by_table<'a>(cfg: &Config, batches: &'a [TopicPartitionBatch]) -> BTreeMap<String, Vec<&'a TopicPartitionBatch>> {
    let mut out: BTreeMap<String, Vec<&TopicPartitionBatch>> = BTreeMap::new();
    for b in batches {
        out.entry(cfg.table_for(&b.topic)).or_default().push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConflictPolicy, TombstonePolicy};
    use crate::json::shape;
    use crate::kafka::batches;
    use crate::layout::{FileRange, OffsetSet};
    use crate::naming::RESCUED_COLUMN;
    use crate::reject::RejectKind;
    use crate::table::schema::TableSchema;
    use crate::testing::events::{SampleRecord, build_event};
    use arrow_array::cast::AsArray;
    use fast_path::learn_from;

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
