//! The watch function: once per schedule tick, reads the ingest function's event source mapping
//! and emits `IngestSourceStopped` (1 stopped, 0 consuming or changing). Its alarm treats missing
//! data as breaching, so a mapping that stopped, a watch that stopped, and a watch that cannot
//! read the mapping (it fails, emits nothing) all page. The verdict is
//! `tributary_core::watch::source_health`; this crate does the I/O.

use serde::Serialize;
use tributary_aws::{Instrumented, Instruments, MappingError, MappingRead};
use tributary_core::metrics::{Emf, Unit};
use tributary_core::watch::{SourceHealth, source_health};

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Mapping(#[from] MappingError),
}

/// The invocation's `errorType` as Lambda reports it.
impl tributary_aws::startup::ErrorType for WatchError {
    fn error_type(&self) -> &'static str {
        match self {
            WatchError::Config(_) => "ConfigError",
            WatchError::Mapping(_) => "MappingReadError",
        }
    }
}

/// What one reading found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchResponse {
    pub state: String,
    pub state_transition_reason: Option<String>,
    pub last_processing_result: Option<String>,
    pub stopped: bool,
    /// Why it counts as stopped.
    pub reason: Option<String>,
}

/// What the watch reads: the mapping's UUID, and the metrics namespace of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    pub mapping_uuid: String,
    pub metrics_namespace: String,
}

impl WatchConfig {
    /// `TRIBUTARY_EVENT_SOURCE_MAPPING` (required) and `TRIBUTARY_METRICS_NAMESPACE`.
    pub fn from_env() -> Result<Self, WatchError> {
        let uuid = std::env::var("TRIBUTARY_EVENT_SOURCE_MAPPING").unwrap_or_default();
        if uuid.trim().is_empty() {
            return Err(WatchError::Config("TRIBUTARY_EVENT_SOURCE_MAPPING (the mapping's UUID) is not set".into()));
        }
        let ns = std::env::var("TRIBUTARY_METRICS_NAMESPACE").ok().filter(|v| !v.is_empty());
        Ok(WatchConfig { mapping_uuid: uuid.trim().into(), metrics_namespace: ns.unwrap_or_else(|| "Tributary".into()) })
    }
}

pub struct Watch<M> {
    pub mappings: M,
    pub config: WatchConfig,
    instruments: Instruments,
}

impl<M> Instrumented for Watch<M> {
    fn instruments_mut(&mut self) -> &mut Instruments {
        &mut self.instruments
    }
}

impl<M: MappingRead + Sync> Watch<M> {
    pub fn new(mappings: M, config: WatchConfig) -> Self {
        Watch { mappings, config, instruments: Instruments::default() }
    }

    /// Reads the mapping once. A failed read fails the invocation and emits nothing: the
    /// alarm's missing data is then the page.
    pub async fn handle(&self) -> Result<WatchResponse, WatchError> {
        let s = self.mappings.status(&self.config.mapping_uuid).await?;
        let now = self.instruments.now_ms();
        let ago = s.last_modified_ms.map(|t| now - t);
        let health = source_health(&s.state, s.state_transition_reason.as_deref(), s.last_processing_result.as_deref(), ago);
        let reason = match &health {
            SourceHealth::Stopped(why) => {
                tracing::error!(uuid = %self.config.mapping_uuid, state = %s.state, reason = %why, "the ingest event source mapping is not consuming");
                Some(why.clone())
            }
            _ => {
                tracing::info!(uuid = %self.config.mapping_uuid, state = %s.state, last = ?s.last_processing_result, "event source mapping read");
                None
            }
        };
        let mut emf = Emf::new(&self.config.metrics_namespace).dimension("Function", "watch");
        emf.metric("IngestSourceStopped", health.metric(), Unit::Count);
        self.instruments.emit(&emf.to_json(now));
        Ok(WatchResponse {
            state: s.state,
            state_transition_reason: s.state_transition_reason,
            last_processing_result: s.last_processing_result,
            stopped: reason.is_some(),
            reason,
        })
    }
}

#[cfg(test)]
mod tests;
