//! The pipeline on one machine. An embedded S3-compatible store (s3s-fs, files under a local
//! directory) stands in for S3, reached through the real AWS SDK client, so the handlers run
//! exactly the code they run in Lambda.

pub mod athena;
pub mod sql;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use aws_lambda_events::event::kafka::KafkaEvent;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tributary_aws::{MemoryCatalog, ObjectRead, S3Store, TableCatalog};
use tributary_catalog::CatalogFn;
use tributary_compact::{Compactor, Outcome};
use tributary_core::Config;
use tributary_core::dead_letter::from_jsonl;
use tributary_core::event::parse_event;
use tributary_core::partition::TimePartition;
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

/// The seed of the generated scenarios: the same records on every run.
pub const DEMO_SEED: u64 = 20261122;

/// The everyday questions the local run answers.
pub const DEMO_QUERIES: [&str; 3] = [
    "SELECT 'customer_data' AS \"table\", count(*) AS \"rows\" FROM customer_data UNION ALL SELECT 'transaction', count(*) FROM \"transaction\" UNION ALL SELECT 'names_topic', count(*) FROM names_topic ORDER BY 1",
    "SELECT branch, currency, sum(amount) AS total, count(*) AS transactions FROM \"transaction\" GROUP BY branch, currency ORDER BY branch, currency",
    "SELECT country, count(*) AS customers, avg(salary) AS avg_salary FROM customer_data WHERE register_date >= DATE '2020-01-01' GROUP BY country ORDER BY customers DESC, country LIMIT 5",
];

/// Records for the three everyday scenarios (`customer_data`, `transaction`, `names_topic`),
/// as Kafka events of three partitions each, batches of at most 2,000 records, keys and headers
/// set, spread over four hours of 2026-11-22.
pub fn generate_scenarios(seed: u64) -> Vec<(&'static str, Vec<KafkaEvent>)> {
    use tributary_core::event::{SampleRecord, build_event};
    use tributary_core::sample::{Rng, customer, name_record, transaction};
    let mut rng = Rng::new(seed);
    let t0 = 1_795_305_600_000i64; // 2026-11-22T00:00:00Z
    let mut out = Vec::new();
    for (topic, n) in [("customer_data", 3_000u64), ("transaction", 6_000), ("names_topic", 600)] {
        let values: Vec<String> = (0..n)
            .map(|i| match topic {
                "customer_data" => customer(&mut rng, i % 4),
                "transaction" => transaction(&mut rng),
                _ => name_record(&mut rng),
            })
            .collect();
        let keys: Vec<String> = (0..n).map(|i| format!("{topic}-{i}")).collect();
        let headers: [(&str, &[u8]); 1] = [("source", b"tributary-demo")];
        let mut events = Vec::new();
        for partition in 0..3i32 {
            let mine: Vec<usize> = (0..n as usize).filter(|i| i % 3 == partition as usize).collect();
            for (chunk_no, chunk) in mine.chunks(2_000).enumerate() {
                let recs: Vec<SampleRecord> = chunk
                    .iter()
                    .enumerate()
                    .map(|(j, &i)| {
                        let offset = (chunk_no * 2_000 + j) as i64;
                        let ts = t0 + (i as i64 * 4 * 3_600_000) / n as i64;
                        (offset, ts, Some(keys[i].as_bytes()), Some(values[i].as_bytes()), &headers[..])
                    })
                    .collect();
                events.push(build_event("aws:kafka", topic, partition, &recs));
            }
        }
        out.push((topic, events));
    }
    out
}

/// The local store made by an earlier `tributary` run, for `tributary query`.
pub async fn open_local(data_dir: &Path) -> Result<(S3Store, PathBuf, Config), Error> {
    if !data_dir.join(MARKER).exists() {
        return Err(format!(
            "{} holds no local tables: run `tributary` (the demo) first, or pass --data-dir",
            data_dir.display()
        )
        .into());
    }
    let root = data_dir.join("s3");
    let bucket = "tributary-local";
    let store = S3Store::new(embedded_s3(&root)?, bucket);
    Ok((store, root, Config { bucket: bucket.into(), ..Config::default() }))
}

/// An EventBridge `Object Created` event for a key, as the bucket sends it to compact and catalog.
fn object_created(bucket: &str, key: &str) -> serde_json::Value {
    serde_json::json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key}, "reason": "PutObject"}})
}

/// Runs the sample events through the three handlers as AWS would drive them: each event through
/// ingest (and the first one again, as a retry), each file it writes through catalog (as the
/// bucket's EventBridge events would), then compaction of the closed partitions (as the sweep
/// would); and reads the tables back through the catalog's partition locations, as Athena does.
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
    let sink = |line: &str| tracing::debug!(target: "emf", "{line}");
    let ingest = Ingest::new(store.clone(), config.clone()).with_metrics_sink(sink);
    let catalog = std::sync::Arc::new(MemoryCatalog::new());
    let catalog_fn = CatalogFn::new(store.clone(), catalog.clone(), config.clone()).with_metrics_sink(sink);
    // The sample data is of 2026-11-22: a clock past its windows closes every partition.
    let compactor =
        Compactor::new(store.clone(), catalog.clone(), config.clone()).with_clock(|| 4_102_444_800_000).with_metrics_sink(sink);

    let mut out = String::new();
    writeln!(
        out,
        "Tributary local run: ingest -> catalog -> compact, the Lambda handlers against an embedded S3-compatible store"
    )?;
    writeln!(out, "store: {} (bucket {bucket:?}; every object is a file there)\n", root.display())?;
    let mut total_in = 0;
    let mut total_accounted = 0;
    let mut freshness = Vec::new();
    for (i, (name, json)) in SAMPLE_EVENTS.iter().enumerate() {
        let event: KafkaEvent = parse_event(json.as_bytes())?;
        let source = event.event_source.clone().unwrap_or_default();
        let r = ingest.handle(event.clone()).await?;
        let written = std::time::Instant::now();
        total_in += r.total.records_in;
        total_accounted += r.total.rows_written + r.total.dead_lettered + r.total.tombstones_skipped + r.total.already_committed;
        writeln!(out, "{name} ({source}): {}", summary(&r))?;
        for key in &r.total.objects {
            writeln!(out, "  wrote s3://{bucket}/{key}")?;
            if key.ends_with(".parquet") {
                catalog_fn.handle(&object_created(bucket, key)).await?;
                freshness.push(written.elapsed());
            }
        }
        if i == 0 {
            let again = ingest.handle(event).await?;
            writeln!(out, "{name} again, as a retry: {}", summary(&again))?;
        }
    }
    // The three everyday scenarios, generated, batched as the event source mapping would.
    let scenarios = generate_scenarios(DEMO_SEED);
    for (topic, batches) in &scenarios {
        let mut total = tributary_ingest::Report::default();
        for event in batches {
            let r = ingest.handle(event.clone()).await?;
            let written = std::time::Instant::now();
            for key in r.total.objects.iter().filter(|k| k.ends_with(".parquet")) {
                catalog_fn.handle(&object_created(bucket, key)).await?;
                freshness.push(written.elapsed());
            }
            total_in += r.total.records_in;
            total_accounted +=
                r.total.rows_written + r.total.dead_lettered + r.total.tombstones_skipped + r.total.already_committed;
            total.records_in += r.total.records_in;
            total.rows_written += r.total.rows_written;
            total.dead_lettered += r.total.dead_lettered;
            total.files_written += r.total.files_written + r.total.dead_letter_files;
        }
        writeln!(
            out,
            "generated {topic}: {} records in {} batches -> {} rows written, {} dead-lettered, {} files",
            total.records_in,
            batches.len(),
            total.rows_written,
            total.dead_lettered,
            total.files_written
        )?;
    }
    writeln!(
        out,
        "\nevery record accounted for: {total_in} in = {total_accounted} written + dead-lettered + skipped + already committed"
    )?;
    if let Some(max) = freshness.iter().max() {
        writeln!(
            out,
            "catalog: every new file's table and partition registered at most {:.1} ms after its batch was written",
            max.as_secs_f64() * 1000.0
        )?;
    }

    // Compaction, partition by partition, as the sweep would once their windows close.
    let partitions = catalog.partitions();
    for (table, values) in partitions.keys() {
        let tp = TimePartition { dt: values[0].clone(), hr: values.get(1).cloned() };
        if let (Outcome::Compacted(r), _) = compactor.compact_partition(table, &tp, "local").await? {
            writeln!(
                out,
                "compacted {table}/{}: {} files -> {} ({} rows, {} duplicates removed)",
                tp.path(),
                r.files_in,
                r.files_out,
                r.rows_out,
                r.duplicates_removed
            )?;
        }
    }
    writeln!(out)?;

    // The answers, in SQL, over the tables as Athena would see them.
    let ctx = sql::session(&store, &root, &config).await?;
    writeln!(out, "SQL (DataFusion over the local tables, names as in Athena):")?;
    for q in DEMO_QUERIES {
        writeln!(out, "> {q}")?;
        writeln!(out, "{}", sql::pretty(&ctx, q).await?)?;
    }
    writeln!(out)?;

    // What a reader sees: each table through the catalog's partition locations, as Athena reads it.
    let mut by_table: std::collections::BTreeMap<String, (Vec<RecordBatch>, usize)> = Default::default();
    for ((table, _), location) in catalog.partitions() {
        let prefix = location.strip_prefix(&format!("s3://{bucket}/")).unwrap_or(&location).to_string();
        for obj in store.list(&prefix).await?.iter().filter(|o| o.key.ends_with(".parquet")) {
            let Some(o) = store.get(&obj.key).await? else { continue };
            let entry = by_table.entry(table.clone()).or_default();
            entry.0.extend(tributary_core::parquet_io::decode(o.body)?);
            entry.1 += 1;
        }
    }
    for (table, (batches, files)) in &by_table {
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let columns = catalog.get_table(table).await?.map(|t| t.def.columns).unwrap_or_default();
        writeln!(out, "table {table}: {rows} rows in {files} files")?;
        let cols: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
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
    // The dead-letter area, summarized by table and reason, with the first record of each.
    let mut letters: std::collections::BTreeMap<(String, &'static str), (usize, String)> = Default::default();
    for obj in store.list(&config.dead_letter_prefix).await? {
        let Some(o) = store.get(&obj.key).await? else { continue };
        for l in from_jsonl(&o.body)? {
            let e = letters
                .entry((l.table.clone(), l.kind.as_str()))
                .or_insert_with(|| (0, format!("{}[{}]@{}: {}", l.topic, l.partition, l.offset, l.reason)));
            e.0 += 1;
        }
    }
    writeln!(out, "dead-letter area (raw bytes and reasons under {}):", config.dead_letter_prefix)?;
    for ((table, kind), (n, first)) in letters {
        writeln!(out, "  {table}: {n} x {kind}, e.g. {first}")?;
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
        assert!(out.contains("table customer_data: 3008 rows"), "{out}");
        assert!(out.contains("table transaction: 6000 rows"), "{out}");
        assert!(out.contains("generated names_topic: 600 records in 3 batches -> 0 rows written, 600 dead-lettered"), "{out}");
        assert!(out.contains("compacted transaction_events/dt=2026-11-22/hr=03/: 2 files -> 1 (7 rows"), "{out}");
        assert!(out.contains("columns: name string, mail string"), "{out}");
        assert!(out.contains("registered at most"), "{out}");
        assert!(out.contains("table transaction_events: 7 rows"), "{out}");
        assert!(out.contains("table names_topic: 2 rows"), "{out}");
        assert!(out.contains("| Berlin | EUR"), "per branch and currency: {out}");
        assert!(out.contains("integer_out_of_range"), "{out}");
        assert!(out.contains("0 rows written, 0 dead-lettered, 0 tombstones skipped, 14 already committed"), "{out}");
        // The SQL answers match the generated records.
        let (store, root, config) = open_local(&data).await.unwrap();
        let ctx = sql::session(&store, &root, &config).await.unwrap();
        let got = sql::run(&ctx, "SELECT sum(amount) AS s, count(*) AS n FROM \"transaction\"").await.unwrap();
        let mut want = 0i64;
        let (_, events) = &generate_scenarios(DEMO_SEED)[1];
        for e in events {
            for b in tributary_core::event::batches(e.clone()).unwrap() {
                for r in &b.records {
                    let v: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
                    want += v["amount"].as_i64().unwrap();
                }
            }
        }
        use arrow_array::cast::AsArray;
        assert_eq!(got[0].column(0).as_primitive::<arrow_array::types::Int64Type>().value(0), want);
        assert_eq!(got[0].column(1).as_primitive::<arrow_array::types::Int64Type>().value(0), 6000);
        // Runs again over its own directory; refuses a directory it did not make.
        demo(&data).await.unwrap();
        let foreign = dir.path().join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("precious.txt"), "x").unwrap();
        assert!(demo(&foreign).await.unwrap_err().to_string().contains("was not made by"));
    }
}
