//! The catalog function against the in-memory store and catalog, fed by the real ingest handler.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use tributary_core::testing::events::SampleRecord;

use serde_json::json;
use tributary_aws::{MemoryCatalog, MemoryStore, PartitionLocation, TableCatalog};
use tributary_core::testing::events::{build_event, event_bytes};
use tributary_ingest::Ingest;

use super::*;
use tributary_aws::Instrumented;
use tributary_core::compaction::PartitionState;

const T0: i64 = 1_795_316_400_000;

struct World {
    store: Arc<MemoryStore>,
    catalog: Arc<MemoryCatalog>,
    ingest: Ingest<Arc<MemoryStore>>,
    f: CatalogFn<Arc<MemoryStore>, Arc<MemoryCatalog>>,
}

fn world() -> World {
    let store = Arc::new(MemoryStore::new());
    let catalog = Arc::new(MemoryCatalog::new());
    let config = Config { bucket: "lake".into(), ..Default::default() };
    World {
        ingest: Ingest::new(store.clone(), config.clone()).with_metrics_sink(|_| {}),
        // An hour after the data's time: the sync's look-back reaches it.
        f: CatalogFn::new(store.clone(), catalog.clone(), config).with_metrics_sink(|_| {}).with_clock(|| T0 + 3_600_000),
        store,
        catalog,
    }
}

impl World {
    /// Ingests values into topic `t`, returns the EventBridge events of the data files written.
    async fn ingest(&self, offset: i64, values: &[&str]) -> Vec<Value> {
        let recs: Vec<SampleRecord> =
            values.iter().enumerate().map(|(i, v)| (offset + i as i64, T0, None, Some(v.as_bytes()), &[][..])).collect();
        let out = self.ingest.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &recs)), None).await.unwrap();
        out.total.objects.iter().filter(|k| k.ends_with(".parquet")).map(|k| object_created(k)).collect()
    }

    /// Writes the state of partition `dt=2026-11-22/hr=03`, as a compaction that switched it.
    async fn switched_to(&self, version: u32, location: &str) {
        let state = PartitionState { version, location: location.into(), ..Default::default() };
        let key = tributary_core::layout::state_key(
            &self.f.config,
            "t",
            &TimePartition { dt: "2026-11-22".into(), hr: Some("03".into()) },
        );
        tributary_aws::put_json_if(self.store.as_ref(), &key, &state, None).await.unwrap();
    }

    async fn columns(&self) -> Vec<(String, String)> {
        self.catalog.get_table("t").await.unwrap().unwrap().def.columns
    }
}

fn object_created(key: &str) -> Value {
    json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3",
           "detail": {"bucket": {"name": "lake"}, "object": {"key": key, "size": 1}, "reason": "PutObject"}})
}

fn col(n: &str, t: &str) -> (String, String) {
    (n.to_string(), t.to_string())
}

#[tokio::test]
async fn a_table_and_its_partition_appear_with_athena_types() {
    let w = world();
    let events = w
        .ingest(0, &[r#"{"branch":"Paris","currency":"EUR","amount":-5,"at":"2026-11-22T03:00:00Z","d":"2026-11-22","x":1.5}"#])
        .await;
    let r = w.f.handle(&events[0]).await.unwrap();
    assert_eq!((r.tables_created, r.partitions_created), (1, 1));
    let t = w.catalog.get_table("t").await.unwrap().unwrap().def;
    assert_eq!(
        t.columns[..6],
        [
            col("branch", "string"),
            col("currency", "string"),
            col("amount", "bigint"),
            col("at", "timestamp"),
            col("d", "date"),
            col("x", "double")
        ]
    );
    assert_eq!(t.columns[6], col("_kafka_topic", "string"));
    assert_eq!(t.partition_keys, vec![col("dt", "string"), col("hr", "string")]);
    assert_eq!(t.location, "s3://lake/tables/t/");
    assert_eq!(t.parameters["classification"], "parquet");
    let loc = w.catalog.partition_location("t", &["2026-11-22".into(), "03".into()]).await.unwrap();
    assert_eq!(loc.as_deref(), Some("s3://lake/tables/t/dt=2026-11-22/hr=03/"));
}

#[tokio::test]
async fn duplicated_and_reordered_triggers_leave_the_same_catalog() {
    let w = world();
    let e1 = w.ingest(0, &[r#"{"a":1}"#]).await;
    let e2 = w.ingest(1, &[r#"{"a":2,"b":"x"}"#]).await;
    // Newer first, then the older one twice, from a cold process too.
    w.f.handle(&e2[0]).await.unwrap();
    let cols = w.columns().await;
    let parts = w.catalog.partitions();
    w.f.handle(&e1[0]).await.unwrap();
    w.f.handle(&e1[0]).await.unwrap();
    let cold = CatalogFn::new(w.store.clone(), w.catalog.clone(), w.f.config.clone()).with_metrics_sink(|_| {});
    let r = cold.handle(&e1[0]).await.unwrap();
    assert_eq!((r.tables_created, r.tables_updated, r.partitions_created), (0, 0, 0));
    assert_eq!(w.columns().await, cols);
    assert_eq!(w.catalog.partitions(), parts);
}

#[tokio::test]
async fn new_columns_are_appended_and_conflicts_refused() {
    let w = world();
    let e = w.ingest(0, &[r#"{"a":1}"#]).await;
    w.f.handle(&e[0]).await.unwrap();
    let e = w.ingest(1, &[r#"{"a":2,"b":{"c":true}}"#]).await;
    // Concurrent updates are retried, not failed.
    w.catalog.conflicting_updates.store(2, Ordering::SeqCst);
    let r = w.f.handle(&e[0]).await.unwrap();
    assert_eq!((r.tables_updated, r.columns_added), (1, 1));
    let cols = w.columns().await;
    assert_eq!(cols[0], col("a", "bigint"));
    assert_eq!(cols.last().unwrap(), &col("b", "struct<c:boolean>"));
    // A registry that disagrees with the catalog (written by hand, say) is refused, reported, and
    // leaves the table as it was.
    let mut t = w.catalog.get_table("t").await.unwrap().unwrap();
    t.def.columns[0] = col("a", "string");
    w.catalog.update_table(&t.def, t.version_id.as_deref()).await.unwrap();
    let r = w.f.handle(&e[0]).await.unwrap();
    assert_eq!(r.schema_conflicts.len(), 1, "{r:?}");
    assert!(r.schema_conflicts[0].contains("\"a\""));
    assert_eq!(w.columns().await[0], col("a", "string"));
}

#[tokio::test]
async fn widenings_athena_reads_are_applied() {
    let w = world();
    let e = w.ingest(0, &[r#"{"a":1,"f":1.5}"#]).await;
    w.f.handle(&e[0]).await.unwrap();
    let mut t = w.catalog.get_table("t").await.unwrap().unwrap();
    t.def.columns[0] = col("a", "int");
    t.def.columns[1] = col("f", "float");
    w.catalog.update_table(&t.def, t.version_id.as_deref()).await.unwrap();
    let cold = CatalogFn::new(w.store.clone(), w.catalog.clone(), w.f.config.clone()).with_metrics_sink(|_| {});
    let r = cold.handle(&e[0]).await.unwrap();
    assert_eq!(r.columns_widened, 2);
    assert_eq!(w.columns().await[..2], [col("a", "bigint"), col("f", "double")]);
}

#[tokio::test]
async fn a_partition_is_registered_where_its_state_points() {
    let w = world();
    let e = w.ingest(0, &[r#"{"a":1}"#]).await;
    // A compaction switched the partition before the catalog registered it.
    w.switched_to(1, "tables/t/_v/dt=2026-11-22/hr=03/v000001-x/").await;
    w.f.handle(&e[0]).await.unwrap();
    let loc = w.catalog.partition_location("t", &["2026-11-22".into(), "03".into()]).await.unwrap();
    assert_eq!(loc.as_deref(), Some("s3://lake/tables/t/_v/dt=2026-11-22/hr=03/v000001-x/"));
}

/// A catalog invocation read the state (version 0), a compaction switched the partition (and
/// found it unregistered), then the invocation registered the old location and died before
/// checking the state again. Its retry must point the partition where the state says, though the
/// partition exists already.
#[tokio::test]
async fn a_retry_corrects_a_partition_registered_at_a_stale_location() {
    let w = world();
    let e = w.ingest(0, &[r#"{"a":1}"#]).await;
    let values: Vec<String> = vec!["2026-11-22".into(), "03".into()];
    w.catalog.register("t", &values, "s3://lake/tables/t/dt=2026-11-22/hr=03/");
    w.switched_to(1, "tables/t/_v/dt=2026-11-22/hr=03/v000001-x/").await;
    w.f.handle(&e[0]).await.unwrap();
    let loc = w.catalog.partition_location("t", &values).await.unwrap();
    assert_eq!(loc.as_deref(), Some("s3://lake/tables/t/_v/dt=2026-11-22/hr=03/v000001-x/"));
}

/// An invocation that read the state before a compaction switched (here: a state that still
/// names the first version) must not move readers back from the version Glue points at.
#[tokio::test]
async fn a_stale_state_read_never_moves_readers_back() {
    let w = world();
    let e = w.ingest(0, &[r#"{"a":1}"#]).await;
    let values: Vec<String> = vec!["2026-11-22".into(), "03".into()];
    let ahead = "s3://lake/tables/t/_v/dt=2026-11-22/hr=03/v000002-y/";
    w.catalog.register("t", &values, ahead);
    w.f.handle(&e[0]).await.unwrap();
    assert_eq!(w.catalog.partition_location("t", &values).await.unwrap().as_deref(), Some(ahead));
}

#[tokio::test]
async fn other_keys_are_ignored_and_bad_events_refused() {
    let w = world();
    let r = w.f.handle(&object_created("dead-letter/t/dt=2026-11-22/part-t~0~1~2.jsonl")).await.unwrap();
    assert_eq!((r.ignored_keys, r.tables_created), (1, 0));
    assert!(w.f.handle(&json!({"hello": 1})).await.is_err());
}

/// What the compact function does when an ingest file's event names a partition: marks it.
async fn mark_pending(w: &World, dt: &str, hr: &str) {
    let tp = TimePartition { dt: dt.into(), hr: Some(hr.into()) };
    let key = tributary_core::layout::marker_key(&w.f.config, tributary_core::layout::Marker::Pending, "t", &tp);
    tributary_aws::ObjectWrite::put(&*w.store, &key, bytes::Bytes::new(), tributary_aws::Precondition::None).await.unwrap();
}

#[tokio::test]
async fn sync_registers_known_tables_and_the_partitions_compaction_has_work_in() {
    let w = world();
    w.ingest(0, &[r#"{"a":1}"#]).await;
    let r = w.f.handle(&json!({"tributary": "catalog-sync"})).await.unwrap();
    assert_eq!((r.tables_created, r.partitions_created), (1, 0), "no marker: not listed by the hourly sync");
    mark_pending(&w, "2026-11-22", "03").await;
    let r = w.f.handle(&json!({"tributary": "catalog-sync"})).await.unwrap();
    assert_eq!(r.partitions_created, 1);
}

#[tokio::test]
async fn the_hourly_sync_looks_back_and_since_reaches_older_partitions() {
    let w = world();
    w.ingest(0, &[r#"{"a":1}"#]).await; // 2026-11-22
    // Ten days later: the partition is older than the look-back (2 days by default).
    let later = CatalogFn::new(w.store.clone(), w.catalog.clone(), w.f.config.clone())
        .with_metrics_sink(|_| {})
        .with_clock(|| T0 + 10 * 86_400_000);
    let r = later.handle(&json!({"tributary": "catalog-sync"})).await.unwrap();
    assert_eq!((r.tables_created, r.partitions_created), (1, 0), "the hourly sync does not list old days");
    // A recent partition is found by its pending marker, or by the day's deep sync (in the first
    // hour of the day), which lists the recent days.
    let recent = |i: i64, at: i64| (i, at, None, Some(&br#"{"a":2}"#[..]), &[][..]);
    let recs: Vec<SampleRecord> = vec![recent(1, T0 + 9 * 86_400_000), recent(2, T0 + 9 * 86_400_000 + 3_600_000)];
    w.ingest.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &recs)), None).await.unwrap();
    let r = later.handle(&json!({"tributary": "catalog-sync"})).await.unwrap();
    assert_eq!(r.partitions_created, 0, "unmarked: left to the deep sync");
    mark_pending(&w, "2026-12-01", "04").await;
    let r = later.handle(&json!({"tributary": "catalog-sync"})).await.unwrap();
    assert_eq!(r.partitions_created, 1);
    let midnight = CatalogFn::new(w.store.clone(), w.catalog.clone(), w.f.config.clone())
        .with_metrics_sink(|_| {})
        .with_clock(|| T0 + 10 * 86_400_000 - 3 * 3_600_000 + 60_000);
    let r = midnight.handle(&json!({"tributary": "catalog-sync"})).await.unwrap();
    assert_eq!(r.partitions_created, 1, "the deep sync finds the unmarked one");
    assert!(w.catalog.partition_location("t", &["2026-12-01".into(), "03".into()]).await.unwrap().is_some());
    assert!(w.catalog.partition_location("t", &["2026-11-22".into(), "03".into()]).await.unwrap().is_none());
    // The operator's catch-up: every partition from a date on, nothing before it.
    let r = later.handle(&json!({"tributary": "catalog-sync", "since": "2026-11-23"})).await.unwrap();
    assert_eq!(r.partitions_created, 0, "nothing before the date");
    assert!(w.catalog.partition_location("t", &["2026-11-22".into(), "03".into()]).await.unwrap().is_none());
    let r = later.handle(&json!({"tributary": "catalog-sync", "tables": ["t"], "since": "2026-11-22"})).await.unwrap();
    assert_eq!(r.partitions_created, 1);
    assert!(w.catalog.partition_location("t", &["2026-11-22".into(), "03".into()]).await.unwrap().is_some());
    for bad in [json!(20261122), json!("22/11/2026"), json!("2026-13-01")] {
        let e = later.handle(&json!({"tributary": "catalog-sync", "since": bad})).await.unwrap_err();
        assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
    }
}
