//! Measures the ingest handler on realistic full batches of `customer_data` records: 10,000
//! records, and as many as fit the event source mapping's 6 MB payload cap; from the event's
//! JSON bytes to Parquet objects in an in-memory store. Prints a JSON line per batch with
//! throughput and the process's peak RSS so far.
//!
//! `cargo run --release -p tributary-ingest --example batch [-- ROUNDS]`

use std::time::Instant;
use tributary_aws::Instrumented;
use tributary_core::testing::events::SampleRecord;

use tributary_aws::MemoryStore;
use tributary_core::Config;
use tributary_core::testing::events::build_event;
use tributary_core::testing::sample::{Rng, customer};
use tributary_ingest::Ingest;

const PAYLOAD_CAP: usize = 6 * 1024 * 1024;

fn peak_rss_bytes() -> u64 {
    // VmHWM: the peak resident set size of this process.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn event_payload(n: usize) -> (Vec<u8>, usize) {
    let mut rng = Rng::new(42);
    let values: Vec<String> = (0..n as u64).map(|i| customer(&mut rng, i % 24)).collect();
    let value_bytes: usize = values.iter().map(|v| v.len()).sum();
    let recs: Vec<SampleRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64, 1_795_316_400_000 + i as i64, Some(&b"customer-key"[..]), Some(v.as_bytes()), &[][..]))
        .collect();
    let event = build_event("aws:kafka", "customer_data", 0, &recs);
    (serde_json::to_vec(&event).expect("event serializes"), value_bytes)
}

async fn measure(label: &str, n: usize, rounds: usize) {
    let (payload, value_bytes) = event_payload(n);
    assert!(payload.len() <= PAYLOAD_CAP, "payload {} bytes is over the 6 MB cap", payload.len());
    let mut best = f64::MAX;
    for round in 0..rounds {
        // A fresh store and schema cache per round: every round is a cold batch.
        let ingest =
            Ingest::new(MemoryStore::new(), Config { bucket: "bench".into(), ..Default::default() }).with_metrics_sink(|_| {});
        let t = Instant::now();
        let out = ingest.handle(&payload, None).await.expect("batch ingests");
        let secs = t.elapsed().as_secs_f64();
        best = best.min(secs);
        assert!(out.total.balanced() && out.total.rows_written == n);
        eprintln!("{label} round {round}: {:.1} ms", secs * 1000.0);
    }
    println!(
        "{}",
        serde_json::json!({
            "batch": label,
            "records": n,
            "payload_bytes": payload.len(),
            "value_bytes": value_bytes,
            "best_seconds": best,
            "records_per_second": n as f64 / best,
            "payload_mb_per_second": payload.len() as f64 / best / 1e6,
            "value_mb_per_second": value_bytes as f64 / best / 1e6,
            "peak_rss_mb_so_far": peak_rss_bytes() as f64 / (1024.0 * 1024.0),
        })
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    measure("10k-records", 10_000, rounds).await;
    // As many records as fit the 6 MB payload cap.
    let per_record = event_payload(1000).0.len() as f64 / 1000.0;
    let n = ((PAYLOAD_CAP as f64 * 0.995) / per_record) as usize;
    measure("6MB-payload", n, rounds).await;
}
