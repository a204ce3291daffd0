//! Compaction against the in-memory store and catalog, driven by the real ingest handler. The
//! same scenarios run against an S3 and Glue API server in `tests/compact_s3.rs`.

use arrow_array::RecordBatch;
use std::sync::Arc;
use tributary_core::testing::events::SampleRecord;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use serde_json::json;
use tributary_aws::{MemoryCatalog, MemoryStore};
use tributary_core::testing::events::{build_event, event_bytes};
use tributary_ingest::Ingest;

use super::*;
use tributary_aws::Instrumented;
use tributary_core::compaction::{Lease, PartitionState};

const T0: i64 = 1_795_316_400_000; // 2026-11-22T03:00:00Z, in the partition dt=2026-11-22/hr=03
const LATER: i64 = T0 + 2 * 3_600_000; // after the hour and its grace

fn at_t0() -> i64 {
    T0 + 60_000
}
fn later() -> i64 {
    LATER
}

struct World {
    store: Arc<MemoryStore>,
    catalog: Arc<MemoryCatalog>,
    ingest: Ingest<Arc<MemoryStore>>,
    compactor: Compactor<Arc<MemoryStore>, Arc<MemoryCatalog>>,
}

fn tp() -> TimePartition {
    TimePartition { dt: "2026-11-22".into(), hr: Some("03".into()) }
}

fn world(min_files: usize, clock: fn() -> i64) -> World {
    world_with(min_files, clock, |_| {})
}

fn world_with(min_files: usize, clock: fn() -> i64, change: impl FnOnce(&mut Config)) -> World {
    let store = Arc::new(MemoryStore::new());
    let catalog = Arc::new(MemoryCatalog::new());
    let mut config = Config { bucket: "b".into(), ..Default::default() };
    config.compaction.min_files = min_files;
    change(&mut config);
    catalog.register("t", &tp().values(), "s3://b/tables/t/dt=2026-11-22/hr=03/");
    let ingest = Ingest::new(store.clone(), config.clone()).with_metrics_sink(|_| {});
    let compactor = Compactor::new(store.clone(), catalog.clone(), config).with_clock(clock).with_metrics_sink(|_| {});
    World { store, catalog, ingest, compactor }
}

impl World {
    /// Ingests `n` records of topic `t`, partition `p`, from `first`, all in hour 03.
    async fn ingest(&self, p: i32, first: i64, n: i64) {
        let values: Vec<String> = (first..first + n).map(|o| format!(r#"{{"n":{o},"p":{p}}}"#)).collect();
        let recs: Vec<SampleRecord> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (first + i as i64, T0 + i as i64, None, Some(v.as_bytes()), &[][..]))
            .collect();
        let out = self.ingest.handle(&event_bytes(&build_event("aws:kafka", "t", p, &recs)), None).await.unwrap();
        assert!(out.total.balanced());
    }

    /// What a reader of the catalog's location sees: (partition, offset) of every row, sorted.
    async fn visible(&self) -> Vec<(i32, i64)> {
        let loc = self.catalog.partition_location("t", &tp().values()).await.unwrap().unwrap();
        let prefix = loc.strip_prefix("s3://b/").unwrap();
        let mut rows = Vec::new();
        for m in self.store.list(prefix).await.unwrap() {
            if !m.key.ends_with(".parquet") {
                continue;
            }
            let body = self.store.get(&m.key).await.unwrap().unwrap().body;
            for b in tributary_core::parquet::write::decode(body).unwrap() {
                let p = b.column_by_name("_kafka_partition").unwrap().as_primitive::<arrow_array::types::Int32Type>().clone();
                let o = b.column_by_name("_kafka_offset").unwrap().as_primitive::<Int64Type>().clone();
                rows.extend((0..b.num_rows()).map(|i| (p.value(i), o.value(i))));
            }
        }
        rows.sort();
        rows
    }

    async fn state(&self) -> PartitionState {
        self.compactor.load_state("t", &tp()).await.unwrap().0
    }

    /// A compactor of this world on a clock the test moves.
    fn compactor_on(&self, clock: &Arc<std::sync::atomic::AtomicI64>) -> Compactor<Arc<MemoryStore>, Arc<MemoryCatalog>> {
        let clock = clock.clone();
        Compactor::new(self.store.clone(), self.catalog.clone(), self.compactor.config.clone())
            .with_clock(move || clock.load(std::sync::atomic::Ordering::SeqCst))
            .with_metrics_sink(|_| {})
    }

    async fn compact(&self, attempt: &str) -> Result<(Outcome, f64), CompactError> {
        self.compactor.compact_partition("t", &tp(), attempt).await
    }
}

fn expected(parts: &[(i32, std::ops::Range<i64>)]) -> Vec<(i32, i64)> {
    let mut v: Vec<(i32, i64)> = parts.iter().flat_map(|(p, r)| r.clone().map(move |o| (*p, o))).collect();
    v.sort();
    v
}

#[tokio::test]
async fn many_small_files_become_one_and_readers_switch() {
    let w = world(4, at_t0);
    for i in 0..5 {
        w.ingest(0, i * 10, 10).await;
    }
    w.ingest(1, 0, 7).await;
    let before = w.visible().await;
    assert_eq!(before, expected(&[(0, 0..50), (1, 0..7)]));
    let (outcome, _) = w.compact("c1").await.unwrap();
    let Outcome::Compacted(r) = outcome else { panic!("{outcome:?}") };
    assert_eq!((r.files_in, r.files_out, r.rows_out, r.duplicates_removed), (6, 1, 57, 0));
    assert_eq!(w.visible().await, before, "the same rows, once, after the switch");
    let s = w.state().await;
    assert_eq!(s.version, 1);
    assert!(s.location.contains("/_v/dt=2026-11-22/hr=03/v000001-"));
    assert_eq!(w.catalog.partition_location("t", &tp().values()).await.unwrap().unwrap(), format!("s3://b/{}", s.location));
    // Replaced files stay (running queries), listed in the state for deletion.
    let old: Vec<String> = w.store.keys().into_iter().filter(|k| k.starts_with("tables/t/dt=2026-11-22/hr=03/")).collect();
    assert_eq!(old.len(), 6);
    assert_eq!(s.history.last().map(|t| t.replaced.clone()), Some(old));
    assert_eq!(w.store.open_uploads(), 0);
    // Nothing left to do.
    assert_eq!(w.compact("c2").await.unwrap().0, Outcome::NotDue);
}

/// Replaced files are deleted by the age of their switch: kept for the retention however old the
/// files themselves are (a lifecycle rule counts from creation), then deleted once, by whichever
/// invocation visits the partition next; readers never lose a row.
#[tokio::test]
async fn replaced_files_are_deleted_after_the_retention_since_their_switch() {
    const SWITCH: i64 = LATER + 30 * 86_400_000; // the files are a month old when re-compacted
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(SWITCH));
    let w = world_with(4, at_t0, |c| c.compaction.replaced_retention_hours = 6);
    let c = w.compactor_on(&clock);
    for i in 0..4 {
        w.ingest(0, i * 10, 10).await;
    }
    let ev = json!({"tributary": "sweep"});
    let key = "tables/t/dt=2026-11-22/hr=03/part-t~0~0~9.parquet";
    let event =
        json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name": "b"}, "object": {"key": key}}});
    let r = c.handle(&event, "c1").await.unwrap();
    assert_eq!((r.compacted.len(), r.replaced_deleted), (1, 0));
    let old: Vec<String> = w.store.keys().into_iter().filter(|k| k.starts_with("tables/t/dt=2026-11-22/hr=03/")).collect();
    assert_eq!(old.len(), 4);
    let visible = w.visible().await;
    assert_eq!(visible, expected(&[(0, 0..40)]));

    clock.store(SWITCH + 6 * 3_600_000 - 1, std::sync::atomic::Ordering::SeqCst);
    let r = c.handle(&event, "c2").await.unwrap();
    assert_eq!(r.replaced_deleted, 0, "kept until the retention since the switch has passed");
    assert!(old.iter().all(|k| w.store.keys().contains(k)));

    let deletes = w.store.delete_count();
    clock.store(SWITCH + 6 * 3_600_000, std::sync::atomic::Ordering::SeqCst);
    let r = c.handle(&event, "c3").await.unwrap();
    assert_eq!(r.replaced_deleted, 4);
    assert_eq!(w.store.delete_count() - deletes, 4);
    assert!(old.iter().all(|k| !w.store.keys().contains(k)), "every replaced file is gone");
    assert_eq!(w.visible().await, visible, "readers lost nothing");
    assert!(w.state().await.history.iter().all(|t| t.replaced.is_empty()));
    let r = c.handle(&ev, "c4").await.unwrap();
    assert_eq!(r.replaced_deleted, 0, "deleted once");
}

/// Late data compacted a month-old partition again: the sweep's look-back, by date, never
/// reaches it, so its retire marker brings the sweep there until the replaced files are gone.
#[tokio::test]
async fn the_sweep_deletes_what_a_switch_of_an_old_partition_replaced_by_its_marker() {
    const SWITCH: i64 = LATER + 30 * 86_400_000;
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(SWITCH));
    let w = world_with(4, at_t0, |c| c.compaction.replaced_retention_hours = 6);
    let c = w.compactor_on(&clock);
    for i in 0..4 {
        w.ingest(0, i * 10, 10).await;
    }
    let key = "tables/t/dt=2026-11-22/hr=03/part-t~0~0~9.parquet";
    let event =
        json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name": "b"}, "object": {"key": key}}});
    assert_eq!(c.handle(&event, "c1").await.unwrap().compacted.len(), 1);
    let marker = "_tributary/retire/t/dt=2026-11-22/hr=03".to_string();
    assert!(w.store.keys().contains(&marker), "the switch marks the partition");
    let sweep = json!({"tributary": "sweep"});
    assert_eq!(c.handle(&sweep, "c2").await.unwrap().replaced_deleted, 0, "not before the retention");
    assert!(w.store.keys().contains(&marker));
    clock.store(SWITCH + 6 * 3_600_000, std::sync::atomic::Ordering::SeqCst);
    let r = c.handle(&sweep, "c3").await.unwrap();
    assert_eq!((r.partitions_seen, r.replaced_deleted), (1, 4));
    assert!(!w.store.keys().iter().any(|k| k.starts_with("tables/t/dt=2026-11-22/hr=03/part-")), "the ingest files are gone");
    assert!(!w.store.keys().contains(&marker), "nothing is left to delete: the marker goes");
    assert_eq!(w.visible().await, expected(&[(0, 0..40)]), "readers lost nothing");
    assert_eq!(c.handle(&sweep, "c4").await.unwrap().partitions_seen, 0, "the sweep no longer visits it");
}

#[tokio::test]
async fn duplicates_are_removed() {
    let w = world(2, at_t0);
    w.ingest(0, 0, 10).await;
    // A file with the same rows under another name (as overlapping retries from another tool could leave).
    let keys = w.store.keys();
    let src = keys.iter().find(|k| k.ends_with(".parquet")).unwrap();
    w.store.copy(src, "tables/t/dt=2026-11-22/hr=03/part-t~0~00000000000000000000~00000000000000000099.parquet").await.unwrap();
    let Outcome::Compacted(r) = w.compact("c").await.unwrap().0 else { panic!() };
    assert_eq!((r.rows_in, r.rows_out, r.duplicates_removed), (20, 10, 10));
    assert_eq!(w.visible().await, expected(&[(0, 0..10)]));
}

/// What the partition's current location holds: its Parquet keys.
async fn current_files(w: &World) -> Vec<String> {
    let s = w.state().await;
    w.store.list(&s.location).await.unwrap().into_iter().map(|m| m.key).filter(|k| k.ends_with(".parquet")).collect()
}

#[tokio::test]
async fn files_of_distinct_values_are_merged_by_copying_their_pages() {
    let w = world(4, at_t0);
    for i in 0..3 {
        w.ingest(0, i * 300, 300).await;
    }
    w.ingest(1, 0, 300).await;
    let before = w.visible().await;
    let Outcome::Compacted(r) = w.compact("c").await.unwrap().0 else { panic!() };
    assert_eq!(
        r.copied_columns,
        ["n", "_kafka_offset", "_kafka_timestamp"],
        "distinct values are copied, repeated ones encoded again"
    );
    assert_eq!((r.rows_in, r.rows_out, r.files_out, r.duplicates_removed), (1200, 1200, 1, 0));
    assert_eq!(w.visible().await, before);
    let s = w.state().await;
    assert_eq!((s.covered.intervals("t", 0), s.covered.intervals("t", 1)), (&[(0, 899)][..], &[(0, 299)][..]));
    // Each row's own value came with it: n is the offset the record was ingested at.
    for k in current_files(&w).await {
        for b in tributary_core::parquet::write::decode(w.store.get(&k).await.unwrap().unwrap().body).unwrap() {
            assert_eq!(b.column_by_name("n").unwrap(), b.column_by_name("_kafka_offset").unwrap());
        }
    }
    assert_eq!(w.store.open_uploads(), 0);
}

#[tokio::test]
async fn a_duplicate_met_while_copying_pages_drops_those_outputs_and_merges_row_by_row() {
    // Each input row group becomes an output file of its own, so some are complete when the
    // duplicate turns up.
    let w = world_with(2, at_t0, |c| c.compaction.target_file_bytes = 1);
    for i in 0..3 {
        w.ingest(0, i * 300, 300).await;
    }
    // The last file again, under a name that sorts just before it (and claims no offset it lacks).
    let keys = w.store.keys();
    let src = keys.iter().find(|k| k.contains("~00000000000000000600~")).unwrap();
    w.store.copy(src, "tables/t/dt=2026-11-22/hr=03/part-t~0~00000000000000000600~00000000000000000898.parquet").await.unwrap();
    let Outcome::Compacted(r) = w.compact("c").await.unwrap().0 else { panic!() };
    assert!(r.copied_columns.is_empty());
    assert_eq!((r.rows_in, r.rows_out, r.duplicates_removed), (1200, 900, 300));
    assert_eq!(w.visible().await, expected(&[(0, 0..900)]));
    let mut files = current_files(&w).await;
    files.sort();
    let mut outputs = w.state().await.compacted;
    outputs.sort();
    assert_eq!(files, outputs, "no output of the abandoned copy is left where readers look");
    assert_eq!(r.files_out, files.len());
    // The first three inputs' outputs were complete (the fourth's upload was open) when the
    // duplicate turned up: all three were deleted before the row-by-row merge wrote its own.
    assert_eq!(w.store.delete_count(), 3);
    assert_eq!(w.store.open_uploads(), 0);
    // The row-by-row merge kept the Kafka columns required, as ingest writes them: the next
    // compaction copies pages from its outputs and new ingest files alike.
    for i in 3..5 {
        w.ingest(0, i * 300, 300).await;
    }
    let Outcome::Compacted(r) = w.compact("c2").await.unwrap().0 else { panic!() };
    assert_eq!(r.copied_columns, ["n", "_kafka_offset", "_kafka_timestamp"]);
    assert_eq!(w.visible().await, expected(&[(0, 0..1500)]));
}

#[tokio::test]
async fn a_closed_partition_is_compacted_without_new_events() {
    let w = world(100, later);
    w.ingest(0, 0, 3).await;
    // The sweep (EventBridge schedule) finds it: no S3 event names it again.
    let resp = w.compactor.handle(&json!({"tributary": "sweep"}), "sweep-1").await.unwrap();
    assert_eq!(resp.compacted.len(), 1, "{resp:?}");
    assert_eq!(resp.compacted[0].reason, "closed");
    assert_eq!(w.visible().await, expected(&[(0, 0..3)]));
}

#[tokio::test]
async fn a_failing_partition_does_not_hold_back_the_others() {
    let w = world(100, later);
    w.ingest(0, 0, 3).await;
    // A second table whose partition state is unreadable.
    w.store
        .put("_tributary/schemas/broken.json", bytes::Bytes::from_static(b"{}"), tributary_aws::Precondition::None)
        .await
        .unwrap();
    w.store
        .put(
            "tables/broken/dt=2026-11-22/hr=03/part-b~0~1~2.parquet",
            bytes::Bytes::from_static(b"x"),
            tributary_aws::Precondition::None,
        )
        .await
        .unwrap();
    w.store
        .put(
            "_tributary/partitions/broken/dt=2026-11-22/hr=03.json",
            bytes::Bytes::from_static(b"not json"),
            tributary_aws::Precondition::None,
        )
        .await
        .unwrap();
    assert!(w.compactor.handle(&json!({"tributary": "sweep"}), "s").await.is_err(), "the invocation fails, to be retried");
    assert_eq!(w.state().await.version, 1, "but the healthy partition was compacted");
}

#[tokio::test]
async fn open_partitions_below_thresholds_wait() {
    let w = world(100, at_t0);
    w.ingest(0, 0, 3).await;
    let key = w.store.keys().into_iter().find(|k| k.ends_with(".parquet")).unwrap();
    let event = s3_event(&[&key, "dead-letter/t/x.jsonl", "tables/t/_v/dt=2026-11-22/hr=03/v000001-x/compacted-0000.parquet"]);
    let resp = w.compactor.handle(&event, "e").await.unwrap();
    assert_eq!((resp.partitions_seen, resp.not_due, resp.ignored_keys), (1, 1, 2));
}

#[tokio::test]
async fn late_data_is_visible_at_once_and_folded_in_next_time() {
    let w = world(2, later);
    w.ingest(0, 0, 10).await;
    w.ingest(0, 10, 10).await;
    w.compact("c1").await.unwrap();
    // Late records for the compacted partition land in its current version: visible at once.
    w.ingest(0, 20, 5).await;
    assert_eq!(w.visible().await, expected(&[(0, 0..25)]));
    // A retry of an already compacted batch adds nothing.
    let values: Vec<String> = (0..10).map(|o| format!(r#"{{"n":{o},"p":0}}"#)).collect();
    let recs: Vec<SampleRecord> =
        values.iter().enumerate().map(|(i, v)| (i as i64, T0 + i as i64, None, Some(v.as_bytes()), &[][..])).collect();
    let out = w.ingest.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &recs)), None).await.unwrap();
    assert_eq!((out.total.rows_written, out.total.already_committed), (0, 10));
    let Outcome::Compacted(r) = w.compact("c2").await.unwrap().0 else { panic!() };
    assert_eq!((r.version, r.files_in, r.files_out), (2, 2, 1), "previous compacted file + the late file");
    assert_eq!(w.visible().await, expected(&[(0, 0..25)]));
}

#[tokio::test]
async fn a_crash_at_any_step_leaves_the_table_right_and_the_next_run_finishes() {
    for point in CrashPoint::ALL {
        let w = world(2, at_t0);
        w.ingest(0, 0, 10).await;
        w.ingest(0, 10, 10).await;
        let want = expected(&[(0, 0..20)]);
        w.compactor.crash_at(Some(point));
        assert!(matches!(w.compact("dies").await, Err(CompactError::Injected(p)) if p == point));
        assert_eq!(w.visible().await, want, "{point:?}: readers see every row once after the crash");
        // Records arriving in between are kept too.
        w.ingest(1, 0, 3).await;
        let want = expected(&[(0, 0..20), (1, 0..3)]);
        assert_eq!(w.visible().await, want, "{point:?}: and new rows after it");
        // The next run (a new request, the crashed one's lease or closing expired or not) completes.
        let w2 = World { compactor: w.compactor.with_clock(later), ..w };
        let mut outcome = w2.compact("next").await.unwrap().0;
        if matches!(outcome, Outcome::Compacted(ref r) if r.reason == "resumed") {
            outcome = w2.compact("after").await.unwrap().0;
        }
        assert!(matches!(outcome, Outcome::Compacted(_) | Outcome::NotDue), "{point:?}: {outcome:?}");
        assert_eq!(w2.visible().await, want, "{point:?}: after recovery");
        assert!(w2.state().await.closing.is_none() && w2.state().await.lease.is_none(), "{point:?}");
    }
}

/// Found by the fault campaign (`tests/faults.rs`): a closing whose write took effect but whose
/// answer was lost (412 on the SDK's retry) made the compactor delete its outputs, which the
/// recorded closing still named: the next run switched readers to an empty version.
#[tokio::test]
async fn a_lost_answer_to_any_state_write_loses_nothing() {
    // Conditional puts of one compaction: 1 the lease, 2 the closing, 3 the commit.
    for n in 1..=3 {
        let w = world(2, at_t0);
        w.ingest(0, 0, 10).await;
        w.ingest(0, 10, 10).await;
        let want = expected(&[(0, 0..20)]);
        w.store.lose_answer_of_conditional_put(n);
        let first = w.compact("first").await;
        assert_eq!(w.visible().await, want, "put {n}: {first:?}");
        let w2 = World { compactor: w.compactor.with_clock(later), ..w };
        for attempt in ["next", "after"] {
            w2.compact(attempt).await.unwrap();
        }
        assert_eq!(w2.visible().await, want, "put {n}: after the next runs");
        let state = w2.state().await;
        assert!(state.closing.is_none() && state.lease.is_none() && state.version == 1, "put {n}: {state:?}");
    }
}

#[tokio::test]
async fn an_ingest_racing_the_switch_is_carried_not_lost_or_doubled() {
    let w = world(2, at_t0);
    w.ingest(0, 0, 10).await;
    w.ingest(0, 10, 10).await;
    // The compactor records its closing and stops there (as if slow).
    w.compactor.crash_at(Some(CrashPoint::AfterClosing));
    assert!(w.compact("slow").await.is_err());
    let closing = w.state().await.closing.unwrap();
    // Ingest writes while the switch is pending: into the location readers see now, and a copy
    // where they will look next.
    w.ingest(0, 20, 5).await;
    let copied: Vec<String> =
        w.store.keys().into_iter().filter(|k| k.starts_with(&closing.next_location) && k.contains("part-")).collect();
    assert_eq!(copied.len(), 1);
    assert_eq!(w.visible().await, expected(&[(0, 0..25)]));
    // The compactor resumes (its own attempt id) and finishes: the late file is carried once.
    let Outcome::Compacted(r) = w.compact("slow").await.unwrap().0 else { panic!() };
    assert_eq!(r.reason, "resumed");
    assert_eq!(w.visible().await, expected(&[(0, 0..25)]));
}

/// An ingest attempt wrote its file while a switch was under way, after the compactor's carry,
/// and died before settling it; the retry finds the rows already there. It must settle that file
/// (copy it where readers will look), or the switch's commit leaves it behind, unread.
#[tokio::test]
async fn a_retry_settles_the_file_its_dead_attempt_left_behind() {
    let w = world(2, at_t0);
    w.ingest(0, 0, 10).await;
    w.ingest(0, 10, 10).await;
    w.compactor.crash_at(Some(CrashPoint::AfterCarry));
    assert!(w.compact("switching").await.is_err());
    let mut state = w.state().await;
    let closing = state.closing.clone().unwrap();
    // The dead attempt's file, written after the carry (made by the same handler on a scratch
    // store: the same key and bytes).
    let scratch = Arc::new(MemoryStore::new());
    let dead = Ingest::new(scratch.clone(), w.compactor.config.clone()).with_metrics_sink(|_| {});
    let values: Vec<String> = (20..25).map(|o| format!(r#"{{"n":{o},"p":0}}"#)).collect();
    let recs: Vec<SampleRecord> =
        values.iter().enumerate().map(|(i, v)| (20 + i as i64, T0 + i as i64, None, Some(v.as_bytes()), &[][..])).collect();
    dead.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &recs)), None).await.unwrap();
    for key in scratch.keys().into_iter().filter(|k| k.ends_with(".parquet")) {
        let body = scratch.get(&key).await.unwrap().unwrap().body;
        w.store.put(&key, body, tributary_aws::Precondition::None).await.unwrap();
    }
    // The retry, while the switch is still under way.
    w.ingest(0, 20, 5).await;
    // The compactor that was switching commits, without carrying again.
    let etag = w.compactor.load_state("t", &tp()).await.unwrap().1;
    state = state.finish_closing(LATER, vec![]).unwrap();
    w.compactor.save_state("t", &tp(), &state, etag.as_deref()).await.unwrap().unwrap();
    w.catalog.register("t", &tp().values(), &format!("s3://b/{}", closing.next_location));
    assert_eq!(w.visible().await, expected(&[(0, 0..25)]));
}

#[tokio::test]
async fn two_compactors_racing_agree() {
    let w = world(2, at_t0);
    for i in 0..4 {
        w.ingest(0, i * 5, 5).await;
    }
    let (a, b) = tokio::join!(w.compact("a"), w.compact("b"));
    let outcomes = [a.unwrap().0, b.unwrap().0];
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Outcome::Compacted(_))).count(), 1, "{outcomes:?}");
    assert_eq!(w.visible().await, expected(&[(0, 0..20)]));
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let w = world(2, at_t0);
    w.ingest(0, 0, 5).await;
    w.ingest(0, 5, 5).await;
    // A compactor takes the lease and dies without a trace.
    let (mut s, etag) = w.compactor.load_state("t", &tp()).await.unwrap();
    s.lease = Some(Lease { owner: "dead".into(), expires_ms: at_t0() + 1000 });
    w.compactor.save_state("t", &tp(), &s, etag.as_deref()).await.unwrap();
    assert_eq!(w.compact("early").await.unwrap().0, Outcome::Busy);
    let w2 = World { compactor: w.compactor.with_clock(later), ..w };
    assert!(matches!(w2.compact("late").await.unwrap().0, Outcome::Compacted(_)));
    assert_eq!(w2.visible().await, expected(&[(0, 0..10)]));
}

#[tokio::test]
async fn an_incompatible_file_is_left_in_place_and_reported() {
    let w = world(2, at_t0);
    w.ingest(0, 0, 5).await;
    // A foreign file with a conflicting type for "n".
    let batch = RecordBatch::try_from_iter(vec![
        ("n", Arc::new(arrow_array::StringArray::from(vec!["x"])) as arrow_array::ArrayRef),
        ("_kafka_topic", Arc::new(arrow_array::StringArray::from(vec!["t"])) as arrow_array::ArrayRef),
        ("_kafka_partition", Arc::new(arrow_array::Int32Array::from(vec![9])) as arrow_array::ArrayRef),
        ("_kafka_offset", Arc::new(arrow_array::Int64Array::from(vec![0])) as arrow_array::ArrayRef),
    ])
    .unwrap();
    let bytes =
        tributary_core::parquet::write::encode(&[batch], tributary_core::parquet::write::writer_properties(1, 1024).unwrap())
            .unwrap();
    let odd = "tables/t/dt=2026-11-22/hr=03/part-t~9~00000000000000000000~00000000000000000000.parquet";
    w.store.put(odd, bytes.into(), tributary_aws::Precondition::None).await.unwrap();
    let Outcome::Compacted(r) = w.compact("c").await.unwrap().0 else { panic!() };
    assert_eq!(r.incompatible, vec![odd.to_string()]);
    assert_eq!(r.carried, 1, "left as it is, and still visible");
    assert_eq!(w.visible().await, {
        let mut v = expected(&[(0, 0..5)]);
        v.push((9, 0));
        v.sort();
        v
    });
}

#[test]
fn triggers_parse() {
    let e = s3_event(&["tables/t/dt%3D2026-11-22/hr%3D03/part-a+b~0~1~2.parquet"]);
    assert_eq!(parse_trigger(&e).unwrap(), Trigger::Keys(vec!["tables/t/dt=2026-11-22/hr=03/part-a b~0~1~2.parquet".into()]));
    assert_eq!(parse_trigger(&json!({"detail-type": "Scheduled Event", "source": "aws.events"})).unwrap(), Trigger::Sweep);
    let eb = json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {"object": {"key": "tables/t/dt=2026-11-22/hr=03/part-a~0~1~2.parquet"}, "reason": "PutObject"}});
    assert_eq!(parse_trigger(&eb).unwrap(), Trigger::Keys(vec!["tables/t/dt=2026-11-22/hr=03/part-a~0~1~2.parquet".into()]));
    assert!(parse_trigger(&json!({"x": 1})).is_err());
    assert!(parse_trigger(&json!({"Records": "nope"})).is_err());
}

fn s3_event(keys: &[&str]) -> Value {
    let records: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                "eventTime": "2026-11-22T03:05:00.000Z", "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "r", "x-amz-id-2": "i"},
                "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
                       "bucket": {"name": "b", "ownerIdentity": {"principalId": "x"}, "arn": "arn:aws:s3:::b"},
                       "object": {"key": k, "size": 1, "eTag": "e", "sequencer": "0"}}
            })
        })
        .collect();
    json!({ "Records": records })
}

/// A partition compacted twice: once the first switch's files are deleted its ingest location is
/// empty, and the sweep still finds it by its state to delete what the second switch replaced.
#[tokio::test]
async fn the_sweep_finds_compacted_partitions_by_their_state_to_delete_what_they_replaced() {
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(LATER));
    let w = world_with(4, at_t0, |c| c.compaction.replaced_retention_hours = 6);
    let c = w.compactor_on(&clock);
    let at = |ms: i64| clock.store(ms, std::sync::atomic::Ordering::SeqCst);
    let sweep = json!({"tributary": "sweep"});
    for i in 0..4 {
        w.ingest(0, i * 10, 10).await;
    }
    assert_eq!(c.handle(&sweep, "c1").await.unwrap().compacted.len(), 1);
    // A late file lands in the compacted version; the next sweep folds it in (a second switch).
    at(LATER + 3_600_000);
    w.ingest(0, 40, 5).await;
    assert_eq!(c.handle(&sweep, "c2").await.unwrap().compacted.len(), 1);
    assert_eq!(w.visible().await, expected(&[(0, 0..45)]));
    at(LATER + 6 * 3_600_000);
    assert_eq!(c.handle(&sweep, "c3").await.unwrap().replaced_deleted, 4, "the first switch's ingest files");
    assert!(!w.store.keys().iter().any(|k| k.starts_with("tables/t/dt=2026-11-22/hr=03/")), "the ingest location is empty");
    at(LATER + 7 * 3_600_000);
    assert_eq!(c.handle(&sweep, "c4").await.unwrap().replaced_deleted, 2, "version 1's compacted file and the late file");
    assert_eq!(w.visible().await, expected(&[(0, 0..45)]));
    let left: Vec<String> = w.store.keys().into_iter().filter(|k| k.starts_with("tables/") && k.ends_with(".parquet")).collect();
    assert_eq!(left.len(), 1, "only what readers see: {left:?}");
}

#[cfg(test)]
mod tiers;

#[cfg(test)]
mod sweep;
