//! The compact function: merges a partition's small files into one large Parquet file (or a few,
//! past the size cap), de-duplicated by (topic, partition, offset), and switches readers to it
//! atomically. The protocol is in `docs/compaction.md`; every decision lives in
//! `tributary_core::compaction`, this crate does the I/O.

pub mod io;
mod merge;
mod pending;
mod report;
mod switch;
mod trigger;

pub use report::{CompactResponse, Outcome, PartitionReport};
pub use switch::CrashPoint;
pub use trigger::{Trigger, parse_trigger};

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::Value;
use tributary_aws::{CatalogError, MultipartWrite, ObjectRead, ObjectWrite, PartitionLocation, StoreError};
use tributary_aws::{Instrumented, Instruments};
use tributary_core::Config;
use tributary_core::layout::time_partition::TimePartition;
use tributary_core::layout::{Marker, is_ingest_file};

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("not a compaction trigger: {0}")]
    Event(String),
    #[error("partition state: {0}")]
    State(String),
    #[error("injected crash at {0:?}")]
    Injected(CrashPoint),
}

/// The invocation's `errorType` as Lambda reports it (CloudWatch, failure records).
impl tributary_aws::startup::ErrorType for CompactError {
    fn error_type(&self) -> &'static str {
        match self {
            CompactError::Store(_) => "StoreError",
            CompactError::Catalog(_) => "CatalogError",
            CompactError::Parquet(_) => "ParquetError",
            CompactError::Arrow(_) => "ArrowError",
            CompactError::Event(_) => "TriggerError",
            CompactError::State(_) => "PartitionStateError",
            CompactError::Injected(_) => "InjectedCrash",
        }
    }
}

pub struct Compactor<S, C> {
    pub store: S,
    pub catalog: C,
    pub config: Config,
    instruments: Instruments,
    crash_at: Mutex<Option<CrashPoint>>,
}

impl<S, C> Instrumented for Compactor<S, C> {
    fn instruments_mut(&mut self) -> &mut Instruments {
        &mut self.instruments
    }
}

impl<S, C> Compactor<S, C>
where
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
    C: PartitionLocation + Sync,
{
    pub fn new(store: S, catalog: C, config: Config) -> Self {
        Compactor { store, catalog, config, instruments: Instruments::default(), crash_at: Mutex::new(None) }
    }

    /// Handles one invocation. `attempt` names this compactor in leases (the request id).
    pub async fn handle(&self, event: &Value, attempt: &str) -> Result<CompactResponse, CompactError> {
        let mut resp = CompactResponse::default();
        // Partitions a retire marker names: their marker goes once nothing is left to delete.
        let mut marked = BTreeSet::new();
        // For a sweep: the partitions whose pending marker it keeps or removes, and whether each
        // has one (a deep sweep also visits partitions without).
        let mut pending: Vec<(String, TimePartition, bool)> = Vec::new();
        let mut deep_day = None;
        let partitions: BTreeSet<(String, TimePartition)> = match parse_trigger(event)? {
            Trigger::Keys(keys) => {
                let mut set = BTreeSet::new();
                for key in keys {
                    match tributary_core::layout::table_partition(&self.config, &key).filter(|_| is_ingest_file(&key)) {
                        Some(p) => {
                            set.insert(p);
                        }
                        None => resp.ignored_keys += 1,
                    }
                }
                // Before compacting: from now on the sweep visits the partition until it settles.
                for (table, tp) in &set {
                    self.mark_pending(table, tp).await?;
                }
                set
            }
            Trigger::Sweep => {
                marked = self.marked_partitions(Marker::Retire).await?;
                let with_work = self.marked_partitions(Marker::Pending).await?;
                let mut set = with_work.clone();
                deep_day = self.deep_sweep_due().await?;
                if deep_day.is_some() {
                    set.extend(self.sweep_partitions().await?);
                }
                pending = set.iter().map(|p| (p.0.clone(), p.1.clone(), with_work.contains(p))).collect();
                set.extend(marked.iter().cloned());
                set
            }
        };
        // One failing partition does not hold back the others; the invocation still fails, so
        // the trigger retries (and the sweep comes back to it).
        let mut first_error = None;
        for (table, tp) in partitions {
            resp.partitions_seen += 1;
            let mut retired = self.retire_replaced(&table, &tp).await.map(|n| resp.replaced_deleted += n);
            if retired.is_ok() && marked.contains(&(table.clone(), tp.clone())) {
                retired = self.release_retire_marker(&table, &tp).await;
            }
            if let Err(e) = retired {
                tracing::error!(table, partition = %tp.path(), error = %e, "replaced files not deleted");
                first_error.get_or_insert(e);
            }
            match self.compact_partition(&table, &tp, attempt).await {
                Ok((outcome, lag)) => {
                    resp.lag_seconds = resp.lag_seconds.max(lag);
                    match outcome {
                        Outcome::NotDue => resp.not_due += 1,
                        Outcome::Busy => resp.busy += 1,
                        Outcome::Compacted(r) => resp.compacted.push(r),
                    }
                }
                Err(e) => {
                    tracing::error!(table, partition = %tp.path(), error = %e, "partition not compacted");
                    first_error.get_or_insert(e);
                }
            }
        }
        for (table, tp, has_marker) in &pending {
            if let Err(e) = self.sync_pending_marker(table, tp, *has_marker).await {
                tracing::error!(table, partition = %tp.path(), error = %e, "pending marker not updated");
                first_error.get_or_insert(e);
            }
        }
        if let (Some(day), None) = (&deep_day, &first_error) {
            self.deep_sweep_done(day).await?;
        }
        self.emit(&resp);
        match first_error {
            Some(e) => Err(e),
            None => Ok(resp),
        }
    }

    fn emit(&self, r: &CompactResponse) {
        self.instruments.emit(&r.emf(&self.config.metrics_namespace, self.instruments.now_ms()));
    }
}

#[cfg(test)]
mod tests;
