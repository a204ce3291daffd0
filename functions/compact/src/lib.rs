//! The compact function (not yet implemented: see the issue tracker).

use lambda_runtime::LambdaEvent;
use serde_json::Value;

/// Refuses every event with a clear error until the function is implemented.
pub async fn handle(event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let _ = event;
    Err("the compact function is not implemented yet".into())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn refuses_clearly() {
        let e = lambda_runtime::LambdaEvent::new(serde_json::json!({}), lambda_runtime::Context::default());
        assert!(super::handle(e).await.unwrap_err().to_string().contains("not implemented"));
    }
}
