//! SQL on Amazon Athena.

use aws_sdk_athena::Client;
use aws_sdk_athena::error::{DisplayErrorContext, SdkError};
use aws_sdk_athena::types::QueryExecutionContext;

use crate::{CatalogError, QueryResult, QueryRun, QueryStatus};

#[derive(Debug, Clone)]
pub struct AthenaQueries {
    client: Client,
}

impl AthenaQueries {
    pub fn new(client: Client) -> Self {
        AthenaQueries { client }
    }

    pub async fn from_env() -> Self {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        AthenaQueries::new(Client::new(&shared))
    }
}

fn err<E: std::error::Error + 'static, R: std::fmt::Debug>(op: &'static str, what: &str, e: SdkError<E, R>) -> CatalogError {
    CatalogError { op, table: what.to_string(), values: Vec::new(), message: DisplayErrorContext(&e).to_string() }
}

impl QueryRun for AthenaQueries {
    async fn start(&self, sql: &str, database: &str, workgroup: &str) -> Result<String, CatalogError> {
        let out = self
            .client
            .start_query_execution()
            .query_string(sql)
            .work_group(workgroup)
            .query_execution_context(QueryExecutionContext::builder().database(database).build())
            .send()
            .await
            .map_err(|e| err("StartQueryExecution", workgroup, e))?;
        out.query_execution_id().map(str::to_string).ok_or_else(|| CatalogError {
            op: "StartQueryExecution",
            table: workgroup.into(),
            values: Vec::new(),
            message: "no query execution id".into(),
        })
    }

    async fn status(&self, id: &str) -> Result<QueryStatus, CatalogError> {
        let out =
            self.client.get_query_execution().query_execution_id(id).send().await.map_err(|e| err("GetQueryExecution", id, e))?;
        let q = out.query_execution();
        let status = q.and_then(|q| q.status());
        let stats = q.and_then(|q| q.statistics());
        Ok(QueryStatus {
            state: status.and_then(|s| s.state()).map(|s| s.as_str().to_string()).unwrap_or_else(|| "QUEUED".into()),
            reason: status.and_then(|s| s.state_change_reason()).map(str::to_string),
            scanned_bytes: stats.and_then(|s| s.data_scanned_in_bytes()),
            elapsed_ms: stats.and_then(|s| s.total_execution_time_in_millis()),
        })
    }

    async fn results(&self, id: &str) -> Result<QueryResult, CatalogError> {
        let mut result = QueryResult::default();
        let mut pages = self.client.get_query_results().query_execution_id(id).into_paginator().send();
        let mut first = true;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| err("GetQueryResults", id, e))?;
            let Some(rs) = page.result_set() else { continue };
            if result.columns.is_empty() {
                result.columns = rs
                    .result_set_metadata()
                    .map(|m| m.column_info().iter().map(|c| c.name().to_string()).collect())
                    .unwrap_or_default();
            }
            for (i, row) in rs.rows().iter().enumerate() {
                let cells: Vec<Option<String>> = row.data().iter().map(|d| d.var_char_value().map(str::to_string)).collect();
                // The first row of the first page repeats the column names (for SELECTs).
                if first
                    && i == 0
                    && cells.iter().map(|c| c.as_deref().unwrap_or_default()).eq(result.columns.iter().map(String::as_str))
                {
                    continue;
                }
                result.rows.push(cells);
            }
            first = false;
        }
        Ok(result)
    }
}
