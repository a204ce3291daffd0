//! The Kafka event inside the record an S3 on-failure destination keeps of a batch Lambda gave up on.

/// The Kafka event inside an invocation record that an S3 on-failure destination wrote for a
/// batch Lambda gave up on (after 10 retries when retries are infinite). For S3 destinations
/// Lambda sends "the entire invocation record along with the metadata"; its example puts the
/// event under `payload`, which this reads as an object or as a JSON string of one. Anything else
/// is refused with what was found, never guessed at.
pub fn failed_batch_event(record: &serde_json::Value) -> Result<serde_json::Value, String> {
    let payload = record.get("payload").ok_or_else(|| {
        let keys: Vec<&str> = record.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        format!("no \"payload\" in the failure record (it has {keys:?}); only an S3 destination keeps the batch")
    })?;
    let event = match payload {
        serde_json::Value::String(s) => {
            serde_json::from_str(s).map_err(|e| format!("the failure record's payload is a string but not JSON: {e}"))?
        }
        other => other.clone(),
    };
    if event.get("records").is_some_and(serde_json::Value::is_object) {
        Ok(event)
    } else {
        Err("the failure record's payload is not a Kafka event (no \"records\" object)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_is_read_from_an_object_or_a_string_payload_and_nothing_else() {
        let event = serde_json::json!({"eventSource": "aws:kafka", "records": {"t-0": []}});
        let meta = serde_json::json!({"requestContext": {"condition": "RetryAttemptsExhausted"}, "version": "1.0"});
        let with = |payload: serde_json::Value| {
            let mut r = meta.clone();
            r["payload"] = payload;
            r
        };
        assert_eq!(failed_batch_event(&with(event.clone())).unwrap(), event);
        assert_eq!(failed_batch_event(&with(event.to_string().into())).unwrap(), event);
        assert!(failed_batch_event(&meta).unwrap_err().contains("requestContext"), "an SQS/SNS-style record: no payload");
        assert!(failed_batch_event(&with("{not json".into())).unwrap_err().contains("not JSON"));
        assert!(failed_batch_event(&with(serde_json::json!({"Records": []}))).unwrap_err().contains("not a Kafka event"));
    }
}
