//! The catalog function: keeps the Glue Data Catalog in step with the data, so Athena sees new
//! tables, partitions and columns within seconds, with no crawler.
//!
//! Triggered (through EventBridge) by every ingest file put under `tables/`: the table is created
//! from the schema registry when first seen, evolved when the registry has new columns (widenings
//! Athena accepts are applied, anything else is refused and reported), and the file's partition
//! is registered at the location its partition state names. Every step is idempotent, so
//! duplicated and reordered triggers leave the same catalog.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde_json::Value;
use tributary_aws::{
    CatalogError, ObjectRead, PartitionLocation, StoreError, StoredTable, TableCatalog, TableDef, get_json, partition_state,
};
use tributary_aws::{Instrumented, Instruments};
use tributary_core::Config;
use tributary_core::catalog::{self, Evolution};
use tributary_core::layout;
use tributary_core::layout::time_partition::{TimePartition, recent_days};
use tributary_core::layout::{Marker, is_ingest_file};
use tributary_core::layout::{object_created_keys, schema_key, schemas_prefix, table_of_schema_key};
use tributary_core::metrics::{Emf, Unit};
use tributary_core::table::schema::TableSchema;

#[derive(Debug, thiserror::Error)]
pub enum CatalogFnError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("not a catalog trigger: {0}")]
    Event(String),
    #[error("table {0}: the catalog kept changing under us")]
    Contended(String),
}

/// The invocation's `errorType` as Lambda reports it (CloudWatch, failure records).
impl tributary_aws::startup::ErrorType for CatalogFnError {
    fn error_type(&self) -> &'static str {
        match self {
            CatalogFnError::Store(_) => "StoreError",
            CatalogFnError::Catalog(_) => "CatalogError",
            CatalogFnError::Event(_) => "TriggerError",
            CatalogFnError::Contended(_) => "CatalogContendedError",
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct CatalogResponse {
    pub tables_created: usize,
    pub tables_updated: usize,
    pub columns_added: usize,
    pub columns_widened: usize,
    pub partitions_created: usize,
    /// Tables whose data changed a column's type in a way Athena cannot read: refused.
    pub schema_conflicts: Vec<String>,
    pub ignored_keys: usize,
}

/// The keys an event names: an EventBridge `Object Created` event, an S3 notification, or
/// `{"tributary": "catalog-sync", "tables": [...], "since": "YYYY-MM-DD"}` to (re)sync tables
/// (all known ones without `tables`; the last `sweep_lookback_days` days without `since`).
pub fn trigger_keys(v: &Value) -> Result<Trigger, CatalogFnError> {
    if let Some(keys) = object_created_keys(v) {
        return Ok(Trigger::Keys(keys));
    }
    if v.get("tributary").and_then(Value::as_str) == Some("catalog-sync") {
        let tables =
            v.get("tables").and_then(Value::as_array).map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect());
        let since = match v.get("since") {
            None => None,
            Some(d) => Some(
                d.as_str()
                    .filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
                    .ok_or_else(|| {
                        CatalogFnError::Event(format!("catalog-sync: \"since\" must be a date, YYYY-MM-DD (got {d})"))
                    })?
                    .to_string(),
            ),
        };
        return Ok(Trigger::Sync { tables, since });
    }
    Err(CatalogFnError::Event("neither an Object Created event, an S3 notification, nor catalog-sync".into()))
}

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Keys(Vec<String>),
    /// Tables to sync (all known tables when `None`): their definitions, and their partitions
    /// of the last `sweep_lookback_days` days, or of every day from `since` on. The hourly sync
    /// looks back; `since` is for an operator catching up partitions whose triggers failed
    /// (docs/runbook.md).
    Sync {
        /// The tables; all known ones when `None`.
        tables: Option<Vec<String>>,
        /// The first day (`YYYY-MM-DD`) whose partitions are synced.
        since: Option<String>,
    },
}

pub struct CatalogFn<S, C> {
    pub store: S,
    pub catalog: C,
    pub config: Config,
    /// Partitions this process registered or saw registered: a warm function skips them.
    known: Mutex<HashSet<(String, Vec<String>)>>,
    database_ready: AtomicBool,
    instruments: Instruments,
}

const MAX_ATTEMPTS: usize = 8;

impl<S, C> Instrumented for CatalogFn<S, C> {
    fn instruments_mut(&mut self) -> &mut Instruments {
        &mut self.instruments
    }
}

impl<S, C> CatalogFn<S, C>
where
    S: ObjectRead + Sync,
    C: TableCatalog + PartitionLocation + Sync,
{
    pub fn new(store: S, catalog: C, config: Config) -> Self {
        CatalogFn {
            store,
            catalog,
            config,
            known: Mutex::default(),
            database_ready: AtomicBool::new(false),
            instruments: Instruments::default(),
        }
    }

    pub async fn handle(&self, event: &Value) -> Result<CatalogResponse, CatalogFnError> {
        let mut resp = CatalogResponse::default();
        let mut wanted: BTreeMap<String, BTreeSet<TimePartition>> = BTreeMap::new();
        match trigger_keys(event)? {
            Trigger::Keys(keys) => {
                for key in keys {
                    match tributary_core::layout::table_partition(&self.config, &key).filter(|_| is_ingest_file(&key)) {
                        Some((t, tp)) => {
                            wanted.entry(t).or_default().insert(tp);
                        }
                        None => resp.ignored_keys += 1,
                    }
                }
            }
            Trigger::Sync { tables, since } => {
                let tables = match tables {
                    Some(t) => t,
                    None => self.known_tables().await?,
                };
                // The hourly sync lists the partitions compaction has work in (their pending
                // markers), so its cost follows what changed; once a day it also looks back.
                let deep = since.is_none() && self.deep_sync_due();
                for t in tables {
                    let parts = self.partitions_since(&t, since.as_deref(), deep).await?;
                    wanted.insert(t, parts);
                }
            }
        }
        if !wanted.is_empty() && !self.database_ready.load(Ordering::Relaxed) {
            self.catalog.ensure_database().await?;
            self.database_ready.store(true, Ordering::Relaxed);
        }
        for (table, parts) in wanted {
            let def = self.sync_table(&table, &mut resp).await?;
            self.sync_partitions(&def, &parts, &mut resp).await?;
        }
        self.emit(&resp);
        Ok(resp)
    }

    /// Whether this is the day's deep sync: the hourly schedule's run in the first hour of the UTC
    /// day. (The catalog function writes nothing to the bucket, so it keeps no record of it; a
    /// failed run is retried within the hour.)
    fn deep_sync_due(&self) -> bool {
        self.instruments.now_ms().rem_euclid(86_400_000) < 3_600_000
    }

    async fn known_tables(&self) -> Result<Vec<String>, CatalogFnError> {
        let listed = self.store.list(&schemas_prefix(&self.config)).await?;
        Ok(listed.iter().filter_map(|m| table_of_schema_key(&self.config, &m.key).map(str::to_string)).collect())
    }

    /// The partitions a sync visits: those with a pending marker (compaction has work there: a
    /// partition with new ingest files keeps its marker until it is compacted after its window
    /// closed), plus on the day's `deep` sync those with ingest files in the last
    /// `sweep_lookback_days` days (one listing per day), or with `since` every day from then on
    /// (one listing of the table, for an operator's catch-up).
    async fn partitions_since(
        &self,
        table: &str,
        since: Option<&str>,
        deep: bool,
    ) -> Result<BTreeSet<TimePartition>, CatalogFnError> {
        let cfg = &self.config;
        let mut out = BTreeSet::new();
        let prefixes = match since {
            Some(_) => vec![layout::table_root(cfg, table)],
            None => {
                for m in self.store.list(&layout::table_markers_prefix(cfg, Marker::Pending, table)).await? {
                    if let Some((_, tp)) = layout::partition_of_marker(cfg, Marker::Pending, &m.key) {
                        out.insert(tp);
                    }
                }
                let days = if deep { recent_days(self.instruments.now_ms(), cfg.compaction.sweep_lookback_days) } else { vec![] };
                days.iter().map(|day| layout::day_prefix(cfg, table, day)).collect()
            }
        };
        for prefix in prefixes {
            for m in self.store.list(&prefix).await?.iter().filter(|m| is_ingest_file(&m.key)) {
                if let Some(tp) = TimePartition::from_key(&m.key).filter(|tp| since.is_none_or(|d| tp.dt.as_str() >= d)) {
                    out.insert(tp);
                }
            }
        }
        Ok(out)
    }

    fn definition(&self, table: &str, schema: &TableSchema) -> TableDef {
        let cfg = &self.config;
        let pairs = |cols: Vec<catalog::CatalogColumn>| cols.into_iter().map(|c| (c.name, c.ty)).collect();
        let mut parameters = BTreeMap::new();
        parameters.insert("classification".to_string(), "parquet".to_string());
        parameters.insert("EXTERNAL".to_string(), "TRUE".to_string());
        parameters.insert("parquet.compression".to_string(), "ZSTD".to_string());
        parameters.insert("tributary.managed".to_string(), "true".to_string());
        TableDef {
            name: table.to_string(),
            columns: pairs(catalog::columns(schema)),
            partition_keys: pairs(catalog::partition_keys(cfg.granularity)),
            location: layout::s3_uri(cfg, &layout::table_root(cfg, table)),
            parameters,
        }
    }

    /// Creates or evolves the table from the schema registry; returns its definition.
    async fn sync_table(&self, table: &str, resp: &mut CatalogResponse) -> Result<TableDef, CatalogFnError> {
        let schema: TableSchema =
            get_json(&self.store, &schema_key(&self.config, table)).await?.map(|v| v.value).unwrap_or_default();
        let wanted = self.definition(table, &schema);
        for _ in 0..MAX_ATTEMPTS {
            let Some(StoredTable { def: existing, version_id }) = self.catalog.get_table(table).await? else {
                if self.catalog.create_table(&wanted).await? {
                    tracing::info!(table, columns = wanted.columns.len(), "table created");
                    resp.tables_created += 1;
                    return Ok(wanted);
                }
                continue; // created concurrently: evolve it instead
            };
            let to_cols = |v: &[(String, String)]| v.iter().map(|(n, t)| catalog::CatalogColumn::new(n, t)).collect::<Vec<_>>();
            match catalog::evolve(&to_cols(&existing.columns), &to_cols(&wanted.columns)) {
                Evolution::Unchanged => return Ok(existing),
                Evolution::Refused(reason) => {
                    tracing::error!(table, %reason, "schema change refused; the table keeps its columns");
                    resp.schema_conflicts.push(format!("{table}: {reason}"));
                    return Ok(existing);
                }
                Evolution::Changed { columns, added, widened } => {
                    let next = TableDef { columns: columns.into_iter().map(|c| (c.name, c.ty)).collect(), ..existing };
                    if self.catalog.update_table(&next, version_id.as_deref()).await? {
                        tracing::info!(table, ?added, ?widened, "table evolved");
                        resp.tables_updated += 1;
                        resp.columns_added += added.len();
                        resp.columns_widened += widened.len();
                        return Ok(next);
                    }
                    tracing::info!(table, "table changed concurrently; reloading");
                }
            }
        }
        Err(CatalogFnError::Contended(table.to_string()))
    }

    /// Registers partitions at the location their state names, then checks the state again: a
    /// compaction that switched meanwhile found no partition to update, so the switch is
    /// applied here (see [`Self::converge`]).
    async fn sync_partitions(
        &self,
        def: &TableDef,
        parts: &BTreeSet<TimePartition>,
        resp: &mut CatalogResponse,
    ) -> Result<(), CatalogFnError> {
        let table = &def.name;
        let fresh: Vec<&TimePartition> = {
            let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            parts.iter().filter(|tp| !known.contains(&(table.clone(), tp.values()))).collect()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::with_capacity(fresh.len());
        for tp in &fresh {
            batch.push((tp.values(), self.location(table, tp).await?));
        }
        resp.partitions_created += self.catalog.create_partitions(def, &batch).await?;
        for (tp, (values, _)) in fresh.iter().zip(&batch) {
            self.converge(table, tp, values).await?;
        }
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        for tp in fresh {
            known.insert((table.clone(), tp.values()));
        }
        Ok(())
    }

    /// Points the registered partition where its state says, until both agree. The catalog may
    /// hold a stale location: registered by an invocation that died before this check, or set
    /// from a state read just before a compaction's switch. A compaction sets the location after
    /// it commits the state, so once both agree here they stay in agreement; and a location is
    /// never replaced by an older version (this invocation's state read was the stale one).
    async fn converge(&self, table: &str, tp: &TimePartition, values: &[String]) -> Result<(), CatalogFnError> {
        for _ in 0..MAX_ATTEMPTS {
            let want = self.location(table, tp).await?;
            match self.catalog.partition_location(table, values).await? {
                Some(have) if have == want => return Ok(()),
                // A compaction switched after our read of the state: never move readers back.
                Some(have)
                    if tributary_core::layout::location_version(&have) > tributary_core::layout::location_version(&want) =>
                {
                    return Ok(());
                }
                _ => {}
            }
            self.catalog.set_partition_location(table, values, &want).await?;
        }
        Err(CatalogFnError::Contended(format!("{table} {}", tp.path())))
    }

    async fn location(&self, table: &str, tp: &TimePartition) -> Result<String, CatalogFnError> {
        let state = partition_state(&self.store, &self.config, table, tp).await?.value;
        Ok(layout::s3_uri(&self.config, &state.location))
    }

    fn emit(&self, r: &CatalogResponse) {
        let mut emf = Emf::new(&self.config.metrics_namespace).dimension("Function", "catalog");
        emf.metric("TablesCreated", r.tables_created as f64, Unit::Count)
            .metric("TablesUpdated", r.tables_updated as f64, Unit::Count)
            .metric("ColumnsAdded", r.columns_added as f64, Unit::Count)
            .metric("PartitionsCreated", r.partitions_created as f64, Unit::Count)
            .metric("SchemaConflicts", r.schema_conflicts.len() as f64, Unit::Count);
        self.instruments.emit(&emf.to_json(self.instruments.now_ms()));
    }
}

#[cfg(test)]
mod tests;
