//! Wiring only. The catalog function arrives with its issue; until then this binary builds and
//! answers every invocation with a clear error, so a deployment never silently does nothing.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().without_time().init();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| tributary_catalog::handle(event))).await
}
