//! Wiring only: the mapping to watch and a Lambda client from the environment, then the runtime loop.

use lambda_runtime::Error;
use tributary_aws::LambdaMappings;
use tributary_aws::startup::serve;
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
    serve(move |_| async move { watch.handle().await }, "the event source mapping could not be read").await
}
