//! The strict reader of a Kafka event's JSON bytes: one pass, no JSON tree, every string
//! borrowed from the bytes. It reads only the event as the event source mapping writes it
//! (the records' eight fields, each once, strings without escapes, whole numbers, single-key
//! header maps) and declines anything else, so that [`crate::kafka::read_event`] hands
//! the event to the lenient reader, which decides. Whatever it reads, it reads as the lenient
//! reader does (the tests in `event.rs` and the `kafka_event` fuzz target check it).

use std::collections::BTreeMap;

use crate::json::cursor::{Cursor, Decline, Step};
use crate::kafka::{WireRecord, int_text};

/// The records of an event under their group key (`"<topic>-<partition>"`), in key order.
pub(crate) type Groups<'a> = BTreeMap<&'a str, Vec<WireRecord<'a>>>;

/// Timestamps the lenient reader's timestamp type surely takes: from 1970 to about year 33658.
const TIMESTAMPS: std::ops::RangeInclusive<i64> = 0..=1_000_000_000_000_000;

/// The event's records, or `None` when the event is not one this reader reads.
pub(crate) fn scan(bytes: &[u8]) -> Option<Groups<'_>> {
    // UTF-8 checked once for the whole event: a string's text, between two quotes, is then too.
    let text = simdutf8::basic::from_utf8(bytes).ok()?;
    let mut p = Doc { p: Cursor { b: bytes, i: 0 }, text };
    p.ws();
    p.eat(b'{').ok()?;
    let groups = event(&mut p).ok()?;
    p.ws();
    (p.i == bytes.len()).then_some(groups)
}

/// The event's bytes, and the same as text.
struct Doc<'a> {
    p: Cursor<'a>,
    text: &'a str,
}

impl<'a> std::ops::Deref for Doc<'a> {
    type Target = Cursor<'a>;
    fn deref(&self) -> &Cursor<'a> {
        &self.p
    }
}

impl std::ops::DerefMut for Doc<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.p
    }
}

/// The top-level object (after its `{`): `records`, once, and other fields of scalar values.
fn event<'a>(p: &mut Doc<'a>) -> Step<Groups<'a>> {
    let mut groups = None;
    object(p, |p, key| match key {
        "records" => {
            p.eat(b'{')?;
            set(&mut groups, records(p)?)
        }
        _ => scalar(p),
    })?;
    groups.ok_or(Decline)
}

/// The `records` object (after its `{`): a list of records under each group key, once each.
fn records<'a>(p: &mut Doc<'a>) -> Step<Groups<'a>> {
    let mut groups = Groups::new();
    object(p, |p, group| {
        p.eat(b'[')?;
        let mut list = Vec::new();
        array(p, |p| {
            p.eat(b'{')?;
            list.push(record(p)?);
            Ok(())
        })?;
        if groups.insert(group, list).is_some() { Err(Decline) } else { Ok(()) }
    })?;
    Ok(groups)
}

/// One record (after its `{`). `partition`, `offset`, `timestamp` and `headers` must be there;
/// the others may be missing or null.
fn record<'a>(p: &mut Doc<'a>) -> Step<WireRecord<'a>> {
    let (mut topic, mut partition, mut offset, mut timestamp) = (None, None, None, None);
    let (mut timestamp_type, mut key, mut value, mut headers) = (None, None, None, None);
    object(p, |p, field| match field {
        "topic" => set(&mut topic, nullable_text(p)?),
        "partition" => set(&mut partition, p.int()?),
        "offset" => set(&mut offset, p.int()?),
        "timestamp" => set(&mut timestamp, millis(p)?),
        "timestampType" => set(&mut timestamp_type, nullable_text(p)?),
        "key" => set(&mut key, nullable_text(p)?),
        "value" => set(&mut value, nullable_text(p)?),
        "headers" => {
            p.eat(b'[')?;
            set(&mut headers, header_list(p)?)
        }
        _ => Err(Decline),
    })?;
    Ok(WireRecord {
        topic: topic.flatten(),
        partition: partition.ok_or(Decline)?,
        offset: offset.ok_or(Decline)?,
        timestamp: timestamp.ok_or(Decline)?,
        timestamp_type: timestamp_type.flatten(),
        key: key.flatten(),
        value: value.flatten(),
        headers: headers.ok_or(Decline)?,
    })
}

/// A record's headers (after the list's `[`): maps of one name to a list of signed bytes.
fn header_list(p: &mut Doc<'_>) -> Step<Vec<(String, Vec<u8>)>> {
    let mut headers = Vec::new();
    array(p, |p| {
        p.eat(b'{')?;
        let mut header = None;
        object(p, |p, name| {
            p.eat(b'[')?;
            let mut bytes = Vec::new();
            array(p, |p| {
                bytes.push(i8::try_from(p.int()?).map_err(|_| Decline)? as u8);
                Ok(())
            })?;
            set(&mut header, (name.to_string(), bytes))
        })?;
        headers.extend(header);
        Ok(())
    })?;
    Ok(headers)
}

/// Fills a field's slot; a field given twice declines.
fn set<T>(slot: &mut Option<T>, v: T) -> Step<()> {
    if slot.replace(v).is_some() { Err(Decline) } else { Ok(()) }
}

/// The members of an object (after its `{`, through its `}`): `member` reads each value.
fn object<'a>(p: &mut Doc<'a>, mut member: impl FnMut(&mut Doc<'a>, &'a str) -> Step<()>) -> Step<()> {
    items(p, b'}', |p| {
        p.eat(b'"')?;
        let key = text(p)?;
        p.ws();
        p.eat(b':')?;
        p.ws();
        member(p, key)
    })
}

/// The items of a list (after its `[`, through its `]`): `item` reads each.
fn array<'a>(p: &mut Doc<'a>, item: impl FnMut(&mut Doc<'a>) -> Step<()>) -> Step<()> {
    items(p, b']', item)
}

/// Comma-separated items, each read by `item`, through `close`; none at all is allowed, a
/// trailing comma is not.
fn items<'a>(p: &mut Doc<'a>, close: u8, mut item: impl FnMut(&mut Doc<'a>) -> Step<()>) -> Step<()> {
    p.ws();
    if p.peek() == Some(close) {
        p.i += 1;
        return Ok(());
    }
    loop {
        p.ws();
        item(p)?;
        p.ws();
        match p.next() {
            Some(b',') => {}
            Some(c) if c == close => return Ok(()),
            _ => return Err(Decline),
        }
    }
}

/// A string without escapes (after its opening quote), as text.
fn text<'a>(p: &mut Doc<'a>) -> Step<&'a str> {
    let start = p.i;
    let len = p.plain_string()?.len();
    p.text.get(start..start + len).ok_or(Decline)
}

/// A string or `null`.
fn nullable_text<'a>(p: &mut Doc<'a>) -> Step<Option<&'a str>> {
    match p.next() {
        Some(b'"') => text(p).map(Some),
        Some(b'n') => p.literal(b"ull").map(|()| None),
        _ => Err(Decline),
    }
}

/// A timestamp in milliseconds: a whole number, or a string of one (as the Kafka record type
/// writes it), within [`TIMESTAMPS`].
fn millis(p: &mut Doc<'_>) -> Step<i64> {
    let ms = if p.peek() == Some(b'"') {
        p.i += 1;
        int_text(text(p)?).map_err(|_| Decline)?
    } else {
        p.int()?
    };
    if TIMESTAMPS.contains(&ms) { Ok(ms) } else { Err(Decline) }
}

/// A string, number, boolean or `null` (an event field nobody reads).
fn scalar(p: &mut Doc<'_>) -> Step<()> {
    match p.peek() {
        Some(b'"') => {
            p.i += 1;
            text(p).map(drop)
        }
        Some(b't') => p.literal(b"true"),
        Some(b'f') => p.literal(b"false"),
        Some(b'n') => p.literal(b"null"),
        _ => p.number().map(drop),
    }
}
