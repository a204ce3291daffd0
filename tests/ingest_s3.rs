//! The ingest handler against an S3 API server (moto) on 127.0.0.1, its output read back by
//! pyarrow and DuckDB as well as by our own reader.

use std::collections::BTreeMap;
use tributary_core::testing::events::SampleRecord;

use lambda_runtime::{Context, LambdaEvent};
use serde_json::value::RawValue;
use tributary_aws::{ObjectRead, S3Store};
use tributary_core::Config;
use tributary_core::ingest::dead_letter::from_jsonl;
use tributary_core::testing::events::{build_event, event_bytes};
use tributary_ingest::{Ingest, function_handler};
use tributary_tests::{Moto, Role, bad_values, event_file, py_json};

const T0: i64 = 1_795_316_400_000; // 2026-11-22T03:00:00Z

async fn ingest(moto: &Moto, bucket: &str) -> Ingest<S3Store> {
    moto.bucket(bucket).await;
    Ingest::new(S3Store::new(moto.s3_as(Role::Ingest), bucket), Config { bucket: bucket.into(), ..Default::default() })
}

/// Downloads every object under `prefix` into a temp dir; returns the dir and file paths.
async fn download(store: &S3Store, prefix: &str) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, meta) in store.list(prefix).await.unwrap().iter().enumerate() {
        let body = store.get(&meta.key).await.unwrap().unwrap().body;
        let p = dir.path().join(format!("{i}.parquet"));
        std::fs::write(&p, &body).unwrap();
        paths.push(p.to_string_lossy().into_owned());
    }
    (dir, paths)
}

async fn etags(store: &S3Store) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for m in store.list("").await.unwrap() {
        let o = store.get(&m.key).await.unwrap().unwrap();
        out.insert(m.key, o.etag.unwrap_or_default());
    }
    out
}

#[tokio::test]
async fn msk_batch_lands_as_parquet_that_independent_readers_agree_on() {
    let moto = Moto::start();
    let ing = ingest(&moto, "lake").await;
    let event: Box<RawValue> = serde_json::from_slice(&event_file("msk-batch.json")).unwrap();
    let out = function_handler(&ing, LambdaEvent::new(event, Context::default())).await.unwrap();
    assert_eq!((out.total.records_in, out.total.rows_written, out.total.dead_lettered), (14, 14, 0));
    assert_eq!(out.tables.keys().collect::<Vec<_>>(), ["customer_data", "transaction_events"]);

    let (_dir, files) = download(&ing.store, "tables/customer_data/").await;
    assert_eq!(files.len(), 2, "one file per (hour, topic-partition)");
    let seen = py_json("read_parquet.py", &files.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(seen["pyarrow"]["rows"], 8);
    assert_eq!(seen["duckdb"]["rows"], 8);
    assert_eq!(seen["duckdb"]["distinct_offsets"], 8);
    assert_eq!(seen["pyarrow"]["offsets"], serde_json::json!([40, 41, 42, 100, 101, 102, 103, 104]));
    let types = &seen["pyarrow"]["types"];
    assert_eq!(types["age"], "int64");
    assert_eq!(types["register_date"], "date32[day]");
    assert_eq!(types["timestamp"], "timestamp[us, tz=+00:00]");
    assert_eq!(types["_kafka_timestamp"], "timestamp[ms, tz=+00:00]");
    assert_eq!(types["_kafka_partition"], "int32");
    assert_eq!(seen["duckdb"]["types"]["timestamp"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(seen["duckdb"]["types"]["register_date"], "DATE");
    let physical = seen["parquet"]["physical"].as_object().unwrap();
    assert!(physical.values().all(|t| t != "INT96"), "{physical:?}");
    let logical = seen["parquet"]["logical"].as_object().unwrap();
    assert!(logical["timestamp"].as_str().unwrap().contains("isAdjustedToUTC=true"), "{logical:?}");
    assert!(logical.values().all(|t| !t.as_str().unwrap().contains("isSigned=false")), "{logical:?}");
    assert!(physical.keys().all(|k| k == &k.to_lowercase()));
    assert_eq!(seen["parquet"]["compression"], serde_json::json!(["ZSTD"]));

    // Our own reader agrees.
    let mut rows = 0;
    for m in ing.store.list("tables/customer_data/").await.unwrap() {
        let body = ing.store.get(&m.key).await.unwrap().unwrap().body;
        rows += tributary_core::parquet::write::decode(body).unwrap().iter().map(|b| b.num_rows()).sum::<usize>();
    }
    assert_eq!(rows, 8);
}

#[tokio::test]
async fn the_same_event_twice_leaves_the_same_objects_and_rows() {
    let moto = Moto::start();
    let ing = ingest(&moto, "lake").await;
    let event = event_file("msk-batch.json");
    ing.handle(&event, None).await.unwrap();
    let before = etags(&ing.store).await;
    // A fresh process (cold schema cache) retrying the batch.
    let retry = Ingest::new(ing.store.clone(), ing.config.clone());
    let again = retry.handle(&event, None).await.unwrap();
    assert_eq!(etags(&ing.store).await, before, "same keys, same bytes");
    assert_eq!((again.total.rows_written, again.total.already_committed), (0, 14));
    let (_dir, files) = download(&ing.store, "tables/").await;
    let seen = py_json("read_parquet.py", &files.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(seen["duckdb"]["rows"], 14);
}

#[tokio::test]
async fn retries_with_other_batch_boundaries_add_no_duplicates() {
    let moto = Moto::start();
    let ing = ingest(&moto, "lake").await;
    let values: Vec<String> = (0..30).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    let recs: Vec<SampleRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (1000 + i as i64, T0 + i as i64 * 400_000, None, Some(v.as_bytes()), &[][..]))
        .collect();
    // Attempt 1 covered offsets 1000..=1019; the retry fetched 1010..=1029.
    ing.handle(&event_bytes(&build_event("aws:kafka", "t", 3, &recs[..20])), None).await.unwrap();
    let out = ing.handle(&event_bytes(&build_event("aws:kafka", "t", 3, &recs[10..])), None).await.unwrap();
    assert_eq!((out.total.rows_written, out.total.already_committed), (10, 10));
    let (_dir, files) = download(&ing.store, "tables/t/").await;
    let seen = py_json("read_parquet.py", &files.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(seen["duckdb"]["rows"], 30);
    assert_eq!(seen["duckdb"]["distinct_offsets"], 30);
}

/// What each file of the bad-input corpus must get (`corpus/bad-values-expected.json`):
/// `dead_letter:<kind>`, or `row` with the fields `_rescued_data` must hold (`row:a,b`).
fn corpus_expectations() -> BTreeMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/bad-values-expected.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn every_bad_input_lands_as_a_row_with_its_fields_rescued_or_as_a_dead_letter() {
    let moto = Moto::start();
    let ing = ingest(&moto, "lake").await;
    let baseline = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/baseline.json")).unwrap();
    ing.handle(&event_bytes(&build_event("aws:kafka", "corpus", 0, &[(0, T0, None, Some(&baseline), &[])])), None).await.unwrap();

    let corpus = bad_values();
    let expected = corpus_expectations();
    assert!(corpus.len() >= 50, "the corpus has {} cases", corpus.len());
    let mut recs: Vec<SampleRecord> = vec![(1, T0, None, Some(&baseline[..]), &[])];
    for (i, (_, bytes)) in corpus.iter().enumerate() {
        recs.push((2 + i as i64, T0, Some(b"k"), Some(bytes), &[]));
    }
    let out = ing.handle(&event_bytes(&build_event("aws:kafka", "corpus", 0, &recs)), None).await.unwrap();
    assert!(out.total.balanced(), "{:?}", out.total);

    // Dead letters: exactly the files that expect one, with their raw bytes and kind.
    let dl = ing.store.list("dead-letter/corpus/").await.unwrap();
    let letters = match dl.first() {
        Some(m) => from_jsonl(&ing.store.get(&m.key).await.unwrap().unwrap().body).unwrap(),
        None => Vec::new(),
    };
    let mut outcome: BTreeMap<String, String> = BTreeMap::new();
    for letter in &letters {
        let (name, bytes) = &corpus[(letter.offset - 2) as usize];
        assert_eq!(letter.value().as_deref(), Some(&bytes[..]), "{name}: raw bytes kept");
        assert!(!letter.reason.is_empty(), "{name}: a reason");
        outcome.insert(name.clone(), format!("dead_letter:{}", letter.kind.as_str()));
    }
    // Rows: read back by pyarrow and DuckDB, rescued fields checked against what was sent.
    let (_dir, files) = download(&ing.store, "tables/corpus/").await;
    let sent: BTreeMap<String, String> = corpus
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| !outcome.contains_key(n))
        .map(|(i, (_, b))| ((2 + i).to_string(), String::from_utf8_lossy(b).into_owned()))
        .collect();
    let sent_path = _dir.path().join("sent.json");
    std::fs::write(&sent_path, serde_json::to_vec(&sent).unwrap()).unwrap();
    let mut args = vec![sent_path.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    let rows = py_json("read_rescued.py", &args);
    for (offset, row) in rows.as_object().unwrap() {
        let offset: usize = offset.parse().unwrap();
        assert_eq!(row["same_in_duckdb"], true, "offset {offset}: {row}");
        if offset < 2 {
            continue;
        }
        let name = &corpus[offset - 2].0;
        assert!(row["original"].as_bool() != Some(false), "{name}: rescued values are the record's own: {row}");
        let keys: Vec<&str> = row["keys"].as_array().map(|k| k.iter().filter_map(|k| k.as_str()).collect()).unwrap_or_default();
        outcome.insert(name.clone(), if keys.is_empty() { "row".into() } else { format!("row:{}", keys.join(",")) });
        if name == "int-beyond-64-bits.json" {
            assert_eq!(row["digits"], serde_json::json!(["340282366920938463463374607431768211455"]), "{row}");
        }
    }
    // Every file has an outcome (a row or a letter) and an expectation, and they agree.
    assert_eq!(outcome.len(), corpus.len(), "{outcome:#?}");
    assert_eq!(outcome, expected, "every corpus file gets what it must");
    assert_eq!(out.total.rows_written, 1 + expected.values().filter(|e| e.starts_with("row")).count());
    assert_eq!(out.total.rows_rescued, expected.values().filter(|e| e.starts_with("row:")).count());
}

#[tokio::test]
async fn self_managed_kafka_event_with_a_128_bit_integer() {
    let moto = Moto::start();
    let ing = ingest(&moto, "lake").await;
    let out = ing.handle(&event_file("self-managed-kafka-batch.json"), None).await.unwrap();
    assert_eq!((out.total.rows_written, out.total.dead_lettered), (3, 0));
    // The 128-bit integers are digits in a string column, read back exactly by both readers.
    let (_dir, files) = download(&ing.store, "tables/names_topic/").await;
    let seen = py_json("read_parquet.py", &files.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(seen["pyarrow"]["types"]["zip"], "string");
    assert_eq!(seen["duckdb"]["types"]["zip"], "VARCHAR");
    let zips = py_json("read_column.py", &[files[0].as_str(), "zip"]);
    assert!(zips.as_array().unwrap().contains(&serde_json::json!("200867534837927370364254437591549731301")), "{zips}");
}

#[tokio::test]
async fn unsigned_64_bit_integers_land_exactly_in_a_decimal_column() {
    let moto = Moto::start();
    let ing = ingest(&moto, "lake").await;
    let values: [&[u8]; 3] = [br#"{"u":18446744073709551615}"#, br#"{"u":9223372036854775808}"#, br#"{"u":-7}"#];
    let recs: Vec<SampleRecord> = values.iter().enumerate().map(|(i, v)| (i as i64, T0, None, Some(*v), &[][..])).collect();
    let out = ing.handle(&event_bytes(&build_event("aws:kafka", "hashes", 0, &recs)), None).await.unwrap();
    assert_eq!((out.total.rows_written, out.total.rows_rescued), (3, 0));
    let (_dir, files) = download(&ing.store, "tables/hashes/").await;
    let seen = py_json("read_parquet.py", &files.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(seen["pyarrow"]["types"]["u"], "decimal128(20, 0)");
    assert_eq!(seen["duckdb"]["types"]["u"], "DECIMAL(20,0)");
    let u = py_json("read_column.py", &[files[0].as_str(), "u"]);
    assert_eq!(u, serde_json::json!(["18446744073709551615", "9223372036854775808", "-7"]), "exact, as both readers read it");
}

#[tokio::test]
async fn racing_writers_agree_on_the_schema_through_conditional_writes() {
    let moto = Moto::start();
    let a = ingest(&moto, "lake").await;
    let b = Ingest::new(a.store.clone(), a.config.clone());
    // Both see a new field first, with different types, at the same time.
    let ea = build_event("aws:kafka", "race", 0, &[(0, T0, None, Some(&br#"{"v":1}"#[..]), &[])]);
    let eb = build_event("aws:kafka", "race", 1, &[(0, T0, None, Some(&br#"{"v":"one"}"#[..]), &[])]);
    let (ba, bb) = (event_bytes(&ea), event_bytes(&eb));
    let (ra, rb) = tokio::join!(a.handle(&ba, None), b.handle(&bb, None));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.total.rows_written + rb.total.rows_written, 2, "both land");
    assert_eq!(ra.total.rows_rescued + rb.total.rows_rescued, 1, "exactly one type wins; the other is rescued");
    let (_dir, files) = download(&a.store, "tables/race/").await;
    assert_eq!(files.len(), 2);
}

#[tokio::test]
async fn unreachable_s3_fails_the_invocation() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests"))
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(2))
        .build();
    let ing = Ingest::new(S3Store::new(aws_sdk_s3::Client::from_conf(conf), "lake"), Config::default());
    let event: Box<RawValue> = serde_json::from_slice(&event_file("msk-batch.json")).unwrap();
    let err = function_handler(&ing, LambdaEvent::new(event, Context::default())).await.unwrap_err();
    assert!(err.error_message.contains("s3://lake/"), "{err:?}");
    // What CloudWatch and the failure records show as errorType.
    assert_eq!(err.error_type, "StoreError");
}
