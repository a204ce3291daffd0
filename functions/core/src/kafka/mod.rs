//! The Kafka event as the Lambda event source mapping sends it (MSK `aws:kafka` or
//! `SelfManagedKafka`), turned into batches of raw records per topic-partition.
//!
//! Records arrive grouped under `"<topic>-<partition>"` keys (topics may contain `-` themselves),
//! keys and values base64-encoded or null, headers as a list of single-key maps of signed bytes.
//! A value that is not valid base64 is kept (its text as bytes) and marked, so it reaches the
//! dead-letter area instead of failing the batch.

use std::collections::BTreeMap;
use std::ops::Range;

use aws_lambda_events::event::kafka::KafkaRecord;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use crate::reject::{Reject, RejectKind};

mod consumed;
mod failed_batch;
pub(crate) mod lenient;
mod strict;
#[cfg(any(test, feature = "testing"))]
mod typed;

pub use consumed::{Consumed, group_key};
pub use failed_batch::failed_batch_event;
#[cfg(any(test, feature = "testing"))]
pub use typed::{batches, parse_event};

/// Why an event is refused as a whole (the event source mapping retries it).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    /// The event is not JSON of the Kafka event's shape.
    #[error("the event is not a Kafka event: {0}")]
    Json(String),
    /// A group of records that cannot be attributed.
    #[error("records group {group:?}: {reason}")]
    Group {
        /// The group's key (`"<topic>-<partition>"`).
        group: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One Kafka record, decoded from the event.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    /// The record's offset.
    pub offset: i64,
    /// Milliseconds since the epoch (`CREATE_TIME` or `LOG_APPEND_TIME`).
    pub timestamp_ms: i64,
    /// `CREATE_TIME` or `LOG_APPEND_TIME`.
    pub timestamp_type: Option<String>,
    /// The key's bytes; `None` when the record has none.
    pub key: Option<Vec<u8>>,
    /// `None` for a tombstone. The values of one event share one buffer.
    pub value: Option<Bytes>,
    /// The headers, as (name, bytes).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Set when the event carried something undecodable for this record (bad base64);
    /// `key`/`value` then hold the text as it came.
    pub invalid: Option<Reject>,
}

/// The records of one topic-partition in one event, sorted by offset, one per offset.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicPartitionBatch {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The records, sorted by offset.
    pub records: Vec<RawRecord>,
}

impl TopicPartitionBatch {
    /// First and last offset of the batch (`None` when empty).
    pub fn offsets(&self) -> Option<(i64, i64)> {
        Some((self.records.first()?.offset, self.records.last()?.offset))
    }
}

/// The integer a string names (surrounding spaces allowed).
pub(crate) fn int_text(s: &str) -> Result<i64, std::num::ParseIntError> {
    s.trim().parse()
}

/// Splits `"<topic>-<partition>"`; the partition is after the last `-`.
pub fn split_group_key(group: &str) -> Option<(&str, i32)> {
    let (topic, partition) = group.rsplit_once('-')?;
    if topic.is_empty() {
        return None;
    }
    Some((topic, partition.parse().ok().filter(|p: &i32| *p >= 0)?))
}

fn base64_reject(field: &str, e: base64::DecodeError) -> Reject {
    Reject::new(RejectKind::InvalidBase64, format!("the record {field} is not valid base64: {e}"))
}

/// A record as the event carries it (base64 still encoded), borrowed from the event's bytes when
/// read by the strict reader. It holds what [`KafkaRecord`] holds, except the timestamp,
/// which it keeps exact (that type goes through `f64` and can lose a millisecond), and the
/// headers, as (name, bytes) pairs.
#[derive(Debug)]
pub(crate) struct WireRecord<'a> {
    pub(crate) topic: Option<&'a str>,
    pub(crate) partition: i64,
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) timestamp_type: Option<&'a str>,
    pub(crate) key: Option<&'a str>,
    pub(crate) value: Option<&'a str>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

impl<'a> WireRecord<'a> {
    fn of(r: &'a KafkaRecord, timestamp_ms: i64) -> Self {
        WireRecord {
            topic: r.topic.as_deref(),
            partition: r.partition,
            offset: r.offset,
            timestamp: timestamp_ms,
            timestamp_type: r.timestamp_type.as_deref(),
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: r.headers.iter().flatten().map(|(k, v)| (k.clone(), v.iter().map(|b| *b as u8).collect())).collect(),
        }
    }
}

/// Appends the bytes `text` encodes in standard, padded base64 to `out`. The SIMD decoder takes
/// what it accepts (only canonical encodings, as the `base64` crate's strict engine: the tests
/// check it); anything it refuses, that engine decides, with its error.
fn decode_base64(text: &str, out: &mut Vec<u8>) -> Result<(), base64::DecodeError> {
    let start = out.len();
    if base64_simd::STANDARD.decode_append(text, out).is_ok() {
        return Ok(());
    }
    out.truncate(start);
    STANDARD.decode_vec(text, out)
}

/// A record, and where its value is in the event's buffer of decoded values.
type Placed = (RawRecord, Option<Range<usize>>);

/// A record decoded from the event; its value, when it is valid base64, is appended to `arena`
/// and its range there returned.
fn raw_record(r: WireRecord<'_>, arena: &mut Vec<u8>) -> Placed {
    let mut invalid = None;
    let key = r.key.map(|text| {
        let mut key = Vec::with_capacity(text.len() / 4 * 3);
        match decode_base64(text, &mut key) {
            Ok(()) => key,
            Err(e) => {
                invalid = Some(base64_reject("key", e));
                text.as_bytes().to_vec()
            }
        }
    });
    let (mut value, mut range) = (None, None);
    if let Some(text) = r.value {
        let start = arena.len();
        match decode_base64(text, arena) {
            Ok(()) => range = Some(start..arena.len()),
            Err(e) => {
                arena.truncate(start);
                invalid.get_or_insert(base64_reject("value", e));
                value = Some(Bytes::copy_from_slice(text.as_bytes()));
            }
        }
    }
    let record = RawRecord {
        offset: r.offset,
        timestamp_ms: r.timestamp,
        timestamp_type: r.timestamp_type.map(str::to_string),
        key,
        value,
        headers: r.headers,
        invalid,
    };
    (record, range)
}

/// The event's records, decoded, under their (topic, partition), in arrival order.
pub(crate) fn by_topic_partition<'a>(
    groups: impl IntoIterator<Item = (&'a str, Vec<WireRecord<'a>>)>,
) -> Result<BTreeMap<(String, i32), Vec<RawRecord>>, EventError> {
    let groups: Vec<(&str, Vec<WireRecord<'_>>)> = groups.into_iter().collect();
    // Every value decodes into one buffer that the records then share: no allocation per record.
    let encoded: usize = groups.iter().flat_map(|(_, list)| list).map(|r| r.value.map_or(0, str::len)).sum();
    let mut arena = Vec::with_capacity(encoded / 4 * 3 + 3);
    let mut by_tp: BTreeMap<(&str, i32), Vec<Placed>> = BTreeMap::new();
    for (group, records) in groups {
        let from_key = split_group_key(group);
        let fail = |reason: String| EventError::Group { group: group.to_string(), reason };
        for r in records {
            let topic = match (r.topic, from_key) {
                (Some(t), _) if !t.is_empty() => t,
                (_, Some((t, _))) => t,
                _ => return Err(fail("no topic in the record or the group key".into())),
            };
            let partition = i32::try_from(r.partition)
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| fail(format!("bad partition {}", r.partition)))?;
            if r.offset < 0 {
                return Err(fail(format!("negative offset {}", r.offset)));
            }
            by_tp.entry((topic, partition)).or_default().push(raw_record(r, &mut arena));
        }
    }
    let arena = Bytes::from(arena);
    Ok(by_tp
        .into_iter()
        .map(|((t, p), list)| {
            let records = list
                .into_iter()
                .map(|(mut r, range)| {
                    if let Some(range) = range {
                        r.value = Some(arena.slice(range));
                    }
                    r
                })
                .collect();
            ((t.to_string(), p), records)
        })
        .collect())
}

pub(crate) fn into_batches(by_tp: BTreeMap<(String, i32), Vec<RawRecord>>) -> Vec<TopicPartitionBatch> {
    by_tp
        .into_iter()
        .map(|((topic, partition), mut records)| {
            records.sort_by_key(|r| r.offset);
            // The same offset twice in one event is the same Kafka record.
            records.dedup_by_key(|r| r.offset);
            TopicPartitionBatch { topic, partition, records }
        })
        .collect()
}

/// Reads an event's JSON bytes into per-topic-partition batches, in (topic, partition) order:
/// the one event reader ingest uses. The [`strict`] reader reads records straight from the bytes
/// (no JSON tree, no copy of the values' base64 text). An event it declines anywhere (a record
/// off the format, an escaped string, a timestamp out of the usual range) is read again by the
/// [`lenient`] one, which decides: both give the same batches when both read it.
///
/// Fails only when the event itself is malformed (no `records`; a group whose records name
/// neither a topic nor a parsable `"<topic>-<partition>"` key, a negative offset or partition):
/// such an event cannot be attributed, and retrying it is the right answer.
pub fn read_event(bytes: &[u8]) -> Result<Vec<TopicPartitionBatch>, EventError> {
    match strict::scan(bytes) {
        Some(groups) => Ok(into_batches(by_topic_partition(groups)?)),
        None => lenient::read(serde_json::from_slice(bytes).map_err(|e| EventError::Json(e.to_string()))?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::events::build_event;

    #[test]
    fn group_keys_with_dashes() {
        assert_eq!(split_group_key("orders-v1-12"), Some(("orders-v1", 12)));
        assert_eq!(split_group_key("t-0"), Some(("t", 0)));
        assert_eq!(split_group_key("-0"), None);
        assert_eq!(split_group_key("t-x"), None);
        assert_eq!(split_group_key("t--1"), Some(("t-", 1)));
        assert_eq!(split_group_key("nodash"), None);
    }

    #[test]
    fn aws_shaped_event() {
        let json = br#"{
          "eventSource": "aws:kafka",
          "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/c/abc",
          "bootstrapServers": "b-1:9092",
          "records": {
            "orders-v1-0": [
              {"topic": "orders-v1", "partition": 0, "offset": 16, "timestamp": 1763780400000,
               "timestampType": "CREATE_TIME", "key": "a2V5", "value": "eyJhIjoxfQ==",
               "headers": [{"h": [104, -1]}]},
              {"topic": "orders-v1", "partition": 0, "offset": 15, "timestamp": 1763780400000,
               "timestampType": "LOG_APPEND_TIME", "key": null, "value": null, "headers": []}
            ],
            "b-1": [
              {"partition": 1, "offset": 3, "timestamp": 1763780400000, "timestampType": "CREATE_TIME",
               "key": null, "value": "not base64!", "headers": []}
            ]
          }
        }"#;
        let b = batches(parse_event(json).unwrap()).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].topic.as_str(), b[0].partition), ("b", 1));
        assert_eq!(b[0].records[0].invalid.as_ref().unwrap().kind, RejectKind::InvalidBase64);
        assert_eq!(b[0].records[0].value.as_deref(), Some(&b"not base64!"[..]));
        let o = &b[1];
        assert_eq!((o.topic.as_str(), o.offsets()), ("orders-v1", Some((15, 16))));
        assert_eq!(o.records[0].value, None);
        assert_eq!(o.records[1].key.as_deref(), Some(&b"key"[..]));
        assert_eq!(o.records[1].value.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(o.records[1].headers, vec![("h".to_string(), vec![104u8, 255])]);
        assert_eq!(o.records[1].timestamp_ms, 1763780400000);
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        for json in [
            &br#"{"records": {"x": [{"partition": 0, "offset": 1, "timestamp": 0, "key": null, "value": null, "headers": []}]}}"#[..],
            br#"{"records": {"t-0": [{"topic":"t","partition": -1, "offset": 1, "timestamp": 0, "key": null, "value": null, "headers": []}]}}"#,
            br#"{"records": {"t-0": [{"topic":"t","partition": 0, "offset": -5, "timestamp": 0, "key": null, "value": null, "headers": []}]}}"#,
        ] {
            assert!(matches!(batches(parse_event(json).unwrap()), Err(EventError::Group { .. })));
        }
        assert!(batches(parse_event(b"{}").unwrap()).unwrap().is_empty());
        for json in [&b"{\"records\": 5}"[..], b"{\"records\": {\"t-0\": [{\"offset\": \"x\"}]}}", b"\xff"] {
            assert!(matches!(parse_event(json), Err(EventError::Json(_))), "{:?}", String::from_utf8_lossy(json));
        }
    }

    #[test]
    fn built_events_round_trip() {
        let h: &[(&str, &[u8])] = &[("trace", b"abc")];
        let e = build_event("aws:kafka", "a-b", 2, &[(7, 1000, Some(b"k"), Some(b"{}"), h), (7, 1000, None, None, &[])]);
        let b = batches(e).unwrap();
        assert_eq!(b[0].records.len(), 1, "duplicate offsets collapse");
        assert_eq!(b[0].records[0].headers[0].1, b"abc");
    }

    fn lenient(bytes: &[u8]) -> Result<Vec<TopicPartitionBatch>, EventError> {
        lenient::read(serde_json::from_slice(bytes).map_err(|e| EventError::Json(e.to_string()))?)
    }

    #[test]
    fn the_strict_reader_agrees_with_the_lenient_one() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        for dir in ["events", "tests/corpus/bad-events"] {
            files.extend(std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()));
        }
        assert!(files.len() > 40);
        let mut strict = 0;
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            assert_eq!(read_event(&bytes), lenient(&bytes), "{}", f.display());
            strict += usize::from(strict::scan(&bytes).is_some());
        }
        assert!(strict >= 3, "only {strict} events took the strict reader");
        // Built events, with keys, headers and tombstones, and a millisecond the record type drops.
        let h: &[(&str, &[u8])] = &[("trace", b"abc")];
        let e = build_event(
            "aws:kafka",
            "a-b",
            2,
            &[(7, 1_763_780_400_001, Some(b"k"), Some(b"{}"), h), (8, 1_000, None, None, &[]), (3, 2_000, None, Some(b"x"), &[])],
        );
        let bytes = serde_json::to_vec(&e).unwrap();
        assert!(strict::scan(&bytes).is_some());
        let b = read_event(&bytes).unwrap();
        assert_eq!(b, lenient(&bytes).unwrap());
        assert_eq!(b[0].records.iter().map(|r| r.offset).collect::<Vec<_>>(), [3, 7, 8]);
        assert_eq!(b[0].records[1].timestamp_ms, 1_763_780_400_001);
        assert_eq!(b[0].records[1].headers[0].1, b"abc");
        assert!(matches!(read_event(b"\xff"), Err(EventError::Json(_))));
        assert!(matches!(read_event(b"{}"), Err(EventError::Json(_))));
    }

    /// What [`decode_base64`] gives, appended after two bytes already in the buffer.
    fn decoded(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
        let mut out = b"ab".to_vec();
        decode_base64(text, &mut out)?;
        assert_eq!(&out[..2], b"ab", "appends, after what is there");
        Ok(out.split_off(2))
    }

    #[test]
    fn the_simd_decoder_accepts_only_what_the_strict_engine_accepts() {
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let check = |t: &str| assert_eq!(decoded(t), STANDARD.decode(t), "{t:?}");
        // Every string of up to three characters: the alphabet, padding, and what is outside it.
        let chars: Vec<char> = format!("{alphabet}=-_ \n\0\u{7f}é").chars().collect();
        let mut longest = vec![String::new()];
        check("");
        for _ in 0..3 {
            longest = longest.iter().flat_map(|t| chars.iter().map(move |c| format!("{t}{c}"))).collect();
            longest.iter().for_each(|t| check(t));
        }
        // Every padded last quantum (where the unused bits must be zero), alone and after a
        // prefix long enough for the vector loop.
        let a: Vec<char> = alphabet.chars().collect();
        for prefix in ["", &"QUJD".repeat(24)] {
            for (x, y) in a.iter().flat_map(|x| a.iter().map(move |y| (x, y))) {
                check(&format!("{prefix}{x}{y}=="));
                a.iter().for_each(|z| check(&format!("{prefix}{x}{y}{z}=")));
            }
        }
        // Encodings of random bytes, as they are (the SIMD decoder must take every one) and with
        // a few characters replaced, removed or inserted.
        let mut rng = crate::testing::sample::Rng::new(9);
        let edits = format!("{alphabet}= -_\n\0");
        for round in 0..20_000 {
            let bytes: Vec<u8> = (0..rng.below(300)).map(|_| rng.next_u64() as u8).collect();
            let text = STANDARD.encode(&bytes);
            assert_eq!(base64_simd::STANDARD.decode_to_vec(&text).ok(), Some(bytes), "the fast path takes {text:?}");
            let mut t = text.into_bytes();
            for _ in 0..round % 3 {
                rng.mutate(&mut t, edits.as_bytes());
            }
            check(std::str::from_utf8(&t).unwrap());
        }
    }

    /// Events as the event source mapping and the Kafka record type write them, pretty and
    /// compact, and one by hand with every optional field missing or null in turn.
    fn sample_events() -> Vec<Vec<u8>> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let h: &[(&str, &[u8])] = &[("trace", b"abc"), ("bin", &[0, 255, 128])];
        let built = build_event(
            "aws:kafka",
            "orders-v1",
            3,
            &[
                (7, 1_763_780_400_001, Some(b"k"), Some(br#"{"a":1}"#), h),
                (8, 1_000, None, None, &[]),
                (3, 2_000, None, Some(b"xy"), &[]),
            ],
        );
        let by_hand = br#" {"eventSource":"SelfManagedKafka","n":-1.5e3,"t":true,"f":false,"z":null,"records":{
          "t-1":[{"partition":1,"offset":4,"timestamp":5,"headers":[]},
                 {"topic":null,"partition":1,"offset":5,"timestamp":"6","timestampType":null,"key":null,"value":"e30=","headers":[{}]}],
          "other-0":[{"topic":"t","partition":1,"offset":4,"timestamp":7,"key":"eA==","value":"@@","headers":[{"h":[-128,127]}]}],
          "empty-0":[]}}
        "#;
        let mut events = vec![serde_json::to_vec(&built).unwrap(), serde_json::to_vec_pretty(&built).unwrap(), by_hand.to_vec()];
        for f in ["events/msk-batch.json", "events/self-managed-kafka-batch.json", "events/bad-records.json"] {
            events.push(std::fs::read(root.join(f)).unwrap());
        }
        events
    }

    #[test]
    fn mutated_events_read_as_the_lenient_reader_reads_them() {
        let events = sample_events();
        for e in &events {
            assert!(strict::scan(e).is_some(), "the strict reader reads {}", String::from_utf8_lossy(e));
            assert_eq!(read_event(e), lenient(e));
        }
        const ALPHABET: &[u8] = b"\"\\{}[],:. -+0123456789eEtfnulAQ=_\x00\x1f\xc3\xa9\xff";
        let mut rng = crate::testing::sample::Rng::new(3);
        let (mut strict, mut tried) = (0, 0);
        for round in 0..20_000 {
            let mut e = events[round % events.len()].clone();
            for _ in 0..=rng.below(2) {
                rng.mutate(&mut e, ALPHABET);
            }
            tried += 1;
            strict += usize::from(strict::scan(&e).is_some());
            // When the strict reader reads it, its batches are the lenient reader's (errors too).
            assert_eq!(read_event(&e), lenient(&e), "{}", String::from_utf8_lossy(&e));
        }
        // Many edits land in whitespace, numbers or base64 text and leave an event it reads.
        assert!(strict > tried / 20 && strict < tried, "{strict} of {tried} read strictly");
    }
}
