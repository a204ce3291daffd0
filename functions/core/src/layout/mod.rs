//! Object keys. Every key is derived from the table, time partition, topic, partition and
//! offsets, never from clocks or random ids, so a retried batch writes the same keys again.
//!
//! ```text
//! tables/<table>/dt=2026-11-22/hr=03/part-<topic>~<partition>~<first>~<last>.parquet
//! dead-letter/<table>/dt=2026-11-22/part-<topic>~<partition>~<first>~<last>.jsonl
//! tables/<table>/_v/dt=2026-11-22/hr=03/v000001-<attempt>/compacted-000001-0000.parquet
//! _tributary/schemas/<table>.json
//! _tributary/partitions/<table>/dt=2026-11-22/hr=03.json       (a partition's state)
//! _tributary/claims/<table>/dt=2026-11-22/hr=03/<topic>~<partition>.json
//! _tributary/retire/<table>/dt=2026-11-22/hr=03                 (files to delete after a switch)
//! _tributary/pending/<table>/dt=2026-11-22/hr=03                (compaction has work left here)
//! _tributary/sweeps/<function>.json                             (the day of the last deep sweep)
//! failed-batches/…                                              (the event source mapping's)
//! ```
//!
//!
//! `~` cannot occur in a Kafka topic name (`[a-zA-Z0-9._-]`), so names parse back without
//! ambiguity; offsets are zero-padded so names sort by offset. The `part-` prefix keeps topics
//! that start with `_` or `.` from producing files that Athena treats as hidden.
//!
//! Also here: the time partition a row falls in ([`time_partition`]), the keys S3 events name
//! ([`object_created_keys`]), and sets of Kafka offsets ([`OffsetSet`]). No other module or
//! crate formats a key.

mod keys;
mod offsets;
mod s3_events;
pub mod time_partition;

pub use keys::*;
pub use offsets::*;
pub use s3_events::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::layout::time_partition::TimePartition;

    #[test]
    fn keys_are_deterministic_and_parse_back() {
        let cfg = Config { bucket: "lake".into(), ..Config::default() };
        let tp = TimePartition { dt: "2026-11-22".into(), hr: Some("03".into()) };
        let r = FileRange { topic: "orders-v1.eu".into(), partition: 3, first: 100, last: 199 };
        let key = data_key(&cfg, "orders", &tp, &r);
        assert_eq!(
            key,
            "tables/orders/dt=2026-11-22/hr=03/part-orders-v1.eu~3~00000000000000000100~00000000000000000199.parquet"
        );
        assert_eq!(FileRange::parse(key.rsplit('/').next().unwrap()), Some(r.clone()));
        assert_eq!(
            dead_letter_key(&cfg, "orders", "2026-11-22", &r),
            "dead-letter/orders/dt=2026-11-22/part-orders-v1.eu~3~00000000000000000100~00000000000000000199.jsonl"
        );
        assert_eq!(schema_key(&cfg, "orders"), "_tributary/schemas/orders.json");
        assert!(key.starts_with(&day_prefix(&cfg, "orders", "2026-11-22")) && is_data_file(&key) && !is_version_key(&key));
        let version = version_location(&cfg, "orders", &tp, 2, "req");
        let carried = carried_key(&key, &version);
        assert_eq!(carried, format!("{version}{}", key.rsplit('/').next().unwrap()), "a carried file keeps its name");
        assert!(is_version_key(&carried) && is_data_file(&output_key(&version, 0)));
        assert!(!carried.starts_with(&day_prefix(&cfg, "orders", "2026-11-22")), "versions are not under the day");
        let uri = s3_uri(&cfg, &version);
        assert_eq!(key_of_s3_uri(&cfg, &uri), Some(version.as_str()));
        assert_eq!(key_of_s3_uri(&cfg, &uri.replacen("lake", "lakehouse", 1)), None);
        assert_eq!(uri, format!("s3://lake/{version}"));
        assert_eq!(table_of_schema_key(&cfg, &schema_key(&cfg, "orders")), Some("orders"));
        assert_eq!(table_of_schema_key(&cfg, "_tributary/partitions/orders.json"), None);
        for bad in ["x.parquet", "part-a~1~2.parquet", "part-~1~2~3.parquet", "part-a~1~9~3.parquet", "part-a~b~1~2.parquet"] {
            assert_eq!(FileRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn object_created_keys_from_both_event_shapes() {
        use serde_json::json;
        let eb = json!({"detail-type": "Object Created", "detail": {"object": {"key": "tables/t/dt%3D1/a+b.parquet"}}});
        assert_eq!(object_created_keys(&eb), Some(vec!["tables/t/dt=1/a b.parquet".to_string()]));
        let s3 = json!({"Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "a"}}},
            {"eventName": "ObjectRemoved:Delete", "s3": {"object": {"key": "b"}}}
        ]});
        assert_eq!(object_created_keys(&s3), Some(vec!["a".to_string()]));
        assert_eq!(object_created_keys(&json!({"x": 1})), None);
        assert_eq!(object_created_keys(&json!({"Records": 5})), None);
    }

    #[test]
    fn event_keys_decode() {
        assert_eq!(decode_event_key("tables/t/dt%3D2026-11-22/a+b%2Bc%7E1.parquet"), "tables/t/dt=2026-11-22/a b+c~1.parquet");
    }

    fn tp(dt: &str, hr: Option<&str>) -> TimePartition {
        TimePartition { dt: dt.into(), hr: hr.map(str::to_string) }
    }

    #[test]
    fn keys_classify() {
        let cfg = Config::default();
        assert!(is_ingest_file("tables/t/dt=2026-11-22/hr=03/part-x~0~1~2.parquet"));
        assert!(!is_ingest_file("tables/t/_v/dt=2026-11-22/hr=03/v000001-a/compacted-0000.parquet"));
        assert!(is_compacted_file("tables/t/_v/dt=2026-11-22/hr=03/v000001-a/compacted-0000.parquet"));
        let (t, p) = table_partition(&cfg, "tables/t/_v/dt=2026-11-22/hr=03/v000001-a/part-x~0~1~2.parquet").unwrap();
        assert_eq!((t.as_str(), p.values()), ("t", vec!["2026-11-22".to_string(), "03".to_string()]));
        assert_eq!(table_partition(&cfg, "dead-letter/t/dt=2026-11-22/x.jsonl"), None);
        assert_eq!(state_key(&cfg, "t", &tp("2026-11-22", Some("03"))), "_tributary/partitions/t/dt=2026-11-22/hr=03.json");
        for p in [tp("2026-11-22", Some("03")), tp("2026-11-22", None)] {
            let key = state_key(&cfg, "t", &p);
            assert!(key.starts_with(&day_states_prefix(&cfg, "t", "2026-11-22")), "{key}");
            assert_eq!(partition_of_state_key(&key), Some(p.clone()));
            let marker = marker_key(&cfg, Marker::Retire, "t", &p);
            assert!(marker.starts_with("_tributary/retire/t/dt=2026-11-22"), "{marker}");
            assert_eq!(partition_of_marker(&cfg, Marker::Retire, &marker), Some(("t".to_string(), p.clone())));
            assert_eq!(partition_of_marker(&cfg, Marker::Pending, &marker), None, "kinds do not mix");
            let pending = marker_key(&cfg, Marker::Pending, "t", &p);
            assert!(pending.starts_with(&table_markers_prefix(&cfg, Marker::Pending, "t")), "{pending}");
            assert_eq!(partition_of_marker(&cfg, Marker::Pending, &pending), Some(("t".to_string(), p)));
        }
        for key in ["_tributary/retire/t", "_tributary/retire/t/x", "_tributary/partitions/t/dt=2026-11-22.json"] {
            assert_eq!(partition_of_marker(&cfg, Marker::Retire, key), None, "{key}");
        }
    }

    #[test]
    fn location_versions_read_back() {
        let cfg = Config::default();
        let tp = tp("2026-11-22", Some("03"));
        let first = partition_prefix(&cfg, "t", &tp);
        assert_eq!(location_version(&format!("s3://b/{first}")), 0);
        assert_eq!(location_version(&format!("s3://b/{}", version_location(&cfg, "t", &tp, 12, "req1"))), 12);
        // A table or partition value that looks like a version directory is not one.
        assert_eq!(location_version("s3://b/tables/v000003-x/dt=2026-11-22/"), 0);
    }
}
