//! The page-copying merge: each input row group is fetched with one ranged GET and appended to
//! the output, its copyable columns as compressed pages; only the dictionary columns and the
//! Kafka coordinates are decoded.

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::errors::ParquetError;
use tributary_aws::{MultipartWrite, ObjectRead, ObjectWrite};
use tributary_core::config::CompactionPolicy;
use tributary_core::layout::OffsetSet;
use tributary_core::parquet::splice::{Piece, SplicePlan, Splicer};
use tributary_core::parquet::write::writer_properties_for;

use super::{Inputs, Merged, Outputs, dedup_mask};
use crate::io::page_encoder;
use crate::{CompactError, PartitionReport};

/// Rows decoded at a time from a piece (the Kafka coordinates and dictionary columns only).
const DECODE_ROWS: usize = 64 * 1024;

/// One page-copying merge into a version's location.
pub(super) struct PageMerge<'s, S> {
    store: &'s S,
    policy: &'s CompactionPolicy,
    plan: &'s SplicePlan,
    outputs: Outputs<'s, S, Splicer<Vec<u8>>>,
    seen: OffsetSet,
}

impl<'s, S> PageMerge<'s, S>
where
    S: ObjectRead + ObjectWrite + MultipartWrite + Sync,
{
    /// `seen`: the offsets the partition's compacted files hold; an ingest row among them is a
    /// duplicate.
    pub(super) fn new(
        store: &'s S,
        policy: &'s CompactionPolicy,
        plan: &'s SplicePlan,
        location: &'s str,
        seen: OffsetSet,
    ) -> Self {
        PageMerge { store, policy, plan, outputs: Outputs::new(store, location, policy), seen }
    }

    /// Runs the merge. `None`, with nothing left behind, when it cannot finish: an input row is
    /// a duplicate (a page cannot be half copied), or an input is one the page copy cannot read
    /// (the row-by-row merge may: it decides). A storage failure fails the compaction, for a retry.
    pub(super) async fn run(
        mut self,
        inputs: &Inputs<'_>,
        metas: &[ArrowReaderMetadata],
        report: &mut PartitionReport,
    ) -> Result<Option<Merged>, CompactError> {
        let copied = self.copy(inputs, metas, report).await;
        if let Ok(true) = copied {
            let (outputs, sealed) = self.outputs.finish(report).await?;
            let inputs = inputs.files.iter().map(|m| m.key.clone()).collect();
            return Ok(Some(Merged { inputs, outputs, sealed, held: self.seen }));
        }
        self.outputs.abandon().await?;
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
    async fn copy(
        &mut self,
        inputs: &Inputs<'_>,
        metas: &[ArrowReaderMetadata],
        report: &mut PartitionReport,
    ) -> Result<bool, CompactError> {
        for (i, (m, meta)) in inputs.files.iter().zip(metas).enumerate() {
            let partial = i < inputs.partials;
            for rg in 0..meta.metadata().num_row_groups() {
                if meta.metadata().row_group(rg).num_rows() == 0 {
                    continue;
                }
                let bytes = self.store.get_range(&m.key, Piece::range(meta.metadata(), rg)).await?;
                let piece = Piece::new(meta.clone(), rg, bytes)?;
                let mut batches = self.plan.decode(&piece, DECODE_ROWS)?.peekable();
                let (policy, plan) = (self.policy, self.plan);
                // Called only when a new file starts: its dictionary choices follow the first rows
                // it is given.
                let encoder = || {
                    let sample = match batches.peek() {
                        Some(Ok(b)) => b.clone(),
                        _ => return Err(CompactError::State("a row group decoded to nothing".into())),
                    };
                    let props = writer_properties_for(&sample, policy.zstd_level, policy.row_group_rows)?;
                    Ok(page_encoder(plan, props, policy.row_group_rows)?)
                };
                let w = self.outputs.open(encoder, partial, report).await?;
                let seen = &mut self.seen;
                // A partial file's rows are in `seen` (the compacted files' rows) and unique.
                let keep = |b: &RecordBatch| {
                    if partial {
                        return Ok(true);
                    }
                    dedup_mask(b, seen).map(|mask| mask.false_count() == 0).map_err(|e| ParquetError::General(e.to_string()))
                };
                if !w.push(&piece, batches, keep).await? {
                    return Ok(false);
                }
                report.rows_in += piece.rows();
            }
        }
        Ok(true)
    }
}
