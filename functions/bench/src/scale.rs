//! The compaction scale benchmark: one open partition receives ingest files one at a time, each
//! file's `Object Created` event delivered to the compact function as EventBridge does; then its
//! window closes and the sweep runs until nothing is due. Reports what compaction read and wrote
//! per byte of the final compacted data, the number of compactions, the largest one, server-side
//! copies, and a cost per GB from those.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use serde_json::json;
use tributary_aws::{Instrumented, MemoryCatalog, MemoryStore, MultipartWrite, ObjectRead, ObjectWrite, partition_state};
use tributary_compact::{CompactResponse, Compactor};
use tributary_core::Config;
use tributary_core::layout::is_ingest_file;
use tributary_core::layout::time_partition::TimePartition;
use tributary_core::testing::events::{SampleRecord, build_event, event_bytes};
use tributary_core::testing::sample::{Rng, customer};
use tributary_ingest::Ingest;

use crate::{BUCKET, Error, SEED, T0, disk_store};

/// Lambda's price per GB-second (x86, us-east-1, first tier) and S3 Standard's per request:
/// GET, and PUT/COPY/POST/LIST (aws.amazon.com/lambda/pricing, aws.amazon.com/s3/pricing).
const LAMBDA_GB_SECOND: f64 = 0.000_016_666_7;
const S3_PUT_CLASS: f64 = 0.005 / 1000.0;
/// The compact function's memory in the template (`CompactMemorySize`' default), in GB.
const COMPACT_MEMORY_GB: f64 = 1.0;

const TABLE: &str = "customer_data";

/// What the compactor did over the whole run.
#[derive(Default)]
struct Totals {
    compactions: usize,
    bytes_in: u64,
    bytes_out: u64,
    copies: usize,
    copied_bytes: u64,
    largest_bytes: u64,
    largest_seconds: f64,
    seconds: f64,
}

impl Totals {
    fn add(&mut self, r: &CompactResponse, seconds: f64) {
        if std::env::var_os("SCALE_TRACE").is_some() {
            for p in &r.compacted {
                eprintln!("{}", serde_json::to_string(p).unwrap_or_default());
            }
        }
        self.seconds += seconds;
        for p in &r.compacted {
            self.compactions += 1;
            self.bytes_in += p.bytes_in;
            self.bytes_out += p.bytes_out as u64;
            self.copies += p.carried;
            self.copied_bytes += p.carried_bytes;
            self.largest_bytes = self.largest_bytes.max(p.bytes_in);
        }
        if !r.compacted.is_empty() {
            self.largest_seconds = self.largest_seconds.max(seconds);
        }
    }
}

fn object_created(key: &str) -> serde_json::Value {
    json!({"detail-type": "Object Created", "source": "aws.s3",
           "detail": {"bucket": {"name": BUCKET}, "object": {"key": key}, "reason": "PutObject"}})
}

/// `files` ingest files of `rows` customer records into one hourly partition, in the in-memory
/// store (`memory`) or the embedded S3 server under `dir`, compacted file by file with
/// `target_file_bytes` as the target.
pub async fn compact_scale(dir: &Path, files: usize, rows: usize, target: u64, memory: bool) -> Result<serde_json::Value, Error> {
    let mut config = Config { bucket: BUCKET.into(), ..Default::default() };
    config.compaction.target_file_bytes = target;
    if memory {
        let store = Arc::new(MemoryStore::new());
        let mut out = run(store.clone(), config, files, rows).await?;
        let (read, written) = store.data_bytes();
        out["get_bytes"] = json!(read);
        out["data_bytes_written"] = json!(written);
        out["store"] = json!("memory");
        Ok(out)
    } else {
        let _ = std::fs::remove_dir_all(dir);
        let mut out = run(disk_store(dir).await?, config, files, rows).await?;
        out["store"] = json!("embedded s3s-fs");
        Ok(out)
    }
}

async fn run<S>(store: S, config: Config, files: usize, rows: usize) -> Result<serde_json::Value, Error>
where
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
{
    let ingest = Ingest::new(store.clone(), config.clone()).with_metrics_sink(|_| {});
    let clock = Arc::new(AtomicI64::new(T0 + 60_000));
    let compactor = {
        let clock = clock.clone();
        Compactor::new(store.clone(), MemoryCatalog::new(), config.clone())
            .with_clock(move || clock.load(Ordering::SeqCst))
            .with_metrics_sink(|_| {})
    };
    let tp = TimePartition { dt: "2026-11-22".into(), hr: Some("03".into()) };
    let mut rng = Rng::new(SEED);
    let (mut totals, mut ingested) = (Totals::default(), 0u64);
    for f in 0..files {
        let first = (f * rows) as i64;
        let values: Vec<String> = (0..rows).map(|_| customer(&mut rng, 3)).collect();
        let recs: Vec<SampleRecord> =
            values.iter().enumerate().map(|(i, v)| (first + i as i64, T0, None, Some(v.as_bytes()), &[][..])).collect();
        let out = ingest.handle(&event_bytes(&build_event("aws:kafka", TABLE, 0, &recs)), None).await?;
        ingested += out.total.bytes_written as u64;
        // The event names the new file: the last ingest file of the current location (keys
        // carry zero-padded offsets).
        let location = partition_state(&store, &config, TABLE, &tp).await?.value.location;
        let listed = store.list(&location).await?;
        let key = listed.iter().rev().map(|m| &m.key).find(|k| is_ingest_file(k)).ok_or("ingest wrote no file")?.clone();
        let started = Instant::now();
        let r = compactor.handle(&object_created(&key), &format!("c{f}")).await?;
        totals.add(&r, started.elapsed().as_secs_f64());
    }
    // The window closes; the sweep comes back until nothing is due (each run within its budget).
    clock.store(T0 + 2 * 3_600_000, Ordering::SeqCst);
    for i in 0.. {
        if i == 1000 {
            return Err("the sweep does not converge".into());
        }
        let started = Instant::now();
        let r = compactor.handle(&json!({"tributary": "sweep"}), &format!("s{i}")).await?;
        totals.add(&r, started.elapsed().as_secs_f64());
        if r.compacted.is_empty() {
            break;
        }
    }
    let state = partition_state(&store, &config, TABLE, &tp).await?.value;
    let mut final_bytes = 0u64;
    for m in store.list(&state.location).await? {
        final_bytes += m.size;
    }
    let per = |b: u64| b as f64 / final_bytes as f64;
    let gb = final_bytes as f64 / 1e9;
    let compute = totals.seconds * COMPACT_MEMORY_GB * LAMBDA_GB_SECOND;
    // Requests: one invocation per ingest file; each compaction's copies and output parts.
    let requests = totals.copies as f64 * S3_PUT_CLASS;
    Ok(json!({
        "files": files, "rows_per_file": rows, "target_file_bytes": config.compaction.target_file_bytes,
        "max_read_bytes": config.compaction.max_read_bytes,
        "ingested_bytes": ingested, "final_bytes": final_bytes, "final_files": state.compacted.len(),
        "sealed_files": state.sealed.len(),
        "compactions": totals.compactions, "read_bytes": totals.bytes_in, "written_bytes": totals.bytes_out,
        "read_amplification": per(totals.bytes_in), "write_amplification": per(totals.bytes_out),
        "server_side_copies": totals.copies, "server_side_copy_bytes": totals.copied_bytes,
        "largest_compaction_bytes": totals.largest_bytes, "largest_compaction_seconds": totals.largest_seconds,
        "compaction_seconds": totals.seconds,
        "cost_per_gb": {"lambda": compute / gb, "copies": requests / gb},
    }))
}
