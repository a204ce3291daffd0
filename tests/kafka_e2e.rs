//! End to end against a real Kafka-protocol broker (tansu, SQLite storage, on 127.0.0.1): the
//! three everyday scenarios produced with keys and headers, consumed by `tributary consume` (the
//! consumer mode, run as a process), landed through the real handlers in the local store and its
//! catalog, then checked with SQL and with independent readers: every good record in its table
//! exactly once, every bad one in the dead-letter area exactly once, also across a `kill -9` and
//! a restart mid-run. And the time from a record produced to the record visible to SQL.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use tributary_aws::ObjectRead;
use tributary_core::ingest::dead_letter::from_jsonl;
use tributary_local::kafka::{Produced, create_topics, produce};
use tributary_tests::{Tansu, py_json, tributary_bin};

const TOPICS: [&str; 3] = ["customer_data", "transaction", "names_topic"];

type Offset = (String, i32, i64);

/// `tributary consume` as a process, its output in files under `dir`.
struct Consumer {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Consumer {
    fn start(bootstrap: &str, data_dir: &Path, name: &str, extra: &[&str]) -> Consumer {
        let out = data_dir.with_extension(format!("{name}.out"));
        let err = data_dir.with_extension(format!("{name}.err"));
        let child = Command::new(tributary_bin())
            .args(["consume", "--bootstrap-servers", bootstrap, "--topic", &TOPICS.join(","), "--group", "e2e"])
            .args(["--data-dir", data_dir.to_str().unwrap()])
            // Short group timeouts: joins take about half the session timeout, and a rebalance
            // after a kill -9 waits for the dead member up to max.poll.interval.ms.
            .args(["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500", "-X", "max.poll.interval.ms=10000"])
            // Small fetches: tansu answers a fetch only once it has read all of it from SQLite.
            .args(["-X", "fetch.max.bytes=1048576", "-X", "max.partition.fetch.bytes=262144"])
            .args(extra)
            .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&err).unwrap()))
            .spawn()
            .expect("tributary consume starts");
        Consumer { child, out, err }
    }

    fn logs(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }

    /// Waits (at most `limit`) for the consumer to stop by itself; returns its summary.
    fn wait(mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "consumer failed: {status}\n{}", self.logs());
                return std::fs::read_to_string(&self.out).unwrap();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("consumer still running after {limit:?}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces records; returns where each landed, split into good and bad (a value that is not
/// JSON). `names_topic` records are good: their 128-bit `zip` lands in a string column.
async fn send(bootstrap: &str, records: &[Produced]) -> (BTreeSet<Offset>, BTreeSet<Offset>) {
    let acked = produce(bootstrap, records, &[]).await.expect("produced");
    let (mut good, mut bad) = (BTreeSet::new(), BTreeSet::new());
    for (r, (p, o)) in records.iter().zip(acked) {
        let parses = serde_json::from_slice::<serde_json::Value>(r.value.as_deref().unwrap()).is_ok();
        let set = if parses { &mut good } else { &mut bad };
        set.insert((r.topic.clone(), p, o));
    }
    (good, bad)
}

/// The scenarios' records, `scale` customers (twice as many transactions, a fifth as many
/// names), every 50th value invalid JSON.
fn scenario(seed: u64, scale: u64) -> Vec<Produced> {
    let counts = [("customer_data", scale), ("transaction", scale * 2), ("names_topic", scale / 5)];
    let (records, bad) = tributary_local::scenario_messages(seed, &counts, 3, 50);
    assert!(bad > 0);
    records
}

/// What the local tables hold, through SQL as a user sees them: `(topic, partition, offset)` of
/// every row, duplicates kept.
async fn table_rows(data_dir: &Path) -> Vec<Offset> {
    let (store, root, config) = tributary_local::open_local(data_dir).await.unwrap();
    let ctx = tributary_local::sql::session(&store, &root, &config).await.unwrap();
    let mut out = Vec::new();
    for table in TOPICS {
        let sql = format!("SELECT _kafka_topic, _kafka_partition, _kafka_offset FROM \"{table}\"");
        let Ok(batches) = tributary_local::sql::run(&ctx, &sql).await else { continue };
        for b in batches {
            let (t, p, o) = (
                b.column(0).as_string::<i32>(),
                b.column(1).as_primitive::<Int32Type>(),
                b.column(2).as_primitive::<Int64Type>(),
            );
            for i in 0..b.num_rows() {
                out.push((t.value(i).to_string(), p.value(i), o.value(i)));
            }
        }
    }
    out
}

/// Every dead letter's `(topic, partition, offset)`, duplicates kept.
async fn dead_letters(data_dir: &Path) -> Vec<Offset> {
    let (store, _, config) = tributary_local::open_local(data_dir).await.unwrap();
    let mut out = Vec::new();
    for m in store.list(&config.dead_letter_prefix).await.unwrap() {
        let body = store.get(&m.key).await.unwrap().unwrap().body;
        out.extend(from_jsonl(&body).unwrap().into_iter().map(|l| (l.topic, l.partition, l.offset)));
    }
    out
}

/// Exactly once: the rows are the good records, the dead letters the bad ones, none twice.
async fn assert_exactly_once(data_dir: &Path, good: &BTreeSet<Offset>, bad: &BTreeSet<Offset>) {
    let rows = table_rows(data_dir).await;
    let rows_set: BTreeSet<Offset> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), rows_set.len(), "a row is in a table twice");
    assert_eq!(rows_set.len(), good.len());
    assert!(&rows_set == good, "the tables hold other records than the good ones");
    let letters = dead_letters(data_dir).await;
    let letters_set: BTreeSet<Offset> = letters.iter().cloned().collect();
    assert_eq!(letters.len(), letters_set.len(), "a record is dead-lettered twice");
    assert!(&letters_set == bad, "dead letters {} vs bad records {}", letters_set.len(), bad.len());
}

/// The Parquet files under `tables/<table>` of the local store (all tables when `table` is empty).
fn parquet_files(data_dir: &Path, table: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![data_dir.join("s3").join(tributary_local::LOCAL_BUCKET).join("tables").join(table)];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for p in entries.flatten().map(|e| e.path()) {
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                files.push(p);
            }
        }
    }
    files
}

/// The data files of a table, read by pyarrow and DuckDB (not by our own reader).
fn independent_rows(data_dir: &Path, table: &str) -> (u64, u64, u64) {
    let files: Vec<String> = parquet_files(data_dir, table).iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let v = py_json("read_parquet.py", &args);
    (
        v["pyarrow"]["rows"].as_u64().unwrap(),
        v["duckdb"]["rows"].as_u64().unwrap(),
        v["duckdb"]["distinct_offsets"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_lands_exactly_once_across_a_kill_and_restart() {
    let tansu = Tansu::start();
    let topics: Vec<(&str, i32)> = TOPICS.iter().map(|t| (*t, 3)).collect();
    create_topics(&tansu.bootstrap, &topics, &[]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // Half the records, then a consumer with small batches, killed (SIGKILL) after a few files.
    let (mut good, mut bad) = send(&tansu.bootstrap, &scenario(1, 1_500)).await;
    let total = good.len() + bad.len();
    let first = Consumer::start(&tansu.bootstrap, &data, "first", &["--batch-size", "20", "--batching-window-ms", "100"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while parquet_files(&data, "").len() < 10 {
        assert!(Instant::now() < deadline, "no files after 120 s\n{}", first.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(first); // kill -9: no goodbye, offsets of the batch in flight not committed
    let landed = table_rows(&data).await.len() + dead_letters(&data).await.len();
    assert!(landed < total, "the kill came mid-run: {landed} of {total} records had landed");

    // More records while the consumer is down; then a restart that carries on.
    let (g, b) = send(&tansu.bootstrap, &scenario(2, 500)).await;
    good.extend(g);
    bad.extend(b);
    let second = Consumer::start(&tansu.bootstrap, &data, "second", &["--batch-size", "500", "--until-idle", "15"]);
    let summary = second.wait(Duration::from_secs(300));
    println!("after the restart:\n{summary}");
    assert!(summary.contains("every record accounted for"), "{summary}");
    assert!(summary.contains(" = "), "unbalanced counts: {summary}");

    assert_exactly_once(&data, &good, &bad).await;
    // The same through independent readers, straight from the files.
    let customers = good.iter().filter(|(t, _, _)| t == "customer_data").count() as u64;
    assert_eq!(independent_rows(&data, "customer_data"), (customers, customers, customers));

    // SQL answers as a user asks them.
    let (store, root, config) = tributary_local::open_local(&data).await.unwrap();
    let ctx = tributary_local::sql::session(&store, &root, &config).await.unwrap();
    let got = tributary_local::sql::run(&ctx, "SELECT count(*), count(DISTINCT _kafka_key) FROM \"transaction\"").await.unwrap();
    let transactions = good.iter().filter(|(t, _, _)| t == "transaction").count() as i64;
    assert_eq!(got[0].column(0).as_primitive::<Int64Type>().value(0), transactions);
    assert!(got[0].column(1).as_primitive::<Int64Type>().value(0) <= transactions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_from_produced_to_visible_in_sql() {
    let tansu = Tansu::start();
    create_topics(&tansu.bootstrap, &[("transaction", 3)], &[]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // --until-idle counts the group join too: leave it room (joins take about 3 s here).
    let consumer = Consumer::start(&tansu.bootstrap, &data, "fresh", &["--until-idle", "10"]);

    // Probes one at a time, with the event source mapping's default window (500 ms): each
    // produced, then looked for with SQL until it shows (bounded).
    let mut latencies = Vec::new();
    for i in 0..12u64 {
        let probe = Produced {
            topic: "transaction".into(),
            partition: Some((i % 3) as i32),
            key: Some(format!("probe-{i}").into_bytes()),
            value: Some(format!(r#"{{"branch":"Probe","currency":"EUR","amount":{i}}}"#).into_bytes()),
            headers: vec![("probe".into(), vec![0x80])],
        };
        send(&tansu.bootstrap, std::slice::from_ref(&probe)).await;
        let sent = Instant::now(); // acknowledged by the broker
        let sql = format!("SELECT count(*) FROM \"transaction\" WHERE amount = {i} AND branch = 'Probe'");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((store, root, config)) = tributary_local::open_local(&data).await
                && let Ok(ctx) = tributary_local::sql::session(&store, &root, &config).await
                && let Ok(b) = tributary_local::sql::run(&ctx, &sql).await
                && b.first().is_some_and(|b| b.column(0).as_primitive::<Int64Type>().value(0) == 1)
            {
                break;
            }
            assert!(Instant::now() < deadline, "probe {i} not visible after 60 s\n{}", consumer.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies.push(sent.elapsed());
    }
    let summary = consumer.wait(Duration::from_secs(120));
    // The first probe includes the consumer group's join; the rest are steady state.
    latencies.remove(0);
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "freshness, acknowledged by the broker -> visible to SQL (tansu on 127.0.0.1, batching window 500 ms, debug build): \
         median {:.0} ms, max {:.0} ms over {} probes\n{summary}",
        ms(latencies[latencies.len() / 2]),
        ms(latencies[latencies.len() - 1]),
        latencies.len()
    );
    assert!(summary.contains("rows written        12"), "{summary}");
}
