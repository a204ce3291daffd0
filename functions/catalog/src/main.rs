//! Wiring only: configuration, S3 and Glue clients from the environment, then the runtime loop.

// The handler future nests the SDK clients' futures deeply; the default limit is too low for
// computing its layout.
#![recursion_limit = "256"]

use lambda_runtime::Error;
use tributary_aws::startup::serve;
use tributary_aws::{GlueCatalog, S3Store};
use tributary_catalog::CatalogFn;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tributary_aws::logging::init();
    let config = match tributary_core::Config::from_env() {
        Ok(config) => config,
        Err(e) => return tributary_aws::startup::refuse_invocations(e).await,
    };
    let store = S3Store::from_env(config.bucket.clone()).await;
    let glue = GlueCatalog::from_env(config.database.clone()).await;
    let f = CatalogFn::new(store, glue, config);
    let f = &f;
    serve(move |event| async move { f.handle(&event.payload).await }, "catalog update failed; EventBridge retries it").await
}
