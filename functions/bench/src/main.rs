//! `tributary-bench`: the Rust side of the benchmark suite (`scripts/bench.sh` runs it next to
//! DuckDB, pyarrow and polars on the same data and writes docs/benchmarks.md). Every measurement
//! runs on one thread and prints one JSON object on standard output.
//!
//! ```text
//! tributary-bench gen FILE RECORDS               customer_data as JSON Lines (fixed seed)
//! tributary-bench ingest-core FILE OUT           JSON Lines -> Parquet (zstd) through the core
//! tributary-bench ingest-handler FILE            the same records as MSK events of at most 6 MB,
//!                                                through the ingest handler (in-memory store)
//! tributary-bench compact-gen DIR FILES ROWS [HEX]  ingest files of one partition, on disk
//! tributary-bench compact DIR [ZSTD_LEVEL]       the compactor merges them into one file
//! ```

use std::path::Path;
use std::time::Instant;
use tributary_aws::Instrumented;

use serde_json::json;
use tributary_aws::{MemoryCatalog, MemoryStore, ObjectRead, ObjectWrite, S3Store};
use tributary_compact::{Compactor, Outcome};
use tributary_core::Config;
use tributary_core::ingest;
use tributary_core::kafka::{RawRecord, TopicPartitionBatch};
use tributary_core::layout::time_partition::TimePartition;
use tributary_core::parquet::write as parquet_write;
use tributary_core::table::schema::TableSchema;
use tributary_core::testing::events::{SampleRecord, build_event, event_bytes};
use tributary_core::testing::sample::{Rng, customer};
use tributary_ingest::Ingest;

mod scale;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The seed of the benchmark data: the same bytes on every run.
const SEED: u64 = 20261122;
/// 2026-11-22T03:00:00Z.
const T0: i64 = 1_795_316_400_000;
/// Records per file in `ingest-core`, as arrow-rs examples batch them.
const CORE_BATCH: usize = 65_536;
const PAYLOAD_CAP: usize = 6 * 1024 * 1024;
const BUCKET: &str = "bench";

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .unwrap_or(0.0)
        / 1024.0
}

/// `n` customer records; every `conflict_every`-th one (none for 0) sends its age as a string,
/// a type conflict with the bigint column that the rescued-data column takes.
fn generate(path: &Path, n: u64, conflict_every: u64) -> Result<serde_json::Value, Error> {
    let mut rng = Rng::new(SEED);
    let mut out = String::with_capacity(n as usize * 250);
    let mut conflicts = 0u64;
    for i in 0..n {
        let record = customer(&mut rng, i % 4);
        match record.split_once(r#""age":"#) {
            Some((head, tail)) if conflict_every > 0 && i % conflict_every == conflict_every / 2 => {
                let digits = tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len());
                out.push_str(&format!(r#"{head}"age":"{}"{}"#, &tail[..digits], &tail[digits..]));
                conflicts += 1;
            }
            _ => out.push_str(&record),
        }
        out.push('\n');
    }
    std::fs::write(path, &out)?;
    Ok(json!({"records": n, "bytes": out.len(), "conflicts": conflicts}))
}

fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect()
}

/// JSON Lines -> Parquet through the core, as ingest runs it minus the event envelope and S3:
/// per 64 Ki records, the first batch screened (shapes, schema inference, arrow-json decoding),
/// the others, whose fields the schema then has, by the one-pass flat decoder; time
/// partitioning; Parquet encoding (zstd).
fn ingest_core(path: &Path, out_path: &Path) -> Result<serde_json::Value, Error> {
    // The records share the file's buffer, as an event's records share its decoded values.
    let data = bytes::Bytes::from(std::fs::read(path)?);
    let all = lines(&data);
    let cfg = Config { bucket: BUCKET.into(), ..Config::default() };
    let mut schema = TableSchema::default();
    let mut out = Vec::new();
    let (mut rows, mut rescued, mut files, mut flat_batches) = (0usize, 0usize, 0usize, 0usize);
    // Where the time goes: [envelope, screening, decoding + partitioning, encoding], seconds.
    let mut phases = [0f64; 4];
    let mut lap = Instant::now();
    let mut split = |phase: usize| {
        phases[phase] += lap.elapsed().as_secs_f64();
        lap = Instant::now();
    };
    let started = Instant::now();
    for (n, chunk) in all.chunks(CORE_BATCH).enumerate() {
        let first = (n * CORE_BATCH) as i64;
        let batch = TopicPartitionBatch {
            topic: "customer_data".into(),
            partition: 0,
            records: chunk
                .iter()
                .enumerate()
                .map(|(i, v)| RawRecord {
                    offset: first + i as i64,
                    timestamp_ms: T0,
                    timestamp_type: Some("CREATE_TIME".into()),
                    key: None,
                    value: Some(data.slice_ref(v)),
                    headers: Vec::new(),
                    invalid: None,
                })
                .collect(),
        };
        split(0);
        // As ingest does: one flat pass with the known schema, or with one learned from the
        // batch's first records; else screening.
        let flat = match ingest::build_flat(&cfg, &[&batch], &schema)? {
            Some(built) => Some(built),
            None => ingest::build_learned(&cfg, &[&batch], &schema)?.map(|l| {
                schema = l.schema;
                l.built
            }),
        };
        let built = match flat {
            Some(built) => {
                flat_batches += 1;
                built
            }
            None => {
                let screened = ingest::screen(&cfg, "customer_data", &[&batch]);
                schema.evolve(&screened.batch_shape);
                split(1);
                ingest::build_rescuing(&cfg, &screened, &mut schema)?
            }
        };
        split(2);
        for group in built.files {
            let props = parquet_write::writer_properties_for(&group.rows, cfg.zstd_level, 1 << 20)?;
            let body = parquet_write::encode(std::slice::from_ref(&group.rows), props)?;
            rows += group.rows.num_rows();
            rescued += group.rescued_rows();
            files += 1;
            out.extend_from_slice(&body);
        }
        split(3);
    }
    let secs = started.elapsed().as_secs_f64();
    std::fs::write(out_path, &out)?;
    Ok(json!({
        "records": all.len(), "rows": rows, "rows_rescued": rescued, "files": files, "input_bytes": data.len(), "output_bytes": out.len(),
        "seconds": secs, "records_per_second": all.len() as f64 / secs, "input_mb_per_second": data.len() as f64 / 1e6 / secs,
        "zstd_level": cfg.zstd_level, "peak_rss_mb": peak_rss_mb(),
        "batches": all.len().div_ceil(CORE_BATCH), "flat_batches": flat_batches,
        "phase_seconds": {"envelope": phases[0], "screening": phases[1], "decoding": phases[2], "encoding": phases[3]},
    }))
}

/// The records as MSK events of at most 6 MB (base64 values), each as the JSON Lambda receives.
fn events(all: &[&[u8]]) -> Vec<Vec<u8>> {
    // Bytes one record takes in the event, measured on a sample.
    let probe = |n: usize| -> usize {
        let recs: Vec<SampleRecord> = all[..n].iter().enumerate().map(|(i, v)| (i as i64, T0, None, Some(*v), &[][..])).collect();
        serde_json::to_vec(&build_event("aws:kafka", "customer_data", 0, &recs)).map(|v| v.len()).unwrap_or(0)
    };
    let per_record = probe(1000) as f64 / 1000.0;
    let per_event = ((PAYLOAD_CAP as f64 * 0.99) / per_record) as usize;
    let mut out = Vec::new();
    for (n, chunk) in all.chunks(per_event).enumerate() {
        let first = (n * per_event) as i64;
        let recs: Vec<SampleRecord> =
            chunk.iter().enumerate().map(|(i, v)| (first + i as i64, T0, None, Some(*v), &[][..])).collect();
        out.push(serde_json::to_vec(&build_event("aws:kafka", "customer_data", 0, &recs)).unwrap_or_default());
    }
    out
}

/// The full decode path the Lambda runs, per event: its JSON bytes read (as the handler reads
/// them), base64 decoded, decoded, encoded and put (in memory); one warm function for all events.
async fn ingest_handler(path: &Path) -> Result<serde_json::Value, Error> {
    let data = std::fs::read(path)?;
    let all = lines(&data);
    let payloads = events(&all);
    drop(all);
    let event_bytes: usize = payloads.iter().map(Vec::len).sum();
    let ingest = Ingest::new(MemoryStore::new(), Config { bucket: BUCKET.into(), ..Config::default() }).with_metrics_sink(|_| {});
    let (mut rows, mut max_event) = (0usize, 0f64);
    let started = Instant::now();
    for p in &payloads {
        let t = Instant::now();
        let r = ingest.handle(p, None).await?;
        max_event = max_event.max(t.elapsed().as_secs_f64());
        rows += r.total.rows_written;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "records": rows, "events": payloads.len(), "event_bytes": event_bytes, "jsonl_bytes": data.len(),
        "seconds": secs, "records_per_second": rows as f64 / secs,
        "jsonl_mb_per_second": data.len() as f64 / 1e6 / secs, "event_mb_per_second": event_bytes as f64 / 1e6 / secs,
        "slowest_event_ms": max_event * 1000.0, "peak_rss_mb": peak_rss_mb(),
    }))
}

fn compact_config() -> Config {
    let mut c = Config { bucket: BUCKET.into(), ..Default::default() };
    c.compaction.min_files = 2;
    c
}

async fn disk_store(dir: &Path) -> Result<S3Store, Error> {
    let client = tributary_aws::embedded::s3_client(&dir.join("s3"))?;
    let _ = client.create_bucket().bucket(BUCKET).send().await;
    Ok(S3Store::new(client, BUCKET))
}

const PARTITION_PREFIX: &str = "tables/customer_data/dt=2026-11-22/hr=03/";

/// `files` ingest files of `rows` customer records each in one partition, through the ingest
/// handler, into an on-disk store. `hex` > 0 adds a random hex field of that many characters, so
/// Parquet cannot compress the input away (to reach a gigabyte of files).
async fn compact_gen(dir: &Path, files: usize, rows: usize, hex: usize) -> Result<serde_json::Value, Error> {
    let _ = std::fs::remove_dir_all(dir);
    let store = disk_store(dir).await?;
    let ingest = Ingest::new(store.clone(), compact_config()).with_metrics_sink(|_| {});
    let mut rng = Rng::new(SEED);
    let (mut offset, mut bytes) = (0i64, 0u64);
    let started = Instant::now();
    for _ in 0..files {
        let values: Vec<String> = (0..rows)
            .map(|_| {
                let c = customer(&mut rng, 3);
                if hex == 0 {
                    return c;
                }
                let payload: String = (0..hex.div_ceil(16)).map(|_| format!("{:016x}", rng.next_u64())).collect();
                format!(r#"{},"payload":"{}"}}"#, &c[..c.len() - 1], &payload[..hex])
            })
            .collect();
        let recs: Vec<SampleRecord> =
            values.iter().enumerate().map(|(i, v)| (offset + i as i64, T0, None, Some(v.as_bytes()), &[][..])).collect();
        let out = ingest.handle(&event_bytes(&build_event("aws:kafka", "customer_data", 0, &recs)), None).await?;
        bytes += out.total.bytes_written as u64;
        offset += rows as i64;
    }
    Ok(json!({"files": files, "rows": offset, "bytes": bytes, "seconds": started.elapsed().as_secs_f64()}))
}

/// The compactor merges the partition's ingest files into one (deduplicated, pages copied where it can),
/// streaming through multipart upload, as in Lambda. `zstd_level` overrides the policy's. With
/// `in_memory` the files are first copied into an in-memory store (untimed), so the figure is
/// the compactor's own work without the embedded S3 server's HTTP and disk costs.
async fn compact(dir: &Path, zstd_level: Option<i32>, in_memory: bool) -> Result<serde_json::Value, Error> {
    let store = disk_store(dir).await?;
    // Start from the ingest files again: forget earlier runs' state and outputs.
    for prefix in ["_tributary/partitions/", "tables/customer_data/_v/"] {
        for m in store.list(prefix).await? {
            store.delete(&m.key).await?;
        }
    }
    let listed = store.list(PARTITION_PREFIX).await?;
    let input: u64 = listed.iter().map(|m| m.size).sum();
    let mut config = compact_config();
    if let Some(level) = zstd_level {
        config.compaction.zstd_level = level;
    }
    let mut out = if in_memory {
        let mem = std::sync::Arc::new(MemoryStore::new());
        for m in &listed {
            let body = store.get(&m.key).await?.ok_or("a listed file vanished")?.body;
            mem.put(&m.key, body, tributary_aws::Precondition::None).await?;
        }
        compact_in(mem, config).await?
    } else {
        compact_in(store, config).await?
    };
    out["input_bytes"] = json!(input);
    out["input_mb_per_second"] = json!(input as f64 / 1e6 / out["seconds"].as_f64().unwrap_or(f64::INFINITY));
    out["store"] = json!(if in_memory { "memory" } else { "embedded s3s-fs" });
    Ok(out)
}

async fn compact_in<S>(store: S, config: Config) -> Result<serde_json::Value, Error>
where
    S: ObjectRead + ObjectWrite + tributary_aws::MultipartWrite + Clone + Send + Sync + Unpin + 'static,
{
    let tp = TimePartition { dt: "2026-11-22".into(), hr: Some("03".into()) };
    let level = config.compaction.zstd_level;
    let compactor =
        Compactor::new(store, MemoryCatalog::new(), config).with_clock(|| T0 + 4 * 3_600_000).with_metrics_sink(|_| {});
    let started = Instant::now();
    let (outcome, _) = compactor.compact_partition("customer_data", &tp, "bench").await?;
    let secs = started.elapsed().as_secs_f64();
    let Outcome::Compacted(r) = outcome else { return Err(format!("not compacted: {outcome:?}").into()) };
    Ok(json!({
        "input_files": r.files_in, "rows": r.rows_out, "output_bytes": r.bytes_out,
        "duplicates_removed": r.duplicates_removed, "seconds": secs, "rows_per_second": r.rows_out as f64 / secs,
        "peak_rss_mb": peak_rss_mb(), "zstd_level": level, "copied_columns": r.copied_columns,
    }))
}

async fn run(args: &[String]) -> Result<serde_json::Value, Error> {
    let arg = |i: usize| args.get(i).map(String::as_str);
    let num = |i: usize, default: usize| arg(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    match (arg(1), arg(2)) {
        (Some("gen"), Some(f)) => generate(Path::new(f), num(3, 1_000_000) as u64, num(4, 0) as u64),
        (Some("ingest-core"), Some(f)) => ingest_core(Path::new(f), Path::new(arg(3).unwrap_or("/dev/null"))),
        (Some("ingest-handler"), Some(f)) => ingest_handler(Path::new(f)).await,
        (Some("compact-gen"), Some(d)) => compact_gen(Path::new(d), num(3, 200), num(4, 5_000), num(5, 0)).await,
        (Some("compact"), Some(d)) => compact(Path::new(d), arg(3).and_then(|s| s.parse().ok()), false).await,
        (Some("compact-memory"), Some(d)) => compact(Path::new(d), arg(3).and_then(|s| s.parse().ok()), true).await,
        (Some(mode @ ("compact-scale" | "compact-scale-memory")), Some(d)) => {
            let target = num(5, 32 << 20) as u64;
            scale::compact_scale(Path::new(d), num(3, 2_000), num(4, 2_500), target, mode.ends_with("memory")).await
        }
        _ => Err("usage: tributary-bench gen FILE [N [CONFLICT_EVERY]] | ingest-core FILE [OUT] | ingest-handler FILE | \
                  compact-gen DIR [FILES ROWS HEX] | compact DIR [ZSTD_LEVEL] | compact-memory DIR [ZSTD_LEVEL] | \
                  compact-scale[-memory] DIR [FILES ROWS TARGET_BYTES]"
            .into()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args).await {
        Ok(v) => {
            println!("{v}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tributary-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_stay_under_the_cap_and_keep_every_record() {
        let mut rng = Rng::new(1);
        let values: Vec<String> = (0..30_000).map(|i| customer(&mut rng, i % 4)).collect();
        let all: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        let evs = events(&all);
        assert!(evs.len() >= 2, "30,000 records are more than one 6 MB event");
        let mut n = 0;
        for e in &evs {
            assert!(e.len() <= PAYLOAD_CAP, "{} bytes", e.len());
            n += tributary_core::kafka::read_event(e).unwrap()[0].records.len();
        }
        assert_eq!(n, 30_000);
    }

    #[test]
    fn ingest_core_writes_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.jsonl");
        generate(&f, 1_000, 0).unwrap();
        let v = ingest_core(&f, &dir.path().join("out.parquet")).unwrap();
        assert_eq!((v["rows"].as_u64(), v["rows_rescued"].as_u64()), (Some(1_000), Some(0)));
        // Every 100th record with its age as a string: a row each, the age rescued.
        let g = generate(&f, 1_000, 100).unwrap();
        assert_eq!(g["conflicts"], 10);
        assert!(std::fs::read_to_string(&f).unwrap().lines().nth(50).unwrap().contains(r#""age":""#));
        let v = ingest_core(&f, &dir.path().join("out.parquet")).unwrap();
        assert_eq!((v["rows"].as_u64(), v["rows_rescued"].as_u64()), (Some(1_000), Some(10)));
    }
}
