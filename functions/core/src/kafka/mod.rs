//! The Kafka event as the Lambda event source mapping sends it (MSK `aws:kafka` or
//! `SelfManagedKafka`), turned into batches of raw records per topic-partition.
//!
//! Records arrive grouped under `"<topic>-<partition>"` keys (topics may contain `-` themselves),
//! keys and values base64-encoded or null, headers as a list of single-key maps of signed bytes.
//! A value that is not valid base64 is kept (its text as bytes) and marked, so it reaches the
//! dead-letter area instead of failing the batch.

use std::collections::BTreeMap;
use std::ops::Range;

use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::Deserialize;

use crate::reject::{Reject, RejectKind};

mod consumed;
mod failed_batch;
mod strict;

pub use consumed::{Consumed, group_key};
pub use failed_batch::failed_batch_event;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("the event is not a Kafka event: {0}")]
    Json(String),
    #[error("records group {group:?}: {reason}")]
    Group { group: String, reason: String },
}

/// One Kafka record, decoded from the event.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    pub offset: i64,
    /// Milliseconds since the epoch (`CREATE_TIME` or `LOG_APPEND_TIME`).
    pub timestamp_ms: i64,
    pub timestamp_type: Option<String>,
    pub key: Option<Vec<u8>>,
    /// `None` for a tombstone. The values of one event share one buffer.
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Set when the event carried something undecodable for this record (bad base64);
    /// `key`/`value` then hold the text as it came.
    pub invalid: Option<Reject>,
}

/// The records of one topic-partition in one event, sorted by offset, one per offset.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicPartitionBatch {
    pub topic: String,
    pub partition: i32,
    pub records: Vec<RawRecord>,
}

impl TopicPartitionBatch {
    /// First and last offset of the batch (`None` when empty).
    pub fn offsets(&self) -> Option<(i64, i64)> {
        Some((self.records.first()?.offset, self.records.last()?.offset))
    }
}

/// Parses an event from JSON bytes (the handler gets it already parsed from the runtime).
pub fn parse_event(bytes: &[u8]) -> Result<KafkaEvent, EventError> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| EventError::Json(e.to_string()))?;
    if let Some(groups) = v.get_mut("records").and_then(serde_json::Value::as_object_mut) {
        for record in groups.values_mut().filter_map(serde_json::Value::as_array_mut).flatten() {
            whole_timestamp(record).map_err(|reason| EventError::Json(reason.into()))?;
        }
    }
    KafkaEvent::deserialize(v).map_err(|e| EventError::Json(e.to_string()))
}

/// Checks a record's `timestamp` before the Kafka record type reads it: that type's reader
/// panics on a fractional number (a panic aborts the function: the batch would be retried for
/// ever). An integer string is turned into the number it names.
fn whole_timestamp(record: &mut serde_json::Value) -> Result<(), &'static str> {
    let Some(ts) = record.get_mut("timestamp") else { return Ok(()) };
    if ts.is_i64() {
        return Ok(());
    }
    match json_int(ts) {
        Some(ms) => {
            *ts = ms.into();
            Ok(())
        }
        None if ts.is_number() || ts.is_string() => Err("a record's timestamp is not whole milliseconds"),
        // Other types are refused by the record type itself.
        None => Ok(()),
    }
}

/// An integer, as a JSON number or a string of digits.
fn json_int(v: &serde_json::Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| int_text(s).ok()))
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
/// read by [`batches_from_slice`]. It holds what [`KafkaRecord`] holds, except the timestamp,
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

/// Turns an event into per-topic-partition batches, in (topic, partition) order.
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

/// The event's records, decoded, under their (topic, partition), in arrival order.
fn by_topic_partition<'a>(
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

fn into_batches(by_tp: BTreeMap<(String, i32), Vec<RawRecord>>) -> Vec<TopicPartitionBatch> {
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

/// [`batches`] of an event as JSON, as the Lambda runtime hands it over. A record that does not
/// match the Kafka record format (a field of the wrong type, a missing timestamp) does not fail
/// its batch: it is kept as its JSON text and marked, so it reaches the dead-letter area. Only a
/// record whose topic, partition or offset cannot be read fails the event (it cannot be placed),
/// as does an event without `records`.
pub fn batches_from_json(event: serde_json::Value) -> Result<Vec<TopicPartitionBatch>, EventError> {
    use serde_json::Value;
    let Value::Object(mut top) = event else {
        return Err(EventError::Json("the event is not a JSON object".into()));
    };
    let groups = match top.remove("records") {
        Some(Value::Object(groups)) => groups,
        Some(_) => return Err(EventError::Json("`records` is not an object of record lists".into())),
        None => return Err(EventError::Json("the event has no `records`".into())),
    };
    let mut parsed_groups: Vec<(String, Vec<(KafkaRecord, i64)>)> = Vec::new();
    let mut malformed = Vec::new();
    for (group, list) in groups {
        let Value::Array(list) = list else {
            return Err(EventError::Group { group, reason: "the group's records are not a list".into() });
        };
        let mut records = Vec::with_capacity(list.len());
        for mut item in list {
            let parsed = whole_timestamp(&mut item)
                .map_err(str::to_string)
                .and_then(|()| KafkaRecord::deserialize(&item).map_err(|e| e.to_string()));
            match parsed {
                // The timestamp as sent, not as the record type rounds it.
                Ok(r) => {
                    let ms = item.get("timestamp").and_then(Value::as_i64).unwrap_or_else(|| r.timestamp.0.timestamp_millis());
                    records.push((r, ms));
                }
                Err(e) => malformed.push(malformed_record(&group, &item, &e)?),
            }
        }
        parsed_groups.push((group, records));
    }
    let wire = parsed_groups.iter().map(|(g, list)| (g.as_str(), list.iter().map(|(r, ms)| WireRecord::of(r, *ms)).collect()));
    let mut by_tp = by_topic_partition(wire)?;
    for (topic, partition, r) in malformed {
        by_tp.entry((topic, partition)).or_default().push(r);
    }
    Ok(into_batches(by_tp))
}

/// [`batches_from_json`] of the event's bytes, read straight into records borrowed from them
/// (no JSON tree, no copy of the values' base64 text). An event this strict reader refuses
/// anywhere (a record off the format, an escaped string, a timestamp out of the usual range) is
/// read again by the lenient one, which decides: both give the same batches when both read it.
pub fn batches_from_slice(bytes: &[u8]) -> Result<Vec<TopicPartitionBatch>, EventError> {
    match strict::scan(bytes) {
        Some(groups) => Ok(into_batches(by_topic_partition(groups)?)),
        None => batches_from_json(serde_json::from_slice(bytes).map_err(|e| EventError::Json(e.to_string()))?),
    }
}

/// A record the Kafka record format does not describe, placed by what can be read of it.
fn malformed_record(group: &str, item: &serde_json::Value, error: &str) -> Result<(String, i32, RawRecord), EventError> {
    let from_key = split_group_key(group);
    // The parser's message may quote the record's contents: it goes to the dead-letter area
    // with the record, never into an error that is logged.
    let fail = |what: &str| EventError::Group {
        group: group.to_string(),
        reason: format!("a record without {what} (it does not match the Kafka event format)"),
    };
    let topic = match (item.get("topic").and_then(|t| t.as_str()), from_key) {
        (Some(t), _) if !t.is_empty() => t.to_string(),
        (_, Some((t, _))) => t.to_string(),
        _ => return Err(fail("a topic")),
    };
    let partition = match (item.get("partition").and_then(json_int), from_key) {
        (Some(p), _) => i32::try_from(p).ok().filter(|p| *p >= 0).ok_or_else(|| fail("a valid partition"))?,
        (None, Some((_, p))) => p,
        (None, None) => return Err(fail("a partition")),
    };
    let offset = item.get("offset").and_then(json_int).filter(|o| *o >= 0).ok_or_else(|| fail("a valid offset"))?;
    let record = RawRecord {
        offset,
        timestamp_ms: item.get("timestamp").and_then(json_int).unwrap_or(0),
        timestamp_type: None,
        key: None,
        value: Some(Bytes::from(item.to_string())),
        headers: Vec::new(),
        invalid: Some(Reject::new(
            RejectKind::MalformedRecord,
            format!("the record does not match the Kafka event format (kept whole as JSON): {error}"),
        )),
    };
    Ok((topic, partition, record))
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
        batches_from_json(serde_json::from_slice(bytes).map_err(|e| EventError::Json(e.to_string()))?)
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
            assert_eq!(batches_from_slice(&bytes), lenient(&bytes), "{}", f.display());
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
        let b = batches_from_slice(&bytes).unwrap();
        assert_eq!(b, lenient(&bytes).unwrap());
        assert_eq!(b[0].records.iter().map(|r| r.offset).collect::<Vec<_>>(), [3, 7, 8]);
        assert_eq!(b[0].records[1].timestamp_ms, 1_763_780_400_001);
        assert_eq!(b[0].records[1].headers[0].1, b"abc");
        assert!(matches!(batches_from_slice(b"\xff"), Err(EventError::Json(_))));
        assert!(matches!(batches_from_slice(b"{}"), Err(EventError::Json(_))));
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
            assert_eq!(batches_from_slice(e), lenient(e));
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
            assert_eq!(batches_from_slice(&e), lenient(&e), "{}", String::from_utf8_lossy(&e));
        }
        // Many edits land in whitespace, numbers or base64 text and leave an event it reads.
        assert!(strict > tried / 20 && strict < tried, "{strict} of {tried} read strictly");
    }
}
