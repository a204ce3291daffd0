//! The typed event reader, for tests and fuzzing: what `aws_lambda_events`' `KafkaEvent` makes of
//! an event. Ingest does not use it: that type reads timestamps through `f64` and can lose a
//! millisecond; [`super::read_event`] reads them exactly.

use aws_lambda_events::event::kafka::KafkaEvent;
use serde::Deserialize;

use super::lenient::whole_timestamp;
use super::{EventError, TopicPartitionBatch, WireRecord, by_topic_partition, into_batches};

/// Parses an event from JSON bytes into the typed event.
pub fn parse_event(bytes: &[u8]) -> Result<KafkaEvent, EventError> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| EventError::Json(e.to_string()))?;
    if let Some(groups) = v.get_mut("records").and_then(serde_json::Value::as_object_mut) {
        for record in groups.values_mut().filter_map(serde_json::Value::as_array_mut).flatten() {
            whole_timestamp(record).map_err(|reason| EventError::Json(reason.into()))?;
        }
    }
    KafkaEvent::deserialize(v).map_err(|e| EventError::Json(e.to_string()))
}

/// A typed event's per-topic-partition batches, as [`super::read_event`] gives them.
///
/// Fails only when the event itself is malformed (a group whose records name neither a topic
/// nor a parsable `"<topic>-<partition>"` key, a negative offset or partition): such an event
/// cannot be attributed, and retrying it is the right answer.
pub fn batches(event: KafkaEvent) -> Result<Vec<TopicPartitionBatch>, EventError> {
    let groups = event
        .records
        .iter()
        .map(|(g, list)| (g.as_str(), list.iter().map(|r| WireRecord::of(r, r.timestamp.0.timestamp_millis())).collect()));
    Ok(into_batches(by_topic_partition(groups)?))
}
