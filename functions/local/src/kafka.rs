//! Kafka for the consumer mode, through rdkafka (librdkafka, built with the crate): a consumer
//! group as a [`Source`], and a producer for the sample scenarios. Works with any
//! Kafka-protocol broker; settings such as SASL or TLS pass through as librdkafka properties.

use std::sync::Arc;
use std::time::Duration;

use crate::batcher::Consumed;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, Timestamp, TopicPartitionList};

use crate::Error;
use crate::consume::Source;

/// A librdkafka configuration: the bootstrap servers, then the caller's `key=value` properties.
pub fn client_config(bootstrap_servers: &str, properties: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap_servers).set("client.id", "tributary");
    for (k, v) in properties {
        c.set(k, v);
    }
    c
}

/// Parses `key=value` librdkafka properties.
pub fn parse_properties(items: &[String]) -> Result<Vec<(String, String)>, Error> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                refuse_share_groups(k.trim(), v)?;
                Ok((k.trim().to_string(), v.to_string()))
            }
            _ => Err(format!("librdkafka property {s:?}: expected key=value").into()),
        })
        .collect()
}

/// Share groups ("Queues for Kafka", KIP-932) hand one partition's records to several members
/// at once and out of order. Ingest's object keys are offset ranges of one partition's batch,
/// delivered in order, one batch at a time per partition: neither holds there, so refuse them.
fn refuse_share_groups(key: &str, value: &str) -> Result<(), Error> {
    let share = key.starts_with("share.") || (key == "group.type" && !value.trim().eq_ignore_ascii_case("consumer"));
    if share {
        return Err(format!(
            "librdkafka property {key}={value}: share groups (Queues for Kafka) deliver a partition's records \
             concurrently and out of order; Tributary's exactly-once keys need a consumer group"
        )
        .into());
    }
    Ok(())
}

/// A consumer-group member. Offsets are committed only by [`Source::commit`], never automatically.
pub struct KafkaSource {
    consumer: Arc<StreamConsumer>,
}

impl KafkaSource {
    /// Joins `group` and subscribes to `topics`. `start` (`earliest` or `latest`) applies where
    /// the group has no committed offset, as the event source mapping's starting position.
    pub fn subscribe(
        bootstrap_servers: &str,
        group: &str,
        topics: &[String],
        start: &str,
        properties: &[(String, String)],
    ) -> Result<Self, Error> {
        let mut c = client_config(bootstrap_servers, &[]);
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", start);
        for (k, v) in properties {
            c.set(k, v);
        }
        let consumer: StreamConsumer = c.create()?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(KafkaSource { consumer: Arc::new(consumer) })
    }
}

/// A consumed message as the event source mapping sees it.
fn consumed(m: &BorrowedMessage<'_>) -> Consumed {
    let (timestamp_type, timestamp_ms) = match m.timestamp() {
        Timestamp::CreateTime(t) => ("CREATE_TIME", t),
        Timestamp::LogAppendTime(t) => ("LOG_APPEND_TIME", t),
        Timestamp::NotAvailable => ("NO_TIMESTAMP_TYPE", 0),
    };
    let headers = m
        .headers()
        .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec).unwrap_or_default())).collect())
        .unwrap_or_default();
    Consumed {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms,
        timestamp_type: timestamp_type.into(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
    }
}

impl Source for KafkaSource {
    async fn next(&mut self, wait: Duration) -> Result<Option<Consumed>, Error> {
        match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => Ok(None),
            Ok(Ok(m)) => Ok(Some(consumed(&m))),
            // librdkafka recovers from broker and network errors by itself; a fatal one ends the run.
            Ok(Err(e @ KafkaError::MessageConsumptionFatal(_))) => Err(format!("kafka: {e}").into()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "kafka consumer");
                tokio::time::sleep(wait).await;
                Ok(None)
            }
        }
    }

    async fn commit(&mut self, offsets: &[(String, i32, i64)]) -> Result<(), Error> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in offsets {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
        }
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync)).await??;
        Ok(())
    }

    fn assigned(&self) -> bool {
        self.consumer.assignment().is_ok_and(|a| a.count() > 0)
    }
}

/// A record to produce.
#[derive(Debug, Clone)]
pub struct Produced {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Creates topics (name, partitions) that do not exist yet.
pub async fn create_topics(
    bootstrap_servers: &str,
    topics: &[(&str, i32)],
    properties: &[(String, String)],
) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap_servers, properties).create()?;
    let new: Vec<NewTopic<'_>> = topics.iter().map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1))).collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.create_topics(&new, &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, e)) => return Err(format!("creating topic {topic}: {e}").into()),
        }
    }
    Ok(())
}

/// Produces the records and waits until the broker acknowledged every one. Returns the
/// `(partition, offset)` each was stored at.
pub async fn produce(
    bootstrap_servers: &str,
    records: &[Produced],
    properties: &[(String, String)],
) -> Result<Vec<(i32, i64)>, Error> {
    let mut c = client_config(bootstrap_servers, &[]);
    c.set("linger.ms", "5").set("acks", "all");
    for (k, v) in properties {
        c.set(k, v);
    }
    let producer: FutureProducer = c.create()?;
    let mut out = Vec::with_capacity(records.len());
    for chunk in records.chunks(2_000) {
        let sends = chunk.iter().map(|r| {
            let mut rec = FutureRecord::<[u8], [u8]>::to(&r.topic);
            if let Some(p) = r.partition {
                rec = rec.partition(p);
            }
            if let Some(k) = &r.key {
                rec = rec.key(k.as_slice());
            }
            if let Some(v) = &r.value {
                rec = rec.payload(v.as_slice());
            }
            let headers =
                r.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| h.insert(Header { key: k, value: Some(v.as_slice()) }));
            producer.send(rec.headers(headers), Duration::from_secs(30))
        });
        for sent in futures::future::join_all(sends).await {
            let d = sent.map_err(|(e, _)| format!("producing: {e}"))?;
            out.push((d.partition, d.offset));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_parse_and_share_groups_are_refused() {
        let ok = parse_properties(&["session.timeout.ms=6000".into(), "group.protocol=consumer".into()]).unwrap();
        assert_eq!(ok[0], ("session.timeout.ms".to_string(), "6000".to_string()));
        for bad in ["group.type=share", "share.acknowledgement.mode=explicit", "novalue"] {
            let e = parse_properties(&[bad.to_string()]).unwrap_err().to_string();
            assert!(e.contains(bad.split('=').next().unwrap()), "{bad}: {e}");
        }
        assert!(parse_properties(&["group.type=share".into()]).unwrap_err().to_string().contains("share groups"));
    }
}
