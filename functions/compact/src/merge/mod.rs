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
use tributary_core::layout::{self, OffsetSet};
use tributary_core::parquet::splice::SplicePlan;
use tributary_core::table::kafka_columns::{COL_OFFSET, COL_PARTITION, COL_TOPIC};

use crate::io::{Encoder, ObjectReader, PartWriter};
use crate::{CompactError, PartitionReport};

/// What a merge wrote: the inputs it folded in, its outputs, and the offsets they hold.
pub(crate) struct Merged {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub covered: OffsetSet,
}

/// Merges `inputs` into outputs at `location`. Footers are read first: they decide whether
/// pages can be copied ([`SplicePlan`]) and, for the row-by-row merge, the union schema.
pub(crate) async fn merge<S>(
    store: &S,
    policy: &tributary_core::config::CompactionPolicy,
    inputs: &[ObjectMeta],
    location: &str,
    report: &mut PartitionReport,
) -> Result<Merged, CompactError>
where
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
{
    let mut metas = Vec::with_capacity(inputs.len());
    for m in inputs {
        let mut reader = ObjectReader { store: store.clone(), key: m.key.clone(), size: m.size };
        metas.push(ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new()).await?);
    }
    if let Some(plan) = SplicePlan::new(&metas, &[COL_TOPIC, COL_PARTITION, COL_OFFSET]) {
        let before = report.clone();
        if let Some(merged) = pages::PageMerge::new(store, policy, &plan, location).run(inputs, &metas, report).await? {
            report.copied_columns = plan.copied();
            return Ok(merged);
        }
        // The page merge logged why.
        *report = before;
    }
    rows::RowMerge::new(store, policy, location).run(inputs, metas, report).await
}

/// The outputs of one merge: the file being written, and the keys of those closed. A file is
/// closed once it passes the size cap; the next rows start another.
struct Outputs<'s, S, E> {
    store: &'s S,
    location: &'s str,
    max_file_bytes: u64,
    open: Option<PartWriter<'s, S, E>>,
    closed: Vec<String>,
}

impl<'s, S: ObjectWrite + MultipartWrite + Sync, E: Encoder> Outputs<'s, S, E> {
    fn new(store: &'s S, location: &'s str, max_file_bytes: u64) -> Self {
        Outputs { store, location, max_file_bytes, open: None, closed: Vec::new() }
    }

    /// The open file, started with `encoder()` if none is open.
    async fn open(
        &mut self,
        encoder: impl FnOnce() -> Result<E, CompactError>,
        report: &mut PartitionReport,
    ) -> Result<&mut PartWriter<'s, S, E>, CompactError> {
        if self.open.as_ref().is_some_and(|w| w.size() as u64 >= self.max_file_bytes) {
            self.close(report).await?;
        }
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
            self.closed.push(key);
        }
        Ok(())
    }

    /// Closes the last file; the keys of all.
    async fn finish(mut self, report: &mut PartitionReport) -> Result<Vec<String>, CompactError> {
        self.close(report).await?;
        Ok(self.closed)
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
