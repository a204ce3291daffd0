//! The sweep visits the partitions with work left (pending markers), not the table's history.

use std::sync::atomic::{AtomicI64, Ordering};

use super::*;
use tributary_core::layout::{Marker, marker_key};

const DAY: i64 = 86_400_000;

/// Ingests one file of `n` records into the hour `hour` hours after T0, and delivers its event.
async fn ingest_hour(w: &World, c: &Compactor<Arc<MemoryStore>, Arc<MemoryCatalog>>, hour: i64, first: i64, n: i64) {
    let values: Vec<String> = (first..first + n).map(|o| format!(r#"{{"n":{o}}}"#)).collect();
    let at = T0 + hour * 3_600_000;
    let recs: Vec<SampleRecord> =
        values.iter().enumerate().map(|(i, v)| (first + i as i64, at, None, Some(v.as_bytes()), &[][..])).collect();
    w.ingest.handle(&event_bytes(&build_event("aws:kafka", "t", 0, &recs)), None).await.unwrap();
    let tp = TimePartition::from_millis(at, tributary_core::config::Granularity::Hour);
    let loc = w.compactor.load_state("t", &tp).await.unwrap().0.location;
    let key = w.store.list(&loc).await.unwrap().into_iter().map(|m| m.key).rev().find(|k| is_ingest_file(k)).unwrap();
    c.handle(&s3_event(&[&key]), "event").await.unwrap();
}

/// GETs and LISTs of one sweep.
async fn sweep_requests(w: &World, c: &Compactor<Arc<MemoryStore>, Arc<MemoryCatalog>>) -> usize {
    let (g0, l0) = w.store.read_requests();
    c.handle(&json!({"tributary": "sweep"}), "sweep").await.unwrap();
    let (g1, l1) = w.store.read_requests();
    (g1 - g0) + (l1 - l0)
}

#[tokio::test]
async fn a_sweep_costs_what_changed_not_the_tables_history() {
    let mut idle = Vec::new();
    for history in [3i64, 30] {
        let w = world(4, at_t0);
        let clock = Arc::new(AtomicI64::new(T0));
        let c = w.compactor_on(&clock);
        // `history` hours of a table, each marked by its event and compacted once its window closed.
        for h in 0..history {
            ingest_hour(&w, &c, h, h * 10, 10).await;
        }
        let marked = |w: &World| {
            let prefix = tributary_core::layout::markers_prefix(&w.compactor.config, Marker::Pending);
            w.store.keys().into_iter().filter(move |k| k.starts_with(&prefix)).count()
        };
        assert_eq!(marked(&w), history as usize);
        clock.store(T0 + 5 * DAY, Ordering::SeqCst);
        c.handle(&json!({"tributary": "sweep"}), "deep").await.unwrap();
        assert_eq!(marked(&w), 0, "every partition settled, and unmarked");
        // A day later the files the switches replaced are deleted, and their retire markers go.
        clock.store(T0 + 6 * DAY + 1, Ordering::SeqCst);
        c.handle(&json!({"tributary": "sweep"}), "retire").await.unwrap();
        // Settled: what a sweep reads does not grow with the history...
        idle.push(sweep_requests(&w, &c).await);
        // ...and a late file marks its partition: the next sweep visits it, folds it in, unmarks it.
        ingest_hour(&w, &c, 1, 10_000, 5).await;
        assert_eq!(marked(&w), 1);
        let busy = sweep_requests(&w, &c).await;
        assert!(busy > idle[idle.len() - 1] && busy <= idle[idle.len() - 1] + 16, "{busy} vs {idle:?}");
        assert_eq!(marked(&w), 0);
        let s = w
            .compactor
            .load_state("t", &TimePartition::from_millis(T0 + 3_600_000, tributary_core::config::Granularity::Hour))
            .await
            .unwrap()
            .0;
        assert!(w.store.list(&s.location).await.unwrap().iter().all(|m| !is_ingest_file(&m.key)), "the late file is folded in");
    }
    assert_eq!(idle[0], idle[1], "an idle sweep reads as much for 3 partitions as for 30: {idle:?}");
    assert!(idle[0] <= 4, "{idle:?}");
}

#[tokio::test]
async fn a_file_that_lands_while_its_marker_is_released_keeps_the_partition_marked() {
    let w = world(4, at_t0);
    let clock = Arc::new(AtomicI64::new(T0));
    let c = w.compactor_on(&clock);
    ingest_hour(&w, &c, 0, 0, 10).await;
    clock.store(LATER, Ordering::SeqCst);
    c.handle(&json!({"tributary": "sweep"}), "s1").await.unwrap();
    let marker = marker_key(&w.compactor.config, Marker::Pending, "t", &tp());
    assert!(w.store.get(&marker).await.unwrap().is_none());
    // A late file whose event is still on its way: a deep sweep (the next day) finds it by listing
    // and marks the partition, as the event will when it arrives.
    w.ingest(0, 500, 5).await;
    clock.store(LATER + DAY, Ordering::SeqCst);
    c.compact_partition("t", &tp(), "busy").await.unwrap();
    c.sync_pending_marker("t", &tp(), false).await.unwrap();
    assert!(w.store.get(&marker).await.unwrap().is_none(), "settled: nothing to mark");
    w.ingest(0, 600, 5).await;
    c.sync_pending_marker("t", &tp(), false).await.unwrap();
    assert!(w.store.get(&marker).await.unwrap().is_some(), "an unsettled partition found without a marker is marked");
    c.sync_pending_marker("t", &tp(), true).await.unwrap();
    assert!(w.store.get(&marker).await.unwrap().is_some(), "not settled: the marker stays");
}
