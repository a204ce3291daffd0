//! At the default level (`info`), the functions' logs carry no record contents and no secrets:
//! the three handlers run against moto with the functions' own log format captured, on records
//! whose keys, values and headers carry a marker (good, bad, malformed and unplaceable ones),
//! with SDK credentials that carry another; neither marker, nor its base64, may appear.

use std::io::Write;
use std::sync::{Arc, Mutex};
use tributary_aws::Instrumented;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tributary_aws::{GlueCatalog, S3Store};
use tributary_catalog::CatalogFn;
use tributary_compact::Compactor;
use tributary_core::Config;
use tributary_ingest::Ingest;
use tributary_local::pipeline::object_created;
use tributary_tests::Moto;

const CONTENT: &str = "Zq7-CONTENT-MARKER";
const SECRET: &str = "Zq7-SECRET-MARKER";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

fn record(offset: i64, value: &str) -> serde_json::Value {
    let b64 = |s: &str| STANDARD.encode(s);
    serde_json::json!({"topic": "orders", "partition": 0, "offset": offset, "timestamp": 1_795_316_400_000i64 + offset,
        "timestampType": "CREATE_TIME", "key": b64(&format!("key {CONTENT}")), "value": b64(value),
        "headers": [{"auth": format!("Bearer {CONTENT}").bytes().map(|b| b as i8).collect::<Vec<_>>()}]})
}

#[tokio::test]
async fn logs_at_the_default_level_hold_no_record_contents_or_secrets() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(tributary_aws::logging::json_subscriber(
        captured.clone(),
        tracing_subscriber::EnvFilter::new("info"),
    ));
    let moto = Moto::start();
    moto.bucket("lake").await;
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(Credentials::new("AKIATEST", SECRET, Some(SECRET.into()), None, "tests"))
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .force_path_style(true)
        .build();
    let store = S3Store::new(aws_sdk_s3::Client::from_conf(conf), "lake");
    let mut config = Config { bucket: "lake".into(), ..Config::default() };
    config.compaction.min_files = 2;
    let ingest = Ingest::new(store.clone(), config.clone()).with_metrics_sink(|_| {});

    let good = format!(r#"{{"id": 1, "note": "{CONTENT}"}}"#);
    let events = [
        // Good records, a bad value, a value too deep, a malformed record.
        serde_json::json!({"eventSource": "aws:kafka", "records": {"orders-0": [
            record(0, &good), record(1, &format!("{{\"note\": \"{CONTENT}\"")), record(2, &format!("[{CONTENT}]")),
            {"topic": "orders", "partition": 0, "offset": 3, "timestamp": CONTENT, "value": CONTENT, "headers": []},
        ]}}),
        // A new column and a conflicting type.
        serde_json::json!({"eventSource": "aws:kafka", "records": {"orders-0": [
            record(4, &format!(r#"{{"id": 2, "extra": "{CONTENT}"}}"#)), record(5, &format!(r#"{{"id": "{CONTENT}"}}"#)),
        ]}}),
        // An event that cannot be placed: it fails, and says why.
        serde_json::json!({"eventSource": "aws:kafka", "records": {"orders-0": [
            {"topic": "orders", "partition": 0, "offset": CONTENT, "value": CONTENT},
        ]}}),
    ];
    let mut files = Vec::new();
    for e in events {
        let raw = serde_json::value::to_raw_value(&e).expect("an event");
        let payload = lambda_runtime::LambdaEvent::new(raw, lambda_runtime::Context::default());
        if let Ok(r) = tributary_ingest::function_handler(&ingest, payload).await {
            files.extend(r.total.objects.into_iter().filter(|k| k.ends_with(".parquet")));
        }
    }
    assert!(files.len() >= 2, "the good records were written: {files:?}");
    let catalog = GlueCatalog::new(moto.glue_client(), "tributary");
    let cat = CatalogFn::new(store.clone(), catalog.clone(), config.clone()).with_metrics_sink(|_| {});
    let compact = Compactor::new(store, catalog, config).with_metrics_sink(|_| {}).with_clock(|| 1_795_330_000_000);
    for key in &files {
        cat.handle(&object_created("lake", key)).await.unwrap();
        compact.handle(&object_created("lake", key), "req").await.unwrap();
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("batch ingested") && logs.contains("batch failed"), "the run was logged: {logs}");
    assert!(logs.contains("partition switched"), "compaction was logged: {logs}");
    for marker in [CONTENT, SECRET] {
        for form in [marker.to_string(), STANDARD.encode(marker), STANDARD.encode(format!("key {marker}"))] {
            assert!(!logs.contains(&form), "{form:?} is in the logs:\n{logs}");
        }
    }
    for line in logs.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}
