//! Local SQL over the local tables (DataFusion), with the table and column names Athena shows.
//!
//! The tables are resolved the way the catalog function resolves them for Glue: every table of
//! the schema registry, each of its partitions at the location its partition state names (the
//! ingest location, or the current compacted version), with the partition keys as columns.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use tributary_aws::{ObjectRead, S3Store, get_json};
use tributary_core::Config;
use tributary_core::layout;
use tributary_core::layout::is_ingest_file;
use tributary_core::layout::time_partition::TimePartition;
use tributary_core::layout::{schema_key, schemas_prefix, table_of_schema_key};
use tributary_core::table::kafka_columns::output_schema;
use tributary_core::table::schema::TableSchema;

use crate::Error;

/// A SQL session over every table of the local store (files under `root/<bucket>/`).
pub async fn session(store: &S3Store, root: &Path, config: &Config) -> Result<SessionContext, Error> {
    // One thread is plenty for local tables, and keeps the machine free.
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let listed = store.list(&schemas_prefix(config)).await?;
    let tables: Vec<String> = listed.iter().filter_map(|m| table_of_schema_key(config, &m.key).map(str::to_string)).collect();
    for table in tables {
        let schema: TableSchema = get_json(store, &schema_key(config, &table)).await?.map(|v| v.value).unwrap_or_default();
        let arrow = output_schema(&schema);
        let partitions: BTreeSet<TimePartition> = store
            .list(&layout::table_root(config, &table))
            .await?
            .iter()
            .filter(|m| is_ingest_file(&m.key) && !layout::is_version_key(&m.key))
            .filter_map(|m| TimePartition::from_key(&m.key))
            .collect();
        let mut parts = Vec::new();
        for (i, tp) in partitions.iter().enumerate() {
            let state = tributary_aws::partition_state(store, config, &table, tp).await?.value;
            let dir: PathBuf = root.join(&config.bucket).join(&state.location);
            let name = format!("{table}__p{i}");
            let options = ParquetReadOptions { file_extension: ".parquet", schema: Some(&arrow), ..Default::default() };
            ctx.register_parquet(&name, dir.to_string_lossy().as_ref(), options).await?;
            let hr = tp.hr.as_deref().map(|h| format!(", '{h}' AS hr")).unwrap_or_default();
            parts.push(format!("SELECT *, '{}' AS dt{hr} FROM \"{name}\"", tp.dt));
        }
        if !parts.is_empty() {
            ctx.sql(&format!("CREATE VIEW \"{table}\" AS {}", parts.join(" UNION ALL "))).await?;
        }
    }
    Ok(ctx)
}

/// Runs one statement and collects its result.
pub async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, Error> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// Runs one statement and renders its result as a table.
pub async fn pretty(ctx: &SessionContext, sql: &str) -> Result<String, Error> {
    Ok(arrow_cast::pretty::pretty_format_batches(&run(ctx, sql).await?)?.to_string())
}
