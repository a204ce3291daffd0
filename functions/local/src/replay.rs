//! `tributary replay`: ingests again the batches the event source mapping gave up on, from the
//! invocation records its S3 on-failure destination wrote. Exactly once: ingest's object keys
//! come from offsets, so what a batch already put in the table counts as already committed, and
//! replaying a record twice (or a batch Kafka also redelivered) adds nothing.

use std::fmt;

use tributary_aws::{MultipartWrite, ObjectRead, ObjectWrite, PartitionLocation, TableCatalog};
use tributary_core::kafka::failed_batch_event;
use tributary_ingest::Report;

use crate::Error;
use crate::pipeline::Pipeline;

/// What a replay did, over every failure record under the prefix.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    pub failure_records: usize,
    pub total: Report,
    /// Records that hold no batch to replay: key and why.
    pub unreadable: Vec<(String, String)>,
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.total;
        writeln!(
            f,
            "replayed {} failure records: {} records in -> {} rows written, {} dead-lettered, {} tombstones skipped, {} already committed",
            self.failure_records - self.unreadable.len(),
            t.records_in,
            t.rows_written,
            t.dead_lettered,
            t.tombstones_skipped,
            t.already_committed
        )?;
        for (key, why) in &self.unreadable {
            writeln!(f, "  not replayed: {key}: {why}")?;
        }
        Ok(())
    }
}

/// Replays every failure record under `prefix` of `failures` through the pipeline, in key order
/// (Lambda's keys start with the mapping and the partition, then the time). A record that holds no
/// batch is reported and skipped; a failing delivery stops the replay with its error (run it
/// again: what was delivered is not written twice).
pub async fn replay<R, S, C>(failures: &R, prefix: &str, pipeline: &Pipeline<S, C>) -> Result<ReplaySummary, Error>
where
    R: ObjectRead + Sync,
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
    C: TableCatalog + PartitionLocation + Clone + Sync,
{
    let mut summary = ReplaySummary::default();
    for m in failures.list(prefix).await?.into_iter().filter(|m| !m.key.ends_with('/')) {
        summary.failure_records += 1;
        let Some(object) = failures.get(&m.key).await? else {
            summary.unreadable.push((m.key, "gone between the listing and the read (deleted meanwhile?)".into()));
            continue;
        };
        let event = serde_json::from_slice::<serde_json::Value>(&object.body)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|record| failed_batch_event(&record));
        match event {
            Ok(event) => {
                let delivered = pipeline.deliver_json(event).await.map_err(|e| format!("{}: {e}", m.key))?;
                summary.total.add(&delivered.response.total);
            }
            Err(why) => summary.unreadable.push((m.key, why)),
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use tributary_aws::{MemoryCatalog, MemoryStore, Precondition};
    use tributary_core::Config;
    use tributary_core::testing::events::build_event;

    use super::*;

    async fn put(store: &MemoryStore, key: &str, body: String) {
        store.put(key, Bytes::from(body), Precondition::None).await.unwrap();
    }

    #[tokio::test]
    async fn failed_batches_are_ingested_once_however_often_they_are_replayed() {
        let store = Arc::new(MemoryStore::new());
        let config = Config { bucket: "b".into(), ..Config::default() };
        let p = Pipeline::new(store.clone(), Arc::new(MemoryCatalog::new()), config);
        let values: Vec<String> = (0..5).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
        let recs: Vec<_> =
            values.iter().enumerate().map(|(i, v)| (i as i64, 1_795_316_400_000, None, Some(v.as_bytes()), &[][..])).collect();
        let event = serde_json::to_value(build_event("aws:kafka", "orders", 0, &recs)).unwrap();
        let meta = serde_json::json!({"requestContext": {"condition": "RetryAttemptsExhausted"}, "version": "1.0"});
        let record = |payload: serde_json::Value| {
            let mut r = meta.clone();
            r["payload"] = payload;
            r.to_string()
        };
        let dir = "aws/lambda/0a1b-esm/orders-0/2026/11/22/";
        put(&store, &format!("{dir}2026-11-22T03.10.00-a"), record(event.clone())).await;
        // The same batch again, its payload a JSON string (both shapes are read).
        put(&store, &format!("{dir}2026-11-22T03.20.00-b"), record(event.to_string().into())).await;
        put(&store, &format!("{dir}2026-11-22T03.30.00-c"), meta.to_string()).await;

        let first = replay(store.as_ref(), "aws/lambda/", &p).await.unwrap();
        assert_eq!(first.failure_records, 3);
        let t = &first.total;
        assert_eq!((t.records_in, t.rows_written, t.already_committed), (10, 5, 5), "{first}");
        assert!(t.balanced());
        assert_eq!(first.unreadable.len(), 1, "the record without a payload is reported");
        assert!(first.to_string().contains("not replayed: aws/lambda/0a1b-esm/orders-0/2026/11/22/2026-11-22T03.30.00-c"));

        let again = replay(store.as_ref(), "aws/lambda/", &p).await.unwrap();
        assert_eq!((again.total.records_in, again.total.rows_written, again.total.already_committed), (10, 0, 10));
        let rows = store.keys().into_iter().filter(|k| k.starts_with("tables/orders/") && k.ends_with(".parquet")).count();
        assert_eq!(rows, 1, "one file for the batch, written once");
    }
}
