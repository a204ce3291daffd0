//! Compaction against S3 and Glue APIs (moto) on 127.0.0.1: real conditional writes, multipart
//! uploads, copies (without the source's tags) and partition updates; the result read back by pyarrow and DuckDB.

use aws_sdk_glue::types::{PartitionInput, StorageDescriptor};
use tributary_aws::Instrumented;
use tributary_aws::{GlueCatalog, ObjectRead, PartitionLocation, S3Store};
use tributary_compact::{Compactor, CrashPoint, Outcome};
use tributary_core::Config;
use tributary_core::layout::time_partition::TimePartition;
use tributary_core::testing::events::SampleRecord;
use tributary_core::testing::events::{build_event, event_bytes};
use tributary_ingest::Ingest;
use tributary_tests::{Moto, Role, py_json};

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
    /// The compact function's store (test reads go through it too).
    store: S3Store,
    /// The ingest function's store, on a client of its own role (the IAM check tells them apart).
    ingest_store: S3Store,
    catalog: GlueCatalog,
    config: Config,
}

async fn env() -> Env {
    let moto = Moto::start();
    moto.bucket("lake").await;
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
    Env {
        store: S3Store::new(moto.s3_as(Role::Compact), "lake"),
        ingest_store: S3Store::new(moto.s3_as(Role::Ingest), "lake"),
        catalog: GlueCatalog::new(moto.glue_as(Role::Compact), "tributary"),
        config,
        _moto: moto,
    }
}

async fn ingest(ing: &Ingest<S3Store>, p: i32, first: i64, n: i64) {
    let values: Vec<String> = (first..first + n).map(|o| format!(r#"{{"n":{o},"s":"row {o}"}}"#)).collect();
    let recs: Vec<SampleRecord> =
        values.iter().enumerate().map(|(i, v)| (first + i as i64, T0 + i as i64, None, Some(v.as_bytes()), &[][..])).collect();
    ing.handle(&event_bytes(&build_event("aws:kafka", "t", p, &recs)), None).await.unwrap();
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
    let ing = Ingest::new(e.ingest_store.clone(), e.config.clone()).with_metrics_sink(|_| {});
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
}

/// S3's CopyObject copies the source's tags unless told otherwise, and moto does the same (the
/// first assertion), which is what lets this test fail: the store's copy carries no tag, so a
/// file carried or settled from a version a cleaner has marked never inherits the mark.
#[tokio::test]
async fn copies_never_carry_the_sources_tags() {
    let moto = Moto::start();
    let raw = moto.bucket("lake").await;
    let body = aws_sdk_s3::primitives::ByteStream::from_static(b"x");
    raw.put_object().bucket("lake").key("tables/a").body(body).tagging("tributary=replaced").send().await.unwrap();
    raw.copy_object().bucket("lake").key("tables/by-default").copy_source("lake/tables/a").send().await.unwrap();
    let tags = async |key: &str| raw.get_object_tagging().bucket("lake").key(key).send().await.unwrap().tag_set().len();
    assert_eq!(tags("tables/by-default").await, 1, "CopyObject's default directive (COPY) copies the tags");
    let store = S3Store::new(moto.s3_as(Role::Compact), "lake");
    tributary_aws::ObjectWrite::copy(&store, "tables/a", "tables/b").await.unwrap();
    assert_eq!(tags("tables/b").await, 0, "the store's copies replace the tag set with none");
}

#[tokio::test]
async fn pages_copied_by_the_compactor_read_back_in_pyarrow_and_duckdb() {
    let e = env().await;
    let ing = Ingest::new(e.ingest_store.clone(), e.config.clone()).with_metrics_sink(|_| {});
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
    let ing = Ingest::new(e.ingest_store.clone(), e.config.clone()).with_metrics_sink(|_| {});
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
    let ing = Ingest::new(e.ingest_store.clone(), e.config.clone()).with_metrics_sink(|_| {});
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
    let ing = Ingest::new(e.ingest_store.clone(), e.config.clone()).with_metrics_sink(|_| {});
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
        let ing = Ingest::new(e.ingest_store.clone(), e.config.clone()).with_metrics_sink(|_| {});
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

/// A duplicate met while copying pages aborts that multipart upload (nothing becomes visible)
/// and the merge runs row by row; the files the switch replaced stay for running queries and
/// are deleted by the compactor once their retention since the switch has passed.
#[tokio::test]
async fn a_duplicate_aborts_the_page_copy_and_replaced_files_go_after_their_retention() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    let e = env().await;
    let ing = Ingest::new(e.ingest_store.clone(), e.config.clone()).with_metrics_sink(|_| {});
    for i in 0..3 {
        ingest(&ing, 0, i * 400, 400).await;
    }
    let dir = "tables/t/dt=2026-11-22/hr=03/";
    let keys: Vec<String> = e.store.list(dir).await.unwrap().into_iter().map(|m| m.key).collect();
    let dup = format!("{dir}part-t~0~00000000000000000000~00000000000000000099.parquet");
    tributary_aws::ObjectWrite::copy(&e.store, &keys[0], &dup).await.unwrap();
    let clock = Arc::new(AtomicI64::new(later()));
    let c = {
        let clock = clock.clone();
        Compactor::new(e.store.clone(), e.catalog.clone(), e.config.clone())
            .with_clock(move || clock.load(Ordering::SeqCst))
            .with_metrics_sink(|_| {})
    };
    let r = c.handle(&object_created(&keys[0]), "req-1").await.unwrap();
    let p = &r.compacted[0];
    assert_eq!((p.files_in, p.rows_out, p.duplicates_removed), (4, 1200, 400));
    assert!(p.copied_columns.is_empty(), "the page copy gave way to the row merge: {p:?}");
    let open = e._moto.s3().list_multipart_uploads().bucket("lake").send().await.unwrap();
    assert!(open.uploads().is_empty(), "the page copy's upload was aborted: {:?}", open.uploads());
    let seen = read_visible(&e).await;
    assert_eq!((seen["duckdb"]["rows"].as_u64(), seen["duckdb"]["distinct_offsets"].as_u64()), (Some(1200), Some(1200)));
    assert_eq!(e.store.list(dir).await.unwrap().len(), 4, "replaced files stay for running queries");

    clock.store(later() + 25 * 3_600_000, Ordering::SeqCst);
    let r = c.handle(&serde_json::json!({"tributary": "sweep"}), "req-2").await.unwrap();
    assert_eq!(r.replaced_deleted, 4);
    assert!(e.store.list(dir).await.unwrap().is_empty(), "deleted 24 h after the switch");
    let after = read_visible(&e).await;
    assert_eq!((after["duckdb"]["rows"].as_u64(), after["duckdb"]["distinct_offsets"].as_u64()), (Some(1200), Some(1200)));
}
