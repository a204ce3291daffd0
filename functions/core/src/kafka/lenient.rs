//! The lenient event reader: the event as a JSON tree, each record through the Kafka record
//! type. Slower than the [strict](super::strict) one, and reads every event that is JSON: a record
//! that does not match the Kafka record format is kept for the dead-letter area.

use aws_lambda_events::event::kafka::KafkaRecord;
use bytes::Bytes;
use serde::Deserialize;

use super::{
    EventError, RawRecord, TopicPartitionBatch, WireRecord, by_topic_partition, int_text, into_batches, split_group_key,
};
use crate::reject::{Reject, RejectKind};

/// The batches of an event as JSON (see [`super::read_event`]). A record that does not
/// match the Kafka record format (a field of the wrong type, a missing timestamp) does not fail
/// its batch: it is kept as its JSON text and marked, so it reaches the dead-letter area. Only a
/// record whose topic, partition or offset cannot be read fails the event (it cannot be placed),
/// as does an event without `records`.
pub(crate) fn read(event: serde_json::Value) -> Result<Vec<TopicPartitionBatch>, EventError> {
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

/// Checks a record's `timestamp` before the Kafka record type reads it: that type's reader
/// panics on a fractional number (a panic aborts the function: the batch would be retried for
/// ever). An integer string is turned into the number it names.
pub(super) fn whole_timestamp(record: &mut serde_json::Value) -> Result<(), &'static str> {
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
