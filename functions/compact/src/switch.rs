//! The switch protocol: a lease on the partition, a closing record, the merge, and the
//! switch of readers to the new version, with the crash points tests inject failures at. The
//! decisions are `tributary_core::compaction`'s; this does the I/O.

use std::time::Instant;

use tributary_aws::{
    MultipartWrite, ObjectMeta, ObjectRead, ObjectWrite, PartitionLocation, Precondition, partition_state, put_json_if,
};
use tributary_core::compaction::{Closing, Lease, PartitionState, plan};
use tributary_core::layout::time_partition::TimePartition;
use tributary_core::layout::{self, FileRange, Marker, is_compacted_file, is_ingest_file};

use crate::{CompactError, Compactor, Outcome, PartitionReport, merge};

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

/// Closing records expire after this long; then any compactor may finish the switch.
const CLOSING_MS: i64 = 120_000;

impl<S, C> Compactor<S, C>
where
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
    C: PartitionLocation + Sync,
{
    /// Makes the next compaction fail at `point` (tests).
    pub fn crash_at(&self, point: Option<CrashPoint>) {
        *self.crash_at.lock().unwrap_or_else(|p| p.into_inner()) = point;
    }

    pub(crate) fn check(&self, point: CrashPoint) -> Result<(), CompactError> {
        let mut g = self.crash_at.lock().unwrap_or_else(|p| p.into_inner());
        if *g == Some(point) {
            *g = None;
            return Err(CompactError::Injected(point));
        }
        Ok(())
    }

    /// Deletes a partition's retire marker once nothing is left to delete there. A switch that
    /// began before the delete puts its marker before its state lists the files, and its closing
    /// is in the state by then: reading the state again after the delete sees it, and the marker
    /// is put back.
    pub(crate) async fn release_retire_marker(&self, table: &str, tp: &TimePartition) -> Result<(), CompactError> {
        if self.load_state(table, tp).await?.0.retirement_pending(self.instruments.now_ms()) {
            return Ok(());
        }
        let marker = tributary_core::layout::marker_key(&self.config, Marker::Retire, table, tp);
        self.store.delete(&marker).await?;
        if self.load_state(table, tp).await?.0.retirement_pending(self.instruments.now_ms()) {
            self.store.put(&marker, bytes::Bytes::new(), Precondition::None).await?;
        }
        Ok(())
    }

    pub(crate) async fn load_state(
        &self,
        table: &str,
        tp: &TimePartition,
    ) -> Result<(PartitionState, Option<String>), CompactError> {
        let v = partition_state(&self.store, &self.config, table, tp).await?;
        Ok((v.value, v.etag))
    }

    pub(crate) async fn save_state(
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
        let now = self.instruments.now_ms();
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
        let now = self.instruments.now_ms();
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
        let (partials, ingest_files) = crate::pending::tiers(&state, &listing);
        // A state written before tiers does not know which rows its compacted files hold: its
        // next compaction merges everything (as compactions did then) and records them.
        let rows_unknown = state.held.is_none() && !state.compacted.is_empty();
        let Some(plan) = plan(&self.config.compaction, tp, &partials, &ingest_files, rows_unknown, now) else {
            return Ok((Outcome::NotDue, lag));
        };
        if state.lease.as_ref().is_some_and(|l| l.expires_ms > now && l.owner != attempt) {
            return Ok((Outcome::Busy, lag));
        }
        let lease_expires = now + self.config.compaction.lease_seconds as i64 * 1000;
        state.lease = Some(Lease { owner: attempt.into(), expires_ms: lease_expires });
        let etag = match self.save_state(table, tp, &state, etag.as_deref()).await? {
            Some(etag) => etag,
            // A 412 is also what the SDK's retry of a write that took effect sees.
            None => match self.load_state(table, tp).await? {
                (now, Some(etag)) if now == state => etag,
                _ => return Ok((Outcome::Busy, lag)),
            },
        };

        // Inputs in the plan's order: partial compacted files first, then ingest files by key.
        let inputs: Vec<ObjectMeta> = plan.merge.iter().filter_map(|k| listing.iter().find(|m| &m.key == k)).cloned().collect();
        let next_version = state.version + 1;
        let short: String = attempt.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
        let next_location = tributary_core::layout::version_location(&self.config, table, tp, next_version, &short);
        let started = Instant::now();
        let mut report = PartitionReport {
            table: table.into(),
            partition: tp.path(),
            version: next_version,
            reason: format!("{:?}", plan.due).to_lowercase(),
            files_in: inputs.len(),
            bytes_in: plan.read_bytes,
            location: next_location.clone(),
            ..Default::default()
        };
        let held = state.held.clone().unwrap_or_default();
        let partials = if rows_unknown { 0 } else { plan.partials };
        let merge_inputs = merge::Inputs { files: &inputs, partials, held: &held };
        let merged = match merge::merge(&self.store, &self.config.compaction, merge_inputs, &next_location, &mut report).await {
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

        // The offsets the next version's compacted files hold: the merged ingest files' ranges
        // join them. Files the budget left out are carried as they are and merged next time.
        let mut covered = state.covered.clone();
        covered.extend(&merged.held);
        for m in ingest.iter().filter(|m| merged.inputs.contains(&m.key)) {
            if let Some(r) = m.key.rsplit('/').next().and_then(FileRange::parse) {
                covered.add_file(&r);
            }
        }
        // Compacted files not merged (sealed ones, and partials the plan left) are carried.
        let mut outputs = merged.outputs;
        let mut sealed = merged.sealed;
        for m in compacted.iter().filter(|m| !merged.inputs.contains(&m.key)) {
            let carried = layout::carried_key(&m.key, &next_location);
            if state.sealed.contains(&m.key) {
                sealed.push(carried.clone());
            }
            outputs.push(carried);
        }
        // The lease outlives the invocation (lease_seconds > the function's timeout); this guards
        // a run with no timeout (locally) that took longer: another compactor may own it now.
        if self.instruments.now_ms() >= lease_expires {
            self.discard(&outputs).await;
            return Ok((Outcome::Busy, lag));
        }
        let closing = Closing {
            owner: attempt.into(),
            from_location: state.location.clone(),
            next_version,
            next_location,
            inputs: merged.inputs,
            outputs,
            sealed,
            covered,
            held: Some(merged.held),
            expires_ms: self.instruments.now_ms() + CLOSING_MS,
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
                    self.discard(&closing.outputs).await;
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
    pub(crate) async fn finish(
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
            report.carried_bytes += m.size;
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
            let marker = tributary_core::layout::marker_key(&self.config, Marker::Retire, table, tp);
            self.store.put(&marker, bytes::Bytes::new(), Precondition::None).await?;
        }
        let mut current = state;
        loop {
            let Some(next) = current.finish_closing(self.instruments.now_ms(), replaced.clone()) else {
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

    /// Deletes the outputs of a compaction that lost its partition. Nothing points at its
    /// version's location, so readers never saw them; a failed delete leaves garbage, no harm.
    async fn discard(&self, keys: &[String]) {
        for k in keys {
            let _ = self.store.delete(k).await;
        }
    }

    /// Points the registered partition at `location` unless it points at a later version already
    /// (a slow compactor must not move readers back); `false` when it is not registered.
    pub(crate) async fn switch_forward(&self, table: &str, tp: &TimePartition, location: &str) -> Result<bool, CompactError> {
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
}
