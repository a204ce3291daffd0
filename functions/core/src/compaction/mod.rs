//! Compaction, decided without I/O: when a partition is due and what it merges ([`plan`]: the
//! tiers and the byte budget), the partition state that makes the switch atomic for readers, and
//! the union of file schemas.
//! Offsets are de-duplicated with [`OffsetSet`]. The protocol is described in `docs/compaction.md`.
//!
//! A compaction's plan, before any I/O:
//!
//! ```
//! use tributary_core::Config;
//! use tributary_core::compaction::{self, Candidate, Due, PartitionState};
//! use tributary_core::layout::{self, OffsetSet, time_partition::TimePartition};
//!
//! let cfg = Config::default();
//! let hour = TimePartition { dt: "2026-11-22".into(), hr: Some("03".into()) };
//! // Ten small ingest files: not due while the hour may still get records...
//! let ingest: Vec<Candidate> = (0..10).map(|i| Candidate { key: format!("part-{i}"), bytes: 64 << 10 }).collect();
//! let end = compaction::window_end_ms(&hour).unwrap();
//! assert_eq!(compaction::plan(&cfg.compaction, &hour, &[], &ingest, false, end), None);
//! // ...due once its window has closed (the grace period after the hour): all ten are merged.
//! let later = end + 1000 * cfg.compaction.grace_seconds as i64;
//! let plan = compaction::plan(&cfg.compaction, &hour, &[], &ingest, false, later).unwrap();
//! assert_eq!((plan.due, plan.merge.len()), (Due::Closed, 10));
//! // Version 1 is written next to the ingest location, never under it; readers switch to it.
//! let state = PartitionState::initial(&cfg, "orders", &hour);
//! assert_eq!(state.location, "tables/orders/dt=2026-11-22/hr=03/");
//! let next = layout::version_location(&cfg, "orders", &hour, state.version + 1, "attempt-1");
//! assert_eq!(next, "tables/orders/_v/dt=2026-11-22/hr=03/v000001-attempt-1/");
//! // The merge de-duplicates by offset: a record a retried batch wrote twice is kept once.
//! let mut seen = OffsetSet::default();
//! let kept: Vec<bool> = [7, 8, 7, 9].iter().map(|&o| seen.insert("orders", 0, o)).collect();
//! assert_eq!(kept, [true, true, false, true]);
//! ```

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, new_null_array};
use arrow_schema::{ArrowError, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::layout::time_partition::TimePartition;
use crate::layout::{self, OffsetSet};
use crate::naming::META_PREFIX;

mod plan;
pub use plan::{Candidate, Plan, plan, sealed, settled};

/// Why a partition is compacted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Due {
    /// Enough small files or bytes.
    Size,
    /// The window has closed (plus grace) and files remain to fold in.
    Closed,
}

/// The end of a partition's window, in milliseconds: an hour after `hr=`, or a day after `dt=`
/// alone (the partition's own keys say its granularity).
pub fn window_end_ms(tp: &TimePartition) -> Option<i64> {
    let day = chrono::NaiveDate::parse_from_str(&tp.dt, "%Y-%m-%d").ok()?;
    let (start, len) = match &tp.hr {
        Some(hr) => (day.and_hms_opt(hr.parse().ok()?, 0, 0)?, chrono::Duration::hours(1)),
        None => (day.and_hms_opt(0, 0, 0)?, chrono::Duration::days(1)),
    };
    Some((start + len).and_utc().timestamp_millis())
}

/// The union of file schemas: data columns in order of first appearance, then the Kafka
/// metadata columns, nullable unless every merged file has them non-nullable. A file whose
/// column conflicts in type is reported, not merged.
pub fn union_schema(schemas: &[SchemaRef]) -> (SchemaRef, Vec<Option<String>>) {
    let mut data: Vec<Field> = Vec::new();
    let mut meta: Vec<Field> = Vec::new();
    let mut verdicts = Vec::with_capacity(schemas.len());
    for s in schemas {
        let mut conflict = None;
        for f in s.fields() {
            let list = if f.name().starts_with(META_PREFIX) { &meta } else { &data };
            if let Some(existing) = list.iter().find(|e| e.name() == f.name())
                && existing.data_type() != f.data_type()
            {
                conflict =
                    Some(format!("column {:?} is {} here but {} elsewhere", f.name(), f.data_type(), existing.data_type()));
                break;
            }
        }
        if conflict.is_none() {
            for f in s.fields() {
                let list = if f.name().starts_with(META_PREFIX) { &mut meta } else { &mut data };
                if !list.iter().any(|e| e.name() == f.name()) {
                    list.push(f.as_ref().clone());
                }
            }
        }
        verdicts.push(conflict);
    }
    data.extend(meta);
    // A column stays non-nullable (required in Parquet) where every merged file has it so: the
    // Kafka coordinates, as ingest writes them. The next compaction can then copy pages from
    // this one's output and the new ingest files alike.
    let merged: Vec<&SchemaRef> = schemas.iter().zip(&verdicts).filter(|(_, v)| v.is_none()).map(|(s, _)| s).collect();
    let fields = data.into_iter().map(|f| {
        let nullable = merged.iter().any(|s| s.field_with_name(f.name()).map_or(true, |x| x.is_nullable()));
        f.with_nullable(nullable)
    });
    (Arc::new(Schema::new(fields.collect::<Vec<_>>())), verdicts)
}

/// A batch in the union schema: missing columns become nulls, columns take the union's order.
pub fn conform(batch: &RecordBatch, to: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let cols: Vec<ArrayRef> = to
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => c.clone(),
            None => new_null_array(f.data_type(), batch.num_rows()),
        })
        .collect();
    RecordBatch::try_new(to.clone(), cols)
}

/// The compaction in progress: written outputs waiting for the switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Closing {
    /// The compactor that wrote the closing (its attempt id).
    pub owner: String,
    /// The location readers see until the switch.
    pub from_location: String,
    /// The version the switch makes.
    pub next_version: u32,
    /// Where the next version's files are.
    pub next_location: String,
    /// Keys (in `from_location`) whose rows the outputs hold.
    pub inputs: Vec<String>,
    /// Keys of the next version's compacted files (in `next_location`): the merge's outputs and
    /// the compacted files carried over.
    pub outputs: Vec<String>,
    /// Which of `outputs` are sealed ([`plan::sealed`]).
    #[serde(default)]
    pub sealed: Vec<String>,
    /// What the next version's compacted files cover.
    pub covered: OffsetSet,
    /// The offsets of the rows the next version's compacted files hold (see
    /// [`PartitionState::held`]); `None` in a closing written before tiers existed.
    #[serde(default)]
    pub held: Option<OffsetSet>,
    /// After this, any compactor may finish the switch.
    pub expires_ms: i64,
}

/// A finished switch, kept for a while so slow writers can tell whether their file was folded in,
/// and until the files it replaced are deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// The location readers saw before the switch.
    pub from_location: String,
    /// The location readers see after it.
    pub to_location: String,
    /// The files whose rows the new version's outputs hold.
    pub inputs: Vec<String>,
    /// When the switch happened (ms since the epoch).
    pub at_ms: i64,
    /// Files in `from_location` the switch replaced (merged or carried), not yet deleted. A
    /// transition is kept until they are, however old.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<String>,
}

impl Transition {
    fn kept(&self, now_ms: i64) -> bool {
        now_ms - self.at_ms < HISTORY_MS || !self.replaced.is_empty()
    }
}

/// A compactor's hold on a partition: no other compacts it until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The compactor holding the lease (its attempt id).
    pub owner: String,
    /// When the lease lapses (ms since the epoch).
    pub expires_ms: i64,
}

/// The state of one table partition (`_tributary/partitions/<table>/dt=…/hr=….json`): where its
/// files are now, what its compacted files cover, and any compaction under way. Changed only by
/// conditional writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionState {
    /// 0: the ingest location; n: the n-th compacted version.
    pub version: u32,
    /// The key prefix readers see (the catalog's partition location).
    pub location: String,
    /// Keys of the compacted files at `location`.
    pub compacted: Vec<String>,
    /// Which of `compacted` are sealed: the compactor never reads them again (see [`plan`]).
    /// States written before tiers existed have none: their files are read once more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed: Vec<String>,
    /// Offsets the compacted files cover, for ingest's exactly-once check: their rows' offsets,
    /// and the whole offset range named by each ingest file folded in (a range can name offsets
    /// whose rows are in another file, so this is not what the merge de-duplicates against).
    pub covered: OffsetSet,
    /// Exactly the offsets of the rows the compacted files hold: the merge drops an ingest row
    /// found here without reading those files. `None` in a state written before tiers existed:
    /// its next compaction merges every file, as compactions did then, and records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<OffsetSet>,
    /// The compactor holding the partition, if any.
    #[serde(default)]
    pub lease: Option<Lease>,
    /// The switch under way, if any.
    #[serde(default)]
    pub closing: Option<Closing>,
    /// Recent switches, and those whose replaced files are not deleted yet.
    #[serde(default)]
    pub history: Vec<Transition>,
}

/// How long transitions are remembered (longer than any ingest invocation can run).
pub const HISTORY_MS: i64 = 24 * 3600 * 1000;

impl PartitionState {
    /// The state of a partition nothing has compacted yet.
    pub fn initial(cfg: &Config, table: &str, tp: &TimePartition) -> Self {
        PartitionState { location: layout::partition_prefix(cfg, table, tp), ..Default::default() }
    }

    /// Moves to the closing's version; `replaced` are the files of `from_location` the switch
    /// retires. Idempotent outcome: the returned state is the same whoever finishes the closing.
    pub fn finish_closing(&self, now_ms: i64, replaced: Vec<String>) -> Option<PartitionState> {
        let c = self.closing.as_ref()?;
        let mut history: Vec<Transition> = self.history.iter().filter(|t| t.kept(now_ms)).cloned().collect();
        history.push(Transition {
            from_location: c.from_location.clone(),
            to_location: c.next_location.clone(),
            inputs: c.inputs.clone(),
            at_ms: now_ms,
            replaced,
        });
        Some(PartitionState {
            version: c.next_version,
            location: c.next_location.clone(),
            compacted: c.outputs.clone(),
            sealed: c.sealed.clone(),
            covered: c.covered.clone(),
            held: c.held.clone(),
            lease: None,
            closing: None,
            history,
        })
    }

    /// Replaced files whose switch is at least `retention_ms` old, and the state that no longer
    /// lists them (`None` when nothing is due). Deleting is idempotent, so a compactor that dies
    /// between its deletes and this state's write only deletes again next time.
    pub fn retire_due(&self, now_ms: i64, retention_ms: i64) -> Option<(Vec<String>, PartitionState)> {
        let due = |t: &Transition| !t.replaced.is_empty() && now_ms - t.at_ms >= retention_ms;
        let keys: Vec<String> = self.history.iter().filter(|t| due(t)).flat_map(|t| t.replaced.iter().cloned()).collect();
        if keys.is_empty() {
            return None;
        }
        let mut next = self.clone();
        for t in next.history.iter_mut().filter(|t| due(t)) {
            t.replaced.clear();
        }
        next.history.retain(|t| t.kept(now_ms));
        Some((keys, next))
    }

    /// Whether replaced files may still be waiting for deletion here: a switch lists some, or one
    /// under way (a closing, or a live lease) may list some when it commits.
    pub fn retirement_pending(&self, now_ms: i64) -> bool {
        self.closing.is_some()
            || self.lease.as_ref().is_some_and(|l| l.expires_ms > now_ms)
            || self.history.iter().any(|t| !t.replaced.is_empty())
    }

    /// For a writer that put `key` at `location`: where the file must also be copied to stay
    /// visible, or `None` if it is visible (or folded into compacted files) already.
    pub fn follow(&self, location: &str, key: &str) -> Follow {
        if let Some(c) = &self.closing {
            if c.from_location == location {
                return if c.inputs.iter().any(|k| k == key) { Follow::Done } else { Follow::CopyTo(c.next_location.clone()) };
            }
            // Copied ahead into the version being switched to: visible once the switch is done,
            // and the original stays visible until then.
            if c.next_location == location {
                return Follow::Done;
            }
        }
        if self.location == location {
            return Follow::Done;
        }
        match self.history.iter().find(|t| t.from_location == location) {
            Some(t) if t.inputs.iter().any(|k| k == key) => Follow::Done,
            Some(t) => Follow::CopyTo(t.to_location.clone()),
            None => {
                Follow::Lost(format!("partition moved from {location} to {} and its history no longer says how", self.location))
            }
        }
    }
}

/// What a writer must do after its put (see [`PartitionState::follow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// The file is where readers see it (or its rows are in the compacted files).
    Done,
    /// The partition moved: copy the file to this location.
    CopyTo(String),
    /// The partition moved on and the history is gone: the writer fails and its retry
    /// writes afresh at the current location.
    Lost(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CompactionPolicy;
    use crate::layout::{output_key, version_location};
    use arrow_schema::DataType;

    fn tp(dt: &str, hr: Option<&str>) -> TimePartition {
        TimePartition { dt: dt.into(), hr: hr.map(str::to_string) }
    }

    #[test]
    fn due_by_size_or_closed_window() {
        let p = CompactionPolicy { min_files: 3, min_bytes: 100, grace_seconds: 60, ..Default::default() };
        let files = |sizes: &[u64]| -> Vec<Candidate> {
            sizes.iter().enumerate().map(|(i, &bytes)| Candidate { key: format!("part-{i}"), bytes }).collect()
        };
        let due = |h: &TimePartition, sizes: &[u64], now| plan(&p, h, &[], &files(sizes), false, now).map(|pl| pl.due);
        let h = tp("2026-11-22", Some("03"));
        let end = window_end_ms(&h).unwrap();
        assert_eq!(end, 1_795_320_000_000);
        assert_eq!(due(&h, &[], end + 10_000_000), None);
        assert_eq!(due(&h, &[10, 10], end), None);
        assert_eq!(due(&h, &[10, 10, 10], end), Some(Due::Size));
        assert_eq!(due(&h, &[200], end), Some(Due::Size));
        assert_eq!(due(&h, &[10], end + 59_999), None);
        assert_eq!(due(&h, &[10], end + 60_000), Some(Due::Closed));
        let d = tp("2026-11-22", None);
        assert_eq!(window_end_ms(&d).unwrap(), 1_795_392_000_000);
        assert_eq!(due(&d, &[10], 1_795_392_000_000 + 59_999), None, "a day's window closes at midnight");
    }

    #[test]
    fn union_of_schemas_appends_new_columns_and_reports_conflicts() {
        let a = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("_kafka_offset", DataType::Int64, false),
        ]));
        let b = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("y", DataType::Utf8, true),
            Field::new("_kafka_offset", DataType::Int64, false),
        ]));
        let c = Arc::new(Schema::new(vec![Field::new("x", DataType::Utf8, true)]));
        let (u, verdicts) = union_schema(&[a.clone(), b, c]);
        let names: Vec<&str> = u.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["x", "y", "_kafka_offset"]);
        let nullable: Vec<bool> = u.fields().iter().map(|f| f.is_nullable()).collect();
        assert_eq!(nullable, [true, true, false], "required where every merged file has it required");
        assert!(verdicts[0].is_none() && verdicts[1].is_none());
        assert!(verdicts[2].as_ref().unwrap().contains("\"x\""));
        let batch = RecordBatch::try_new(
            a,
            vec![Arc::new(arrow_array::Int64Array::from(vec![1])), Arc::new(arrow_array::Int64Array::from(vec![7]))],
        )
        .unwrap();
        let c = conform(&batch, &u).unwrap();
        assert_eq!(c.num_columns(), 3);
        assert!(c.column(1).is_null(0));
    }

    /// A closing from `from` to version 1 at `to`, folding in `inputs`.
    fn closing_to(from: &PartitionState, to: &str, inputs: Vec<String>) -> PartitionState {
        let mut closing = from.clone();
        closing.closing = Some(Closing {
            owner: "c".into(),
            from_location: from.location.clone(),
            next_version: 1,
            next_location: to.to_string(),
            inputs,
            outputs: vec![output_key(to, 0)],
            sealed: vec![],
            held: None,
            covered: OffsetSet::default(),
            expires_ms: 0,
        });
        closing
    }

    #[test]
    fn state_follows_writers_through_switches() {
        let cfg = Config::default();
        let h = tp("2026-11-22", Some("03"));
        let s0 = PartitionState::initial(&cfg, "t", &h);
        assert_eq!(s0.location, "tables/t/dt=2026-11-22/hr=03/");
        let v1 = version_location(&cfg, "t", &h, 1, "abc");
        assert_eq!(v1, "tables/t/_v/dt=2026-11-22/hr=03/v000001-abc/");
        assert!(!v1.starts_with(&s0.location), "versions are never under the ingest location");
        let a = format!("{}part-x~0~1~2.parquet", s0.location);
        let b = format!("{}part-x~0~3~4.parquet", s0.location);
        assert_eq!(s0.follow(&s0.location, &a), Follow::Done);
        let closing = closing_to(&s0, &v1, vec![a.clone()]);
        assert_eq!(closing.follow(&s0.location, &a), Follow::Done);
        assert_eq!(closing.follow(&s0.location, &b), Follow::CopyTo(v1.clone()));
        assert_eq!(closing.follow(&v1, &b), Follow::Done);
        let s1 = closing.finish_closing(1000, vec![]).unwrap();
        assert_eq!((s1.version, s1.location.as_str()), (1, v1.as_str()));
        // Whoever finishes reads the closing state from its stored JSON: the same switch results.
        let stored: PartitionState = serde_json::from_slice(&serde_json::to_vec(&closing).unwrap()).unwrap();
        assert_eq!(stored, closing, "the closing state survives being stored");
        assert_eq!(stored.finish_closing(1000, vec![]), Some(s1.clone()), "same outcome whoever finishes");
        assert_eq!(s1.follow(&s0.location, &a), Follow::Done);
        assert_eq!(s1.follow(&s0.location, &b), Follow::CopyTo(v1.clone()));
        assert_eq!(s1.follow(&v1, &b), Follow::Done);
        let s2 = PartitionState { history: vec![], ..s1.clone() };
        assert!(matches!(s2.follow(&s0.location, &b), Follow::Lost(_)));
        // History is pruned after a day.
        let mut c2 = s1.clone();
        c2.closing = closing.closing.clone();
        let later = c2.finish_closing(1000 + HISTORY_MS + 1, vec![]).unwrap();
        assert_eq!(later.history.len(), 1);
    }

    #[test]
    fn replaced_files_are_retired_by_the_age_of_their_switch_and_kept_in_history_until_then() {
        let cfg = Config::default();
        let h = tp("2026-11-22", Some("03"));
        let s0 = PartitionState::initial(&cfg, "t", &h);
        let v1 = version_location(&cfg, "t", &h, 1, "abc");
        let old = format!("{}part-x~0~1~2.parquet", s0.location);
        let closing = closing_to(&s0, &v1, vec![old.clone()]);
        let retention = 3 * HISTORY_MS; // longer than the history is kept for writers
        let s1 = closing.finish_closing(1000, vec![old.clone()]).unwrap();
        assert_eq!(s1.retire_due(1000 + retention - 1, retention), None, "not before the retention has passed");
        // A later switch prunes old history, but not a transition whose files are still there.
        let mut c2 = s1.clone();
        c2.closing = Some(Closing { from_location: v1.clone(), next_version: 2, ..closing.closing.clone().unwrap() });
        let s2 = c2.finish_closing(1000 + retention - HISTORY_MS / 2, vec![]).unwrap();
        assert_eq!(s2.history.iter().filter(|t| t.replaced == [old.clone()]).count(), 1);
        let (keys, s3) = s2.retire_due(1000 + retention, retention).expect("due");
        assert_eq!(keys, std::slice::from_ref(&old));
        assert!(s3.history.iter().all(|t| t.replaced.is_empty()));
        assert_eq!(s3.history.len(), 1, "the retired transition, older than a day, is pruned; the recent one stays");
        assert_eq!(s3.retire_due(i64::MAX / 2, retention), None, "nothing is deleted twice");
        // What keeps a partition's retire marker: listed files, or a switch that may list some.
        assert!(!s0.retirement_pending(0));
        assert!(closing.retirement_pending(0), "a closing commits its replaced files later");
        assert!(s1.retirement_pending(0) && s2.retirement_pending(0));
        assert!(!s3.retirement_pending(0));
        let leased = PartitionState { lease: Some(Lease { owner: "c".into(), expires_ms: 10 }), ..s3.clone() };
        assert!(leased.retirement_pending(9) && !leased.retirement_pending(10), "a live lease only");
    }
}
