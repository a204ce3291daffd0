//! The ingest function: a Kafka batch from the event source mapping becomes Parquet files in the
//! table area and JSON Lines files in the dead-letter area, exactly once.
//!
//! The handler is generic over the object-store capabilities, so tests call it directly
//! against an in-memory store or an S3 API server, and `main.rs` only wires it to S3.

mod registry;

use std::collections::{BTreeMap, HashMap, HashSet};

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tributary_aws::{Instrumented, Instruments};
use tributary_aws::{ObjectRead, ObjectWrite, Precondition, StoreError, get_json, put_json_if};
use tributary_core::Config;
use tributary_core::compaction::{Follow, PartitionState};
use tributary_core::ingest;
use tributary_core::ingest::claims::{CLOCK_SKEW_MS, ClaimDecision, ClaimLog, DEFAULT_CLAIM_MS, PUT_MARGIN_MS};
use tributary_core::ingest::dead_letter::to_jsonl;
use tributary_core::kafka::{self, EventError};
use tributary_core::layout::time_partition::TimePartition;
use tributary_core::layout::{self, FileRange, OffsetSet};
use tributary_core::metrics::{Emf, Unit};
use tributary_core::naming::RESCUED_COLUMN;
use tributary_core::parquet::write as parquet_write;

pub use registry::Registry;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("configuration: {0}")]
    Config(#[from] tributary_core::config::ConfigError),
    #[error("schema registry: {0}")]
    Registry(String),
    #[error("partition state: {0}")]
    Moved(String),
    /// Another invocation holds a claim on offsets this one would write ([`tributary_core::ingest::claims`]).
    #[error("claimed: {0}")]
    Claimed(String),
}

/// What Lambda reports as the invocation's `errorType` (CloudWatch, failure records): the
/// runtime would otherwise name the boxed error's type, the same for every failure.
impl tributary_aws::startup::ErrorType for IngestError {
    fn error_type(&self) -> &'static str {
        match self {
            IngestError::Event(_) => "EventError",
            IngestError::Store(_) => "StoreError",
            IngestError::Arrow(_) => "ArrowError",
            IngestError::Parquet(_) => "ParquetError",
            IngestError::Config(_) => "ConfigError",
            IngestError::Registry(_) => "SchemaRegistryError",
            IngestError::Moved(_) => "PartitionMovedError",
            IngestError::Claimed(_) => "OffsetsClaimedError",
        }
    }
}

/// What one invocation did, per table and in total. The counts always satisfy
/// `records_in == rows_written + dead_lettered + tombstones_skipped + already_committed`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub records_in: usize,
    pub rows_written: usize,
    /// Rows written with fields in the rescued-data column (a part of `rows_written`).
    pub rows_rescued: usize,
    /// Values read without the UTF-8 byte-order mark they started with.
    pub byte_order_marks: usize,
    pub dead_lettered: usize,
    pub tombstones_skipped: usize,
    /// Rows an earlier attempt (with other batch boundaries) already wrote.
    pub already_committed: usize,
    pub event_time_fallbacks: usize,
    pub files_written: usize,
    pub dead_letter_files: usize,
    pub bytes_written: usize,
    /// Every object written, data and dead letters.
    pub objects: Vec<String>,
    pub rejected: BTreeMap<String, usize>,
}

impl Report {
    /// Adds another report's counts and objects to this one.
    pub fn add(&mut self, o: &Report) {
        self.records_in += o.records_in;
        self.rows_written += o.rows_written;
        self.rows_rescued += o.rows_rescued;
        self.byte_order_marks += o.byte_order_marks;
        self.dead_lettered += o.dead_lettered;
        self.tombstones_skipped += o.tombstones_skipped;
        self.already_committed += o.already_committed;
        self.event_time_fallbacks += o.event_time_fallbacks;
        self.files_written += o.files_written;
        self.dead_letter_files += o.dead_letter_files;
        self.bytes_written += o.bytes_written;
        self.objects.extend(o.objects.iter().cloned());
        for (k, v) in &o.rejected {
            *self.rejected.entry(k.clone()).or_default() += v;
        }
    }

    /// True when every record is accounted for.
    pub fn balanced(&self) -> bool {
        self.records_in == self.rows_written + self.dead_lettered + self.tombstones_skipped + self.already_committed
    }
}

/// The whole invocation's outcome.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestResponse {
    #[serde(flatten)]
    pub total: Report,
    pub tables: BTreeMap<String, Report>,
}

/// The ingest function: configuration, a store, and the schema cache kept while warm.
pub struct Ingest<S> {
    pub store: S,
    pub config: Config,
    registry: Registry,
    instruments: Instruments,
    /// Whether a writer that meets another's live claim waits (within its own deadline) for
    /// that writer's file, instead of failing at once.
    claim_waits: bool,
}

/// A time partition as its readers see it: where they look, what that holds.
struct Listing {
    location: String,
    coverage: OffsetSet,
    files: Vec<(String, FileRange)>,
}

/// What claiming a file's offsets found.
enum Claimed {
    Held,
    Recheck,
    Wait { why: String, until_ms: i64 },
}

impl<S> Instrumented for Ingest<S> {
    fn instruments_mut(&mut self) -> &mut Instruments {
        &mut self.instruments
    }
}

impl<S: ObjectRead + ObjectWrite + Sync> Ingest<S> {
    pub fn new(store: S, config: Config) -> Self {
        Ingest { store, config, registry: Registry::default(), instruments: Instruments::default(), claim_waits: true }
    }

    /// Fail at once on another writer's live claim instead of waiting for its file (the fault
    /// campaign, whose clock does not move while it waits).
    pub fn without_claim_waits(mut self) -> Self {
        self.claim_waits = false;
        self
    }

    /// Handles one event, as the JSON bytes the runtime receives: the Lambda function, the local
    /// run, the consumer mode and the tests all come through here. The strict reader reads the
    /// event without building a JSON tree; one it declines is read by the lenient reader, where
    /// a record off the Kafka record format goes to the dead-letter area instead of failing its
    /// batch. Timestamps are read exactly (no detour through `f64`).
    ///
    /// `claims_until_ms`: when this writer is sure to be done or dead; its claims on offsets are
    /// void after it. `None` is Lambda's longest timeout from now.
    ///
    /// Any error means nothing was acknowledged: the event source mapping retries the batch, and
    /// the retry writes the same keys.
    pub async fn handle(&self, event: &[u8], claims_until_ms: Option<i64>) -> Result<IngestResponse, IngestError> {
        self.handle_batches(kafka::read_event(event)?, claims_until_ms).await
    }

    async fn handle_batches(
        &self,
        batches: Vec<kafka::TopicPartitionBatch>,
        until_ms: Option<i64>,
    ) -> Result<IngestResponse, IngestError> {
        let started = Instant::now();
        let until_ms = until_ms.unwrap_or_else(|| self.instruments.now_ms() + DEFAULT_CLAIM_MS);
        let mut response = IngestResponse::default();
        for (table, tbs) in ingest::by_table(&self.config, &batches) {
            let report = self.ingest_table(&table, &tbs, until_ms).await?;
            self.emit(&table, &report, started);
            response.total.add(&report);
            response.tables.insert(table, report);
        }
        tracing::info!(
            records_in = response.total.records_in,
            rows_written = response.total.rows_written,
            rows_rescued = response.total.rows_rescued,
            dead_lettered = response.total.dead_lettered,
            tombstones = response.total.tombstones_skipped,
            already_committed = response.total.already_committed,
            files = response.total.files_written,
            bytes = response.total.bytes_written,
            millis = started.elapsed().as_millis() as u64,
            "batch ingested"
        );
        Ok(response)
    }

    async fn ingest_table(&self, table: &str, tbs: &[&kafka::TopicPartitionBatch], until_ms: i64) -> Result<Report, IngestError> {
        let cfg = &self.config;
        // Topics sharing a table share its pinned schema: the first topic's configuration rules.
        let pinned = tbs.iter().find_map(|b| cfg.pinned_schema(&b.topic).transpose()).transpose()?;
        // The common batch (flat records, every field known) in one pass; anything else is
        // screened record by record, may evolve the schema, and is decided by `build`.
        let current = self.registry.current(&self.store, cfg, table, pinned.as_ref()).await?;
        let mut built = match &current {
            Some(schema) => ingest::build_flat(cfg, tbs, schema)?,
            None => None,
        };
        // A table's first batch, or one with a new field: the schema its first records ask for,
        // committed only if one flat pass with it takes the whole batch (and no other writer
        // changed the schema meanwhile).
        if built.is_none()
            && pinned.is_none()
            && let Some(schema) = &current
            && let Some(learned) = ingest::build_learned(cfg, tbs, schema)?
            && self.registry.evolve(&self.store, cfg, table, None, &learned.shape, learned.rescues).await? == learned.schema
        {
            built = Some(learned.built);
        }
        let built = match built {
            Some(built) => built,
            None => {
                let screened = ingest::screen(cfg, table, tbs);
                let shape = &screened.batch_shape;
                let schema = self.registry.evolve(&self.store, cfg, table, pinned.as_ref(), shape, false).await?;
                match ingest::build(cfg, &screened, &schema)? {
                    Some(built) => built,
                    // A field to rescue, and no rescued-data column yet: commit it, build again.
                    None => {
                        let schema = self.registry.evolve(&self.store, cfg, table, pinned.as_ref(), shape, true).await?;
                        ingest::build(cfg, &screened, &schema)?.ok_or_else(|| {
                            IngestError::Registry(format!(
                                "the schema of {table} has no {RESCUED_COLUMN} column to rescue fields into"
                            ))
                        })?
                    }
                }
            }
        };

        let mut report = Report {
            records_in: built.records_in,
            dead_lettered: built.dead_lettered(),
            tombstones_skipped: built.tombstones,
            byte_order_marks: built.byte_order_marks,
            event_time_fallbacks: built.event_time_fallbacks,
            rejected: built.rejected.iter().map(|(k, v)| (k.as_str().to_string(), *v)).collect(),
            ..Default::default()
        };

        // Dead letters first. A retry with the same boundaries, or other ones, skips the letters
        // an earlier attempt wrote (dead-letter files are named by the offsets they processed).
        let mut written: HashMap<String, OffsetSet> = HashMap::new();
        for d in built.dead_letters {
            let cov = match written.entry(d.date.clone()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let listed = self.store.list(&layout::dead_letter_prefix(cfg, table, &d.date)).await?;
                    e.insert(OffsetSet::of_dead_letter_files(listed.iter().map(|m| m.key.as_str())))
                }
            };
            let (d, dropped) = d.without_covered(cov);
            for l in &dropped {
                report.dead_lettered -= 1;
                report.already_committed += 1;
                if let Some(n) = report.rejected.get_mut(l.kind.as_str()) {
                    *n -= 1;
                }
            }
            let Some(d) = d else { continue };
            let key = layout::dead_letter_key(cfg, table, &d.date, &d.range);
            let body = to_jsonl(&d.letters);
            report.bytes_written += body.len();
            self.store.put(&key, Bytes::from(body), Precondition::None).await?;
            report.dead_letter_files += 1;
            report.objects.push(key);
        }

        // Per time partition: where readers look now (the ingest location, or the current
        // compacted version), and the offsets already there.
        let mut partitions: HashMap<TimePartition, Listing> = HashMap::new();
        let mut settled: HashSet<String> = HashSet::new();
        for group in built.files {
            let tp = group.partition.clone();
            if !partitions.contains_key(&tp) {
                partitions.insert(tp.clone(), self.listing(table, &tp).await?);
            }
            // Drop what is visible, claim the rest; a claim that says another writer may have
            // made rows visible since the listing sends us back to list again.
            let (mut pending, mut rechecked, mut waits) = (Some(group), false, 0u32);
            let group = loop {
                let Some(group) = pending.take() else { break None };
                let listing = &partitions[&tp];
                let range = group.range.clone();
                let (rest, dropped) = group.without_covered(&listing.coverage)?;
                report.already_committed += dropped;
                if dropped > 0 {
                    // An earlier attempt wrote these rows and may have died before settling its
                    // file: settle it now, or a compaction that began meanwhile could leave it behind.
                    for (k, _) in listing.files.iter().filter(|(_, f)| f.overlaps(&range)) {
                        if settled.insert(k.clone()) {
                            self.settle(table, &tp, listing.location.clone(), k.clone()).await?;
                        }
                    }
                }
                let Some(group) = rest else { break None };
                match self.claim(table, &group, until_ms, rechecked).await? {
                    Claimed::Held => break Some(group),
                    Claimed::Recheck => rechecked = true,
                    Claimed::Wait { why, until_ms: theirs } => {
                        let step = Duration::from_millis(500u64 << waits.min(4));
                        let now = self.instruments.now_ms();
                        // Wait only while a minute would remain for the rest of the batch and its
                        // put (which needs another minute of claim left).
                        let deadline = until_ms - 2 * PUT_MARGIN_MS;
                        if !self.claim_waits || waits >= 32 || now + step.as_millis() as i64 > deadline {
                            tracing::warn!(table, "{why}");
                            return Err(IngestError::Claimed(why));
                        }
                        tracing::info!(table, waiting_ms = theirs - now, "{why}");
                        tokio::time::sleep(step).await;
                        (waits, rechecked) = (waits + 1, false);
                    }
                }
                partitions.insert(tp.clone(), self.listing(table, &tp).await?);
                pending = Some(group);
            };
            let Some(group) = group else { continue };
            // The put must be over before anyone may treat the claim as void.
            if self.instruments.now_ms() + PUT_MARGIN_MS > until_ms {
                return Err(IngestError::Claimed(format!(
                    "{}: the claim would lapse before the put; retrying",
                    group.range.file_stem()
                )));
            }
            let location = partitions[&tp].location.clone();
            let key = layout::data_file_key(&location, &group.range);
            let props = parquet_write::writer_properties_for(&group.rows, cfg.zstd_level, 1 << 20)?;
            let body = parquet_write::encode(std::slice::from_ref(&group.rows), props)?;
            report.rows_written += group.rows.num_rows();
            report.rows_rescued += group.rescued_rows();
            report.bytes_written += body.len();
            self.store.put(&key, Bytes::from(body), Precondition::None).await?;
            let key = self.settle(table, &group.partition, location, key).await?;
            report.files_written += 1;
            report.objects.push(key);
        }
        report.rejected.retain(|_, n| *n > 0);
        debug_assert!(report.balanced(), "{report:?}");
        Ok(report)
    }

    /// Where readers of a time partition look, and what is visible there: the files at the
    /// location and what the compacted files hold.
    async fn listing(&self, table: &str, tp: &TimePartition) -> Result<Listing, IngestError> {
        let state = self.partition_state(table, tp).await?;
        let listed = self.store.list(&state.location).await?;
        let mut coverage = OffsetSet::of_data_files(listed.iter().map(|m| m.key.as_str()));
        coverage.extend(&state.covered);
        let files = listed
            .into_iter()
            .filter(|m| layout::is_data_file(&m.key))
            .filter_map(|m| m.key.rsplit('/').next().and_then(FileRange::parse).map(|r| (m.key.clone(), r)))
            .collect();
        Ok(Listing { location: state.location, coverage, files })
    }

    /// Claims the group's offsets in its claim log before its file is written
    /// ([`tributary_core::ingest::claims`]).
    async fn claim(
        &self,
        table: &str,
        group: &ingest::FileGroup,
        until_ms: i64,
        rechecked: bool,
    ) -> Result<Claimed, IngestError> {
        let key = layout::claim_key(&self.config, table, &group.partition, &group.range.topic, group.range.partition);
        let offsets = group.offsets()?;
        // Each round reads the log and writes it conditionally; a lost race reads it again.
        for _ in 0..8 {
            let (log, etag) = match get_json::<ClaimLog, _>(&self.store, &key).await? {
                Some(v) => (v.value, v.etag),
                None => (ClaimLog::default(), None),
            };
            match log.decide(&group.range, &offsets, self.instruments.now_ms(), until_ms, rechecked) {
                ClaimDecision::Write(None) => return Ok(Claimed::Held),
                ClaimDecision::Write(Some(next)) => {
                    if put_json_if(&self.store, &key, &next, etag.as_deref()).await?.is_some() {
                        return Ok(Claimed::Held);
                    }
                }
                ClaimDecision::Recheck => return Ok(Claimed::Recheck),
                ClaimDecision::Wait { why, until_ms } => return Ok(Claimed::Wait { why, until_ms }),
            }
        }
        Err(IngestError::Claimed(format!("{key}: the claim log kept changing; retrying the batch")))
    }

    async fn partition_state(&self, table: &str, tp: &TimePartition) -> Result<PartitionState, IngestError> {
        Ok(tributary_aws::partition_state(&self.store, &self.config, table, tp).await?.value)
    }

    /// After a put at `location`: if a compaction moved (or is moving) the partition meanwhile
    /// and did not fold this file in, copy it to where readers will look. Returns where the file
    /// is visible. The invocation succeeds only once the file is visible, so a committed batch is
    /// never missing from the table.
    async fn settle(
        &self,
        table: &str,
        tp: &TimePartition,
        mut location: String,
        mut key: String,
    ) -> Result<String, IngestError> {
        for _ in 0..8 {
            match self.partition_state(table, tp).await?.follow(&location, &key) {
                Follow::Done => return Ok(key),
                Follow::CopyTo(to) => {
                    let next = layout::carried_key(&key, &to);
                    self.store.copy(&key, &next).await?;
                    tracing::info!(table, from = %key, to = %next, "partition compacted meanwhile; file carried over");
                    location = to;
                    key = next;
                }
                Follow::Lost(why) => return Err(IngestError::Moved(why)),
            }
        }
        Err(IngestError::Moved(format!("{key}: the partition kept moving; retrying the batch")))
    }

    fn emit(&self, table: &str, r: &Report, started: Instant) {
        let mut emf = Emf::new(&self.config.metrics_namespace).dimension("Function", "ingest").dimension("Table", table);
        emf.metric("RecordsIn", r.records_in as f64, Unit::Count)
            .metric("RowsWritten", r.rows_written as f64, Unit::Count)
            .metric("RowsRescued", r.rows_rescued as f64, Unit::Count)
            .metric("ByteOrderMarksStripped", r.byte_order_marks as f64, Unit::Count)
            .metric("DeadLettered", r.dead_lettered as f64, Unit::Count)
            .metric("TombstonesSkipped", r.tombstones_skipped as f64, Unit::Count)
            .metric("AlreadyCommitted", r.already_committed as f64, Unit::Count)
            .metric("FilesWritten", (r.files_written + r.dead_letter_files) as f64, Unit::Count)
            .metric("BytesWritten", r.bytes_written as f64, Unit::Bytes)
            .metric("BatchLatency", started.elapsed().as_secs_f64() * 1000.0, Unit::Milliseconds);
        self.instruments.emit(&emf.to_json(self.instruments.now_ms()));
    }
}

/// The configuration from the environment (see [`Config::from_env`]).
pub fn config_from_env() -> Result<Config, IngestError> {
    Ok(Config::from_env()?)
}

#[cfg(test)]
mod tests;

/// The Lambda entry point: wiring in `main.rs` passes each event here.
pub async fn function_handler<S: ObjectRead + ObjectWrite + Sync>(
    ingest: &Ingest<S>,
    event: lambda_runtime::LambdaEvent<Box<serde_json::value::RawValue>>,
) -> Result<IngestResponse, lambda_runtime::Diagnostic> {
    let deadline = event.context.deadline as i64;
    // Claims are void after the invocation's deadline and the clock skew.
    let until = (deadline != 0).then_some(deadline + CLOCK_SKEW_MS);
    let handled = ingest.handle(event.payload.get().as_bytes(), until).await;
    match handled {
        Ok(r) => Ok(r),
        Err(e) => {
            tracing::error!(request_id = %event.context.request_id, error = %e, "batch failed; the event source mapping retries it");
            Err(tributary_aws::startup::diagnostic(&e))
        }
    }
}
