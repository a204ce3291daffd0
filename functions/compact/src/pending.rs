//! Pending markers: a sweep visits the partitions where compaction has work left, found by one
//! listing of markers, not by listing the table's recent days, so its requests grow with the
//! partitions that changed, not with the table's history. An ingest file's event marks its
//! partition; the sweep unmarks it once it has settled. Once a day a deep sweep also looks back
//! over `sweep_lookback_days` of listings, for partitions whose events were lost.

use serde_json::json;
use tributary_aws::{MultipartWrite, ObjectMeta, ObjectRead, ObjectWrite, PartitionLocation, Precondition, get_json};
use tributary_core::compaction::{self, Candidate, PartitionState};
use tributary_core::layout::time_partition::{TimePartition, recent_days};
use tributary_core::layout::{Marker, deep_sweep_key, is_compacted_file, is_ingest_file, marker_key};

use crate::{CompactError, Compactor};

/// A partition's files by tier: partial compacted files (not sealed) and ingest files, in key order.
pub(crate) fn tiers(state: &PartitionState, listing: &[ObjectMeta]) -> (Vec<Candidate>, Vec<Candidate>) {
    let candidate = |m: &ObjectMeta| Candidate { key: m.key.clone(), bytes: m.size };
    let partials = listing.iter().filter(|m| is_compacted_file(&m.key) && !state.sealed.contains(&m.key)).map(candidate);
    let ingest = listing.iter().filter(|m| is_ingest_file(&m.key)).map(candidate);
    (partials.collect(), ingest.collect())
}

impl<S, C> Compactor<S, C>
where
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
    C: PartitionLocation + Sync,
{
    /// Marks a partition an ingest file's event named: one GET, and a PUT the first time.
    pub(crate) async fn mark_pending(&self, table: &str, tp: &TimePartition) -> Result<(), CompactError> {
        let key = marker_key(&self.config, Marker::Pending, table, tp);
        if self.store.get(&key).await?.is_none() {
            self.store.put(&key, bytes::Bytes::new(), Precondition::None).await?;
        }
        Ok(())
    }

    async fn settled(&self, table: &str, tp: &TimePartition) -> Result<bool, CompactError> {
        let (state, _) = self.load_state(table, tp).await?;
        let listing = self.store.list(&state.location).await?;
        let (partials, ingest) = tiers(&state, &listing);
        Ok(compaction::settled(&self.config.compaction, tp, &state, &partials, &ingest, self.instruments.now_ms()))
    }

    /// After a sweep visited a partition: unmarks it once settled, marks it while not (a deep
    /// sweep finds partitions whose events were lost). An ingest file that lands while the marker
    /// is deleted is seen by the check after the delete, or its event (which follows the file)
    /// finds no marker and puts it back.
    pub(crate) async fn sync_pending_marker(&self, table: &str, tp: &TimePartition, marked: bool) -> Result<(), CompactError> {
        let key = marker_key(&self.config, Marker::Pending, table, tp);
        if !self.settled(table, tp).await? {
            if !marked {
                self.store.put(&key, bytes::Bytes::new(), Precondition::None).await?;
            }
            return Ok(());
        }
        if marked {
            self.store.delete(&key).await?;
            if !self.settled(table, tp).await? {
                self.store.put(&key, bytes::Bytes::new(), Precondition::None).await?;
            }
        }
        Ok(())
    }

    /// The UTC day of this sweep, if no deep sweep has run that day yet.
    pub(crate) async fn deep_sweep_due(&self) -> Result<Option<String>, CompactError> {
        let today = recent_days(self.instruments.now_ms(), 0).remove(0);
        let last = get_json::<serde_json::Value, _>(&self.store, &deep_sweep_key(&self.config, "compact")).await?;
        let done = last.is_some_and(|v| v.value.get("day").and_then(serde_json::Value::as_str) == Some(today.as_str()));
        Ok((!done).then_some(today))
    }

    /// Records that the day's deep sweep finished (written after it, so a failed one runs again).
    pub(crate) async fn deep_sweep_done(&self, day: &str) -> Result<(), CompactError> {
        let body = bytes::Bytes::from(json!({ "day": day }).to_string());
        self.store.put(&deep_sweep_key(&self.config, "compact"), body, Precondition::None).await?;
        Ok(())
    }
}
