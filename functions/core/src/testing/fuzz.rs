//! Entry points for the fuzz targets (`tests/fuzz`, run by `scripts/fuzz.sh`) and their
//! regression test (`tests/fuzz_regressions.rs`): each takes arbitrary bytes and must not panic;
//! each also checks what must hold of its result.

use crate::config::Config;
use crate::ingest;
use crate::kafka::{RawRecord, TopicPartitionBatch, batches, lenient, parse_event, read_event};
use crate::layout::time_partition::TimePartition;
use crate::layout::{FileRange, decode_event_key, object_created_keys};
use crate::parquet::write;
use crate::table::schema::TableSchema;

/// The record decoder: each line of `data` is one record value (an empty line a tombstone),
/// decoded as ingest does (screen, evolve the schema, build, encode). Every record ends up as a
/// row, a dead letter or a skipped tombstone, and every file encodes. When the one-pass flat
/// decoder takes the batch (with the evolved schema), it builds exactly the same files and dead
/// letters, also for the records it declines and decides one by one.
pub fn records(data: &[u8]) {
    let cfg = Config::default();
    let records = data
        .split(|b| *b == b'\n')
        .take(256)
        .enumerate()
        .map(|(i, v)| RawRecord {
            offset: i as i64,
            timestamp_ms: 1_795_316_400_000 + i as i64 * 600_000,
            timestamp_type: Some("CREATE_TIME".into()),
            key: None,
            value: (!v.is_empty()).then(|| bytes::Bytes::copy_from_slice(v)),
            headers: Vec::new(),
            invalid: None,
        })
        .collect();
    let batch = TopicPartitionBatch { topic: "fuzz".into(), partition: 0, records };
    let screened = ingest::screen(&cfg, "fuzz", &[&batch]);
    let mut schema = TableSchema::default();
    schema.evolve(&screened.batch_shape);
    let built = ingest::build_rescuing(&cfg, &screened, &mut schema).expect("a batch of any values builds");
    assert_eq!(built.rows() + built.dead_lettered() + built.tombstones, built.records_in, "every record accounted for");
    for group in &built.files {
        let props = write::writer_properties(1, 1 << 16).expect("properties");
        write::encode(std::slice::from_ref(&group.rows), props).expect("a built file encodes");
    }
    if let Some(flat) = ingest::build_flat(&cfg, &[&batch], &schema).expect("the flat path builds") {
        assert_eq!(
            (flat.records_in, flat.tombstones, &flat.rejected),
            (built.records_in, built.tombstones, &built.rejected),
            "the same records refused, for the same reasons"
        );
        assert_eq!(flat.files.len(), built.files.len(), "the same files");
        for (f, b) in flat.files.iter().zip(&built.files) {
            assert_eq!((&f.partition, &f.range, &f.rows), (&b.partition, &b.range, &b.rows), "the same rows");
        }
    }
}

/// The Kafka event parsers, typed, lenient and strict (which agrees with the lenient one):
/// batches come out sorted by offset, one record per offset.
pub fn kafka_event(data: &[u8]) {
    let check = |bs: Vec<TopicPartitionBatch>| {
        for b in bs {
            assert!(b.records.windows(2).all(|w| w[0].offset < w[1].offset), "sorted, unique offsets");
        }
    };
    if let Ok(e) = parse_event(data)
        && let Ok(bs) = batches(e)
    {
        check(bs);
    }
    if let Ok(v) = serde_json::from_slice(data) {
        let lenient = lenient::read(v);
        assert_eq!(read_event(data), lenient, "the strict reader agrees with the lenient one");
        if let Ok(bs) = lenient {
            check(bs);
        }
    }
}

/// The S3 / EventBridge trigger parsers and the key layout they lead to.
pub fn s3_event(data: &[u8]) {
    let cfg = Config::default();
    let mut keys = vec![decode_event_key(&String::from_utf8_lossy(data))];
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        keys.extend(object_created_keys(&v).unwrap_or_default());
    }
    for key in keys {
        // A file name that names a range is the one that range's file gets.
        if let Some(r) = key.rsplit('/').next().and_then(FileRange::parse) {
            assert_eq!(FileRange::parse(&format!("{}.parquet", r.file_stem())), Some(r), "file names round-trip");
        }
        let _ = crate::layout::is_ingest_file(&key);
        let _ = crate::layout::table_partition(&cfg, &key);
        let _ = TimePartition::from_key(&key);
    }
}
