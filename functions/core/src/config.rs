//! Pipeline configuration: one JSON document (the `TRIBUTARY_CONFIG` environment variable in
//! Lambda), every field optional with a sensible default.
//!
//! ```json
//! {
//!   "bucket": "my-lake",
//!   "granularity": "hour",
//!   "topics": {
//!     "orders-v1": { "table": "orders", "event_time_field": "created_at" },
//!     "payments":  { "schema": [ {"name": "id", "type": "bigint"}, {"name": "amount", "type": "decimal(18,2)"} ] }
//!   }
//! }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::naming;
use crate::table::PARTITION_KEYS;
use crate::table::schema::{ColumnType, TableSchema};

/// Why a configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON of the configuration's shape.
    #[error("configuration is not valid JSON for Tributary: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON of the right shape with a value Tributary cannot use.
    #[error("configuration: {0}")]
    Invalid(String),
}

/// Time partition granularity of the Hive layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// `dt=YYYY-MM-DD/hr=HH/`
    #[default]
    Hour,
    /// `dt=YYYY-MM-DD/`
    Day,
}

/// What happens to records whose value is null (Kafka tombstones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TombstonePolicy {
    /// Counted and skipped.
    #[default]
    Skip,
    /// Written to the dead-letter area like a bad record.
    DeadLetter,
}

/// What happens to fields that a pinned schema does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnknownFieldPolicy {
    /// The record lands; the field's JSON goes to the rescued-data column.
    #[default]
    Rescue,
    /// The whole record goes to the dead-letter area.
    DeadLetter,
    /// The field is dropped (as Firehose does); the record is kept.
    Ignore,
}

/// What happens to a field whose value its column cannot store as it is (another type, an
/// integer too big, another spelling of the column's key, a mixed-type array, a repeated key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// The record lands with the column NULL and the field's JSON in the rescued-data column.
    #[default]
    Rescue,
    /// The whole record goes to the dead-letter area (Tributary's behaviour before rescue).
    DeadLetter,
}

/// A column of a pinned schema, with its Athena type (`bigint`, `decimal(18,2)`,
/// `array<struct<a:string>>`, ...). `source` is the JSON key, when it differs from `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedColumn {
    /// The column's name in the table.
    pub name: String,
    /// The column's Athena type.
    #[serde(rename = "type")]
    pub ty: String,
    /// The record's JSON key, when it differs from `name`.
    #[serde(default)]
    pub source: Option<String>,
}

/// What one topic overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Table name; defaults to the topic made a valid Athena identifier.
    #[serde(default)]
    pub table: Option<String>,
    /// Field of the record that holds the event time (a timestamp, a date, or epoch
    /// milliseconds); defaults to the Kafka record timestamp.
    #[serde(default)]
    pub event_time_field: Option<String>,
    /// A pinned schema, enforced instead of inferring types.
    #[serde(default)]
    pub schema: Option<Vec<PinnedColumn>>,
    /// What becomes of a field a pinned schema does not name.
    #[serde(default)]
    pub unknown_fields: UnknownFieldPolicy,
    /// What becomes of a value its column cannot hold.
    #[serde(default)]
    pub conflicts: ConflictPolicy,
}

/// The configuration every function reads (`TRIBUTARY_CONFIG` and the environment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The data bucket.
    pub bucket: String,
    /// Prefix of the tables' data (`<prefix><table>/dt=.../`).
    pub table_prefix: String,
    /// Prefix of the dead-letter area (`<prefix><table>/dt=.../`).
    pub dead_letter_prefix: String,
    /// Prefix of Tributary's own state (schemas, leases); never read by Athena.
    pub state_prefix: String,
    /// Time partitions by hour or by day.
    pub granularity: Granularity,
    /// What becomes of a record with a null value.
    pub tombstones: TombstonePolicy,
    /// A string value longer than this many bytes is dead-lettered.
    pub max_field_bytes: usize,
    /// JSON nesting deeper than this is dead-lettered.
    pub max_depth: usize,
    /// Infer `date` / `timestamp` columns from ISO-8601 strings.
    pub infer_temporal: bool,
    /// zstd level of data files written by ingest.
    pub zstd_level: i32,
    /// Default event-time field for topics that don't name one.
    pub event_time_field: Option<String>,
    /// Per-topic overrides, by topic name.
    pub topics: BTreeMap<String, TopicConfig>,
    /// The Glue database of the tables.
    pub database: String,
    /// When and how partitions are compacted.
    pub compaction: CompactionPolicy,
    /// The CloudWatch namespace of the functions' EMF metrics: one per stack
    /// (`TRIBUTARY_METRICS_NAMESPACE`), so one stack's alarms never read another's metrics.
    pub metrics_namespace: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            table_prefix: "tables/".into(),
            dead_letter_prefix: "dead-letter/".into(),
            state_prefix: "_tributary/".into(),
            granularity: Granularity::Hour,
            tombstones: TombstonePolicy::Skip,
            max_field_bytes: 1 << 20,
            max_depth: 64,
            infer_temporal: true,
            zstd_level: 1,
            event_time_field: None,
            topics: BTreeMap::new(),
            database: "tributary".into(),
            compaction: CompactionPolicy::default(),
            metrics_namespace: "Tributary".into(),
        }
    }
}

impl Config {
    /// Parses and validates a JSON configuration.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let config: Config = if json.trim().is_empty() { Config::default() } else { serde_json::from_str(json)? };
        config.validate()?;
        Ok(config)
    }

    /// The functions' configuration: `TRIBUTARY_CONFIG` (JSON), with the stack's own settings
    /// overriding it: `TRIBUTARY_BUCKET`, `TRIBUTARY_DATABASE`, `TRIBUTARY_METRICS_NAMESPACE` and
    /// `TRIBUTARY_REPLACED_RETENTION_HOURS`. A bucket is required.
    pub fn from_env() -> Result<Self, ConfigError> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Config::from_env`] over any variable lookup (tests pass a map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut cfg = Config::from_json(&var("TRIBUTARY_CONFIG").unwrap_or_default())?;
        cfg.refuse_moved_areas()?;
        if let Some(bucket) = var("TRIBUTARY_BUCKET") {
            cfg.bucket = bucket;
        }
        if let Some(db) = var("TRIBUTARY_DATABASE") {
            cfg.database = db;
        }
        if let Some(ns) = var("TRIBUTARY_METRICS_NAMESPACE").filter(|v| !v.is_empty()) {
            cfg.metrics_namespace = ns;
        }
        if let Some(h) = var("TRIBUTARY_REPLACED_RETENTION_HOURS") {
            cfg.compaction.replaced_retention_hours = h.trim().parse().ok().filter(|h| *h >= 1).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "TRIBUTARY_REPLACED_RETENTION_HOURS must be a whole number of hours >= 1, not {h:?}"
                ))
            })?;
        }
        if cfg.bucket.is_empty() {
            return Err(ConfigError::Invalid("no bucket: set TRIBUTARY_BUCKET or \"bucket\" in TRIBUTARY_CONFIG".into()));
        }
        Ok(cfg)
    }

    /// The deployed stack grants, triggers and expires by the default areas (`tables/`,
    /// `dead-letter/`, `_tributary/`): its IAM policies, EventBridge patterns and lifecycle rules
    /// name them. A function configured for other prefixes would be refused by IAM at its first
    /// write, or write where no trigger sees it; refuse the configuration instead, with the reason.
    fn refuse_moved_areas(&self) -> Result<(), ConfigError> {
        let d = Config::default();
        for (name, value, default) in [
            ("table_prefix", &self.table_prefix, &d.table_prefix),
            ("dead_letter_prefix", &self.dead_letter_prefix, &d.dead_letter_prefix),
            ("state_prefix", &self.state_prefix, &d.state_prefix),
        ] {
            if value != default {
                return Err(ConfigError::Invalid(format!(
                    "{name} {value:?}: the deployed functions use {default:?} only (the stack's IAM grants, \
                     EventBridge triggers and lifecycle rules name that prefix); remove {name} from TRIBUTARY_CONFIG"
                )));
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (prefix, what) in [
            (&self.table_prefix, "table_prefix"),
            (&self.dead_letter_prefix, "dead_letter_prefix"),
            (&self.state_prefix, "state_prefix"),
        ] {
            if !prefix.is_empty() && !prefix.ends_with('/') {
                return Err(ConfigError::Invalid(format!("{what} must be empty or end with '/': {prefix:?}")));
            }
        }
        let prefixes = [&self.table_prefix, &self.dead_letter_prefix, &self.state_prefix];
        for (i, a) in prefixes.iter().enumerate() {
            for b in prefixes.iter().skip(i + 1) {
                if a.starts_with(b.as_str()) || b.starts_with(a.as_str()) {
                    return Err(ConfigError::Invalid(format!("prefixes {a:?} and {b:?} overlap")));
                }
            }
        }
        if !(1..=100).contains(&self.max_depth) {
            // serde_json stops at 128 levels on its own; stay well below.
            return Err(ConfigError::Invalid(format!("max_depth must be 1..=100, not {}", self.max_depth)));
        }
        let c = &self.compaction;
        if c.min_files < 2
            || c.max_partial_files < 2
            || c.row_group_rows == 0
            || c.target_file_bytes < (8 << 20)
            || !(1..=22).contains(&c.zstd_level)
        {
            return Err(ConfigError::Invalid(
                "compaction: min_files >= 2, max_partial_files >= 2, row_group_rows >= 1, target_file_bytes >= 8 MiB, zstd_level 1..=22".into(),
            ));
        }
        // A sealed file is carried into each new version by one CopyObject, which S3 limits to
        // 5 GB; the budget must hold a whole target file, or no full file could ever be made.
        if c.target_file_bytes > (4 << 30) || c.max_read_bytes < c.target_file_bytes {
            return Err(ConfigError::Invalid(
                "compaction: target_file_bytes <= 4 GiB (CopyObject's 5 GB limit) and max_read_bytes >= target_file_bytes".into(),
            ));
        }
        if c.replaced_retention_hours == 0 {
            return Err(ConfigError::Invalid(
                "compaction: replaced_retention_hours >= 1 (running queries read replaced files)".into(),
            ));
        }
        if !(1..=22).contains(&self.zstd_level) {
            return Err(ConfigError::Invalid(format!("zstd_level must be 1..=22, not {}", self.zstd_level)));
        }
        for (topic, tc) in &self.topics {
            if let Some(table) = &tc.table
                && !naming::is_valid_identifier(table)
            {
                return Err(ConfigError::Invalid(format!(
                    "topic {topic:?}: table {table:?} is not a lower-case Athena identifier"
                )));
            }
            if tc.schema.is_some() {
                self.pinned_schema(topic)?;
            }
        }
        Ok(())
    }

    /// The table a topic lands in.
    pub fn table_for(&self, topic: &str) -> String {
        self.topics.get(topic).and_then(|t| t.table.clone()).unwrap_or_else(|| naming::table_name(topic))
    }

    /// The event-time column (normalized name) of a topic, if any.
    pub fn event_time_column(&self, topic: &str) -> Option<String> {
        self.topics
            .get(topic)
            .and_then(|t| t.event_time_field.clone())
            .or_else(|| self.event_time_field.clone())
            .map(|f| naming::column_name(&f, &PARTITION_KEYS))
    }

    /// The unknown-field policy of a topic.
    pub fn unknown_fields(&self, topic: &str) -> UnknownFieldPolicy {
        self.topics.get(topic).map(|t| t.unknown_fields).unwrap_or_default()
    }

    /// The conflict policy of a topic.
    pub fn conflicts(&self, topic: &str) -> ConflictPolicy {
        self.topics.get(topic).map(|t| t.conflicts).unwrap_or_default()
    }

    /// The pinned schema of a topic, parsed, if the configuration pins one.
    pub fn pinned_schema(&self, topic: &str) -> Result<Option<TableSchema>, ConfigError> {
        let Some(cols) = self.topics.get(topic).and_then(|t| t.schema.as_ref()) else { return Ok(None) };
        let mut schema = TableSchema::default();
        for c in cols {
            let ty = ColumnType::parse(&c.ty)
                .map_err(|e| ConfigError::Invalid(format!("topic {topic:?}, column {:?}: {e}", c.name)))?;
            let name = naming::column_name(&c.name, &PARTITION_KEYS);
            if schema.column(&name).is_some() {
                return Err(ConfigError::Invalid(format!("topic {topic:?}: column {name:?} named twice")));
            }
            let source = c.source.clone().unwrap_or_else(|| c.name.clone());
            schema.push(name, source, ty);
        }
        // A pinned schema is the whole contract, declared up front: its rescued-data column too,
        // when the policies of a topic of its table can rescue a field (every topic of one table
        // must commit the same schema).
        let table = self.table_for(topic);
        let rescues =
            |t: &str| self.conflicts(t) == ConflictPolicy::Rescue || self.unknown_fields(t) == UnknownFieldPolicy::Rescue;
        if rescues(topic) || self.topics.keys().any(|t| self.table_for(t) == table && rescues(t)) {
            schema.add_rescue_column();
        }
        schema.pinned = true;
        Ok(Some(schema))
    }
}

/// When and how partitions are compacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactionPolicy {
    /// Compact an open partition once it holds this many ingest files...
    pub min_files: usize,
    /// ...or this many bytes of them.
    pub min_bytes: u64,
    /// A partition's window is closed this long after it ends (late records still arrive).
    pub grace_seconds: u64,
    /// The compacted file size compaction packs towards (Iceberg's `write.target-file-size-bytes`
    /// and S3 Tables' default, 512 MiB). An output is closed and the next begun past it; a file of
    /// at least three quarters of it is *sealed*: never read or re-encoded by the compactor again,
    /// only copied server-side into later versions. (`max_file_bytes`, its old name, is accepted.)
    #[serde(alias = "max_file_bytes")]
    pub target_file_bytes: u64,
    /// The most partial files an open partition keeps: at this many, the next compaction merges
    /// them (with the new ingest files) into sealed files, though below the target. Bounds the
    /// files readers open and the copies each switch makes, for partitions that fill slowly.
    pub max_partial_files: usize,
    /// The most input bytes one compaction reads before it commits; the next trigger or sweep goes
    /// on with the rest. The default, 4 GiB, is read and written again in about 100 s at S3's
    /// documented ~85 MB/s per connection (see docs/compaction.md), well inside the compact
    /// function's 900 s timeout.
    pub max_read_bytes: u64,
    /// Rows per row group in compacted files (Athena likes them large).
    pub row_group_rows: usize,
    /// zstd level of compacted files (ingest writes at its own, lower level).
    pub zstd_level: i32,
    /// How long a compactor holds a partition before another may take over. Longer than the
    /// compact function's timeout (900 s) plus clock skew, so a lease never expires under a
    /// running compactor: Lambda stops the invocation first (the template test checks it).
    pub lease_seconds: u64,
    /// Files a switch replaced are deleted by the compactor this many hours after the switch,
    /// so running queries never lose a file under them. Counted from the switch, not from the
    /// file's creation as an S3 lifecycle rule would (late data can re-compact a partition of
    /// any age, whose replaced files a lifecycle rule would expire at once).
    pub replaced_retention_hours: u32,
    /// How far back the periodic sweep looks for partitions to close.
    pub sweep_lookback_days: u32,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            min_files: 32,
            min_bytes: 128 << 20,
            grace_seconds: 600,
            target_file_bytes: 512 << 20,
            max_read_bytes: 4 << 30,
            max_partial_files: 4,
            row_group_rows: 1 << 20,
            zstd_level: 3,
            lease_seconds: 960,
            replaced_retention_hours: 24,
            sweep_lookback_days: 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_settings_override_the_json_and_moved_areas_are_refused() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let c = Config::from_vars(vars(&[
            ("TRIBUTARY_CONFIG", r#"{"bucket":"a","metrics_namespace":"x"}"#),
            ("TRIBUTARY_BUCKET", "lake"),
            ("TRIBUTARY_METRICS_NAMESPACE", "Tributary/stack-1"),
            ("TRIBUTARY_REPLACED_RETENTION_HOURS", "6"),
        ]))
        .unwrap();
        assert_eq!((c.bucket.as_str(), c.metrics_namespace.as_str()), ("lake", "Tributary/stack-1"));
        assert_eq!(c.compaction.replaced_retention_hours, 6);
        assert_eq!(Config::from_vars(vars(&[("TRIBUTARY_BUCKET", "lake")])).unwrap().metrics_namespace, "Tributary");
        for (json, field) in [
            (r#"{"table_prefix":"data/"}"#, "table_prefix"),
            (r#"{"dead_letter_prefix":"dlq/"}"#, "dead_letter_prefix"),
            (r#"{"state_prefix":"state/"}"#, "state_prefix"),
        ] {
            let pairs: &'static [(&str, &str)] =
                Box::leak(vec![("TRIBUTARY_CONFIG", json), ("TRIBUTARY_BUCKET", "lake")].into_boxed_slice());
            let e = Config::from_vars(vars(pairs)).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("IAM"), "{e}");
            assert!(Config::from_json(json).is_ok(), "the library itself still takes other prefixes: {json}");
        }
        for bad in ["0", "x", "-1"] {
            let pairs: &'static [(&str, &str)] =
                Box::leak(vec![("TRIBUTARY_BUCKET", "lake"), ("TRIBUTARY_REPLACED_RETENTION_HOURS", bad)].into_boxed_slice());
            assert!(Config::from_vars(vars(pairs)).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_config_is_all_defaults() {
        let c = Config::from_json("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.table_for("orders-v1"), "orders_v1");
    }

    #[test]
    fn per_topic_overrides() {
        let c = Config::from_json(
            r#"{"bucket":"b","topics":{"orders-v1":{"table":"orders","event_time_field":"CreatedAt",
               "schema":[{"name":"id","type":"bigint"},{"name":"Amount","type":"decimal(18,2)"}]}}}"#,
        )
        .unwrap();
        assert_eq!(c.table_for("orders-v1"), "orders");
        assert_eq!(c.event_time_column("orders-v1").as_deref(), Some("createdat"));
        let s = c.pinned_schema("orders-v1").unwrap().unwrap();
        assert!(s.pinned);
        assert_eq!(s.column("amount").unwrap().source, "Amount");
        assert!(s.rescue_index().is_some(), "rescue is the default");
    }

    #[test]
    fn topics_of_one_pinned_table_commit_one_schema() {
        let pin = r#""schema":[{"name":"id","type":"bigint"}]"#;
        let strict = r#""conflicts":"dead_letter","unknown_fields":"dead_letter""#;
        let json = format!(
            r#"{{"topics":{{"a":{{"table":"t",{pin},{strict}}},"b":{{"table":"t",{pin}}},"c":{{"table":"u",{pin},{strict}}}}}}}"#
        );
        let c = Config::from_json(&json).unwrap();
        let (a, b, u) = (c.pinned_schema("a").unwrap(), c.pinned_schema("b").unwrap(), c.pinned_schema("c").unwrap());
        assert_eq!(a, b, "a topic that never rescues shares its table's rescued-data column");
        assert!(a.unwrap().rescue_index().is_some());
        assert!(u.unwrap().rescue_index().is_none(), "a table no topic rescues into has none");
    }

    #[test]
    fn bad_configs_are_refused_clearly() {
        for (json, needle) in [
            (r#"{"table_prefix":"t"}"#, "end with '/'"),
            (r#"{"table_prefix":"a/","dead_letter_prefix":"a/b/"}"#, "overlap"),
            (r#"{"topics":{"x":{"table":"Bad-Name"}}}"#, "not a lower-case"),
            (r#"{"topics":{"x":{"schema":[{"name":"a","type":"bigintt"}]}}}"#, "column \"a\""),
            (r#"{"bukket":"x"}"#, "unknown field"),
            (r#"{"zstd_level":0}"#, "zstd_level"),
        ] {
            let err = Config::from_json(json).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}
