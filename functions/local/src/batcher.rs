//! What the Lambda event source mapping does with consumed Kafka records, so a long-running
//! consumer (outside Lambda) can drive the same handler the same way: batches of at most
//! `max_records`, at most 6 MB of event payload, closed after the batching window; base64 keys and
//! values, headers as signed bytes, records grouped under `"<topic>-<partition>"`; and the offsets
//! to commit once a batch succeeded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_lambda_events::event::kafka::KafkaEvent;
pub use tributary_core::kafka::Consumed;
use tributary_core::kafka::group_key;

/// The event source mapping's payload cap.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// Bytes one record adds to the event besides its key, value and headers (field names, numbers).
const RECORD_OVERHEAD: usize = 192;

fn b64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// What a record adds to the event's JSON payload.
pub fn payload_bytes(r: &Consumed) -> usize {
    let headers: usize = r.headers.iter().map(|(k, v)| k.len() + 8 + v.len() * 4).sum();
    RECORD_OVERHEAD
        + r.topic.len()
        + r.key.as_ref().map_or(4, |k| b64_len(k.len()))
        + r.value.as_ref().map_or(4, |v| b64_len(v.len()))
        + headers
}

/// A batch ready for the handler, and the offsets to commit once it succeeded.
#[derive(Debug, Clone)]
pub struct Batch {
    pub event: KafkaEvent,
    pub records: usize,
    pub payload_bytes: usize,
    /// `(topic, partition, next offset to read)` per topic-partition in the batch.
    pub commit: Vec<(String, i32, i64)>,
}

/// Gathers consumed records into event-source-mapping batches.
#[derive(Debug)]
pub struct Batcher {
    max_records: usize,
    max_payload: usize,
    window: Duration,
    source: String,
    bootstrap_servers: String,
    opened: Option<Instant>,
    pending: Vec<Consumed>,
    bytes: usize,
}

impl Batcher {
    pub fn new(max_records: usize, window: Duration, bootstrap_servers: &str) -> Self {
        Batcher {
            max_records: max_records.max(1),
            max_payload: MAX_PAYLOAD_BYTES,
            window,
            source: "SelfManagedKafka".into(),
            bootstrap_servers: bootstrap_servers.into(),
            opened: None,
            pending: Vec::new(),
            bytes: 0,
        }
    }

    /// Adds a record. When it would overflow the batch (records or bytes), the batch so far is
    /// returned and the record starts the next one. A single record over the cap travels alone.
    pub fn push(&mut self, r: Consumed, now: Instant) -> Option<Batch> {
        let size = payload_bytes(&r);
        let full = !self.pending.is_empty() && (self.pending.len() >= self.max_records || self.bytes + size > self.max_payload);
        let out = if full { self.take() } else { None };
        if self.pending.is_empty() {
            self.opened = Some(now);
        }
        self.bytes += size;
        self.pending.push(r);
        out
    }

    /// True once the batching window of the open batch has passed (or it is full).
    pub fn due(&self, now: Instant) -> bool {
        !self.pending.is_empty()
            && (self.pending.len() >= self.max_records || self.opened.is_some_and(|t| now.duration_since(t) >= self.window))
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// When the open batch's window closes (none while no batch is open).
    pub fn deadline(&self) -> Option<Instant> {
        self.opened.map(|t| t + self.window)
    }

    /// The open batch, as the event source mapping would send it.
    pub fn take(&mut self) -> Option<Batch> {
        if self.pending.is_empty() {
            return None;
        }
        let records = std::mem::take(&mut self.pending);
        let payload_bytes = std::mem::take(&mut self.bytes);
        self.opened = None;
        let n = records.len();
        let mut commit: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut event = KafkaEvent::default();
        event.event_source = Some(self.source.clone());
        event.bootstrap_servers = Some(self.bootstrap_servers.clone());
        for r in records {
            let next = commit.entry((r.topic.clone(), r.partition)).or_insert(r.offset + 1);
            *next = (*next).max(r.offset + 1);
            event.records.entry(group_key(&r.topic, r.partition)).or_default().push(r.into_event_record());
        }
        Some(Batch { event, records: n, payload_bytes, commit: commit.into_iter().map(|((t, p), o)| (t, p, o)).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_core::kafka::batches;

    fn rec(topic: &str, partition: i32, offset: i64, value: &[u8]) -> Consumed {
        Consumed {
            topic: topic.into(),
            partition,
            offset,
            timestamp_ms: 1_795_316_400_000,
            timestamp_type: "CREATE_TIME".into(),
            key: Some(b"k".to_vec()),
            value: Some(value.to_vec()),
            headers: vec![("h".into(), vec![0xff])],
        }
    }

    #[test]
    fn batches_by_count_and_window_as_the_event_source_mapping() {
        let t = Instant::now();
        let mut b = Batcher::new(3, Duration::from_secs(1), "127.0.0.1:9092");
        assert!(b.push(rec("a-b", 0, 10, b"{}"), t).is_none());
        assert!(!b.due(t));
        assert!(b.due(t + Duration::from_secs(1)), "window passed");
        assert_eq!(b.deadline(), Some(t + Duration::from_secs(1)));
        assert!(b.push(rec("a-b", 1, 5, b"{}"), t).is_none());
        assert!(b.push(rec("a-b", 0, 11, b"{}"), t).is_none());
        assert!(b.due(t), "full");
        let full = b.push(rec("c", 0, 0, b"{}"), t).expect("the fourth record closes the batch");
        assert_eq!(full.records, 3);
        assert_eq!(full.commit, vec![("a-b".to_string(), 0, 12), ("a-b".to_string(), 1, 6)]);
        let parsed = batches(full.event.clone()).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].records[0].headers, vec![("h".to_string(), vec![0xff])]);
        assert_eq!(full.event.event_source.as_deref(), Some("SelfManagedKafka"));
        let rest = b.take().unwrap();
        assert_eq!(rest.records, 1);
        assert!(b.take().is_none());
        assert_eq!(b.deadline(), None);
    }

    #[test]
    fn the_payload_stays_under_6_mb() {
        let t = Instant::now();
        let mut b = Batcher::new(10_000, Duration::from_secs(60), "x");
        let big = vec![b'x'; 1024 * 1024];
        let mut sent = Vec::new();
        for i in 0..10 {
            if let Some(batch) = b.push(rec("t", 0, i, &big), t) {
                sent.push(batch);
            }
        }
        sent.extend(b.take());
        assert_eq!(sent.iter().map(|s| s.records).sum::<usize>(), 10);
        for s in &sent {
            let json = serde_json::to_vec(&s.event).unwrap();
            assert!(json.len() <= MAX_PAYLOAD_BYTES, "{} bytes", json.len());
            assert!(s.payload_bytes >= json.len() - 1024, "estimate {} vs {}", s.payload_bytes, json.len());
        }
        // A record alone over the cap still travels, alone.
        let mut b = Batcher::new(10, Duration::from_secs(60), "x");
        assert!(b.push(rec("t", 0, 0, &vec![b'x'; 7 * 1024 * 1024]), t).is_none());
        assert!(b.push(rec("t", 0, 1, b"{}"), t).is_some());
    }
}
