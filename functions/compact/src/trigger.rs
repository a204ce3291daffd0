//! What an invocation was asked to do, and which partitions that names: the keys of an S3
//! event, or for the sweep the partitions with a marker (pending work, or replaced files to
//! delete), and once a day every table's recent partitions too.

use std::collections::BTreeSet;

use serde_json::Value;
use tributary_aws::{MultipartWrite, ObjectRead, ObjectWrite, PartitionLocation};
use tributary_core::layout::time_partition::{TimePartition, recent_days};
use tributary_core::layout::{self, Marker, object_created_keys, schemas_prefix, table_of_schema_key};

use crate::{CompactError, Compactor};

/// What triggered an invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// S3 `ObjectCreated` events: the keys, URL-decoded.
    Keys(Vec<String>),
    /// The periodic sweep (EventBridge schedule): closes partitions no event will ever name.
    Sweep,
}

/// Reads the trigger: an EventBridge `Object Created` event (how the stack delivers them), an S3
/// event notification, or the scheduled sweep.
pub fn parse_trigger(v: &Value) -> Result<Trigger, CompactError> {
    if let Some(keys) = object_created_keys(v) {
        return Ok(Trigger::Keys(keys));
    }
    let sweep = v.get("tributary").and_then(Value::as_str) == Some("sweep")
        || v.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
    if sweep { Ok(Trigger::Sweep) } else { Err(CompactError::Event("neither an S3 event nor the sweep".into())) }
}

impl<S, C> Compactor<S, C>
where
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
    C: PartitionLocation + Sync,
{
    /// Partitions of every known table within the sweep's look-back (the day's deep sweep).
    pub(crate) async fn sweep_partitions(&self) -> Result<BTreeSet<(String, TimePartition)>, CompactError> {
        let cfg = &self.config;
        let mut out = BTreeSet::new();
        let listed = self.store.list(&schemas_prefix(cfg)).await?;
        let tables: Vec<String> = listed.iter().filter_map(|m| table_of_schema_key(cfg, &m.key).map(str::to_string)).collect();
        let now = self.instruments.now_ms();
        for table in tables {
            for day in recent_days(now, cfg.compaction.sweep_lookback_days) {
                // Partitions with ingest files, and partitions with a state (compacted ones whose
                // ingest location is empty still have replaced files to delete).
                let ingested = layout::day_prefix(cfg, &table, &day);
                for m in self.store.list(&ingested).await? {
                    if let Some(tp) = TimePartition::from_key(&m.key) {
                        out.insert((table.clone(), tp));
                    }
                }
                for m in self.store.list(&tributary_core::layout::day_states_prefix(cfg, &table, &day)).await? {
                    if let Some(tp) = tributary_core::layout::partition_of_state_key(&m.key) {
                        out.insert((table.clone(), tp));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Partitions with a marker of `kind`, of any age.
    pub(crate) async fn marked_partitions(&self, kind: Marker) -> Result<BTreeSet<(String, TimePartition)>, CompactError> {
        let listed = self.store.list(&layout::markers_prefix(&self.config, kind)).await?;
        Ok(listed.iter().filter_map(|m| layout::partition_of_marker(&self.config, kind, &m.key)).collect())
    }
}
