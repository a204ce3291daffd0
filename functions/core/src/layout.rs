//! Object keys. Every key is derived from the table, time partition, topic, partition and
//! offsets, never from clocks or random ids, so a retried batch writes the same keys again.
//!
//! ```text
//! tables/<table>/dt=2026-11-22/hr=03/part-<topic>~<partition>~<first>~<last>.parquet
//! dead-letter/<table>/dt=2026-11-22/part-<topic>~<partition>~<first>~<last>.jsonl
//! _tributary/schemas/<table>.json
//! ```
//!
//! `~` cannot occur in a Kafka topic name (`[a-zA-Z0-9._-]`), so names parse back without
//! ambiguity; offsets are zero-padded so names sort by offset. The `part-` prefix keeps topics
//! that start with `_` or `.` from producing files that Athena treats as hidden.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::partition::TimePartition;

/// The offsets a data file holds for one topic-partition: every record of the batch
/// `first..=last` that belongs to this time partition and was written to the table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileRange {
    pub topic: String,
    pub partition: i32,
    pub first: i64,
    pub last: i64,
}

impl FileRange {
    pub fn file_stem(&self) -> String {
        format!("part-{}~{}~{:020}~{:020}", self.topic, self.partition, self.first, self.last)
    }

    /// Whether both ranges hold an offset of the same topic-partition.
    pub fn overlaps(&self, other: &FileRange) -> bool {
        self.topic == other.topic && self.partition == other.partition && self.first <= other.last && other.first <= self.last
    }

    /// Parses a file name (the last segment of a key) back into its range.
    pub fn parse(file_name: &str) -> Option<FileRange> {
        let stem = file_name.strip_prefix("part-")?;
        let stem = stem.rsplit_once('.').map(|(s, _)| s).unwrap_or(stem);
        let mut it = stem.split('~');
        let (topic, partition, first, last) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || topic.is_empty() {
            return None;
        }
        let r = FileRange {
            topic: topic.into(),
            partition: partition.parse().ok()?,
            first: first.parse().ok()?,
            last: last.parse().ok()?,
        };
        (r.first <= r.last).then_some(r)
    }
}

pub fn table_root(cfg: &Config, table: &str) -> String {
    format!("{}{table}/", cfg.table_prefix)
}

pub fn partition_prefix(cfg: &Config, table: &str, tp: &TimePartition) -> String {
    format!("{}{}", table_root(cfg, table), tp.path())
}

pub fn data_key(cfg: &Config, table: &str, tp: &TimePartition, range: &FileRange) -> String {
    format!("{}{}.parquet", partition_prefix(cfg, table, tp), range.file_stem())
}

/// The claim log of one Kafka partition's offsets in one time partition of a table
/// ([`crate::claims`]).
pub fn claim_key(cfg: &Config, table: &str, tp: &TimePartition, topic: &str, partition: i32) -> String {
    format!("{}claims/{table}/{}{topic}~{partition}.json", cfg.state_prefix, tp.path())
}

pub fn dead_letter_key(cfg: &Config, table: &str, date: &str, range: &FileRange) -> String {
    format!("{}{}.jsonl", dead_letter_prefix(cfg, table, date), range.file_stem())
}

/// Where a table's dead letters of one Kafka date are.
pub fn dead_letter_prefix(cfg: &Config, table: &str, date: &str) -> String {
    format!("{}{table}/dt={date}/", cfg.dead_letter_prefix)
}

pub fn schema_key(cfg: &Config, table: &str) -> String {
    format!("{}{table}.json", schemas_prefix(cfg))
}

/// Where the schema registry keeps one object per table: listing it lists the tables.
pub fn schemas_prefix(cfg: &Config) -> String {
    format!("{}schemas/", cfg.state_prefix)
}

/// The table a schema-registry key is for (`_tributary/schemas/orders.json` → `orders`).
pub fn table_of_schema_key<'a>(cfg: &Config, key: &'a str) -> Option<&'a str> {
    key.strip_prefix(&schemas_prefix(cfg))?.strip_suffix(".json")
}

/// The object key an S3 event names: event keys are URL-encoded, with `+` for a space.
pub fn decode_event_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// The object keys an S3 object-created event names, URL-decoded: an EventBridge `Object Created`
/// event, or an S3 notification (its `ObjectCreated:*` records). `None` for any other event, and
/// for one that names no key where it must.
pub fn object_created_keys(v: &serde_json::Value) -> Option<Vec<String>> {
    let key = |at: &serde_json::Value, path: &str| at.pointer(path).and_then(serde_json::Value::as_str).map(decode_event_key);
    if v.get("detail-type").and_then(serde_json::Value::as_str) == Some("Object Created") {
        return key(v, "/detail/object/key").map(|k| vec![k]);
    }
    let records = v.get("Records")?.as_array()?;
    records
        .iter()
        .filter(|r| r.get("eventName").and_then(serde_json::Value::as_str).is_some_and(|n| n.starts_with("ObjectCreated")))
        .map(|r| key(r, "/s3/object/key"))
        .collect()
}

/// Which offsets of which topic-partitions a time partition already holds, from the names of
/// the files in it.
#[derive(Debug, Default, Clone)]
pub struct Coverage {
    ranges: BTreeMap<(String, i32), Vec<(i64, i64)>>,
}

impl Coverage {
    /// From the data files listed under a partition prefix; other files are ignored.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Coverage::from_files(keys, ".parquet")
    }

    /// From the files named by offset range with this extension (`.parquet` data files,
    /// `.jsonl` dead-letter files); other keys are ignored.
    pub fn from_files<'a>(keys: impl IntoIterator<Item = &'a str>, extension: &str) -> Self {
        let mut c = Coverage::default();
        for key in keys {
            let name = key.rsplit('/').next().unwrap_or(key);
            if !name.ends_with(extension) {
                continue;
            }
            if let Some(r) = FileRange::parse(name) {
                c.add(&r);
            }
        }
        c
    }

    pub fn extend(&mut self, other: &Coverage) {
        for (k, v) in &other.ranges {
            self.ranges.entry(k.clone()).or_default().extend(v.iter().copied());
        }
    }

    pub fn add(&mut self, r: &FileRange) {
        self.ranges.entry((r.topic.clone(), r.partition)).or_default().push((r.first, r.last));
    }

    pub fn covers(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.ranges.get(&(topic.to_string(), partition)).is_some_and(|rs| rs.iter().any(|(a, b)| (*a..=*b).contains(&offset)))
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_parse_back() {
        let cfg = Config::default();
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

    #[test]
    fn coverage_from_listing() {
        let c = Coverage::from_keys([
            "tables/t/dt=2026-11-22/hr=03/part-a-b~0~00000000000000000010~00000000000000000019.parquet",
            "tables/t/dt=2026-11-22/hr=03/part-a-b~1~00000000000000000000~00000000000000000005.parquet",
            "tables/t/dt=2026-11-22/hr=03/_tributary.json",
        ]);
        assert!(c.covers("a-b", 0, 10) && c.covers("a-b", 0, 19) && c.covers("a-b", 1, 0));
        assert!(!c.covers("a-b", 0, 20) && !c.covers("a-b", 2, 10) && !c.covers("a", 0, 10));
    }
}
