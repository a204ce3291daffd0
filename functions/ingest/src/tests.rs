//! Handler tests against the in-memory store. The same scenarios run against an S3 API server
//! on 127.0.0.1 in `tests/`.

use super::*;
use lambda_runtime::{Context, LambdaEvent};
use std::sync::Arc;
use tributary_aws::MemoryStore;
use tributary_aws::{Instrumented, now_ms};
use tributary_core::ingest::dead_letter::from_jsonl;
use tributary_core::testing::events::{build_event, event_bytes};

type Rec<'a> = tributary_core::testing::events::SampleRecord<'a>;

fn ingest() -> Ingest<MemoryStore> {
    Ingest::new(MemoryStore::new(), Config { bucket: "b".into(), ..Default::default() })
}

const T0: i64 = 1_795_316_400_000; // 2026-11-22T03:00:00Z

fn records(values: &[&'static [u8]], first_offset: i64) -> Vec<Rec<'static>> {
    values.iter().enumerate().map(|(i, v)| (first_offset + i as i64, T0 + i as i64, None, Some(*v), &[][..])).collect()
}

/// Found by fuzzing (`tests/fuzz/regressions/records/`): a batch whose values carry no typed
/// field yet (`{}`, `{"id": {}}`) failed to build, so its partition would have been stuck.
#[tokio::test]
async fn records_without_typed_fields_are_rows_not_a_failed_batch() {
    let ing = ingest();
    let recs = records(&[b"{}", br#"{"id": {}}"#, br#"{"id": null, "tags": []}"#], 0);
    let out = ing.handle(&event_bytes(&build_event("aws:kafka", "empty-fields", 0, &recs)), None).await.unwrap();
    assert_eq!((out.total.records_in, out.total.rows_written, out.total.dead_lettered), (3, 3, 0));
    // Typed values later add the columns; the first rows read as nulls there.
    let recs = records(&[br#"{"id": {"n": 1}, "tags": ["a"]}"#], 3);
    let out = ing.handle(&event_bytes(&build_event("aws:kafka", "empty-fields", 0, &recs)), None).await.unwrap();
    assert_eq!(out.total.rows_written, 1);
}

#[tokio::test]
async fn writes_parquet_and_dead_letters_with_balanced_counts() {
    let ing = ingest();
    let recs = records(
        &[
            br#"{"name":"a","age":1}"#,
            b"{oops",
            br#"{"name":"b","age":2,"zip":340282366920938463463374607431768211455}"#,
            br#"{"name":"c","age":3}"#,
        ],
        10,
    );
    let event = build_event("aws:kafka", "customer-data", 0, &recs);
    // As the runtime reads the body: serde_path_to_error over serde_json, into a raw value.
    let body = serde_json::to_vec(&event).unwrap();
    let payload: Box<serde_json::value::RawValue> =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body)).unwrap();
    let out = function_handler(&ing, LambdaEvent::new(payload, Context::default())).await.unwrap();
    assert_eq!((out.total.records_in, out.total.rows_written, out.total.dead_lettered), (4, 3, 1));
    assert!(out.total.balanced());
    let keys = ing.store.keys();
    assert!(
        keys.contains(
            &"tables/customer_data/dt=2026-11-22/hr=03/part-customer-data~0~00000000000000000010~00000000000000000013.parquet"
                .to_string()
        ),
        "{keys:?}"
    );
    assert!(keys.contains(&"_tributary/schemas/customer_data.json".to_string()));
    let dl_key = keys.iter().find(|k| k.starts_with("dead-letter/customer_data/dt=2026-11-22/")).unwrap();
    let letters = from_jsonl(&ing.store.get(dl_key).await.unwrap().unwrap().body).unwrap();
    assert_eq!(letters.iter().map(|l| l.offset).collect::<Vec<_>>(), [11]);
    assert_eq!(letters[0].kind, tributary_core::reject::RejectKind::InvalidJson);
    assert_eq!(letters[0].value().unwrap(), b"{oops");
    // The 128-bit integer is a row: its new column a string of its digits.
    let schema: tributary_core::table::schema::TableSchema =
        serde_json::from_slice(&ing.store.get("_tributary/schemas/customer_data.json").await.unwrap().unwrap().body).unwrap();
    assert_eq!(schema.column("zip").map(|c| c.ty.to_string()), Some("string".into()));
}

#[tokio::test]
async fn the_same_event_twice_writes_the_same_objects_once() {
    let ing = ingest();
    let recs = records(&[br#"{"a":1}"#, br#"{"a":2}"#], 0);
    let event = build_event("aws:kafka", "t", 0, &recs);
    let first = ing.handle(&event_bytes(&event.clone()), None).await.unwrap();
    let keys = ing.store.keys();
    let second = ing.handle(&event_bytes(&event), None).await.unwrap();
    assert_eq!(ing.store.keys(), keys);
    assert_eq!(first.total.rows_written, 2);
    assert_eq!((second.total.rows_written, second.total.already_committed), (0, 2));
    assert!(second.total.balanced());
}

#[tokio::test]
async fn a_retry_with_other_boundaries_adds_no_duplicates() {
    let ing = ingest();
    let vals: [&'static [u8]; 6] = [br#"{"a":0}"#, br#"{"a":1}"#, br#"{"a":2}"#, br#"{"a":3}"#, br#"{"a":4}"#, br#"{"a":5}"#];
    let all = records(&vals, 100);
    ing.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &all[..4])), None).await.unwrap();
    let out = ing.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &all[2..])), None).await.unwrap();
    assert_eq!((out.total.rows_written, out.total.already_committed), (2, 2));
    let mut offsets = Vec::new();
    for k in ing.store.keys().iter().filter(|k| k.ends_with(".parquet")) {
        for b in tributary_core::parquet::write::decode(ing.store.get(k).await.unwrap().unwrap().body).unwrap() {
            let col = b.column_by_name("_kafka_offset").unwrap();
            let a = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Int64Type>(col.as_ref());
            offsets.extend(a.values().iter().copied());
        }
    }
    offsets.sort();
    assert_eq!(offsets, [100, 101, 102, 103, 104, 105]);
}

#[tokio::test]
async fn dead_letters_are_written_once_whatever_the_retries_boundaries() {
    let ing = ingest();
    let vals: [&'static [u8]; 6] = [b"{bad0", br#"{"a":1}"#, b"{bad2", br#"{"a":3}"#, b"{bad4", br#"{"a":5}"#];
    let all = records(&vals, 100);
    let first = ing.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &all[..4])), None).await.unwrap();
    assert_eq!((first.total.dead_lettered, first.total.rejected.get("invalid_json")), (2, Some(&2)));
    // Read again from offset 102 (as after a crash before the commit), then the same batch again.
    let out = ing.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &all[2..])), None).await.unwrap();
    assert_eq!((out.total.dead_lettered, out.total.rows_written, out.total.already_committed), (1, 1, 2));
    assert_eq!(out.total.rejected.get("invalid_json"), Some(&1));
    assert!(out.total.balanced());
    let again = ing.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &all[2..])), None).await.unwrap();
    assert_eq!((again.total.dead_lettered, again.total.already_committed), (0, 4));
    assert!(again.total.rejected.is_empty(), "{:?}", again.total.rejected);
    let mut offsets = Vec::new();
    for k in ing.store.keys().iter().filter(|k| k.ends_with(".jsonl")) {
        offsets.extend(from_jsonl(&ing.store.get(k).await.unwrap().unwrap().body).unwrap().iter().map(|l| l.offset));
    }
    offsets.sort();
    assert_eq!(offsets, [100, 102, 104], "each bad record once");
}

#[tokio::test]
async fn storage_failure_fails_the_invocation_and_the_retry_completes() {
    let ing = ingest();
    ing.handle(&event_bytes(&build_event("aws:kafka", "t", 1, &records(&[br#"{"a":1}"#], 0))), None).await.unwrap();
    let recs = records(&[br#"{"a":1}"#, b"bad"], 0);
    let event = build_event("aws:kafka", "t", 0, &recs);
    let before = ing.store.keys();
    // The schema is committed already: the first put is the dead-letter file.
    ing.store.fail_next_puts(1);
    assert!(matches!(ing.handle(&event_bytes(&event.clone()), None).await, Err(IngestError::Store(_))));
    assert_eq!(ing.store.keys(), before, "nothing of the failed attempt is visible");
    let out = ing.handle(&event_bytes(&event), None).await.unwrap();
    assert_eq!((out.total.rows_written, out.total.dead_lettered), (1, 1));
}

#[tokio::test]
async fn tables_never_disagree_on_a_column_type() {
    let ing = ingest();
    ing.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &records(&[br#"{"v":1}"#], 0))), None).await.unwrap();
    // Another process (no shared cache) sees a string first: it is rescued, not a new type.
    let other = Ingest::new(ing.store, ing.config.clone());
    let out = other
        .handle(&event_bytes(&build_event("aws:kafka", "t", 1, &records(&[br#"{"v":"x"}"#, br#"{"v":2,"w":true}"#], 0))), None)
        .await
        .unwrap();
    assert_eq!((out.total.rows_written, out.total.rows_rescued, out.total.dead_lettered), (2, 1, 0));
    let schema = other.store.get("_tributary/schemas/t.json").await.unwrap().unwrap();
    let s: tributary_core::table::schema::TableSchema = serde_json::from_slice(&schema.body).unwrap();
    assert_eq!(
        s.columns.iter().map(|c| format!("{}:{}", c.name, c.ty)).collect::<Vec<_>>(),
        ["v:bigint", "w:boolean", "_rescued_data:string"]
    );
}

#[tokio::test]
async fn a_stale_schema_cache_loses_the_race_and_reloads() {
    let ing = ingest();
    ing.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &records(&[br#"{"a":1}"#], 0))), None).await.unwrap();
    let store = std::sync::Arc::new(ing.store);
    let shared = Ingest::new(store.clone(), ing.config.clone());
    shared.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &records(&[br#"{"a":1}"#], 0))), None).await.unwrap();
    // A second writer on the same store adds "b" as a string.
    let writer2 = Ingest::new(store.clone(), shared.config.clone());
    writer2.handle(&event_bytes(&build_event("aws:kafka", "t", 1, &records(&[br#"{"b":"s"}"#], 0))), None).await.unwrap();
    // The first writer's cache lacks "b"; it sees b as an integer and must lose the CAS.
    let out = shared.handle(&event_bytes(&build_event("aws:kafka", "t", 2, &records(&[br#"{"b":5}"#], 0))), None).await.unwrap();
    assert_eq!((out.total.rows_written, out.total.rows_rescued, out.total.dead_lettered), (1, 1, 0));
}

#[tokio::test]
async fn tombstones_and_pinned_schemas_follow_configuration() {
    let recs: Vec<Rec> = vec![
        (0, T0, Some(b"k"), None, &[]),
        (1, T0, None, Some(br#"{"id":1}"#), &[]),
        (2, T0, None, Some(br#"{"id":1,"x":2}"#), &[]),
        (3, T0, None, Some(br#"{"id":99999999999}"#), &[]),
    ];
    let pinned = |policies: &str| {
        let json = format!(
            r#"{{"bucket":"b","tombstones":"dead_letter","topics":{{"p":{{"table":"pinned","schema":[{{"name":"id","type":"int"}}]{policies}}}}}}}"#
        );
        Ingest::new(MemoryStore::new(), Config::from_json(&json).unwrap())
    };
    // By default the unknown field and the int overflow are rescued: every record that parses lands.
    let ing = pinned("");
    let out = ing.handle(&event_bytes(&build_event("SelfManagedKafka", "p", 0, &recs)), None).await.unwrap();
    assert_eq!(out.tables.keys().collect::<Vec<_>>(), ["pinned"]);
    assert_eq!((out.total.rows_written, out.total.rows_rescued, out.total.dead_lettered), (3, 2, 1));
    assert_eq!(out.total.rejected["tombstone"], 1);
    // The behaviour before rescue, chosen per topic.
    let ing = pinned(r#","unknown_fields":"dead_letter","conflicts":"dead_letter""#);
    let out = ing.handle(&event_bytes(&build_event("SelfManagedKafka", "p", 0, &recs)), None).await.unwrap();
    assert_eq!((out.total.rows_written, out.total.dead_lettered, out.total.tombstones_skipped), (1, 3, 0));
    assert_eq!(out.total.rejected["tombstone"], 1);
    assert_eq!(out.total.rejected["schema_conflict"], 1);
    assert_eq!(out.total.rejected["decode_error"], 1);
    let schema: tributary_core::table::schema::TableSchema =
        serde_json::from_slice(&ing.store.get("_tributary/schemas/pinned.json").await.unwrap().unwrap().body).unwrap();
    assert_eq!(schema.rescue_index(), None, "a topic that never rescues gets no rescued-data column");
}

#[tokio::test]
async fn malformed_event_is_an_error_not_a_panic() {
    let ing = ingest();
    let event = br#"{"records":{"nodash":[{"partition":0,"offset":1,"timestamp":0,"key":null,"value":null,"headers":[]}]}}"#;
    let err = ing.handle(event, None).await.unwrap_err();
    assert!(err.to_string().contains("nodash"), "{err}");
}

/// The offsets of every row in the table's data files, sorted (duplicates kept).
async fn table_offsets(store: &MemoryStore) -> Vec<i64> {
    let mut offsets = Vec::new();
    for k in store.keys().iter().filter(|k| k.starts_with("tables/") && k.ends_with(".parquet")) {
        for b in tributary_core::parquet::write::decode(store.get(k).await.unwrap().unwrap().body).unwrap() {
            let col = b.column_by_name("_kafka_offset").unwrap();
            offsets.extend(arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Int64Type>(col.as_ref()).values());
        }
    }
    offsets.sort();
    offsets
}

/// A consumer-group rebalance ran two invocations at once on overlapping batches of one
/// partition: the one that finds the other's live claim writes nothing and fails (the mapping
/// retries it); its retry, after the other's file is visible, writes only the rest. No row is
/// ever in two visible files. A writer that died between its claim and its put holds nothing
/// past its deadline.
#[tokio::test]
async fn overlapping_batches_at_once_never_make_a_row_visible_twice() {
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(T0));
    let now = {
        let clock = clock.clone();
        move || clock.load(std::sync::atomic::Ordering::SeqCst)
    };
    let store = Arc::new(MemoryStore::new());
    let config = Config { bucket: "b".into(), ..Default::default() };
    let a = Ingest::new(store.clone(), config.clone()).with_clock(now.clone()).with_metrics_sink(|_| {});
    let b = Ingest::new(store.clone(), config.clone()).with_clock(now).with_metrics_sink(|_| {}).without_claim_waits();
    let vals: Vec<String> = (0..15).map(|i| format!(r#"{{"a":{i}}}"#)).collect();
    let all: Vec<Rec> = vals.iter().enumerate().map(|(i, v)| (i as i64, T0, None, Some(v.as_bytes()), &[][..])).collect();
    // A has claimed 0..=9 and is about to put its file (its claim log is written, its file not yet).
    let tp = TimePartition::from_millis(T0, config.granularity);
    let claim_key = layout::claim_key(&config, "t", &tp, "t", 0);
    let a_range = FileRange { topic: "t".into(), partition: 0, first: 0, last: 9 };
    let ClaimDecision::Write(Some(log)) =
        ClaimLog::default().decide(&a_range, &(0..=9).collect::<Vec<_>>(), T0, T0 + 300_000, false)
    else {
        panic!()
    };
    put_json_if(store.as_ref(), &claim_key, &log, None).await.unwrap().unwrap();
    let e = b.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &all[5..15])), None).await.unwrap_err();
    assert!(matches!(e, IngestError::Claimed(_)), "{e}");
    assert_eq!(tributary_aws::startup::ErrorType::error_type(&e), "OffsetsClaimedError");
    assert!(table_offsets(&store).await.is_empty(), "the loser made nothing visible");
    // A finishes (its own claim: the same range), then B's retry writes only what is left.
    a.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &all[..10])), None).await.unwrap();
    let out = b.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &all[5..15])), None).await.unwrap();
    assert_eq!((out.total.rows_written, out.total.already_committed), (5, 5));
    assert_eq!(table_offsets(&store).await, (0..15).collect::<Vec<i64>>());

    // A writer that claimed 15..=19 and died before its put: another batch over those offsets
    // waits while the claim lives, and writes once the dead writer's deadline has passed.
    let more: Vec<String> = (15..25).map(|i| format!(r#"{{"a":{i}}}"#)).collect();
    let later: Vec<Rec> = more.iter().enumerate().map(|(i, v)| (15 + i as i64, T0, None, Some(v.as_bytes()), &[][..])).collect();
    let dead = FileRange { topic: "t".into(), partition: 0, first: 15, last: 19 };
    let v = get_json::<ClaimLog, _>(store.as_ref(), &claim_key).await.unwrap().unwrap();
    let ClaimDecision::Write(Some(log)) = v.value.decide(&dead, &(15..=19).collect::<Vec<_>>(), T0, T0 + 300_000, false) else {
        panic!()
    };
    put_json_if(store.as_ref(), &claim_key, &log, v.etag.as_deref()).await.unwrap().unwrap();
    assert!(matches!(
        b.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &later)), None).await,
        Err(IngestError::Claimed(_))
    ));
    clock.store(T0 + 300_001, std::sync::atomic::Ordering::SeqCst);
    let out = b.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &later)), None).await.unwrap();
    assert_eq!(out.total.rows_written, 10);
    assert_eq!(table_offsets(&store).await, (0..25).collect::<Vec<i64>>());
}

#[tokio::test]
async fn errors_reach_lambda_with_a_type_that_names_them() {
    let ing = ingest();
    let e = ing.handle(&serde_json::to_vec(&serde_json::json!({"records": 3})).unwrap(), None).await.unwrap_err();
    assert_eq!(tributary_aws::startup::ErrorType::error_type(&e), "EventError");
}

/// With waits (the default): a writer meeting another's live claim waits within its own deadline,
/// lists again, and writes only what the other did not once its file is visible; no failed
/// invocation, no row twice.
#[tokio::test(start_paused = true)]
async fn a_writer_waits_for_the_claimer_and_writes_only_the_rest() {
    let store = Arc::new(MemoryStore::new());
    let config = Config { bucket: "b".into(), ..Default::default() };
    let a = Ingest::new(store.clone(), config.clone()).with_metrics_sink(|_| {});
    let b = Ingest::new(store.clone(), config.clone()).with_metrics_sink(|_| {});
    let vals: Vec<String> = (0..15).map(|i| format!(r#"{{"a":{i}}}"#)).collect();
    let all: Vec<Rec> = vals.iter().enumerate().map(|(i, v)| (i as i64, T0, None, Some(v.as_bytes()), &[][..])).collect();
    let tp = TimePartition::from_millis(T0, config.granularity);
    let claim_key = layout::claim_key(&config, "t", &tp, "t", 0);
    let a_range = FileRange { topic: "t".into(), partition: 0, first: 0, last: 9 };
    let now = now_ms();
    let ClaimDecision::Write(Some(log)) =
        ClaimLog::default().decide(&a_range, &(0..=9).collect::<Vec<_>>(), now, now + 300_000, false)
    else {
        panic!()
    };
    put_json_if(store.as_ref(), &claim_key, &log, None).await.unwrap().unwrap();
    let (ea, eb) =
        (event_bytes(&build_event("aws:kafka", "t", 0, &all[..10])), event_bytes(&build_event("aws:kafka", "t", 0, &all[5..15])));
    let (ra, rb) = tokio::join!(
        async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            a.handle(&ea, None).await
        },
        b.handle(&eb, None)
    );
    assert_eq!(ra.unwrap().total.rows_written, 10);
    let rb = rb.unwrap();
    assert_eq!((rb.total.rows_written, rb.total.already_committed), (5, 5));
    assert_eq!(table_offsets(&store).await, (0..15).collect::<Vec<i64>>());
}

/// A table from before rescue existed whose producer sent a key `_rescued_data`: its data column
/// of that name stays one, and what the table would rescue is dead-lettered, never stuck.
#[tokio::test]
async fn a_table_whose_data_column_took_the_rescued_name_dead_letters_instead() {
    let ing = ingest();
    let legacy = br#"{"columns":[{"name":"a","source":"a","type":"bigint"},{"name":"_rescued_data","source":"_rescued_data","type":"bigint"}]}"#;
    ing.store.put("_tributary/schemas/t.json", bytes::Bytes::from_static(legacy), Precondition::None).await.unwrap();
    let recs = records(&[br#"{"a":1}"#, br#"{"a":"one"}"#, br#"{"a":2,"_rescued_data":7}"#], 0);
    let out = ing.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &recs)), None).await.unwrap();
    assert_eq!((out.total.rows_written, out.total.dead_lettered), (2, 1), "{:?}", out.total);
    assert_eq!(out.total.rejected["schema_conflict"], 1);
    assert!(out.total.balanced());
    // The data column keeps its values: the key `_rescued_data` still lands in it.
    let rows = table_rows(&ing.store, "t").await;
    let values: Vec<_> = rows.iter().map(|(o, r)| (*o, r.get("_rescued_data").cloned().flatten())).collect();
    assert_eq!(values, [(0, None), (2, Some("7".to_string()))]);
}

/// Every row of the table's data files as (offset, column name → value as text), by offset.
async fn table_rows(store: &MemoryStore, table: &str) -> Vec<(i64, std::collections::BTreeMap<String, Option<String>>)> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let mut rows = Vec::new();
    let prefix = format!("tables/{table}/");
    for k in store.keys().iter().filter(|k| k.starts_with(&prefix) && k.ends_with(".parquet")) {
        for b in tributary_core::parquet::write::decode(store.get(k).await.unwrap().unwrap().body).unwrap() {
            let offsets = b.column_by_name("_kafka_offset").unwrap().as_primitive::<arrow_array::types::Int64Type>().clone();
            for i in 0..b.num_rows() {
                let mut row = std::collections::BTreeMap::new();
                for (f, col) in b.schema().fields().iter().zip(b.columns()) {
                    let text = match col.data_type() {
                        _ if col.is_null(i) => None,
                        arrow_schema::DataType::Utf8 => Some(col.as_string::<i32>().value(i).to_string()),
                        arrow_schema::DataType::Decimal128(..) => {
                            Some(col.as_primitive::<arrow_array::types::Decimal128Type>().value_as_string(i))
                        }
                        arrow_schema::DataType::Int64 => {
                            Some(col.as_primitive::<arrow_array::types::Int64Type>().value(i).to_string())
                        }
                        _ => continue,
                    };
                    row.insert(f.name().clone(), text);
                }
                rows.push((offsets.value(i), row));
            }
        }
    }
    rows.sort_by_key(|(o, _)| *o);
    rows
}

static EMF_LINES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Pinned columns take what they hold exactly and rescue the rest, end to end: a number or a
/// boolean in a pinned `string` column keeps its JSON text; a pinned `decimal(6,2)` takes what
/// fits and rescues a value with digits below its scale or too many before the point. A
/// byte-order mark is stripped, counted, and both counts reach the EMF line.
#[tokio::test]
async fn pinned_columns_keep_exact_values_and_the_counts_reach_the_metrics() {
    let json = r#"{"bucket":"b","topics":{"p":{"table":"pinned","schema":[{"name":"id","type":"bigint"},
        {"name":"code","type":"string"},{"name":"price","type":"decimal(6,2)"}]}}}"#;
    let ing = Ingest::new(MemoryStore::new(), Config::from_json(json).unwrap())
        .with_metrics_sink(|line| EMF_LINES.lock().unwrap().push(line.into()));
    let recs = records(
        &[
            br#"{"id":0,"code":1.50,"price":12.5}"#,
            br#"{"id":1,"code":true,"price":"x"}"#,
            br#"{"id":2,"code":"s","price":12.345}"#,
            br#"{"id":3,"price":123456.7}"#,
            b"\xEF\xBB\xBF{\"id\":4,\"code\":1e3,\"price\":-9999.99}",
        ],
        0,
    );
    let out = ing.handle(&event_bytes(&build_event("aws:kafka", "p", 0, &recs)), None).await.unwrap();
    let t = &out.total;
    assert_eq!((t.rows_written, t.rows_rescued, t.byte_order_marks, t.dead_lettered), (5, 3, 1, 0), "{t:?}");
    assert!(t.balanced());
    let rows = table_rows(&ing.store, "pinned").await;
    let col = |name: &str| rows.iter().map(|(_, r)| r.get(name).cloned().flatten()).collect::<Vec<_>>();
    let s = |v: &str| Some(v.to_string());
    assert_eq!(rows.iter().map(|(o, _)| *o).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert_eq!(col("code"), [s("1.50"), s("true"), s("s"), None, s("1e3")]);
    assert_eq!(col("price"), [s("12.50"), None, None, None, s("-9999.99")]);
    let rescued: Vec<Option<serde_json::Value>> =
        col("_rescued_data").into_iter().map(|v| v.map(|t| serde_json::from_str(&t).unwrap())).collect();
    let j = |v: &str| Some(serde_json::from_str::<serde_json::Value>(v).unwrap());
    assert_eq!(rescued, [None, j(r#"{"price":"x"}"#), j(r#"{"price":12.345}"#), j(r#"{"price":123456.7}"#), None]);
    // The rescued text is the value as sent, not a float's rendering of it.
    assert!(col("_rescued_data")[2].as_deref().unwrap().contains("12.345"));
    let lines = EMF_LINES.lock().unwrap().clone();
    let line: serde_json::Value = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["Table"] == "pinned")
        .expect("an EMF line for the table");
    assert_eq!((line["RowsRescued"].as_f64(), line["ByteOrderMarksStripped"].as_f64()), (Some(3.0), Some(1.0)), "{line}");
    assert_eq!((line["RowsWritten"].as_f64(), line["DeadLettered"].as_f64()), (Some(5.0), Some(0.0)));
}
