//! Streaming Parquet in and out of the object store: inputs are read row group by row group with
//! ranged GETs, outputs are written as multipart uploads part by part, so memory stays bounded
//! by a row group and a part, whatever the partition's size.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
use tributary_aws::{MultipartWrite, ObjectRead, StoreError};
use tributary_core::parquet::splice::{Piece, SplicePlan, Splicer};

/// One object as a Parquet source.
pub struct ObjectReader<S> {
    pub store: S,
    pub key: String,
    pub size: u64,
}

fn external(e: StoreError) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl<S: ObjectRead + Send + Sync> AsyncFileReader for ObjectReader<S> {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move { self.store.get_range(&self.key, range).await.map_err(external) }.boxed()
    }

    /// The column chunks of a row group lie next to each other: one GET for all of them.
    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            let (Some(start), Some(end)) = (ranges.iter().map(|r| r.start).min(), ranges.iter().map(|r| r.end).max()) else {
                return Ok(Vec::new());
            };
            let wanted: u64 = ranges.iter().map(|r| r.end - r.start).sum();
            if end - start > wanted.saturating_mul(2) + (1 << 20) {
                // Sparse (a projection): fetch them one by one.
                let mut out = Vec::with_capacity(ranges.len());
                for r in ranges {
                    out.push(self.store.get_range(&self.key, r).await.map_err(external)?);
                }
                return Ok(out);
            }
            let all = self.store.get_range(&self.key, start..end).await.map_err(external)?;
            Ok(ranges.iter().map(|r| all.slice((r.start - start) as usize..(r.end - start) as usize)).collect())
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            // One ranged read usually gets the footer, the metadata and the page indexes (just
            // before the footer, and needed for copying pages) together. Not more than a sixteenth
            // of the file: a small ingest file's data would otherwise be read twice (here and with
            // its row group), and the bytes read count against the compaction's amplification.
            let hint = (size / 16).clamp(8 << 10, 64 << 10) as usize;
            let meta = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(hint))
                .with_page_index_policy(PageIndexPolicy::Optional)
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(meta))
        }
        .boxed()
    }
}

/// Multipart part size: above S3's 5 MiB minimum, small enough to keep memory flat.
pub const PART_BYTES: usize = 8 << 20;
/// A row group is flushed once its encoded size passes this, whatever its row count.
pub const ROW_GROUP_BYTES: usize = 128 << 20;

/// How an output file is encoded: [`ArrowWriter`] row by row from Arrow batches, or
/// [`Splicer`] by copying input pages. A [`PartWriter`] is typed by its encoder, so rows cannot
/// reach a page-copying file, nor pages a row-encoded one.
pub trait Encoder {
    /// Bytes of the file so far (written, and in the open row group).
    fn size(&self) -> usize;
    /// The buffer the encoder writes into, which [`PartWriter`] ships in parts.
    fn buffer(&mut self) -> &mut Vec<u8>;
    /// Closes the file; what is left in the buffer.
    fn finish(self) -> Result<Vec<u8>, ParquetError>;
}

impl Encoder for ArrowWriter<Vec<u8>> {
    fn size(&self) -> usize {
        self.bytes_written() + self.in_progress_size()
    }
    fn buffer(&mut self) -> &mut Vec<u8> {
        self.inner_mut()
    }
    fn finish(self) -> Result<Vec<u8>, ParquetError> {
        self.into_inner()
    }
}

impl Encoder for Splicer<Vec<u8>> {
    fn size(&self) -> usize {
        self.bytes_written() + self.in_progress_size()
    }
    fn buffer(&mut self) -> &mut Vec<u8> {
        self.inner_mut()
    }
    fn finish(self) -> Result<Vec<u8>, ParquetError> {
        self.into_inner()
    }
}

/// The buffer an encoder writes into: a part, and room for what passes it before it is shipped.
fn sink() -> Vec<u8> {
    Vec::with_capacity(PART_BYTES + (1 << 20))
}

/// A row-by-row encoder of `schema`.
pub fn row_encoder(schema: SchemaRef, props: WriterProperties) -> Result<ArrowWriter<Vec<u8>>, ParquetError> {
    ArrowWriter::try_new(sink(), schema, Some(props))
}

/// A page-copying encoder for the files of `plan`.
pub fn page_encoder(plan: &SplicePlan, props: WriterProperties, row_group_rows: usize) -> Result<Splicer<Vec<u8>>, ParquetError> {
    Splicer::try_new(sink(), plan, props, row_group_rows, ROW_GROUP_BYTES)
}

/// A Parquet file written to the store as a multipart upload.
pub struct PartWriter<'s, S, E> {
    store: &'s S,
    pub key: String,
    upload_id: String,
    encoder: E,
    parts: Vec<(i32, String)>,
    pub rows: usize,
    uploaded: usize,
}

impl<'s, S: MultipartWrite + Sync, E: Encoder> PartWriter<'s, S, E> {
    /// Starts the multipart upload of `key`.
    pub async fn start(store: &'s S, key: String, encoder: E) -> Result<Self, crate::CompactError> {
        let upload_id = store.start_upload(&key).await?;
        Ok(PartWriter { store, key, upload_id, encoder, parts: Vec::new(), rows: 0, uploaded: 0 })
    }

    /// Bytes of the file so far (uploaded, buffered and in the open row group).
    pub fn size(&self) -> usize {
        self.encoder.size()
    }

    /// Uploads what the sink holds in whole parts.
    async fn ship(&mut self) -> Result<(), crate::CompactError> {
        if self.encoder.buffer().len() >= PART_BYTES {
            // A flushed row group arrives in the sink whole: hand it to the uploads as slices of
            // one buffer (no copies), keeping only the tail below a part.
            let buf = Bytes::from(std::mem::take(self.encoder.buffer()));
            let whole = buf.len() / PART_BYTES * PART_BYTES;
            self.encoder.buffer().extend_from_slice(&buf[whole..]);
            let mut at = 0;
            while at < whole {
                self.upload(buf.slice(at..at + PART_BYTES)).await?;
                at += PART_BYTES;
            }
        }
        Ok(())
    }

    async fn upload(&mut self, part: Bytes) -> Result<(), crate::CompactError> {
        let n = self.parts.len() as i32 + 1;
        self.uploaded += part.len();
        let etag = self.store.upload_part(&self.key, &self.upload_id, n, part).await?;
        self.parts.push((n, etag));
        Ok(())
    }

    /// Closes the file and completes the upload; the object appears whole, at once.
    pub async fn finish(self) -> Result<(String, usize, usize), crate::CompactError> {
        let PartWriter { store, key, upload_id, encoder, mut parts, rows, uploaded } = self;
        let tail = Bytes::from(encoder.finish()?);
        let mut size = uploaded;
        let mut at = 0;
        while at < tail.len() {
            let end = (at + PART_BYTES).min(tail.len());
            let n = parts.len() as i32 + 1;
            size += end - at;
            parts.push((n, store.upload_part(&key, &upload_id, n, tail.slice(at..end)).await?));
            at = end;
        }
        store.complete_upload(&key, &upload_id, parts).await?;
        Ok((key, size, rows))
    }

    /// Gives up the upload (nothing becomes visible).
    pub async fn abort(self) {
        let _ = self.store.abort_upload(&self.key, &self.upload_id).await;
    }
}

impl<S: MultipartWrite + Sync> PartWriter<'_, S, ArrowWriter<Vec<u8>>> {
    /// Adds rows.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), crate::CompactError> {
        let w = &mut self.encoder;
        w.write(batch)?;
        if w.in_progress_size() >= ROW_GROUP_BYTES {
            w.flush()?;
        }
        self.rows += batch.num_rows();
        self.ship().await
    }
}

impl<S: MultipartWrite + Sync> PartWriter<'_, S, Splicer<Vec<u8>>> {
    /// Adds an input row group: its copied pages, and
    /// its decoded `batches`, each shown to `keep` first. `false` when `keep` refused one: the
    /// file is incomplete and must be aborted.
    pub async fn push(
        &mut self,
        piece: &Piece,
        batches: impl IntoIterator<Item = parquet::errors::Result<RecordBatch>>,
        keep: impl FnMut(&RecordBatch) -> parquet::errors::Result<bool>,
    ) -> Result<bool, crate::CompactError> {
        if !self.encoder.push(piece, batches, keep)? {
            return Ok(false);
        }
        self.rows += piece.rows();
        self.ship().await?;
        Ok(true)
    }
}
