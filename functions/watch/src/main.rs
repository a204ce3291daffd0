//! Wiring only: the mapping to watch and a Lambda client from the environment, then the runtime loop.

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::Value;
use tributary_aws::LambdaMappings;
use tributary_watch::{Watch, WatchConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tributary_aws::logging::init();
    let config = match WatchConfig::from_env() {
        Ok(config) => config,
        Err(e) => return tributary_aws::startup::refuse_invocations(e).await,
    };
    let watch = Watch::new(LambdaMappings::from_env().await, config);
    let watch = &watch;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        watch.handle().await.map_err(|e| {
            tracing::error!(error = %e, "the event source mapping could not be read");
            Diagnostic::from(e)
        })
    }))
    .await
}
