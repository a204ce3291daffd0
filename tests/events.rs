//! The sample events in `events/` parse as AWS sends them.

use aws_lambda_events::event::s3::S3Event;
use tributary_core::kafka::{batches, parse_event};
use tributary_core::layout::{FileRange, decode_event_key};
use tributary_tests::event_file;

#[test]
fn kafka_sample_events_parse() {
    for (name, source, tps) in [
        ("msk-batch.json", "aws:kafka", 3),
        ("self-managed-kafka-batch.json", "SelfManagedKafka", 1),
        ("bad-records.json", "aws:kafka", 1),
    ] {
        let e = parse_event(&event_file(name)).unwrap();
        assert_eq!(e.event_source.as_deref(), Some(source), "{name}");
        let b = batches(e).unwrap();
        assert_eq!(b.len(), tps, "{name}");
        assert!(b.iter().all(|tp| !tp.records.is_empty()));
    }
    let b = batches(parse_event(&event_file("msk-batch.json")).unwrap()).unwrap();
    assert!(b.iter().any(|tp| tp.topic == "transaction-events"), "a topic with '-' in its name");
}

#[test]
fn s3_put_event_parses_and_names_a_data_file() {
    let e: S3Event = serde_json::from_slice(&event_file("s3-put.json")).unwrap();
    let key = e.records[0].s3.object.key.clone().unwrap();
    let decoded = decode_event_key(&key);
    assert!(decoded.starts_with("tables/customer_data/dt=2026-11-22/hr=03/"), "{decoded}");
    assert!(FileRange::parse(decoded.rsplit('/').next().unwrap()).is_some());
}

#[test]
fn compact_and_catalog_sample_events_parse() {
    let eb: serde_json::Value = serde_json::from_slice(&event_file("eventbridge-object-created.json")).unwrap();
    let key = "tables/customer_data/dt=2026-11-22/hr=03/part-customer_data~0~00000000000000000100~00000000000000000104.parquet";
    assert_eq!(tributary_compact::parse_trigger(&eb).unwrap(), tributary_compact::Trigger::Keys(vec![key.into()]));
    assert_eq!(tributary_catalog::trigger_keys(&eb).unwrap(), tributary_catalog::Trigger::Keys(vec![key.into()]));
    let s3: serde_json::Value = serde_json::from_slice(&event_file("s3-put.json")).unwrap();
    assert_eq!(tributary_compact::parse_trigger(&s3).unwrap(), tributary_compact::Trigger::Keys(vec![key.into()]));
    let sweep: serde_json::Value = serde_json::from_slice(&event_file("compact-sweep.json")).unwrap();
    assert_eq!(tributary_compact::parse_trigger(&sweep).unwrap(), tributary_compact::Trigger::Sweep);
    let sync: serde_json::Value = serde_json::from_slice(&event_file("catalog-sync.json")).unwrap();
    assert_eq!(tributary_catalog::trigger_keys(&sync).unwrap(), tributary_catalog::Trigger::Sync { tables: None, since: None });
}
