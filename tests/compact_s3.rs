//! Compaction against S3 and Glue APIs (moto) on 127.0.0.1: real conditional writes, multipart
//! uploads, copies, tags and partition updates; the result read back by pyarrow and DuckDB.

use aws_sdk_glue::types::{PartitionInput, StorageDescriptor};
use tributary_aws::{GlueCatalog, ObjectRead, PartitionLocation, S3Store};
use tributary_compact::{Compactor, CrashPoint, Outcome};
use tributary_core::Config;
use tributary_core::event::SampleRecord;
use tributary_core::event::build_event;
use tributary_core::partition::TimePartition;
use tributary_ingest::Ingest;
use tributary_tests::{Moto, py_json};

const T0: i64 = 1_795_316_400_000; // 2026-11-22T03:00:00Z

fn later() -> i64 {
    T0 + 2 * 3_600_000
}

/// Past any lease or closing taken at `later()`.
fn much_later() -> i64 {
    later() + 3_600_000
}

fn tp() -> TimePartition {
    TimePartition { dt: "2026-11-22".into(), hr: Some("03".into()) }
}

struct Env {
    _moto: Moto,
    store: S3Store,
    catalog: GlueCatalog,
    config: Config,
}

async fn env() -> Env {
    let moto = Moto::start();
    let s3 = moto.bucket("lake").await;
    let glue = moto.glue("tributary", "t").await;
    glue.create_partition()
        .database_name("tributary")
        .table_name("t")
        .partition_input(
            PartitionInput::builder()
                .values("2026-11-22")
                .values("03")
                .storage_descriptor(StorageDescriptor::builder().location("s3://lake/tables/t/dt=2026-11-22/hr=03/").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut config = Config { bucket: "lake".into(), ..Default::default() };
    config.compaction.min_files = 3;
    Env { store: S3Store::new(s3, "lake"), catalog: GlueCatalog::new(glue, "tributary"), config, _moto: moto }
}

async fn ingest(ing: &Ingest<S3Store>, p: i32, first: i64, n: i64) {
    let values: Vec<String> = (first..first + n).map(|o| format!(r#"{{"n":{o},"s":"row {o}"}}"#)).collect();
    let recs: Vec<SampleRecord> =
        values.iter().enumerate().map(|(i, v)| (first + i as i64, T0 + i as i64, None, Some(v.as_bytes()), &[][..])).collect();
    ing.handle(build_event("aws:kafka", "t", p, &recs)).await.unwrap();
}

/// Downloads what the Glue partition points at and reads it with pyarrow and DuckDB.
async fn read_visible(e: &Env) -> serde_json::Value {
    let loc = e.catalog.partition_location("t", &tp().values()).await.unwrap().unwrap();
    let prefix = loc.strip_prefix("s3://lake/").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, m) in e.store.list(prefix).await.unwrap().iter().enumerate() {
        let p = dir.path().join(format!("{i}.parquet"));
        std::fs::write(&p, e.store.get(&m.key).await.unwrap().unwrap().body).unwrap();
        files.push(p.to_string_lossy().into_owned());
    }
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let mut v = py_json("read_parquet.py", &args);
    v["files"] = serde_json::json!(files.len());
    v["location"] = serde_json::json!(loc);
    v
}

#[tokio::test]
async fn small_files_become_one_file_that_glue_points_at() {
    let e = env().await;
    let ing = Ingest::new(e.store.clone(), e.config.clone()).with_metrics_sink(|_| {});
    for i in 0..4 {
        ingest(&ing, 0, i * 25, 25).await;
    }
    ingest(&ing, 1, 0, 10).await;
    let before = read_visible(&e).await;
    assert_eq!((before["files"].as_u64(), before["duckdb"]["rows"].as_u64()), (Some(5), Some(110)));

    let c = Compactor::new(e.store.clone(), e.catalog.clone(), e.config.clone()).with_clock(later).with_metrics_sink(|_| {});
    let Outcome::Compacted(r) = c.compact_partition("t", &tp(), "req-1").await.unwrap().0 else { panic!() };
    assert_eq!((r.files_in, r.files_out, r.rows_out), (5, 1, 110));

    let after = read_visible(&e).await;
    assert!(after["location"].as_str().unwrap().contains("/_v/dt=2026-11-22/hr=03/v000001-req1/"), "{after}");
    assert_eq!(after["files"], 1);
    assert_eq!(after["duckdb"]["rows"], 110);
    assert_eq!(after["duckdb"]["distinct_offsets"], 110);
    assert_eq!(after["pyarrow"]["rows"], 110);
    assert_eq!(after["parquet"]["compression"], serde_json::json!(["ZSTD"]));
    // The replaced files are tagged for the lifecycle rule.
    let tags = e
        .store
        .client()
        .get_object_tagging()
        .bucket("lake")
        .key(e.store.list("tables/t/dt=2026-11-22/hr=03/").await.unwrap()[0].key.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_set()[0].key(), "tributary");
}

#[tokio::test]
async fn pages_copied_by_the_compactor_read_back_in_pyarrow_and_duckdb() {
    let e = env().await;
    let ing = Ingest::new(e.store.clone(), e.config.clone()).with_metrics_sink(|_| {});
    for i in 0..3 {
        ingest(&ing, 0, i * 400, 400).await;
    }
    ingest(&ing, 1, 0, 400).await;
    let c = Compactor::new(e.store.clone(), e.catalog.clone(), e.config.clone()).with_clock(later).with_metrics_sink(|_| {});
    let Outcome::Compacted(r) = c.compact_partition("t", &tp(), "req-1").await.unwrap().0 else { panic!() };
    assert_eq!(r.copied_columns, ["n", "s", "_kafka_offset", "_kafka_timestamp"]);
    assert_eq!((r.files_in, r.files_out, r.rows_out), (4, 1, 1600));
    let after = read_visible(&e).await;
    assert_eq!(after["files"], 1);
    assert_eq!((after["pyarrow"]["rows"].as_u64(), after["duckdb"]["rows"].as_u64()), (Some(1600), Some(1600)));
    assert_eq!(after["duckdb"]["distinct_offsets"], 1600);
    assert_eq!(after["duckdb"]["n_is_offset"], 1600, "every row's columns belong together");
    // Offsets 100..=299 of both Kafka partitions: found through the merged statistics.
    assert_eq!(after["duckdb"]["filtered"], 400);
    assert_eq!(after["parquet"]["offset_statistics_match"], true);
    assert_eq!(after["parquet"]["physical"]["timestamp"], serde_json::Value::Null, "no column the inputs lack");
    assert_eq!(after["parquet"]["logical"]["_kafka_timestamp"].as_str().map(|t| t.contains("isAdjustedToUTC=true")), Some(true));
}

#[tokio::test]
async fn crash_after_the_switch_then_recovery_with_late_data() {
    let e = env().await;
    let ing = Ingest::new(e.store.clone(), e.config.clone()).with_metrics_sink(|_| {});
    for i in 0..3 {
        ingest(&ing, 0, i * 10, 10).await;
    }
    let c = Compactor::new(e.store.clone(), e.catalog.clone(), e.config.clone()).with_clock(later).with_metrics_sink(|_| {});
    c.crash_at(Some(CrashPoint::AfterSwitch));
    assert!(c.compact_partition("t", &tp(), "dies").await.is_err());
    assert_eq!(read_visible(&e).await["duckdb"]["distinct_offsets"], 30);
    assert_eq!(read_visible(&e).await["duckdb"]["rows"], 30);
    // Late data while the switch is half done, then a later compactor finishes it.
    ingest(&ing, 0, 30, 5).await;
    let c2 =
        Compactor::new(e.store.clone(), e.catalog.clone(), e.config.clone()).with_clock(much_later).with_metrics_sink(|_| {});
    assert!(matches!(c2.compact_partition("t", &tp(), "next").await.unwrap().0, Outcome::Compacted(_)));
    let seen = read_visible(&e).await;
    assert_eq!((seen["duckdb"]["rows"].as_u64(), seen["duckdb"]["distinct_offsets"].as_u64()), (Some(35), Some(35)));
}

#[tokio::test]
async fn racing_compactors_on_real_conditional_writes() {
    let e = env().await;
    let ing = Ingest::new(e.store.clone(), e.config.clone()).with_metrics_sink(|_| {});
    for i in 0..4 {
        ingest(&ing, 0, i * 10, 10).await;
    }
    let a = Compactor::new(e.store.clone(), e.catalog.clone(), e.config.clone()).with_clock(later).with_metrics_sink(|_| {});
    let b = Compactor::new(e.store.clone(), e.catalog.clone(), e.config.clone()).with_clock(later).with_metrics_sink(|_| {});
    let p = tp();
    let (ra, rb) = tokio::join!(a.compact_partition("t", &p, "a"), b.compact_partition("t", &p, "b"));
    let done = [ra.unwrap().0, rb.unwrap().0].iter().filter(|o| matches!(o, Outcome::Compacted(_))).count();
    assert_eq!(done, 1);
    let seen = read_visible(&e).await;
    assert_eq!((seen["duckdb"]["rows"].as_u64(), seen["duckdb"]["distinct_offsets"].as_u64()), (Some(40), Some(40)));
}

fn object_created(key: &str) -> serde_json::Value {
    serde_json::json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": "lake"}, "object": {"key": key, "size": 1}, "reason": "PutObject"}})
}

#[tokio::test]
async fn duplicated_reordered_events_and_duplicate_rows() {
    let e = env().await;
    let ing = Ingest::new(e.store.clone(), e.config.clone()).with_metrics_sink(|_| {});
    for i in 0..3 {
        ingest(&ing, 0, i * 10, 10).await;
    }
    // A second copy of the first file under another name: its rows are duplicates.
    let keys: Vec<String> = e.store.list("tables/t/dt=2026-11-22/hr=03/").await.unwrap().into_iter().map(|m| m.key).collect();
    let dup = "tables/t/dt=2026-11-22/hr=03/part-t~0~00000000000000000000~00000000000000000004.parquet";
    tributary_aws::ObjectWrite::copy(&e.store, &keys[0], dup).await.unwrap();
    let c = Compactor::new(e.store.clone(), e.catalog.clone(), e.config.clone()).with_clock(later).with_metrics_sink(|_| {});
    // Events arrive duplicated and out of order, one invocation each, as S3 and EventBridge may deliver them.
    let mut compacted = 0;
    for key in [&keys[2], &keys[0], &keys[2], &keys[1], &keys[0]] {
        let r = c.handle(&object_created(key), "req").await.unwrap();
        compacted += r.compacted.len();
        if let Some(p) = r.compacted.first() {
            assert_eq!((p.rows_in, p.rows_out, p.duplicates_removed), (40, 30, 10));
        }
    }
    assert_eq!(compacted, 1, "compacted once; the other events found nothing due");
    let seen = read_visible(&e).await;
    assert_eq!((seen["duckdb"]["rows"].as_u64(), seen["duckdb"]["distinct_offsets"].as_u64()), (Some(30), Some(30)));
}

#[tokio::test]
async fn every_crash_point_recovers_on_s3_and_glue() {
    for point in CrashPoint::ALL {
        let e = env().await;
        let ing = Ingest::new(e.store.clone(), e.config.clone()).with_metrics_sink(|_| {});
        for i in 0..3 {
            ingest(&ing, 0, i * 10, 10).await;
        }
        let c = Compactor::new(e.store.clone(), e.catalog.clone(), e.config.clone()).with_clock(later).with_metrics_sink(|_| {});
        c.crash_at(Some(point));
        assert!(c.compact_partition("t", &tp(), "dies").await.is_err(), "{point:?}");
        let seen = read_visible(&e).await;
        assert_eq!(
            (seen["duckdb"]["rows"].as_u64(), seen["duckdb"]["distinct_offsets"].as_u64()),
            (Some(30), Some(30)),
            "{point:?}"
        );
        ingest(&ing, 1, 0, 4).await;
        let c2 =
            Compactor::new(e.store.clone(), e.catalog.clone(), e.config.clone()).with_clock(much_later).with_metrics_sink(|_| {});
        for attempt in ["next", "after"] {
            c2.compact_partition("t", &tp(), attempt).await.unwrap();
        }
        let seen = read_visible(&e).await;
        assert_eq!(
            (seen["duckdb"]["rows"].as_u64(), seen["duckdb"]["distinct_offsets"].as_u64()),
            (Some(34), Some(34)),
            "{point:?}"
        );
    }
}
