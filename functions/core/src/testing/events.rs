//! Kafka events built the way the event source mapping builds them, for tests.

use aws_lambda_events::event::kafka::KafkaEvent;

use crate::kafka::{Consumed, group_key};

/// A record for [`build_event`]: offset, timestamp (ms), key, value, headers.
pub type SampleRecord<'a> = (i64, i64, Option<&'a [u8]>, Option<&'a [u8]>, &'a [(&'a str, &'a [u8])]);

/// Builds an event the way the event source mapping does, for tests and the local pipeline.
pub fn build_event(source: &str, topic: &str, partition: i32, records: &[SampleRecord]) -> KafkaEvent {
    let mut event = KafkaEvent::default();
    event.event_source = Some(source.to_string());
    let list = records
        .iter()
        .map(|&(offset, timestamp_ms, key, value, headers)| {
            Consumed {
                topic: topic.to_string(),
                partition,
                offset,
                timestamp_ms,
                timestamp_type: "CREATE_TIME".into(),
                key: key.map(<[u8]>::to_vec),
                value: value.map(<[u8]>::to_vec),
                headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect(),
            }
            .into_event_record()
        })
        .collect();
    event.records.insert(group_key(topic, partition), list);
    event
}

/// An event's JSON bytes, as the runtime hands them to the function.
pub fn event_bytes(event: &KafkaEvent) -> Vec<u8> {
    serde_json::to_vec(event).expect("a Kafka event serializes")
}
