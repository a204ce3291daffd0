//! The dead-letter area: one JSON Lines file per (table, Kafka date, topic-partition, batch),
//! one line per refused record, with the raw bytes (base64), the Kafka coordinates and the
//! reason. A person can read it; `tributary replay` (or any tool) can send it back.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::kafka::RawRecord;
use crate::reject::{Reject, RejectKind};

/// One record in the dead-letter area: its raw bytes, where it came from, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The table the record was for.
    pub table: String,
    /// The record's topic.
    pub topic: String,
    /// The record's partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's Kafka timestamp (ms since the epoch).
    pub timestamp_ms: i64,
    /// `CREATE_TIME` or `LOG_APPEND_TIME`, as the event said.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timestamp_type: Option<String>,
    /// The reason, from the closed vocabulary.
    pub kind: RejectKind,
    /// The reason, for a person.
    pub reason: String,
    /// The key as it came, base64; absent for a null key.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key_base64: Option<String>,
    /// The value as it came, base64; absent for a null value.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value_base64: Option<String>,
    /// The record's headers.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub headers: Vec<DeadLetterHeader>,
}

/// A header of a dead-lettered record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterHeader {
    /// The header's name.
    pub key: String,
    /// The header's value, in base64.
    pub value_base64: String,
}

impl DeadLetter {
    /// The dead letter of record `r` of `topic`/`partition` for `table`.
    pub fn new(table: &str, topic: &str, partition: i32, r: &RawRecord, reject: &Reject) -> Self {
        DeadLetter {
            table: table.to_string(),
            topic: topic.to_string(),
            partition,
            offset: r.offset,
            timestamp_ms: r.timestamp_ms,
            timestamp_type: r.timestamp_type.clone(),
            kind: reject.kind,
            reason: reject.reason.clone(),
            key_base64: r.key.as_ref().map(|k| STANDARD.encode(k)),
            value_base64: r.value.as_ref().map(|v| STANDARD.encode(v)),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| DeadLetterHeader { key: k.clone(), value_base64: STANDARD.encode(v) })
                .collect(),
        }
    }

    /// The raw value bytes.
    pub fn value(&self) -> Option<Vec<u8>> {
        self.value_base64.as_ref().and_then(|v| STANDARD.decode(v).ok())
    }
}

/// Serializes letters as JSON Lines.
pub fn to_jsonl(letters: &[DeadLetter]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in letters {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_writer(&mut out, l).expect("dead letter serializes");
        out.push(b'\n');
    }
    out
}

/// Parses a dead-letter file.
pub fn from_jsonl(bytes: &[u8]) -> Result<Vec<DeadLetter>, serde_json::Error> {
    bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(serde_json::from_slice).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_raw_bytes() {
        let r = RawRecord {
            offset: 7,
            timestamp_ms: 1,
            timestamp_type: Some("CREATE_TIME".into()),
            key: None,
            value: Some(bytes::Bytes::from_static(&[0xff, 0x00, b'{'])),
            headers: vec![("h".into(), vec![1, 2])],
            invalid: None,
        };
        let l = DeadLetter::new("t", "top-ic", 3, &r, &Reject::new(RejectKind::InvalidUtf8, "bad"));
        let back = from_jsonl(&to_jsonl(&[l.clone(), l.clone()])).unwrap();
        assert_eq!(back, vec![l.clone(), l]);
        assert_eq!(back[0].value().unwrap(), vec![0xff, 0x00, b'{']);
        let line = String::from_utf8(to_jsonl(&back[..1])).unwrap();
        assert!(line.contains(r#""kind":"invalid_utf8""#), "{line}");
        assert!(!line.contains("key_base64"));
    }
}
