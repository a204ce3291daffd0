//! Partition locations in the AWS Glue Data Catalog.

use aws_sdk_glue::Client;
use aws_sdk_glue::error::{DisplayErrorContext, SdkError};
use aws_sdk_glue::types::PartitionInput;

use crate::{CatalogError, PartitionLocation};

/// One Glue database.
#[derive(Debug, Clone)]
pub struct GlueCatalog {
    client: Client,
    database: String,
}

impl GlueCatalog {
    pub fn new(client: Client, database: impl Into<String>) -> Self {
        GlueCatalog { client, database: database.into() }
    }

    /// A client from the environment (`AWS_ENDPOINT_URL` for a stand-in).
    pub async fn from_env(database: impl Into<String>) -> Self {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        GlueCatalog::new(Client::new(&shared), database)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn database(&self) -> &str {
        &self.database
    }
}

fn err<E: std::error::Error + 'static, R: std::fmt::Debug>(
    op: &'static str,
    table: &str,
    values: &[String],
    e: SdkError<E, R>,
) -> CatalogError {
    CatalogError { op, table: table.to_string(), values: values.to_vec(), message: DisplayErrorContext(&e).to_string() }
}

impl GlueCatalog {
    /// The partition, or `None` if it is not registered.
    async fn partition(&self, table: &str, values: &[String]) -> Result<Option<aws_sdk_glue::types::Partition>, CatalogError> {
        match self
            .client
            .get_partition()
            .database_name(&self.database)
            .table_name(table)
            .set_partition_values(Some(values.to_vec()))
            .send()
            .await
        {
            Ok(out) => Ok(out.partition),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => Ok(None),
            Err(e) => Err(err("GetPartition", table, values, e)),
        }
    }
}

impl PartitionLocation for GlueCatalog {
    async fn partition_location(&self, table: &str, values: &[String]) -> Result<Option<String>, CatalogError> {
        let p = self.partition(table, values).await?;
        Ok(p.as_ref().and_then(|p| p.storage_descriptor()).and_then(|sd| sd.location()).map(str::to_string))
    }

    async fn set_partition_location(&self, table: &str, values: &[String], location: &str) -> Result<bool, CatalogError> {
        let Some(partition) = self.partition(table, values).await? else { return Ok(false) };
        let mut sd = partition.storage_descriptor.unwrap_or_else(|| aws_sdk_glue::types::StorageDescriptor::builder().build());
        if sd.location.as_deref() == Some(location) {
            return Ok(true);
        }
        sd.location = Some(location.to_string());
        let input = PartitionInput::builder()
            .set_values(Some(values.to_vec()))
            .storage_descriptor(sd)
            .set_parameters(partition.parameters)
            .build();
        self.client
            .update_partition()
            .database_name(&self.database)
            .table_name(table)
            .set_partition_value_list(Some(values.to_vec()))
            .partition_input(input)
            .send()
            .await
            .map_err(|e| err("UpdatePartition", table, values, e))?;
        Ok(true)
    }
}

const SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
const INPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
const OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";

fn glue_columns(cols: &[(String, String)]) -> Result<Vec<aws_sdk_glue::types::Column>, CatalogError> {
    cols.iter()
        .map(|(n, t)| {
            aws_sdk_glue::types::Column::builder().name(n).r#type(t).build().map_err(|e| CatalogError {
                op: "Column",
                table: n.clone(),
                values: Vec::new(),
                message: e.to_string(),
            })
        })
        .collect()
}

fn storage(def: &crate::TableDef, location: &str) -> Result<aws_sdk_glue::types::StorageDescriptor, CatalogError> {
    Ok(aws_sdk_glue::types::StorageDescriptor::builder()
        .set_columns(Some(glue_columns(&def.columns)?))
        .location(location)
        .input_format(INPUT_FORMAT)
        .output_format(OUTPUT_FORMAT)
        .serde_info(
            aws_sdk_glue::types::SerDeInfo::builder()
                .serialization_library(SERDE)
                .parameters("serialization.format", "1")
                .build(),
        )
        .build())
}

fn table_input(def: &crate::TableDef) -> Result<aws_sdk_glue::types::TableInput, CatalogError> {
    aws_sdk_glue::types::TableInput::builder()
        .name(&def.name)
        .table_type("EXTERNAL_TABLE")
        .set_parameters(Some(def.parameters.clone().into_iter().collect()))
        .set_partition_keys(Some(glue_columns(&def.partition_keys)?))
        .storage_descriptor(storage(def, &def.location)?)
        .build()
        .map_err(|e| CatalogError { op: "TableInput", table: def.name.clone(), values: Vec::new(), message: e.to_string() })
}

fn pairs(cols: &[aws_sdk_glue::types::Column]) -> Vec<(String, String)> {
    cols.iter().map(|c| (c.name().to_string(), c.r#type().unwrap_or_default().to_string())).collect()
}

impl crate::TableCatalog for GlueCatalog {
    async fn ensure_database(&self) -> Result<(), CatalogError> {
        let input = aws_sdk_glue::types::DatabaseInput::builder()
            .name(&self.database)
            .description("Tables landed from Kafka by Tributary")
            .build()
            .map_err(|e| CatalogError {
                op: "DatabaseInput",
                table: self.database.clone(),
                values: Vec::new(),
                message: e.to_string(),
            })?;
        match self.client.create_database().database_input(input).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => Ok(()),
            Err(e) => Err(err("CreateDatabase", &self.database, &[], e)),
        }
    }

    async fn get_table(&self, table: &str) -> Result<Option<crate::StoredTable>, CatalogError> {
        let out = match self.client.get_table().database_name(&self.database).name(table).send().await {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => return Ok(None),
            Err(e) => return Err(err("GetTable", table, &[], e)),
        };
        let Some(t) = out.table else { return Ok(None) };
        let sd = t.storage_descriptor();
        Ok(Some(crate::StoredTable {
            def: crate::TableDef {
                name: t.name().to_string(),
                columns: sd.map(|s| pairs(s.columns())).unwrap_or_default(),
                partition_keys: pairs(t.partition_keys()),
                location: sd.and_then(|s| s.location()).unwrap_or_default().to_string(),
                parameters: t.parameters().map(|p| p.clone().into_iter().collect()).unwrap_or_default(),
            },
            version_id: t.version_id().map(str::to_string),
        }))
    }

    async fn create_table(&self, def: &crate::TableDef) -> Result<bool, CatalogError> {
        match self.client.create_table().database_name(&self.database).table_input(table_input(def)?).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => Ok(false),
            Err(e) => Err(err("CreateTable", &def.name, &[], e)),
        }
    }

    async fn update_table(&self, def: &crate::TableDef, version_id: Option<&str>) -> Result<bool, CatalogError> {
        let mut req = self.client.update_table().database_name(&self.database).table_input(table_input(def)?);
        if let Some(v) = version_id {
            req = req.version_id(v);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_concurrent_modification_exception()) => Ok(false),
            Err(e) => Err(err("UpdateTable", &def.name, &[], e)),
        }
    }

    async fn create_partitions(
        &self,
        def: &crate::TableDef,
        partitions: &[(Vec<String>, String)],
    ) -> Result<usize, CatalogError> {
        let mut created = 0;
        for chunk in partitions.chunks(100) {
            let inputs = chunk
                .iter()
                .map(|(values, location)| {
                    Ok(aws_sdk_glue::types::PartitionInput::builder()
                        .set_values(Some(values.clone()))
                        .storage_descriptor(storage(def, location)?)
                        .build())
                })
                .collect::<Result<Vec<_>, CatalogError>>()?;
            let out = self
                .client
                .batch_create_partition()
                .database_name(&self.database)
                .table_name(&def.name)
                .set_partition_input_list(Some(inputs))
                .send()
                .await
                .map_err(|e| err("BatchCreatePartition", &def.name, &[], e))?;
            let mut failed = 0;
            for e in out.errors() {
                let code = e.error_detail().and_then(|d| d.error_code()).unwrap_or_default();
                if code != "AlreadyExistsException" {
                    return Err(CatalogError {
                        op: "BatchCreatePartition",
                        table: def.name.clone(),
                        values: e.partition_values().to_vec(),
                        message: format!("{code}: {}", e.error_detail().and_then(|d| d.error_message()).unwrap_or_default()),
                    });
                }
                failed += 1;
            }
            created += chunk.len() - failed;
        }
        Ok(created)
    }
}
