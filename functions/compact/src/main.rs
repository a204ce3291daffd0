//! Wiring only: configuration, S3 and Glue clients from the environment, then the runtime loop.

// The handler future nests the SDK clients' futures deeply; the default limit is too low for
// computing its layout.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use tributary_aws::startup::serve;
use tributary_aws::{GlueCatalog, S3Store};
use tributary_compact::Compactor;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tributary_aws::logging::init();
    let config = match tributary_core::Config::from_env() {
        Ok(config) => config,
        Err(e) => return tributary_aws::startup::refuse_invocations(e).await,
    };
    let store = S3Store::from_env(config.bucket.clone()).await;
    let catalog = GlueCatalog::from_env(config.database.clone()).await;
    let compactor = Compactor::new(store, catalog, config);
    let compactor = &compactor;
    let handle =
        move |event: LambdaEvent<Value>| async move { compactor.handle(&event.payload, &event.context.request_id).await };
    serve(handle, "compaction failed; the trigger retries it").await
}
