//! The pipeline on one machine. An embedded S3-compatible store (s3s-fs, files under a local
//! directory) stands in for S3, reached through the real AWS SDK client, so the handlers run
//! exactly the code they run in Lambda.

pub mod athena;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use aws_lambda_events::event::kafka::KafkaEvent;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tributary_aws::{ObjectRead, S3Store};
use tributary_core::Config;
use tributary_core::dead_letter::from_jsonl;
use tributary_core::event::parse_event;
use tributary_ingest::{Ingest, IngestResponse};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The sample events the demo replays, embedded so the binary needs no files.
pub const SAMPLE_EVENTS: [(&str, &str); 3] = [
    ("events/msk-batch.json", include_str!("../../../events/msk-batch.json")),
    ("events/self-managed-kafka-batch.json", include_str!("../../../events/self-managed-kafka-batch.json")),
    ("events/bad-records.json", include_str!("../../../events/bad-records.json")),
];

const ACCESS_KEY: &str = "tributary-local";
const SECRET_KEY: &str = "tributary-local-secret";
const MARKER: &str = ".tributary-local";

/// An S3 client whose requests are served in-process by s3s-fs over `root`.
pub fn embedded_s3(root: &Path) -> Result<aws_sdk_s3::Client, Error> {
    std::fs::create_dir_all(root)?;
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| format!("embedded store at {}: {e:?}", root.display()))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "tributary-local"))
        .region(Region::new("us-east-1"))
        .endpoint_url("http://localhost")
        .force_path_style(true)
        .http_client(s3s_aws::Client::from(service))
        .build();
    Ok(aws_sdk_s3::Client::from_conf(conf))
}

/// Prepares a data directory the demo owns: created fresh, or emptied if an earlier run made it.
pub fn fresh_data_dir(dir: &Path) -> Result<PathBuf, Error> {
    if dir.exists() {
        let owned = dir.join(MARKER).exists();
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !owned && !empty {
            return Err(format!("{} exists and was not made by `tributary demo`; pass another --data-dir", dir.display()).into());
        }
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir.join("s3"))?;
    std::fs::write(dir.join(MARKER), "made by tributary demo; removed by its next run\n")?;
    Ok(dir.join("s3"))
}

fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn summary(r: &IngestResponse) -> String {
    let t = &r.total;
    format!(
        "{} records in -> {} rows written, {} dead-lettered, {} tombstones skipped, {} already committed; {} files, {}",
        t.records_in,
        t.rows_written,
        t.dead_lettered,
        t.tombstones_skipped,
        t.already_committed,
        t.files_written + t.dead_letter_files,
        human_bytes(t.bytes_written)
    )
}

/// Runs the sample events through the ingest handler into the embedded store, replays the
/// first one to show that a retry adds nothing, and describes what landed where.
pub async fn demo(data_dir: &Path) -> Result<String, Error> {
    let root = fresh_data_dir(data_dir)?;
    let bucket = "tributary-local";
    let client = embedded_s3(&root)?;
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| format!("creating the local bucket: {}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let store = S3Store::new(client, bucket);
    let config = Config { bucket: bucket.into(), ..Config::default() };
    let ingest = Ingest::new(store, config).with_metrics_sink(|line| tracing::debug!(target: "emf", "{line}"));

    let mut out = String::new();
    writeln!(out, "Tributary local run: the ingest handler against an embedded S3-compatible store")?;
    writeln!(out, "store: {} (bucket {bucket:?}; every object is a file there)\n", root.display())?;
    let mut total_in = 0;
    let mut total_accounted = 0;
    for (i, (name, json)) in SAMPLE_EVENTS.iter().enumerate() {
        let event: KafkaEvent = parse_event(json.as_bytes())?;
        let source = event.event_source.clone().unwrap_or_default();
        let r = ingest.handle(event.clone()).await?;
        total_in += r.total.records_in;
        total_accounted += r.total.rows_written + r.total.dead_lettered + r.total.tombstones_skipped + r.total.already_committed;
        writeln!(out, "{name} ({source}): {}", summary(&r))?;
        for key in &r.total.objects {
            writeln!(out, "  wrote s3://{bucket}/{key}")?;
        }
        if i == 0 {
            let again = ingest.handle(event).await?;
            writeln!(out, "{name} again, as a retry: {}", summary(&again))?;
        }
    }
    writeln!(
        out,
        "\nevery record accounted for: {total_in} in = {total_accounted} written + dead-lettered + skipped + already committed\n"
    )?;

    // What a reader sees: the tables, read back from the store.
    let store = &ingest.store;
    let tables = store.list(&ingest.config.table_prefix).await?;
    let mut by_table: std::collections::BTreeMap<String, Vec<RecordBatch>> = Default::default();
    for obj in tables.iter().filter(|o| o.key.ends_with(".parquet")) {
        let table = obj.key[ingest.config.table_prefix.len()..].split('/').next().unwrap_or_default().to_string();
        let Some(o) = store.get(&obj.key).await? else { continue };
        by_table.entry(table).or_default().extend(tributary_core::parquet_io::decode(o.body)?);
    }
    for (table, batches) in &by_table {
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let files = tables.iter().filter(|o| o.key.starts_with(&format!("{}{table}/", ingest.config.table_prefix))).count();
        writeln!(out, "table {table}: {rows} rows in {files} files")?;
        if let Some(b) = batches.first() {
            let cols: Vec<String> = b.schema().fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect();
            writeln!(out, "  columns: {}", cols.join(", "))?;
            let shown: Vec<RecordBatch> = batches.iter().take(1).map(|b| b.slice(0, b.num_rows().min(3))).collect();
            let projected: Vec<RecordBatch> = shown
                .iter()
                .map(|b| {
                    let keep: Vec<usize> =
                        (0..b.num_columns()).filter(|i| !b.schema().field(*i).name().starts_with("_kafka_h")).collect();
                    b.project(&keep)
                })
                .collect::<Result<_, _>>()?;
            writeln!(out, "{}", arrow_cast::pretty::pretty_format_batches(&projected)?)?;
        }
    }
    writeln!(out, "dead-letter area:")?;
    for obj in store.list(&ingest.config.dead_letter_prefix).await? {
        let Some(o) = store.get(&obj.key).await? else { continue };
        for l in from_jsonl(&o.body)? {
            writeln!(out, "  {} {}[{}]@{}: {}: {}", l.table, l.topic, l.partition, l.offset, l.kind.as_str(), l.reason)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn demo_runs_end_to_end_on_the_embedded_store() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let out = demo(&data).await.unwrap();
        assert!(out.contains("table customer_data: 8 rows"), "{out}");
        assert!(out.contains("table transaction_events: 7 rows"), "{out}");
        assert!(out.contains("table names_topic: 2 rows"), "{out}");
        assert!(out.contains("integer_out_of_range"), "{out}");
        assert!(out.contains("0 rows written, 0 dead-lettered, 0 tombstones skipped, 14 already committed"), "{out}");
        // Runs again over its own directory; refuses a directory it did not make.
        demo(&data).await.unwrap();
        let foreign = dir.path().join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("precious.txt"), "x").unwrap();
        assert!(demo(&foreign).await.unwrap_err().to_string().contains("was not made by"));
    }
}
