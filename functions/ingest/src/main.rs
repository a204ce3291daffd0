//! Wiring only: configuration and an S3 client from the environment, then the runtime loop.

// The handler future nests the SDK clients' futures deeply; the default limit is too low for
// computing its layout.
#![recursion_limit = "256"]

use lambda_runtime::{Error, service_fn};
use tributary_aws::S3Store;
use tributary_ingest::{Ingest, config_from_env, function_handler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tributary_aws::logging::init();
    let config = match config_from_env() {
        Ok(config) => config,
        Err(e) => return tributary_aws::startup::refuse_invocations(e).await,
    };
    let store = S3Store::from_env(config.bucket.clone()).await;
    let ingest = Ingest::new(store, config);
    let ingest = &ingest;
    lambda_runtime::run(service_fn(move |event| function_handler(ingest, event))).await
}
