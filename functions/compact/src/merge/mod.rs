//! Merging a partition's files into the outputs of its next version. Pages are copied where the
//! inputs allow it ([`pages`]); otherwise, or if a duplicate row turns up on the way, the files
//! are merged row by row ([`rows`]). Both de-duplicate by (topic, partition, offset).

mod pages;
mod rows;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{BooleanArray, RecordBatch};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use tributary_aws::{MultipartWrite, ObjectMeta, ObjectRead, ObjectWrite};
use tributary_core::compaction;
use tributary_core::config::CompactionPolicy;
use tributary_core::layout::{self, OffsetSet};
use tributary_core::parquet::splice::SplicePlan;
use tributary_core::table::kafka_columns::{COL_OFFSET, COL_PARTITION, COL_TOPIC};

use crate::io::{Encoder, ObjectReader, PartWriter};
use crate::{CompactError, PartitionReport};

/// What a merge wrote: the inputs it folded in, its outputs (and which are sealed), and the
/// offsets of the rows the partition's compacted files hold once they join them.
pub(crate) struct Merged {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub sealed: Vec<String>,
    pub held: OffsetSet,
}

/// The inputs of one merge: the first `partials` are partial compacted files, whose rows are in
/// `held` already; the others are ingest files, whose rows are kept only if `held` (the rows of
/// the partition's compacted files) does not have them yet. So duplicates against compacted files
/// are found without reading those files.
pub(crate) struct Inputs<'a> {
    pub files: &'a [ObjectMeta],
    pub partials: usize,
    pub held: &'a OffsetSet,
}

/// Merges `inputs` into outputs at `location`. Footers are read first: they decide whether
/// pages can be copied ([`SplicePlan`]) and, for the row-by-row merge, the union schema.
pub(crate) async fn merge<S>(
    store: &S,
    policy: &CompactionPolicy,
    inputs: Inputs<'_>,
    location: &str,
    report: &mut PartitionReport,
) -> Result<Merged, CompactError>
where
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
{
    let mut metas = Vec::with_capacity(inputs.files.len());
    for m in inputs.files {
        let mut reader = ObjectReader { store: store.clone(), key: m.key.clone(), size: m.size };
        metas.push(ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new()).await?);
    }
    if let Some(plan) = SplicePlan::new(&metas, &[COL_TOPIC, COL_PARTITION, COL_OFFSET]) {
        let before = report.clone();
        let merge = pages::PageMerge::new(store, policy, &plan, location, inputs.held.clone());
        if let Some(merged) = merge.run(&inputs, &metas, report).await? {
            report.copied_columns = plan.copied();
            return Ok(merged);
        }
        // The page merge logged why.
        *report = before;
    }
    rows::RowMerge::new(store, policy, location, inputs.held.clone()).run(&inputs, metas, report).await
}

/// The outputs of one merge: the file being written, and the keys of those closed (and of
/// those sealed). A file is closed once it passes the target size; the next rows start another.
struct Outputs<'s, S, E> {
    store: &'s S,
    location: &'s str,
    policy: &'s CompactionPolicy,
    open: Option<PartWriter<'s, S, E>>,
    /// Whether the open file holds rows of a partial compacted file.
    open_holds_partials: bool,
    closed: Vec<String>,
    sealed: Vec<String>,
}

impl<'s, S: ObjectWrite + MultipartWrite + Sync, E: Encoder> Outputs<'s, S, E> {
    fn new(store: &'s S, location: &'s str, policy: &'s CompactionPolicy) -> Self {
        Outputs { store, location, policy, open: None, open_holds_partials: false, closed: Vec::new(), sealed: Vec::new() }
    }

    /// The open file, started with `encoder()` if none is open, for rows of a partial compacted
    /// file (`from_partial`) or of an ingest file.
    async fn open(
        &mut self,
        encoder: impl FnOnce() -> Result<E, CompactError>,
        from_partial: bool,
        report: &mut PartitionReport,
    ) -> Result<&mut PartWriter<'s, S, E>, CompactError> {
        if self.open.as_ref().is_some_and(|w| w.size() as u64 >= self.policy.target_file_bytes) {
            self.close(report).await?;
        }
        self.open_holds_partials |= from_partial;
        if self.open.is_none() {
            let key = layout::output_key(self.location, self.closed.len());
            self.open = Some(PartWriter::start(self.store, key, encoder()?).await?);
        }
        Ok(self.open.as_mut().expect("opened above"))
    }

    /// Closes the open file, if any: its object appears whole.
    async fn close(&mut self, report: &mut PartitionReport) -> Result<(), CompactError> {
        if let Some(w) = self.open.take() {
            let (key, bytes, rows) = w.finish().await?;
            report.files_out += 1;
            report.bytes_out += bytes;
            report.rows_out += rows;
            if compaction::sealed(self.policy, bytes as u64, std::mem::take(&mut self.open_holds_partials)) {
                report.sealed_out += 1;
                self.sealed.push(key.clone());
            }
            self.closed.push(key);
        }
        Ok(())
    }

    /// Closes the last file; the keys of all, and of the sealed ones.
    async fn finish(mut self, report: &mut PartitionReport) -> Result<(Vec<String>, Vec<String>), CompactError> {
        self.close(report).await?;
        Ok((self.closed, self.sealed))
    }

    /// Removes everything written. Nothing points at the version's location yet, so readers
    /// never saw these files.
    async fn abandon(mut self) -> Result<(), CompactError> {
        if let Some(w) = self.open.take() {
            w.abort().await;
        }
        for k in &self.closed {
            self.store.delete(k).await?;
        }
        Ok(())
    }
}

/// Rows whose (topic, partition, offset) was not emitted before.
fn dedup_mask(batch: &RecordBatch, seen: &mut OffsetSet) -> Result<BooleanArray, CompactError> {
    let col = |name: &str| {
        batch.column_by_name(name).ok_or_else(|| CompactError::State(format!("a data file without the {name} column")))
    };
    let topics = col(COL_TOPIC)?.as_string::<i32>().clone();
    let parts = col(COL_PARTITION)?.as_primitive::<Int32Type>().clone();
    let offsets = col(COL_OFFSET)?.as_primitive::<Int64Type>().clone();
    Ok((0..batch.num_rows()).map(|i| Some(seen.insert(topics.value(i), parts.value(i), offsets.value(i)))).collect())
}
