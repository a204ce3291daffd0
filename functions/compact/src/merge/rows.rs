//! The row-by-row merge: schemas unified ([`union_schema`]), rows de-duplicated, everything
//! encoded again. A file whose schema conflicts with the union is left where it is.

use arrow_array::BooleanArray;
use futures::StreamExt;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use tributary_aws::{MultipartWrite, ObjectRead, ObjectWrite};
use tributary_core::compaction::{conform, union_schema};
use tributary_core::config::CompactionPolicy;
use tributary_core::layout::OffsetSet;
use tributary_core::parquet::write::writer_properties_for;

use super::{Inputs, Merged, Outputs, dedup_mask};
use crate::io::{ObjectReader, row_encoder};
use crate::{CompactError, PartitionReport};

/// Rows read at a time from an input.
const BATCH_ROWS: usize = 64 * 1024;

/// One row-by-row merge into a version's location.
pub(super) struct RowMerge<'s, S> {
    store: &'s S,
    policy: &'s CompactionPolicy,
    outputs: Outputs<'s, S, parquet::arrow::ArrowWriter<Vec<u8>>>,
    seen: OffsetSet,
}

impl<'s, S> RowMerge<'s, S>
where
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
{
    /// `seen`: the offsets the partition's compacted files hold; ingest rows among them are dropped.
    pub(super) fn new(store: &'s S, policy: &'s CompactionPolicy, location: &'s str, seen: OffsetSet) -> Self {
        RowMerge { store, policy, outputs: Outputs::new(store, location, policy), seen }
    }

    /// Runs the merge; on an error, the file being written is aborted.
    pub(super) async fn run(
        mut self,
        inputs: &Inputs<'_>,
        metas: Vec<ArrowReaderMetadata>,
        report: &mut PartitionReport,
    ) -> Result<Merged, CompactError> {
        match self.copy(inputs, metas, report).await {
            Ok(merged_inputs) => {
                let (outputs, sealed) = self.outputs.finish(report).await?;
                Ok(Merged { inputs: merged_inputs, outputs, sealed, held: self.seen })
            }
            Err(e) => {
                if let Some(w) = self.outputs.open.take() {
                    w.abort().await;
                }
                Err(e)
            }
        }
    }

    /// Writes every compatible input's new rows; the inputs merged.
    async fn copy(
        &mut self,
        inputs: &Inputs<'_>,
        metas: Vec<ArrowReaderMetadata>,
        report: &mut PartitionReport,
    ) -> Result<Vec<String>, CompactError> {
        let schemas: Vec<_> = metas.iter().map(|b| b.schema().clone()).collect();
        let (union, verdicts) = union_schema(&schemas);
        let mut merged_inputs = Vec::new();
        for (i, ((m, verdict), meta)) in inputs.files.iter().zip(&verdicts).zip(metas).enumerate() {
            let partial = i < inputs.partials;
            if let Some(why) = verdict {
                tracing::warn!(key = %m.key, reason = %why, "incompatible schema: file left as it is");
                report.incompatible.push(m.key.clone());
                continue;
            }
            merged_inputs.push(m.key.clone());
            let reader = ObjectReader { store: self.store.clone(), key: m.key.clone(), size: m.size };
            let mut stream =
                ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta).with_batch_size(BATCH_ROWS).build()?;
            while let Some(batch) = stream.next().await {
                let batch = conform(&batch?, &union)?;
                report.rows_in += batch.num_rows();
                // A partial file's rows are in `seen` (the compacted files' rows) and unique.
                let keep =
                    if partial { BooleanArray::from(vec![true; batch.num_rows()]) } else { dedup_mask(&batch, &mut self.seen)? };
                let batch = if keep.true_count() == batch.num_rows() {
                    batch
                } else {
                    arrow_select::filter::filter_record_batch(&batch, &keep)?
                };
                report.duplicates_removed += keep.len() - keep.true_count();
                if batch.num_rows() == 0 {
                    continue;
                }
                let policy = self.policy;
                let encoder =
                    || Ok(row_encoder(union.clone(), writer_properties_for(&batch, policy.zstd_level, policy.row_group_rows)?)?);
                self.outputs.open(encoder, partial, report).await?.write(&batch).await?;
            }
        }
        Ok(merged_inputs)
    }
}
