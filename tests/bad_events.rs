//! The malformed-event corpus (`tests/corpus/bad-events/`), against S3 and Glue APIs (moto) on
//! 127.0.0.1. The file name says what each must get:
//!
//! - `ingest-dead-letter--*`: a batch of three records whose middle one is malformed (not base64,
//!   a field of the wrong type or missing): that record is dead-lettered with its raw bytes and a
//!   reason, the other two are written; the invocation succeeds.
//! - `ingest-error--*`: the event itself cannot be read or placed: a clear error, nothing written.
//! - `trigger-ignored--*`: an event for a key that is not an ingest file: compact and catalog
//!   ignore it (and say so), nothing changes.
//! - `trigger-error--*`: not a trigger at all: compact and catalog answer with a clear error.

use std::path::PathBuf;
use tributary_aws::Instrumented;

use tributary_aws::{GlueCatalog, ObjectRead, S3Store};
use tributary_catalog::CatalogFn;
use tributary_compact::Compactor;
use tributary_core::Config;
use tributary_core::ingest::dead_letter::DeadLetter;
use tributary_core::testing::events::event_bytes;
use tributary_ingest::Ingest;
use tributary_tests::{Moto, Role};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/bad-events");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| (p.file_name().unwrap_or_default().to_string_lossy().into_owned(), std::fs::read(&p).expect("file")))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn every_malformed_event_gets_a_clear_error_or_the_dead_letter_area() {
    let moto = Moto::start();
    let cases = corpus();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let mut seen = [0usize; 4];
    for (i, (name, bytes)) in cases.iter().enumerate() {
        let bucket = format!("case{i}");
        moto.bucket(&bucket).await;
        let store = S3Store::new(moto.s3_as(Role::Ingest), &bucket);
        let config = Config { bucket: bucket.clone(), database: format!("case{i}"), ..Config::default() };
        let parsed: Result<serde_json::Value, _> = serde_json::from_slice(bytes);
        if name.starts_with("ingest-dead-letter--") {
            seen[0] += 1;
            let ing = Ingest::new(store.clone(), config).with_metrics_sink(|_| {});
            let out = ing
                .handle(&serde_json::to_vec(&parsed.expect("valid JSON")).unwrap(), None)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                (out.total.records_in, out.total.rows_written, out.total.dead_lettered),
                (3, 2, 1),
                "{name}: the malformed record is dead-lettered, the rest of the batch written: {out:?}"
            );
            let letters = store.list("dead-letter/").await.unwrap();
            assert_eq!(letters.len(), 1, "{name}");
            let body = store.get(&letters[0].key).await.unwrap().unwrap().body;
            let letter: DeadLetter = serde_json::from_slice(body.split(|b| *b == b'\n').next().unwrap()).unwrap();
            assert_eq!(letter.offset, 1, "{name}");
            assert!(!letter.reason.is_empty() && letter.value().is_some(), "{name}: a reason and the raw bytes: {letter:?}");
        } else if name.starts_with("ingest-error--") {
            seen[1] += 1;
            // What is not JSON at all the Lambda runtime refuses before the handler runs.
            if let Ok(v) = parsed {
                let ing = Ingest::new(store.clone(), config).with_metrics_sink(|_| {});
                let err = ing.handle(&serde_json::to_vec(&v).unwrap(), None).await.expect_err(name);
                assert!(err.to_string().len() > 20, "{name}: a clear error: {err}");
                assert!(store.list("").await.unwrap().is_empty(), "{name}: nothing written");
            }
        } else {
            let ignored = name.starts_with("trigger-ignored--");
            seen[if ignored { 2 } else { 3 }] += 1;
            let v = parsed.expect("valid JSON");
            let store_of = |role| S3Store::new(moto.s3_as(role), &bucket);
            let glue = |role| GlueCatalog::new(moto.glue_as(role), &config.database);
            let compact = Compactor::new(store_of(Role::Compact), glue(Role::Compact), config.clone()).with_metrics_sink(|_| {});
            let cat = CatalogFn::new(store_of(Role::Catalog), glue(Role::Catalog), config).with_metrics_sink(|_| {});
            let (rc, rk) = (compact.handle(&v, "corpus").await, cat.handle(&v).await);
            if ignored {
                let rc = rc.unwrap_or_else(|e| panic!("{name}: {e}"));
                let rk = rk.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(rc.ignored_keys == 1 && rc.compacted.is_empty(), "{name}: {rc:?}");
                assert!(rk.ignored_keys == 1 && rk.partitions_created == 0, "{name}: {rk:?}");
            } else {
                let (ec, ek) = (rc.expect_err(name), rk.expect_err(name));
                assert!(ec.to_string().len() > 20 && ek.to_string().len() > 20, "{name}: clear errors: {ec} / {ek}");
            }
            assert!(store.list("").await.unwrap().is_empty(), "{name}: nothing written");
        }
    }
    assert!(seen.iter().all(|n| *n >= 6), "every kind of case is present: {seen:?}");
}

/// Field names that are not Athena identifiers (`tests/corpus/odd-names/`): `written--*` records
/// are written with valid, distinct, lower-case column names; `collide--*` records (two keys that
/// make one column name) lose no value: dead-lettered with a reason, or written whole.
#[tokio::test]
async fn odd_field_names_become_valid_columns_and_lose_nothing() {
    use arrow_array::Array;
    let moto = Moto::start();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/odd-names");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    assert!(names.len() >= 10);
    for (i, path) in names.iter().enumerate() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let value = std::fs::read(path).unwrap();
        let bucket = format!("names{i}");
        let store = S3Store::new(moto.bucket(&bucket).await, &bucket);
        let ing = Ingest::new(store.clone(), Config { bucket: bucket.clone(), ..Config::default() }).with_metrics_sink(|_| {});
        let recs = [(0i64, 1_795_316_400_000i64, None, Some(value.trim_ascii_end()), &[][..])];
        let out = ing
            .handle(&event_bytes(&tributary_core::testing::events::build_event("aws:kafka", "names", 0, &recs)), None)
            .await
            .unwrap();
        assert_eq!(out.total.rows_written + out.total.dead_lettered, 1, "{name}: {out:?}");
        if out.total.dead_lettered == 1 {
            assert!(name.starts_with("collide--"), "{name}: dead-lettered: {:?}", out.total.rejected);
            continue;
        }
        let key = out.total.objects.iter().find(|k| k.ends_with(".parquet")).unwrap();
        let body = store.get(key).await.unwrap().unwrap().body;
        let batches = tributary_core::parquet::write::decode(body).unwrap();
        let schema = batches[0].schema();
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let distinct: std::collections::BTreeSet<&&str> = columns.iter().collect();
        assert_eq!(distinct.len(), columns.len(), "{name}: distinct columns {columns:?}");
        for c in &columns {
            assert!(tributary_core::naming::is_valid_identifier(c), "{name}: {c:?} is not an Athena identifier");
        }
        // Every value of the record is in some column: count the non-null data cells.
        let data_cells: usize = batches[0]
            .columns()
            .iter()
            .zip(schema.fields())
            .filter(|(_, f)| !f.name().starts_with("_kafka_"))
            .map(|(c, _)| c.len() - c.null_count())
            .sum();
        let fields = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&value).unwrap().len();
        assert_eq!(data_cells, fields, "{name}: every field kept, in {columns:?}");
    }
}
