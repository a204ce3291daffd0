//! Compaction at scale with bounded memory: `generate` fills an embedded S3-compatible store (files
//! on disk) with ingest files of one partition through the real ingest handler; `compact` merges
//! them through the real compactor and prints one JSON line with input size, rows/s and the
//! process's peak RSS. Run as two processes so the peak belongs to compaction alone:
//!
//! ```sh
//! cargo run --release -p tributary-local --example compact_bench -- generate /tmp/cb 1024
//! cargo run --release -p tributary-local --example compact_bench -- compact /tmp/cb
//! ```

use std::path::Path;
use std::time::Instant;
use tributary_core::event::SampleRecord;

use tributary_aws::{MemoryCatalog, ObjectRead, ObjectWrite, S3Store};
use tributary_compact::{Compactor, Outcome};
use tributary_core::Config;
use tributary_core::event::build_event;
use tributary_core::partition::TimePartition;
use tributary_core::sample::{Rng, customer};
use tributary_ingest::Ingest;

const T0: i64 = 1_795_316_400_000; // 2026-11-22T03:00:00Z
const BUCKET: &str = "bench";

fn config() -> Config {
    let mut c = Config { bucket: BUCKET.into(), ..Default::default() };
    c.compaction.min_files = 2;
    c
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .unwrap_or(0.0)
        / 1024.0
}

async fn store(dir: &Path) -> S3Store {
    let client = tributary_local::embedded_s3(&dir.join("s3")).expect("embedded store");
    let _ = client.create_bucket().bucket(BUCKET).send().await;
    S3Store::new(client, BUCKET)
}

async fn generate(dir: &Path, target_mb: u64) {
    let _ = std::fs::remove_dir_all(dir);
    let store = store(dir).await;
    let ingest = Ingest::new(store.clone(), config()).with_metrics_sink(|_| {});
    let mut rng = Rng::new(7);
    let (mut offset, mut bytes, mut files) = (0i64, 0u64, 0);
    let started = Instant::now();
    while bytes < target_mb << 20 {
        // A batch as the event source mapping would send it: 20,000 records, a random payload
        // field so Parquet cannot compress the input away.
        let values: Vec<String> = (0..20_000)
            .map(|i| {
                let c = customer(&mut rng, 3);
                let payload: String = (0..8).map(|_| format!("{:016x}", rng.next_u64())).collect();
                format!(r#"{},"payload":"{payload}","seq":{}}}"#, &c[..c.len() - 1], offset + i)
            })
            .collect();
        let recs: Vec<SampleRecord> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (offset + i as i64, T0 + (i as i64 % 3_000_000), None, Some(v.as_bytes()), &[][..]))
            .collect();
        let out = ingest.handle(build_event("aws:kafka", "customer_data", 0, &recs)).await.expect("ingest");
        bytes += out.total.bytes_written as u64;
        files += out.total.files_written;
        offset += recs.len() as i64;
    }
    println!(
        "{}",
        serde_json::json!({"generated_files": files, "generated_rows": offset, "generated_mb": bytes as f64 / 1048576.0, "seconds": started.elapsed().as_secs_f64()})
    );
}

async fn compact(dir: &Path) {
    let store = store(dir).await;
    let tp = TimePartition { dt: "2026-11-22".into(), hr: Some("03".into()) };
    // Start from the ingest files again: forget earlier runs' state and outputs.
    for prefix in ["_tributary/partitions/", "tables/customer_data/_v/"] {
        for m in store.list(prefix).await.expect("list") {
            store.delete(&m.key).await.expect("delete");
        }
    }
    let input: u64 = store.list("tables/customer_data/dt=2026-11-22/hr=03/").await.expect("list").iter().map(|m| m.size).sum();
    let compactor =
        Compactor::new(store, MemoryCatalog::new(), config()).with_clock(|| T0 + 4 * 3_600_000).with_metrics_sink(|_| {});
    let started = Instant::now();
    let (outcome, _) = compactor.compact_partition("customer_data", &tp, "bench").await.expect("compaction");
    let secs = started.elapsed().as_secs_f64();
    let Outcome::Compacted(r) = outcome else { panic!("not compacted: {outcome:?}") };
    println!(
        "{}",
        serde_json::json!({
            "input_files": r.files_in, "input_mb": input as f64 / 1048576.0, "rows": r.rows_out,
            "output_files": r.files_out, "output_mb": r.bytes_out as f64 / 1048576.0, "duplicates_removed": r.duplicates_removed,
            "seconds": secs, "rows_per_second": r.rows_out as f64 / secs, "input_mb_per_second": input as f64 / 1048576.0 / secs,
            "peak_rss_mb": peak_rss_mb(),
        })
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("generate"), Some(dir)) => generate(Path::new(dir), args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1024)).await,
        (Some("compact"), Some(dir)) => compact(Path::new(dir)).await,
        _ => eprintln!("usage: compact_bench generate DIR [MB] | compact DIR"),
    }
}
