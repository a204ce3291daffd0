//! The table schema registry: one JSON object per table under the state prefix, evolved with
//! S3 conditional writes so concurrent invocations agree on every column's type.

use std::collections::HashMap;
use std::sync::Mutex;

use tributary_aws::{ObjectRead, ObjectWrite, get_json, put_json_if};
use tributary_core::Config;
use tributary_core::json::shape::Shape;
use tributary_core::layout::schema_key;
use tributary_core::table::schema::TableSchema;

use crate::IngestError;

/// How often a commit is retried after losing a race before the invocation fails.
const MAX_ATTEMPTS: usize = 16;

#[derive(Debug, Default)]
pub struct Registry {
    /// Schemas seen by this process, with their entity tags: a warm Lambda skips the GET.
    cache: Mutex<HashMap<String, (TableSchema, Option<String>)>>,
}

impl Registry {
    fn cached(&self, table: &str) -> Option<(TableSchema, Option<String>)> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(table).cloned()
    }

    fn remember(&self, table: &str, schema: TableSchema, etag: Option<String>) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(table.to_string(), (schema, etag));
    }

    fn forget(&self, table: &str) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).remove(table);
    }

    async fn load<S: ObjectRead>(
        &self,
        store: &S,
        cfg: &Config,
        table: &str,
    ) -> Result<(TableSchema, Option<String>), IngestError> {
        if let Some(hit) = self.cached(table) {
            return Ok(hit);
        }
        let (schema, etag) = match get_json::<TableSchema, _>(store, &schema_key(cfg, table)).await? {
            None => (TableSchema::default(), None),
            Some(v) => (v.value, v.etag),
        };
        self.remember(table, schema.clone(), etag.clone());
        Ok((schema, etag))
    }

    /// The table's committed schema as it stands (no I/O once cached), or `None` when the pinned
    /// schema differs from it and [`Registry::evolve`] must commit it first.
    pub async fn current<S: ObjectRead>(
        &self,
        store: &S,
        cfg: &Config,
        table: &str,
        pinned: Option<&TableSchema>,
    ) -> Result<Option<TableSchema>, IngestError> {
        let (current, _) = self.load(store, cfg, table).await?;
        Ok(match pinned {
            Some(p) if *p != current => None,
            _ => Some(current),
        })
    }

    /// The table's schema after adding what `batch_shape` brings (or the pinned schema), and
    /// the rescued-data column if `rescues`, committed before any file that uses it is written.
    pub async fn evolve<S: ObjectRead + ObjectWrite>(
        &self,
        store: &S,
        cfg: &Config,
        table: &str,
        pinned: Option<&TableSchema>,
        batch_shape: &Shape,
        rescues: bool,
    ) -> Result<TableSchema, IngestError> {
        let key = schema_key(cfg, table);
        for _ in 0..MAX_ATTEMPTS {
            let (current, etag) = self.load(store, cfg, table).await?;
            let next = match pinned {
                Some(p) if *p == current => return Ok(current),
                Some(p) => p.clone(),
                None => {
                    let mut next = current.clone();
                    let evolved = next.evolve(batch_shape);
                    let added = rescues && next.add_rescue_column();
                    if !evolved && !added {
                        return Ok(current);
                    }
                    next
                }
            };
            match put_json_if(store, &key, &next, etag.as_deref()).await? {
                Some(etag) => {
                    tracing::info!(table, columns = next.columns.len(), "schema evolved");
                    self.remember(table, next.clone(), Some(etag));
                    return Ok(next);
                }
                None => {
                    tracing::info!(table, "schema changed concurrently; reloading");
                    self.forget(table);
                }
            }
        }
        Err(IngestError::Registry(format!("could not commit the schema of {table} after {MAX_ATTEMPTS} attempts")))
    }
}
