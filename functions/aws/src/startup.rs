//! A function's runtime loop: the `errorType` of its failures ([`ErrorType`], [`serve`]), and
//! what it does when its configuration is refused at start-up ([`refuse_invocations`]).
//!
//! A Lambda function whose `main` returns an error before the runtime loop starts is reported by
//! Lambda as `Runtime.ExitError` (an init failure): the real reason reaches only the log, not the
//! invocation's `errorType`, the event source mapping's failure record or an alarm's dimensions.
//! So a refused configuration (a moved prefix, a malformed `TRIBUTARY_CONFIG`, no mapping UUID)
//! starts the runtime anyway and fails every invocation with `errorType` `ConfigError` and the
//! reason, until the stack is fixed. Nothing is processed, so nothing is committed: the event
//! source mapping retries its batch, and EventBridge and the schedules retry their triggers.

use std::fmt::Display;
use std::future::Future;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde::Serialize;
use serde_json::Value;

/// An error that names the invocation's `errorType` as Lambda reports it (CloudWatch, failure
/// records, alarm dimensions): without it the runtime names the boxed error's type, the same for
/// every failure.
pub trait ErrorType: Display {
    /// One name per way the invocation can fail.
    fn error_type(&self) -> &'static str;
}

/// The invocation's error as Lambda reports it.
pub fn diagnostic(e: &impl ErrorType) -> Diagnostic {
    Diagnostic { error_type: e.error_type().into(), error_message: e.to_string() }
}

/// Runs the runtime loop of a function triggered by JSON events: `handle` answers each; a
/// failure is logged with `retried` (who retries it) and reported with its `errorType`.
pub async fn serve<H, F, R, E>(handle: H, retried: &'static str) -> Result<(), Error>
where
    H: Fn(LambdaEvent<Value>) -> F,
    F: Future<Output = Result<R, E>>,
    R: Serialize,
    E: ErrorType,
{
    let handle = &handle;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(event).await.map_err(|e| {
            tracing::error!(error = %e, "{retried}");
            diagnostic(&e)
        })
    }))
    .await
}

/// The `errorType` of an invocation refused for its function's configuration.
pub const CONFIG_ERROR: &str = "ConfigError";

/// The error every invocation answers while the configuration is refused.
pub fn refusal(reason: &impl Display) -> Diagnostic {
    Diagnostic { error_type: CONFIG_ERROR.into(), error_message: format!("the function's configuration is refused: {reason}") }
}

/// Runs the runtime loop, failing every invocation with [`refusal`]. Returns only when the
/// runtime itself fails.
pub async fn refuse_invocations(reason: impl Display) -> Result<(), Error> {
    tracing::error!(error = %reason, "configuration refused; every invocation fails with ConfigError until it is fixed");
    let reason = reason.to_string();
    let reason = &reason;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move { Err::<Value, Diagnostic>(refusal(reason)) })).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_configuration_names_itself_and_its_reason() {
        let d = refusal(&"table_prefix is moved to \"x/\"");
        assert_eq!(d.error_type, "ConfigError");
        assert!(d.error_message.ends_with("refused: table_prefix is moved to \"x/\""), "{}", d.error_message);
    }
}
