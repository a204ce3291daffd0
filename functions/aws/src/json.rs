//! Small JSON state objects on top of the object capabilities, changed by conditional writes.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use tributary_core::Config;
use tributary_core::compaction::PartitionState;
use tributary_core::layout::{self, time_partition::TimePartition};

use crate::{ObjectRead, ObjectWrite, Precondition, PutOutcome, StoreError};

/// A JSON object and the entity tag to change it conditionally with.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    /// `None` when the object does not exist yet.
    pub etag: Option<String>,
}

/// Reads a JSON object; `None` if absent. A body that does not parse is an error (state written
/// by something else must never be silently replaced).
pub async fn get_json<T: DeserializeOwned, S: ObjectRead>(store: &S, key: &str) -> Result<Option<Versioned<T>>, StoreError> {
    let Some(o) = store.get(key).await? else { return Ok(None) };
    let value = serde_json::from_slice(&o.body).map_err(|e| StoreError {
        op: "GetObject",
        bucket: String::new(),
        key: key.to_string(),
        message: format!("not the expected JSON: {e}"),
    })?;
    Ok(Some(Versioned { value, etag: o.etag }))
}

/// A partition's state (`layout::state_key`), and its entity tag for a conditional write back;
/// a partition no compaction has touched yet is at its ingest location, with no tag.
pub async fn partition_state<S: ObjectRead>(
    store: &S,
    cfg: &Config,
    table: &str,
    tp: &TimePartition,
) -> Result<Versioned<PartitionState>, StoreError> {
    Ok(get_json(store, &layout::state_key(cfg, table, tp))
        .await?
        .unwrap_or_else(|| Versioned { value: PartitionState::initial(cfg, table, tp), etag: None }))
}

/// Writes a JSON object only if it is still at `etag` (or absent, for `None`). Returns the new
/// entity tag, or `None` if another writer changed it first.
pub async fn put_json_if<T: Serialize + Sync, S: ObjectWrite>(
    store: &S,
    key: &str,
    value: &T,
    etag: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| StoreError {
        op: "PutObject",
        bucket: String::new(),
        key: key.to_string(),
        message: format!("serializing: {e}"),
    })?;
    let when = match etag {
        Some(e) => Precondition::IfMatch(e.to_string()),
        None => Precondition::IfAbsent,
    };
    Ok(match store.put(key, Bytes::from(body), when).await? {
        // Stores that return no entity tag get a re-read on the next change.
        PutOutcome::Written { etag } => Some(etag.unwrap_or_default()),
        PutOutcome::PreconditionFailed => None,
    })
}
