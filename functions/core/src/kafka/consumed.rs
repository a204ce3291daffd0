//! A record as a Kafka consumer delivers it, and the record the event source mapping makes of
//! it: the one place that encodes records the way Lambda's Kafka events carry them.

use aws_lambda_events::event::kafka::KafkaRecord;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A record as a Kafka consumer delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumed {
    /// The record's topic.
    pub topic: String,
    /// The record's partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// `CREATE_TIME` or `LOG_APPEND_TIME`.
    pub timestamp_type: String,
    /// The key's bytes; `None` when the record has no key.
    pub key: Option<Vec<u8>>,
    /// The value's bytes; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// The headers, as (name, bytes).
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Consumed {
    /// The record as the event source mapping puts it in an event: key and value in base64,
    /// header values as signed bytes.
    pub fn into_event_record(self) -> KafkaRecord {
        let mut r = KafkaRecord::default();
        r.topic = Some(self.topic);
        r.partition = self.partition.into();
        r.offset = self.offset;
        r.timestamp = aws_lambda_events::encodings::MillisecondTimestamp(
            chrono::DateTime::from_timestamp_millis(self.timestamp_ms).unwrap_or_default(),
        );
        r.timestamp_type = Some(self.timestamp_type);
        r.key = self.key.map(|k| STANDARD.encode(k));
        r.value = self.value.map(|v| STANDARD.encode(v));
        r.headers = self
            .headers
            .into_iter()
            .map(|(k, v)| std::iter::once((k, v.into_iter().map(|b| b as i8).collect())).collect())
            .collect();
        r
    }
}

/// The key an event groups a topic-partition's records under: `"<topic>-<partition>"`
/// (read back by [`super::split_group_key`]).
pub fn group_key(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}
