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

impl PartitionLocation for GlueCatalog {
    async fn partition_location(&self, table: &str, values: &[String]) -> Result<Option<String>, CatalogError> {
        match self
            .client
            .get_partition()
            .database_name(&self.database)
            .table_name(table)
            .set_partition_values(Some(values.to_vec()))
            .send()
            .await
        {
            Ok(out) => Ok(out.partition().and_then(|p| p.storage_descriptor()).and_then(|sd| sd.location()).map(str::to_string)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => Ok(None),
            Err(e) => Err(err("GetPartition", table, values, e)),
        }
    }

    async fn set_partition_location(&self, table: &str, values: &[String], location: &str) -> Result<bool, CatalogError> {
        let current = match self
            .client
            .get_partition()
            .database_name(&self.database)
            .table_name(table)
            .set_partition_values(Some(values.to_vec()))
            .send()
            .await
        {
            Ok(out) => out.partition,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => return Ok(false),
            Err(e) => return Err(err("GetPartition", table, values, e)),
        };
        let Some(partition) = current else { return Ok(false) };
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
