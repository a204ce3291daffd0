//! Peak memory of a full batch: as many `customer_data` records as fit the event source
//! mapping's 6 MB payload cap (more than 10,000), from the event's JSON bytes to Parquet objects
//! on an S3 API server, must stay well inside a 256 MB function. This test binary holds only
//! this test, so the process's peak RSS is the batch's.

use tributary_aws::Instrumented;
use tributary_aws::S3Store;
use tributary_core::Config;
use tributary_core::testing::events::SampleRecord;
use tributary_core::testing::events::{build_event, event_bytes};
use tributary_core::testing::sample::{Rng, customer};
use tributary_ingest::Ingest;
use tributary_tests::Moto;

const PAYLOAD_CAP: usize = 6 * 1024 * 1024;
const FUNCTION_MEMORY: u64 = 256 * 1024 * 1024;

fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test]
async fn a_full_6mb_batch_fits_a_256mb_function() {
    let moto = Moto::start();
    let client = moto.bucket("lake").await;
    let mut rng = Rng::new(42);
    let values: Vec<String> = (0..13_000u64).map(|i| customer(&mut rng, i % 24)).collect();
    let recs: Vec<SampleRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64, 1_795_316_400_000, Some(&b"key"[..]), Some(v.as_bytes()), &[][..]))
        .collect();
    let payload = event_bytes(&build_event("aws:kafka", "customer_data", 0, &recs));
    drop(recs);
    drop(values);
    assert!(payload.len() > 5 * 1024 * 1024 && payload.len() <= PAYLOAD_CAP, "payload is {} bytes", payload.len());

    let ing = Ingest::new(S3Store::new(client, "lake"), Config { bucket: "lake".into(), ..Default::default() })
        .with_metrics_sink(|_| {});
    let out = ing.handle(&payload, None).await.unwrap();
    assert_eq!(out.total.rows_written, 13_000);
    let peak = peak_rss();
    println!("peak RSS for a {}-byte batch of 13,000 records: {:.1} MiB", payload.len(), peak as f64 / 1048576.0);
    assert!(peak < FUNCTION_MEMORY / 2, "peak RSS {peak} bytes leaves too little headroom in a 256 MB function");
}
