//! The object keys S3 events name.

/// The object key an S3 event names: event keys are URL-encoded, with `+` for a space.
pub fn decode_event_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// The object keys an S3 object-created event names, URL-decoded: an EventBridge `Object Created`
/// event, or an S3 notification (its `ObjectCreated:*` records). `None` for any other event, and
/// for one that names no key where it must.
pub fn object_created_keys(v: &serde_json::Value) -> Option<Vec<String>> {
    let key = |at: &serde_json::Value, path: &str| at.pointer(path).and_then(serde_json::Value::as_str).map(decode_event_key);
    if v.get("detail-type").and_then(serde_json::Value::as_str) == Some("Object Created") {
        return key(v, "/detail/object/key").map(|k| vec![k]);
    }
    let records = v.get("Records")?.as_array()?;
    records
        .iter()
        .filter(|r| r.get("eventName").and_then(serde_json::Value::as_str).is_some_and(|n| n.starts_with("ObjectCreated")))
        .map(|r| key(r, "/s3/object/key"))
        .collect()
}
