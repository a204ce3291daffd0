//! The three handlers wired as the stack wires them, for a process that drives them itself (the
//! local run and the consumer mode): each batch through ingest; each data file it wrote through
//! the catalog and the compactor, as the bucket's EventBridge `Object Created` events would; and
//! the compactor's periodic sweep. No logic of its own: only the order AWS would call them in.

use std::sync::Mutex;
use tributary_aws::Instrumented;

use aws_lambda_events::event::kafka::KafkaEvent;
use tributary_aws::{MultipartWrite, ObjectRead, ObjectWrite, PartitionLocation, TableCatalog};
use tributary_catalog::CatalogFn;
use tributary_compact::{CompactResponse, Compactor};
use tributary_core::Config;
use tributary_ingest::{Ingest, IngestResponse};

use crate::Error;

/// An EventBridge `Object Created` event for a key, as the bucket sends it to compact and catalog.
pub fn object_created(bucket: &str, key: &str) -> serde_json::Value {
    serde_json::json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key}, "reason": "PutObject"}})
}

/// The data files (not dead letters) an ingest invocation wrote.
pub fn data_files(r: &IngestResponse) -> impl Iterator<Item = &String> {
    r.total.objects.iter().filter(|k| tributary_core::layout::is_data_file(k))
}

/// How long a delivery's offset claims live ([`tributary_core::ingest::claims`]).
/// Its put must start a minute before that ([`tributary_core::ingest::claims::PUT_MARGIN_MS`]), and it
/// waits for another writer's claim only while two minutes remain.
pub const CLAIM_MS: i64 = 180_000;

pub use tributary_aws::now_ms;

pub struct Pipeline<S, C> {
    pub ingest: Ingest<S>,
    pub catalog: CatalogFn<S, C>,
    pub compactor: Compactor<S, C>,
    bucket: String,
    /// Files written but not yet registered: a failed registration is retried with the next
    /// delivery (the batch's retry writes no new files, so their keys must not be forgotten).
    unregistered: Mutex<Vec<String>>,
}

/// One batch, delivered.
#[derive(Debug)]
pub struct Delivered {
    pub response: IngestResponse,
    /// When every file of the batch was in the store and its partition in the catalog: from then
    /// on a query sees the batch's rows.
    pub visible_at_ms: i64,
}

impl<S, C> Pipeline<S, C>
where
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
    C: TableCatalog + PartitionLocation + Clone + Sync,
{
    /// Metric lines go to the debug log (`RUST_LOG=emf=debug` shows them).
    pub fn new(store: S, catalog: C, config: Config) -> Self {
        let sink = |line: &str| tracing::debug!(target: "emf", "{line}");
        Pipeline {
            ingest: Ingest::new(store.clone(), config.clone()).with_metrics_sink(sink),
            catalog: CatalogFn::new(store.clone(), catalog.clone(), config.clone()).with_metrics_sink(sink),
            bucket: config.bucket.clone(),
            compactor: Compactor::new(store, catalog, config).with_metrics_sink(sink),
            unregistered: Mutex::default(),
        }
    }

    /// The compactor's clock (the local run of past sample data closes every partition).
    pub fn with_compaction_clock(mut self, clock: fn() -> i64) -> Self {
        self.compactor = self.compactor.with_clock(clock);
        self
    }

    /// Ingests one batch and registers the files it wrote. An error means the batch is not
    /// delivered: deliver it again (the retry writes the same keys, or nothing).
    pub async fn deliver(&self, event: KafkaEvent) -> Result<Delivered, Error> {
        self.deliver_bytes(&serde_json::to_vec(&event)?).await
    }

    /// [`Pipeline::deliver`] for an event as the JSON bytes the function receives.
    pub async fn deliver_bytes(&self, event: &[u8]) -> Result<Delivered, Error> {
        // One batch on one machine takes seconds: its offset claims lapse after CLAIM_MS, so a
        // consumer restarted after a kill -9 mid-batch waits that long at most (ingest waits
        // within the claim, then the delivery retries) before writing what the dead one claimed.
        let response = self.ingest.handle(event, Some(now_ms() + CLAIM_MS)).await?;
        self.register(response).await
    }

    /// [`Pipeline::deliver`] for an event as JSON (a failure record's payload), read as the
    /// function reads what the event source mapping sends.
    pub async fn deliver_json(&self, event: serde_json::Value) -> Result<Delivered, Error> {
        self.deliver_bytes(&serde_json::to_vec(&event)?).await
    }

    async fn register(&self, response: IngestResponse) -> Result<Delivered, Error> {
        let mut pending = std::mem::take(&mut *self.unregistered.lock().unwrap_or_else(|p| p.into_inner()));
        pending.extend(data_files(&response).cloned());
        while let Some(key) = pending.first() {
            if let Err(e) = self.catalog.handle(&object_created(&self.bucket, key)).await {
                self.unregistered.lock().unwrap_or_else(|p| p.into_inner()).extend(pending);
                return Err(e.into());
            }
            pending.remove(0);
        }
        Ok(Delivered { response, visible_at_ms: now_ms() })
    }

    /// Gives the compactor the files a batch wrote, as their `Object Created` events would.
    /// Returns how many partitions it compacted.
    pub async fn compact_written(&self, r: &IngestResponse, attempt: &str) -> Result<usize, Error> {
        let mut compacted = 0;
        for key in data_files(r) {
            compacted += self.compactor.handle(&object_created(&self.bucket, key), attempt).await?.compacted.len();
        }
        Ok(compacted)
    }

    /// The compactor's scheduled sweep: compacts the partitions whose window has closed.
    pub async fn sweep(&self, attempt: &str) -> Result<CompactResponse, Error> {
        Ok(self.compactor.handle(&serde_json::json!({"tributary": "sweep"}), attempt).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use tributary_aws::{MemoryCatalog, MemoryStore, TableCatalog};
    use tributary_core::testing::events::build_event;

    fn event(offset: i64, value: &'static [u8]) -> KafkaEvent {
        build_event("aws:kafka", "orders", 0, &[(offset, 1_795_316_400_000, None, Some(value), &[][..])])
    }

    #[tokio::test]
    async fn a_failed_registration_is_retried_with_the_batch_although_ingest_writes_nothing_new() {
        let catalog = Arc::new(MemoryCatalog::new());
        let p = Pipeline::new(Arc::new(MemoryStore::new()), catalog.clone(), Config { bucket: "b".into(), ..Config::default() });
        p.deliver(event(0, br#"{"a":1}"#)).await.unwrap();
        // A new column: the table must be updated, and Glue keeps refusing the update.
        catalog.conflicting_updates.store(1_000, Ordering::SeqCst);
        assert!(p.deliver(event(1, br#"{"a":2,"b":"x"}"#)).await.is_err(), "the batch is not delivered");
        let columns =
            |def: Option<tributary_aws::StoredTable>| def.unwrap().def.columns.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert!(!columns(catalog.get_table("orders").await.unwrap()).contains(&"b".to_string()));
        // The retry writes no file (the row is already there), yet registers the one written before.
        catalog.conflicting_updates.store(0, Ordering::SeqCst);
        let retry = p.deliver(event(1, br#"{"a":2,"b":"x"}"#)).await.unwrap();
        assert_eq!((retry.response.total.rows_written, retry.response.total.already_committed), (0, 1));
        assert!(columns(catalog.get_table("orders").await.unwrap()).contains(&"b".to_string()));
    }
}
