//! The ingest function's event source mapping, as the Lambda API reports it.

use aws_sdk_lambda::Client;
use aws_sdk_lambda::error::DisplayErrorContext;

use crate::{MappingError, MappingRead, MappingStatus};

/// Event source mappings through the AWS SDK.
#[derive(Debug, Clone)]
pub struct LambdaMappings {
    client: Client,
}

impl LambdaMappings {
    pub fn new(client: Client) -> Self {
        LambdaMappings { client }
    }

    /// A client from the environment (`AWS_ENDPOINT_URL` for a stand-in).
    pub async fn from_env() -> Self {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        LambdaMappings::new(Client::new(&shared))
    }
}

impl MappingRead for LambdaMappings {
    async fn status(&self, uuid: &str) -> Result<MappingStatus, MappingError> {
        let out = self
            .client
            .get_event_source_mapping()
            .uuid(uuid)
            .send()
            .await
            .map_err(|e| MappingError { uuid: uuid.into(), message: DisplayErrorContext(&e).to_string() })?;
        Ok(MappingStatus {
            state: out.state().unwrap_or_default().to_string(),
            state_transition_reason: out.state_transition_reason().map(str::to_string),
            last_processing_result: out.last_processing_result().map(str::to_string),
            last_modified_ms: out.last_modified().and_then(|t| t.to_millis().ok()),
        })
    }
}
