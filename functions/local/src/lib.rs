//! The pipeline on one machine. An embedded S3-compatible store (s3s-fs, files under a local
//! directory) stands in for S3, reached through the real AWS SDK client, so the handlers run
//! exactly the code they run in Lambda.

pub mod athena;
pub mod batcher;
pub mod consume;
pub mod kafka;
pub mod pipeline;
pub mod replay;
pub mod sql;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use aws_lambda_events::event::kafka::KafkaEvent;
use tributary_aws::{MemoryCatalog, ObjectRead, S3Store, TableCatalog};
use tributary_compact::Outcome;
use tributary_core::Config;
use tributary_core::ingest::dead_letter::from_jsonl;
use tributary_core::layout;
use tributary_core::layout::time_partition::TimePartition;
use tributary_ingest::Report;

use crate::kafka::Produced;
use crate::pipeline::Pipeline;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The sample events the demo replays, embedded so the binary needs no files.
pub const SAMPLE_EVENTS: [(&str, &str); 3] = [
    ("events/msk-batch.json", include_str!("../../../events/msk-batch.json")),
    ("events/self-managed-kafka-batch.json", include_str!("../../../events/self-managed-kafka-batch.json")),
    ("events/bad-records.json", include_str!("../../../events/bad-records.json")),
];

const MARKER: &str = ".tributary-local";
/// The local store's bucket (a directory under the store's root).
pub const LOCAL_BUCKET: &str = "tributary-local";

/// An S3 client whose requests are served in-process by s3s-fs over `root`.
pub fn embedded_s3(root: &Path) -> Result<aws_sdk_s3::Client, Error> {
    Ok(tributary_aws::embedded::s3_client(root)?)
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

fn summary(t: &Report) -> String {
    format!(
        "{} records in -> {} rows written ({} with rescued fields), {} dead-lettered, {} tombstones skipped, {} already committed; {} files, {}",
        t.records_in,
        t.rows_written,
        t.rows_rescued,
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
pub const DEMO_QUERIES: [&str; 5] = [
    "SELECT 'customer_data' AS \"table\", count(*) AS \"rows\" FROM customer_data UNION ALL SELECT 'transaction', count(*) FROM \"transaction\" UNION ALL SELECT 'names_topic', count(*) FROM names_topic ORDER BY 1",
    "SELECT branch, currency, sum(amount) AS total, count(*) AS transactions FROM \"transaction\" GROUP BY branch, currency ORDER BY branch, currency",
    "SELECT country, count(*) AS customers, avg(salary) AS avg_salary FROM customer_data WHERE register_date >= DATE '2020-01-01' GROUP BY country ORDER BY customers DESC, country LIMIT 5",
    // zip is a 128-bit integer: a string column keeps every digit.
    "SELECT name, city, zip FROM names_topic WHERE _kafka_offset >= 1000 ORDER BY _kafka_partition, _kafka_offset LIMIT 3",
    // Fields their columns could not store: the rows are in the table, the fields' JSON here.
    "SELECT _kafka_offset, branch, amount, _rescued_data FROM transaction_events WHERE _rescued_data IS NOT NULL ORDER BY _kafka_offset",
];

/// The three everyday scenarios, and how many records the local run makes of each.
pub const SCENARIOS: [(&str, u64); 3] = [("customer_data", 3_000), ("transaction", 6_000), ("names_topic", 600)];

/// Records of the everyday scenarios, `(topic, [(key, value)])`, as many per topic as `counts`
/// says: `customer_data`, `transaction`, and `names_topic` (any other name). The same records on
/// every run of a seed.
pub fn scenario_records(seed: u64, counts: &[(&'static str, u64)]) -> Vec<(&'static str, Vec<(String, String)>)> {
    use tributary_core::testing::sample::{Rng, customer, name_record, transaction};
    let mut rng = Rng::new(seed);
    counts
        .iter()
        .map(|&(topic, n)| {
            let records = (0..n)
                .map(|i| {
                    let value = match topic {
                        "customer_data" => customer(&mut rng, i % 4),
                        "transaction" => transaction(&mut rng),
                        _ => name_record(&mut rng),
                    };
                    (format!("{topic}-{i}"), value)
                })
                .collect();
            (topic, records)
        })
        .collect()
}

/// Records for the three everyday scenarios (`customer_data`, `transaction`, `names_topic`),
/// as Kafka events of three partitions each (offsets from 1,000), batches of at most 2,000
/// records, keys and headers set, spread over four hours of 2026-11-22.
pub fn generate_scenarios(seed: u64) -> Vec<(&'static str, Vec<KafkaEvent>)> {
    use tributary_core::testing::events::{SampleRecord, build_event};
    let t0 = 1_795_305_600_000i64; // 2026-11-22T00:00:00Z
    let headers: [(&str, &[u8]); 1] = [("source", b"tributary-demo")];
    let mut out = Vec::new();
    for (topic, records) in scenario_records(seed, &SCENARIOS) {
        let n = records.len();
        let mut events = Vec::new();
        for partition in 0..3i32 {
            let mine: Vec<usize> = (0..n).filter(|i| i % 3 == partition as usize).collect();
            for (chunk_no, chunk) in mine.chunks(2_000).enumerate() {
                let recs: Vec<SampleRecord> = chunk
                    .iter()
                    .enumerate()
                    .map(|(j, &i)| {
                        // After the sample events' offsets: one offset, one record, as in Kafka.
                        let offset = 1_000 + (chunk_no * 2_000 + j) as i64;
                        let ts = t0 + (i as i64 * 4 * 3_600_000) / n as i64;
                        let (key, value) = &records[i];
                        (offset, ts, Some(key.as_bytes()), Some(value.as_bytes()), &headers[..])
                    })
                    .collect();
                events.push(build_event("aws:kafka", topic, partition, &recs));
            }
        }
        out.push((topic, events));
    }
    out
}

/// The everyday scenarios as records to produce to Kafka: keys `<topic>-<i>`, round-robin over
/// `partitions`, headers (one of them with bytes over 0x7f, which the event carries as negative
/// numbers), and, when `bad_every` > 0, every `bad_every`-th value cut in half (invalid JSON, to
/// be dead-lettered). Returns the records and how many of them are bad.
pub fn scenario_messages(seed: u64, counts: &[(&'static str, u64)], partitions: i32, bad_every: u64) -> (Vec<Produced>, u64) {
    let mut bad = 0;
    let mut out = Vec::new();
    for (topic, records) in scenario_records(seed, counts) {
        for (i, (key, value)) in records.into_iter().enumerate() {
            let i = i as u64;
            let value = if bad_every > 0 && i % bad_every == bad_every - 1 {
                bad += 1;
                value.as_bytes()[..value.len() / 2].to_vec()
            } else {
                value.into_bytes()
            };
            out.push(Produced {
                topic: topic.to_string(),
                partition: Some((i % partitions.max(1) as u64) as i32),
                key: Some(key.into_bytes()),
                value: Some(value),
                headers: vec![("source".into(), b"tributary-produce".to_vec()), ("trace".into(), vec![0xde, 0xad, 0xbe, 0xef])],
            });
        }
    }
    (out, bad)
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
    let store = S3Store::new(embedded_s3(&root)?, LOCAL_BUCKET);
    Ok((store, root, Config { bucket: LOCAL_BUCKET.into(), ..Config::default() }))
}

/// The local store the consumer mode writes to: the one in `data_dir` if an earlier run made it
/// (a restarted consumer carries on), else a new one. Refuses a directory a `tributary` run did
/// not make.
pub async fn local_target(data_dir: &Path) -> Result<(S3Store, PathBuf, Config), Error> {
    if !data_dir.join(MARKER).exists() {
        fresh_data_dir(data_dir)?;
    }
    let (store, root, config) = open_local(data_dir).await?;
    if !root.join(&config.bucket).is_dir() {
        create_bucket(&store).await?;
    }
    Ok((store, root, config))
}

async fn create_bucket(store: &S3Store) -> Result<(), Error> {
    store
        .client()
        .create_bucket()
        .bucket(store.bucket())
        .send()
        .await
        .map_err(|e| format!("creating the local bucket: {}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// Runs the sample events through the three handlers as AWS would drive them: each event through
/// ingest (and the first one again, as a retry), each file it writes through catalog (as the
/// bucket's EventBridge events would), then compaction of the closed partitions (as the sweep
/// would); and reads the tables back through the catalog's partition locations, as Athena does.
pub async fn demo(data_dir: &Path) -> Result<String, Error> {
    let root = fresh_data_dir(data_dir)?;
    let store = S3Store::new(embedded_s3(&root)?, LOCAL_BUCKET);
    create_bucket(&store).await?;
    let bucket = LOCAL_BUCKET;
    let config = Config { bucket: bucket.into(), ..Config::default() };
    let catalog = std::sync::Arc::new(MemoryCatalog::new());
    // The sample data is of 2026-11-22: a clock past its windows closes every partition.
    let pipeline = Pipeline::new(store.clone(), catalog.clone(), config.clone()).with_compaction_clock(|| 4_102_444_800_000);

    let mut out = String::new();
    writeln!(
        out,
        "Tributary local run: ingest -> catalog -> compact, the Lambda handlers against an embedded S3-compatible store"
    )?;
    writeln!(out, "store: {} (bucket {bucket:?}; every object is a file there)\n", root.display())?;
    let mut total = Report::default();
    let mut slowest = std::time::Duration::ZERO;
    for (i, (name, json)) in SAMPLE_EVENTS.iter().enumerate() {
        // The bytes as the function receives them: timestamps are read exactly.
        let source = serde_json::from_str::<serde_json::Value>(json)?["eventSource"].as_str().unwrap_or_default().to_string();
        let started = std::time::Instant::now();
        let r = pipeline.deliver_bytes(json.as_bytes()).await?.response;
        slowest = slowest.max(started.elapsed());
        total.add(&r.total);
        writeln!(out, "{name} ({source}): {}", summary(&r.total))?;
        for key in &r.total.objects {
            writeln!(out, "  wrote s3://{bucket}/{key}")?;
        }
        if i == 0 {
            let again = pipeline.deliver_bytes(json.as_bytes()).await?.response;
            total.add(&again.total);
            writeln!(out, "{name} again, as a retry: {}", summary(&again.total))?;
        }
    }
    // The three everyday scenarios, generated, batched as the event source mapping would.
    let scenarios = generate_scenarios(DEMO_SEED);
    for (topic, batches) in &scenarios {
        let mut t = Report::default();
        for event in batches {
            let started = std::time::Instant::now();
            t.add(&pipeline.deliver(event.clone()).await?.response.total);
            slowest = slowest.max(started.elapsed());
        }
        total.add(&t);
        writeln!(
            out,
            "generated {topic}: {} records in {} batches -> {} rows written ({} with rescued fields), {} dead-lettered, {} files",
            t.records_in,
            batches.len(),
            t.rows_written,
            t.rows_rescued,
            t.dead_lettered,
            t.files_written + t.dead_letter_files
        )?;
    }
    writeln!(
        out,
        "\nevery record accounted for: {} in = {} written + {} dead-lettered + {} skipped + {} already committed",
        total.records_in, total.rows_written, total.dead_lettered, total.tombstones_skipped, total.already_committed
    )?;
    writeln!(
        out,
        "visible: every batch in its table, its partitions in the catalog, at most {:.1} ms after it reached ingest",
        slowest.as_secs_f64() * 1000.0
    )?;

    // Compaction, partition by partition, as the sweep would once their windows close.
    let partitions = catalog.partitions();
    for (table, values) in partitions.keys() {
        let tp = TimePartition { dt: values[0].clone(), hr: values.get(1).cloned() };
        if let (Outcome::Compacted(r), _) = pipeline.compactor.compact_partition(table, &tp, "local").await? {
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
        let prefix = layout::key_of_s3_uri(&config, &location).unwrap_or(&location).to_string();
        for obj in store.list(&prefix).await?.iter().filter(|o| layout::is_data_file(&o.key)) {
            let Some(o) = store.get(&obj.key).await? else { continue };
            let entry = by_table.entry(table.clone()).or_default();
            entry.0.extend(tributary_core::parquet::write::decode(o.body)?);
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
        assert!(
            out.contains(
                "generated names_topic: 600 records in 3 batches -> 600 rows written (0 with rescued fields), 0 dead-lettered"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "events/bad-records.json (aws:kafka): 11 records in -> 4 rows written (2 with rescued fields), 6 dead-lettered"
            ),
            "{out}"
        );
        assert!(out.contains("compacted transaction_events/dt=2026-11-22/hr=03/: 2 files -> 1 (10 rows"), "{out}");
        assert!(out.contains("columns: name string, mail string"), "{out}");
        assert!(out.contains("after it reached ingest"), "{out}");
        assert!(out.contains("table transaction_events: 10 rows"), "{out}");
        assert!(out.contains("table names_topic: 603 rows"), "{out}");
        assert!(out.contains("| Berlin | EUR"), "per branch and currency: {out}");
        assert!(out.contains(r#"| 505           | Rome   |        | {"amount":"lots"} |"#), "rescued: {out}");
        assert!(!out.contains("integer_out_of_range") && !out.contains("schema_conflict"), "only undecodable records: {out}");
        assert!(
            out.contains("0 rows written (0 with rescued fields), 0 dead-lettered, 0 tombstones skipped, 14 already committed"),
            "{out}"
        );
        // The SQL answers match the generated records.
        let (store, root, config) = open_local(&data).await.unwrap();
        let ctx = sql::session(&store, &root, &config).await.unwrap();
        let got = sql::run(&ctx, "SELECT sum(amount) AS s, count(*) AS n FROM \"transaction\"").await.unwrap();
        let mut want = 0i64;
        let (_, events) = &generate_scenarios(DEMO_SEED)[1];
        for e in events {
            for b in tributary_core::kafka::read_event(&serde_json::to_vec(e).unwrap()).unwrap() {
                for r in &b.records {
                    let v: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
                    want += v["amount"].as_i64().unwrap();
                }
            }
        }
        use arrow_array::cast::AsArray;
        assert_eq!(got[0].column(0).as_primitive::<arrow_array::types::Int64Type>().value(0), want);
        assert_eq!(got[0].column(1).as_primitive::<arrow_array::types::Int64Type>().value(0), 6000);
        // Every generated 128-bit zip reads back digit for digit.
        let got = sql::run(&ctx, "SELECT _kafka_key, zip FROM names_topic WHERE _kafka_offset >= 1000").await.unwrap();
        let mut read = std::collections::BTreeMap::new();
        for b in &got {
            let (keys, zips) = (b.column(0).as_binary::<i32>(), b.column(1).as_string::<i32>());
            for i in 0..b.num_rows() {
                read.insert(String::from_utf8(keys.value(i).to_vec()).unwrap(), zips.value(i).to_string());
            }
        }
        let (_, sent) = &scenario_records(DEMO_SEED, &SCENARIOS)[2];
        assert_eq!(read.len(), 600);
        for (key, value) in sent {
            let zip = value.split(r#""zip":"#).nth(1).and_then(|t| t.split(',').next()).unwrap();
            assert_eq!(read[key], zip, "{key}");
            assert!(zip.len() > 20, "a 128-bit integer: {zip}");
        }
        // Runs again over its own directory; refuses a directory it did not make.
        demo(&data).await.unwrap();
        let foreign = dir.path().join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("precious.txt"), "x").unwrap();
        assert!(demo(&foreign).await.unwrap_err().to_string().contains("was not made by"));
    }
}
