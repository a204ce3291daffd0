//! The compact function: merges a partition's small files into one large Parquet file (or a few,
//! past the size cap), de-duplicated by (topic, partition, offset), and switches readers to it
//! atomically. The protocol is in `docs/compaction.md`; every decision lives in
//! `tributary_core::compaction`, this crate does the I/O.

pub mod io;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{BooleanArray, RecordBatch};
use futures::StreamExt;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use serde::Serialize;
use serde_json::Value;
use tributary_aws::{
    CatalogError, MultipartWrite, ObjectMeta, ObjectRead, ObjectWrite, PartitionLocation, Precondition, StoreError, get_json,
    put_json_if,
};
use tributary_core::Config;
use tributary_core::compaction::{Closing, Lease, PartitionState, conform, due, union_schema};
use tributary_core::layout;
use tributary_core::layout::OffsetSet;
use tributary_core::layout::time_partition::TimePartition;
use tributary_core::layout::{FileRange, object_created_keys, schemas_prefix, table_of_schema_key};
use tributary_core::layout::{is_compacted_file, is_ingest_file};
use tributary_core::metrics::{Emf, Unit};
use tributary_core::parquet::splice::{Piece, SplicePlan};
use tributary_core::parquet::write::writer_properties_for;
use tributary_core::table::kafka_columns::{COL_OFFSET, COL_PARTITION, COL_TOPIC};

use crate::io::{Encoder, ObjectReader, PartWriter};

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("not a compaction trigger: {0}")]
    Event(String),
    #[error("partition state: {0}")]
    State(String),
    #[error("injected crash at {0:?}")]
    Injected(CrashPoint),
}

/// The invocation's `errorType` as Lambda reports it (CloudWatch, failure records).
impl From<CompactError> for lambda_runtime::Diagnostic {
    fn from(e: CompactError) -> Self {
        let error_type = match &e {
            CompactError::Store(_) => "StoreError",
            CompactError::Catalog(_) => "CatalogError",
            CompactError::Parquet(_) => "ParquetError",
            CompactError::Arrow(_) => "ArrowError",
            CompactError::Event(_) => "TriggerError",
            CompactError::State(_) => "PartitionStateError",
            CompactError::Injected(_) => "InjectedCrash",
        };
        lambda_runtime::Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// The steps a crash can interrupt; tests inject a failure at each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Outputs written, nothing published.
    AfterOutputs,
    /// The closing is recorded; nothing copied or switched.
    AfterClosing,
    /// Files written after the listing are carried to the new version.
    AfterCarry,
    /// The catalog points at the new version; the state does not say so yet.
    AfterSwitch,
    /// The state says so and lists the replaced files for deletion once their retention passes.
    AfterState,
}

impl CrashPoint {
    /// Every step, in order.
    pub const ALL: [CrashPoint; 5] = [
        CrashPoint::AfterOutputs,
        CrashPoint::AfterClosing,
        CrashPoint::AfterCarry,
        CrashPoint::AfterSwitch,
        CrashPoint::AfterState,
    ];
}

/// What happened to one partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PartitionReport {
    pub table: String,
    pub partition: String,
    pub version: u32,
    pub reason: String,
    pub files_in: usize,
    pub bytes_in: u64,
    pub rows_in: usize,
    pub rows_out: usize,
    pub duplicates_removed: usize,
    pub files_out: usize,
    pub bytes_out: usize,
    /// Files written during the compaction, carried to the new version as they are.
    pub carried: usize,
    /// Files whose schema conflicts with the others: left as they are, carried, reported.
    pub incompatible: Vec<String>,
    pub location: String,
    /// Columns whose compressed pages were copied from the inputs as they are (empty: every
    /// column was decoded and encoded again).
    pub copied_columns: Vec<String>,
}

// One per partition compacted: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    NotDue,
    /// Another compactor holds the partition.
    Busy,
    Compacted(PartitionReport),
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct CompactResponse {
    pub partitions_seen: usize,
    pub not_due: usize,
    pub busy: usize,
    /// Keys in the event outside the data area, or not ingest files: ignored.
    pub ignored_keys: usize,
    pub compacted: Vec<PartitionReport>,
    /// Age of the oldest ingest file not yet compacted, over the partitions looked at.
    pub lag_seconds: f64,
    /// Files replaced by earlier switches, deleted now that their retention has passed.
    pub replaced_deleted: usize,
}

/// What triggered an invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// S3 `ObjectCreated` events: the keys, URL-decoded.
    Keys(Vec<String>),
    /// The periodic sweep (EventBridge schedule): closes partitions no event will ever name.
    Sweep,
}

/// Reads the trigger: an EventBridge `Object Created` event (how the stack delivers them), an S3
/// event notification, or the scheduled sweep.
pub fn parse_trigger(v: &Value) -> Result<Trigger, CompactError> {
    if let Some(keys) = object_created_keys(v) {
        return Ok(Trigger::Keys(keys));
    }
    let sweep = v.get("tributary").and_then(Value::as_str) == Some("sweep")
        || v.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
    if sweep { Ok(Trigger::Sweep) } else { Err(CompactError::Event("neither an S3 event nor the sweep".into())) }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub struct Compactor<S, C> {
    pub store: S,
    pub catalog: C,
    pub config: Config,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    metrics_sink: fn(&str),
    crash_at: Mutex<Option<CrashPoint>>,
}

/// Closing records expire after this long; then any compactor may finish the switch.
const CLOSING_MS: i64 = 120_000;

impl<S, C> Compactor<S, C>
where
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
    C: PartitionLocation + Sync,
{
    pub fn new(store: S, catalog: C, config: Config) -> Self {
        Compactor {
            store,
            catalog,
            config,
            clock: Arc::new(now_ms),
            metrics_sink: |l| println!("{l}"),
            crash_at: Mutex::new(None),
        }
    }

    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn with_metrics_sink(mut self, sink: fn(&str)) -> Self {
        self.metrics_sink = sink;
        self
    }

    /// Makes the next compaction fail at `point` (tests).
    pub fn crash_at(&self, point: Option<CrashPoint>) {
        *self.crash_at.lock().unwrap_or_else(|p| p.into_inner()) = point;
    }

    fn check(&self, point: CrashPoint) -> Result<(), CompactError> {
        let mut g = self.crash_at.lock().unwrap_or_else(|p| p.into_inner());
        if *g == Some(point) {
            *g = None;
            return Err(CompactError::Injected(point));
        }
        Ok(())
    }

    /// Handles one invocation. `attempt` names this compactor in leases (the request id).
    pub async fn handle(&self, event: &Value, attempt: &str) -> Result<CompactResponse, CompactError> {
        let mut resp = CompactResponse::default();
        // Partitions a retire marker names: their marker goes once nothing is left to delete.
        let mut marked = BTreeSet::new();
        let partitions: BTreeSet<(String, TimePartition)> = match parse_trigger(event)? {
            Trigger::Keys(keys) => {
                let mut set = BTreeSet::new();
                for key in keys {
                    match tributary_core::layout::table_partition(&self.config, &key).filter(|_| is_ingest_file(&key)) {
                        Some(p) => {
                            set.insert(p);
                        }
                        None => resp.ignored_keys += 1,
                    }
                }
                set
            }
            Trigger::Sweep => {
                marked = self.retire_marked_partitions().await?;
                let mut set = self.sweep_partitions().await?;
                set.extend(marked.iter().cloned());
                set
            }
        };
        // One failing partition does not hold back the others; the invocation still fails, so
        // the trigger retries (and the sweep comes back to it).
        let mut first_error = None;
        for (table, tp) in partitions {
            resp.partitions_seen += 1;
            let mut retired = self.retire_replaced(&table, &tp).await.map(|n| resp.replaced_deleted += n);
            if retired.is_ok() && marked.contains(&(table.clone(), tp.clone())) {
                retired = self.release_retire_marker(&table, &tp).await;
            }
            if let Err(e) = retired {
                tracing::error!(table, partition = %tp.path(), error = %e, "replaced files not deleted");
                first_error.get_or_insert(e);
            }
            match self.compact_partition(&table, &tp, attempt).await {
                Ok((outcome, lag)) => {
                    resp.lag_seconds = resp.lag_seconds.max(lag);
                    match outcome {
                        Outcome::NotDue => resp.not_due += 1,
                        Outcome::Busy => resp.busy += 1,
                        Outcome::Compacted(r) => resp.compacted.push(r),
                    }
                }
                Err(e) => {
                    tracing::error!(table, partition = %tp.path(), error = %e, "partition not compacted");
                    first_error.get_or_insert(e);
                }
            }
        }
        self.emit(&resp);
        match first_error {
            Some(e) => Err(e),
            None => Ok(resp),
        }
    }

    /// Partitions of every known table within the sweep's look-back.
    async fn sweep_partitions(&self) -> Result<BTreeSet<(String, TimePartition)>, CompactError> {
        let cfg = &self.config;
        let mut out = BTreeSet::new();
        let listed = self.store.list(&schemas_prefix(cfg)).await?;
        let tables: Vec<String> = listed.iter().filter_map(|m| table_of_schema_key(cfg, &m.key).map(str::to_string)).collect();
        let now = (self.clock)();
        for table in tables {
            for d in 0..=cfg.compaction.sweep_lookback_days as i64 {
                let day = chrono_day(now - d * 86_400_000);
                // Partitions with ingest files, and partitions with a state (compacted ones whose
                // ingest location is empty still have replaced files to delete).
                let ingested = layout::day_prefix(cfg, &table, &day);
                for m in self.store.list(&ingested).await? {
                    if let Some(tp) = TimePartition::from_key(&m.key) {
                        out.insert((table.clone(), tp));
                    }
                }
                for m in self.store.list(&tributary_core::layout::day_states_prefix(cfg, &table, &day)).await? {
                    if let Some(tp) = tributary_core::layout::partition_of_state_key(&m.key) {
                        out.insert((table.clone(), tp));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Partitions whose switches replaced files that may not all be deleted yet, of any age.
    async fn retire_marked_partitions(&self) -> Result<BTreeSet<(String, TimePartition)>, CompactError> {
        let listed = self.store.list(&tributary_core::layout::retire_markers_prefix(&self.config)).await?;
        Ok(listed.iter().filter_map(|m| tributary_core::layout::partition_of_retire_marker(&self.config, &m.key)).collect())
    }

    /// Deletes a partition's retire marker once nothing is left to delete there. A switch that
    /// began before the delete puts its marker before its state lists the files, and its closing
    /// is in the state by then: reading the state again after the delete sees it, and the marker
    /// is put back.
    async fn release_retire_marker(&self, table: &str, tp: &TimePartition) -> Result<(), CompactError> {
        if self.load_state(table, tp).await?.0.retirement_pending((self.clock)()) {
            return Ok(());
        }
        let marker = tributary_core::layout::retire_marker_key(&self.config, table, tp);
        self.store.delete(&marker).await?;
        if self.load_state(table, tp).await?.0.retirement_pending((self.clock)()) {
            self.store.put(&marker, bytes::Bytes::new(), Precondition::None).await?;
        }
        Ok(())
    }

    async fn load_state(&self, table: &str, tp: &TimePartition) -> Result<(PartitionState, Option<String>), CompactError> {
        let key = tributary_core::layout::state_key(&self.config, table, tp);
        Ok(match get_json::<PartitionState, _>(&self.store, &key).await? {
            Some(v) => (v.value, v.etag),
            None => (PartitionState::initial(&self.config, table, tp), None),
        })
    }

    async fn save_state(
        &self,
        table: &str,
        tp: &TimePartition,
        s: &PartitionState,
        etag: Option<&str>,
    ) -> Result<Option<String>, CompactError> {
        let key = tributary_core::layout::state_key(&self.config, table, tp);
        Ok(put_json_if(&self.store, &key, s, etag).await?)
    }

    /// Deletes the files earlier switches replaced once their retention has passed (readers
    /// moved on at the switch; queries that started before it have had the retention to finish).
    /// Returns how many were deleted.
    pub async fn retire_replaced(&self, table: &str, tp: &TimePartition) -> Result<usize, CompactError> {
        let (state, etag) = self.load_state(table, tp).await?;
        let now = (self.clock)();
        // Never write the state under a compaction in progress: its next conditional write would
        // fail and it would give up its work. The files wait for the next visit.
        if state.closing.is_some() || state.lease.as_ref().is_some_and(|l| l.expires_ms > now) {
            return Ok(0);
        }
        let retention_ms = self.config.compaction.replaced_retention_hours as i64 * 3_600_000;
        let Some((keys, next)) = state.retire_due(now, retention_ms) else { return Ok(0) };
        for key in &keys {
            self.store.delete(key).await?;
        }
        // A concurrent change keeps the list in its own state: deleting again is harmless.
        if self.save_state(table, tp, &next, etag.as_deref()).await?.is_none() {
            tracing::info!(table, partition = %tp.path(), "state changed while deleting replaced files");
        }
        tracing::info!(table, partition = %tp.path(), deleted = keys.len(), "replaced files deleted");
        Ok(keys.len())
    }

    /// Compacts one partition if it is due. Returns the outcome and the partition's lag.
    pub async fn compact_partition(
        &self,
        table: &str,
        tp: &TimePartition,
        attempt: &str,
    ) -> Result<(Outcome, f64), CompactError> {
        let now = (self.clock)();
        let (mut state, etag) = self.load_state(table, tp).await?;
        if let Some(c) = &state.closing {
            if c.expires_ms > now && c.owner != attempt {
                return Ok((Outcome::Busy, 0.0));
            }
            // A compactor stopped after recording its closing: finish its switch.
            let c = c.clone();
            let report =
                PartitionReport { table: table.into(), partition: tp.path(), reason: "resumed".into(), ..Default::default() };
            return Ok((Outcome::Compacted(self.finish(table, tp, state, etag, c, report).await?), 0.0));
        }
        let listing = self.store.list(&state.location).await?;
        let ingest: Vec<&ObjectMeta> = listing.iter().filter(|m| is_ingest_file(&m.key)).collect();
        let compacted: Vec<&ObjectMeta> = listing.iter().filter(|m| is_compacted_file(&m.key)).collect();
        let lag =
            ingest.iter().filter_map(|m| m.last_modified_ms).min().map(|t| ((now - t) as f64 / 1000.0).max(0.0)).unwrap_or(0.0);
        let sizes: Vec<u64> = ingest.iter().map(|m| m.size).collect();
        let Some(reason) = due(&self.config.compaction, tp, &sizes, now) else {
            return Ok((Outcome::NotDue, lag));
        };
        if state.lease.as_ref().is_some_and(|l| l.expires_ms > now && l.owner != attempt) {
            return Ok((Outcome::Busy, lag));
        }
        state.lease = Some(Lease { owner: attempt.into(), expires_ms: now + self.config.compaction.lease_seconds as i64 * 1000 });
        let etag = match self.save_state(table, tp, &state, etag.as_deref()).await? {
            Some(etag) => etag,
            // A 412 is also what the SDK's retry of a write that took effect sees.
            None => match self.load_state(table, tp).await? {
                (now, Some(etag)) if now == state => etag,
                _ => return Ok((Outcome::Busy, lag)),
            },
        };

        // Inputs: the current compacted files first, then ingest files in key order.
        let inputs: Vec<ObjectMeta> = compacted.iter().chain(ingest.iter()).map(|m| (*m).clone()).collect();
        let next_version = state.version + 1;
        let short: String = attempt.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
        let next_location = tributary_core::layout::version_location(&self.config, table, tp, next_version, &short);
        let started = Instant::now();
        let mut report = PartitionReport {
            table: table.into(),
            partition: tp.path(),
            version: next_version,
            reason: format!("{reason:?}").to_lowercase(),
            files_in: inputs.len(),
            bytes_in: inputs.iter().map(|m| m.size).sum(),
            location: next_location.clone(),
            ..Default::default()
        };
        let merged = match self.merge(&inputs, &next_location, &mut report).await {
            Ok(m) => m,
            Err(e) => {
                // Give the partition back at once rather than at lease expiry.
                state.lease = None;
                let _ = self.save_state(table, tp, &state, Some(&etag)).await;
                return Err(e);
            }
        };
        tracing::info!(table, partition = %tp.path(), millis = started.elapsed().as_millis() as u64, rows = report.rows_out, "outputs written");
        self.check(CrashPoint::AfterOutputs)?;

        let mut covered = state.covered.clone();
        covered.extend(&merged.covered);
        for m in &ingest {
            if let Some(r) = m.key.rsplit('/').next().and_then(FileRange::parse)
                && !report.incompatible.contains(&m.key)
            {
                covered.add_file(&r);
            }
        }
        let closing = Closing {
            owner: attempt.into(),
            from_location: state.location.clone(),
            next_version,
            next_location,
            inputs: merged.inputs,
            outputs: merged.outputs,
            covered,
            expires_ms: (self.clock)() + CLOSING_MS,
        };
        state.lease = None;
        state.closing = Some(closing.clone());
        let etag = match self.save_state(table, tp, &state, Some(&etag)).await? {
            Some(etag) => etag,
            None => match self.load_state(table, tp).await? {
                // Our write took effect and only its answer was lost: the switch is ours.
                (now, Some(etag)) if now.closing.as_ref() == Some(&closing) => etag,
                _ => {
                    // Our lease expired and another compactor took over: our outputs are not used.
                    for k in &closing.outputs {
                        let _ = self.store.delete(k).await;
                    }
                    return Ok((Outcome::Busy, lag));
                }
            },
        };
        self.check(CrashPoint::AfterClosing)?;
        Ok((Outcome::Compacted(self.finish(table, tp, state, Some(etag), closing, report).await?), lag))
    }

    /// The switch: carry files written since the listing, point the catalog at the new version,
    /// record it with the files it replaced (deleted after their retention). Every step is idempotent, so whoever resumes an
    /// interrupted switch gets the same result.
    async fn finish(
        &self,
        table: &str,
        tp: &TimePartition,
        state: PartitionState,
        mut etag: Option<String>,
        c: Closing,
        mut report: PartitionReport,
    ) -> Result<PartitionReport, CompactError> {
        let old: Vec<ObjectMeta> = self
            .store
            .list(&c.from_location)
            .await?
            .into_iter()
            .filter(|m| is_ingest_file(&m.key) || is_compacted_file(&m.key))
            .collect();
        for m in old.iter().filter(|m| !c.inputs.contains(&m.key)) {
            self.store.copy(&m.key, &layout::carried_key(&m.key, &c.next_location)).await?;
            report.carried += 1;
        }
        self.check(CrashPoint::AfterCarry)?;
        let replaced: Vec<String> = old.iter().map(|m| m.key.clone()).collect();
        let location = layout::s3_uri(&self.config, &c.next_location);
        if !self.switch_forward(table, tp, &location).await? {
            // Not registered yet: the catalog function registers it at the state's location.
            tracing::info!(table, partition = %tp.path(), "partition not in the catalog yet");
        }
        self.check(CrashPoint::AfterSwitch)?;
        if !replaced.is_empty() {
            // Before the state lists them: the sweep finds the partition by this marker whatever
            // its age, and deletes them once their retention has passed.
            let marker = tributary_core::layout::retire_marker_key(&self.config, table, tp);
            self.store.put(&marker, bytes::Bytes::new(), Precondition::None).await?;
        }
        let mut current = state;
        loop {
            let Some(next) = current.finish_closing((self.clock)(), replaced.clone()) else {
                return Err(CompactError::State("the closing vanished".into()));
            };
            match self.save_state(table, tp, &next, etag.as_deref()).await? {
                Some(_) => break,
                None => {
                    let (reloaded, e) = self.load_state(table, tp).await?;
                    if reloaded.version >= c.next_version {
                        break; // another compactor finished the same switch
                    }
                    if reloaded.closing.as_ref() != Some(&c) {
                        return Err(CompactError::State("the partition changed during the switch".into()));
                    }
                    current = reloaded;
                    etag = e;
                }
            }
        }
        self.check(CrashPoint::AfterState)?;
        // The catalog function may have registered the partition at the old location between our
        // switch and our commit: check again (a no-op when it already points here).
        self.switch_forward(table, tp, &location).await?;
        report.version = c.next_version;
        report.location = c.next_location.clone();
        if report.files_out == 0 {
            report.files_out = c.outputs.len();
        }
        tracing::info!(table, partition = %tp.path(), version = c.next_version, carried = report.carried, "partition switched");
        Ok(report)
    }

    /// Points the registered partition at `location` unless it points at a later version already
    /// (a slow compactor must not move readers back); `false` when it is not registered.
    async fn switch_forward(&self, table: &str, tp: &TimePartition, location: &str) -> Result<bool, CompactError> {
        let values = tp.values();
        match self.catalog.partition_location(table, &values).await? {
            None => Ok(false),
            Some(have) if have == location => Ok(true),
            Some(have)
                if tributary_core::layout::location_version(&have) > tributary_core::layout::location_version(location) =>
            {
                Ok(true)
            }
            Some(_) => Ok(self.catalog.set_partition_location(table, &values, location).await?),
        }
    }

    /// Streams the inputs into new files at `location`; returns the inputs merged, the outputs,
    /// and the offsets they hold. Pages are copied where the inputs allow it ([`SplicePlan`]);
    /// if a duplicate row turns up on the way, the outputs are dropped and the merge is done
    /// again row by row.
    async fn merge(&self, inputs: &[ObjectMeta], location: &str, report: &mut PartitionReport) -> Result<Merged, CompactError> {
        // Footers first: the union schema, and which files conflict with it.
        let mut metas = Vec::with_capacity(inputs.len());
        for m in inputs {
            let mut reader = ObjectReader { store: self.store.clone(), key: m.key.clone(), size: m.size };
            metas.push(ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new()).await?);
        }
        if let Some(plan) = SplicePlan::new(&metas, &[COL_TOPIC, COL_PARTITION, COL_OFFSET]) {
            let before = report.clone();
            if let Some(merged) = self.merge_pages(inputs, &metas, &plan, location, report).await? {
                report.copied_columns = plan.copied();
                return Ok(merged);
            }
            // merge_pages logged why.
            *report = before;
        }
        self.merge_rows(inputs, metas, location, report).await
    }

    /// The page-copying merge. `None`, with nothing left behind, when it cannot finish: an input
    /// row is a duplicate, or an input is one the page copy cannot read (the row-by-row merge
    /// may: it decides). A storage failure fails the compaction, for a retry.
    async fn merge_pages(
        &self,
        inputs: &[ObjectMeta],
        metas: &[ArrowReaderMetadata],
        plan: &SplicePlan,
        location: &str,
        report: &mut PartitionReport,
    ) -> Result<Option<Merged>, CompactError> {
        let mut seen = OffsetSet::default();
        let mut outputs = Vec::new();
        let mut writer: Option<PartWriter<'_, S>> = None;
        let copied = self.copy_pages(inputs, metas, plan, location, report, &mut seen, &mut writer, &mut outputs).await;
        if let Ok(true) = copied {
            if let Some(w) = writer.take() {
                outputs.push(self.close(w, report).await?);
            }
            return Ok(Some(Merged { inputs: inputs.iter().map(|m| m.key.clone()).collect(), outputs, covered: seen }));
        }
        // Abandoned: nothing points at the new location yet, so removing its files is enough.
        if let Some(w) = writer.take() {
            w.abort().await;
        }
        for k in &outputs {
            self.store.delete(k).await?;
        }
        match copied {
            Err(CompactError::Store(e)) => Err(CompactError::Store(e)),
            Err(e) => {
                tracing::warn!(partition = %report.partition, error = %e, "pages not copied: merging row by row");
                Ok(None)
            }
            _ => {
                tracing::info!(partition = %report.partition, "duplicate rows: merging row by row");
                Ok(None)
            }
        }
    }

    /// Copies the inputs' pieces into outputs; `false` at the first duplicate row.
    #[allow(clippy::too_many_arguments)]
    async fn copy_pages<'s>(
        &'s self,
        inputs: &[ObjectMeta],
        metas: &[ArrowReaderMetadata],
        plan: &SplicePlan,
        location: &str,
        report: &mut PartitionReport,
        seen: &mut OffsetSet,
        writer: &mut Option<PartWriter<'s, S>>,
        outputs: &mut Vec<String>,
    ) -> Result<bool, CompactError> {
        let policy = &self.config.compaction;
        for (m, meta) in inputs.iter().zip(metas) {
            for rg in 0..meta.metadata().num_row_groups() {
                if meta.metadata().row_group(rg).num_rows() == 0 {
                    continue;
                }
                let bytes = self.store.get_range(&m.key, Piece::range(meta.metadata(), rg)).await?;
                let piece = Piece::new(meta.clone(), rg, bytes)?;
                let mut batches = plan.decode(&piece, 64 * 1024)?.peekable();
                self.close_if_full(writer, outputs, report).await?;
                if writer.is_none() {
                    // The writer's dictionary choices follow the first rows it is given.
                    let sample = match batches.peek() {
                        Some(Ok(b)) => b.clone(),
                        _ => return Err(CompactError::State("a row group decoded to nothing".into())),
                    };
                    let props = writer_properties_for(&sample, policy.zstd_level, policy.row_group_rows)?;
                    let key = layout::output_key(location, outputs.len());
                    *writer =
                        Some(PartWriter::start(&self.store, key, Encoder::pages(plan, props, policy.row_group_rows)?).await?);
                }
                let Some(w) = writer.as_mut() else { continue };
                let keep = |b: &RecordBatch| {
                    dedup_mask(b, seen)
                        .map(|mask| mask.false_count() == 0)
                        .map_err(|e| parquet::errors::ParquetError::General(e.to_string()))
                };
                if !w.push(&piece, batches, keep).await? {
                    return Ok(false);
                }
                report.rows_in += piece.rows();
            }
        }
        Ok(true)
    }

    /// The row-by-row merge: schemas unified, rows de-duplicated, everything encoded again.
    async fn merge_rows(
        &self,
        inputs: &[ObjectMeta],
        metas: Vec<ArrowReaderMetadata>,
        location: &str,
        report: &mut PartitionReport,
    ) -> Result<Merged, CompactError> {
        let policy = &self.config.compaction;
        let schemas: Vec<_> = metas.iter().map(|b| b.schema().clone()).collect();
        let (union, verdicts) = union_schema(&schemas);
        let mut merged_inputs = Vec::new();
        let mut seen = OffsetSet::default();
        let mut outputs = Vec::new();
        let mut writer: Option<PartWriter<'_, S>> = None;
        let props = |sample: &RecordBatch| writer_properties_for(sample, policy.zstd_level, policy.row_group_rows);
        for ((m, verdict), meta) in inputs.iter().zip(&verdicts).zip(metas) {
            if let Some(why) = verdict {
                tracing::warn!(key = %m.key, reason = %why, "incompatible schema: file left as it is");
                report.incompatible.push(m.key.clone());
                continue;
            }
            merged_inputs.push(m.key.clone());
            let reader = ObjectReader { store: self.store.clone(), key: m.key.clone(), size: m.size };
            let mut stream =
                ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta).with_batch_size(64 * 1024).build()?;
            while let Some(batch) = stream.next().await {
                let batch = conform(&batch?, &union)?;
                report.rows_in += batch.num_rows();
                let keep = dedup_mask(&batch, &mut seen)?;
                let batch = if keep.true_count() == batch.num_rows() {
                    batch
                } else {
                    arrow_select::filter::filter_record_batch(&batch, &keep)?
                };
                report.duplicates_removed += keep.len() - keep.true_count();
                if batch.num_rows() == 0 {
                    continue;
                }
                self.close_if_full(&mut writer, &mut outputs, report).await?;
                if writer.is_none() {
                    let key = layout::output_key(location, outputs.len());
                    writer = Some(PartWriter::start(&self.store, key, Encoder::rows(union.clone(), props(&batch)?)?).await?);
                }
                if let Some(w) = writer.as_mut()
                    && let Err(e) = w.write(&batch).await
                {
                    if let Some(w) = writer.take() {
                        w.abort().await;
                    }
                    return Err(e);
                }
            }
        }
        if let Some(w) = writer.take() {
            outputs.push(self.close(w, report).await?);
        }
        Ok(Merged { inputs: merged_inputs, outputs, covered: seen })
    }

    /// Closes the open output once it has reached the size cap (the next rows start another).
    async fn close_if_full<'s>(
        &'s self,
        writer: &mut Option<PartWriter<'s, S>>,
        outputs: &mut Vec<String>,
        report: &mut PartitionReport,
    ) -> Result<(), CompactError> {
        if writer.as_ref().is_some_and(|w| w.size() as u64 >= self.config.compaction.max_file_bytes)
            && let Some(w) = writer.take()
        {
            outputs.push(self.close(w, report).await?);
        }
        Ok(())
    }

    async fn close(&self, w: PartWriter<'_, S>, report: &mut PartitionReport) -> Result<String, CompactError> {
        let (key, bytes, rows) = w.finish().await?;
        report.files_out += 1;
        report.bytes_out += bytes;
        report.rows_out += rows;
        Ok(key)
    }

    fn emit(&self, r: &CompactResponse) {
        let mut emf = Emf::new(&self.config.metrics_namespace).dimension("Function", "compact");
        let sum = |f: fn(&PartitionReport) -> f64| r.compacted.iter().map(f).sum::<f64>();
        emf.metric("PartitionsCompacted", r.compacted.len() as f64, Unit::Count)
            .metric("FilesIn", sum(|p| p.files_in as f64), Unit::Count)
            .metric("BytesIn", sum(|p| p.bytes_in as f64), Unit::Bytes)
            .metric("FilesOut", sum(|p| p.files_out as f64), Unit::Count)
            .metric("BytesOut", sum(|p| p.bytes_out as f64), Unit::Bytes)
            .metric("RowsOut", sum(|p| p.rows_out as f64), Unit::Count)
            .metric("DuplicatesRemoved", sum(|p| p.duplicates_removed as f64), Unit::Count)
            .metric("IncompatibleFiles", sum(|p| p.incompatible.len() as f64), Unit::Count)
            .metric("ReplacedFilesDeleted", r.replaced_deleted as f64, Unit::Count)
            .metric("CompactionLag", r.lag_seconds, Unit::Seconds);
        (self.metrics_sink)(&emf.to_json((self.clock)()));
    }
}

struct Merged {
    inputs: Vec<String>,
    outputs: Vec<String>,
    covered: OffsetSet,
}

/// Rows whose (topic, partition, offset) was not emitted before.
fn dedup_mask(batch: &RecordBatch, seen: &mut OffsetSet) -> Result<BooleanArray, CompactError> {
    let col = |name: &str| {
        batch.column_by_name(name).ok_or_else(|| CompactError::State(format!("a data file without the {name} column")))
    };
    let topics = col(tributary_core::table::kafka_columns::COL_TOPIC)?.as_string::<i32>().clone();
    let parts = col(tributary_core::table::kafka_columns::COL_PARTITION)?.as_primitive::<Int32Type>().clone();
    let offsets = col(tributary_core::table::kafka_columns::COL_OFFSET)?.as_primitive::<Int64Type>().clone();
    Ok((0..batch.num_rows()).map(|i| Some(seen.insert(topics.value(i), parts.value(i), offsets.value(i)))).collect())
}

fn chrono_day(ms: i64) -> String {
    TimePartition::from_millis(ms, tributary_core::config::Granularity::Day).dt
}

#[cfg(test)]
mod tests;
