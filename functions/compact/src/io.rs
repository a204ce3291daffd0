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
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
use tributary_aws::{MultipartWrite, ObjectRead, StoreError};

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

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            // One ranged read usually gets the footer and the metadata together.
            let meta = ParquetMetaDataReader::new().with_prefetch_hint(Some(64 * 1024)).load_and_finish(&mut *self, size).await?;
            Ok(Arc::new(meta))
        }
        .boxed()
    }
}

/// Multipart part size: above S3's 5 MiB minimum, small enough to keep memory flat.
pub const PART_BYTES: usize = 8 << 20;
/// A row group is flushed once its encoded size passes this, whatever its row count.
pub const ROW_GROUP_BYTES: usize = 128 << 20;

/// A Parquet file written to the store as a multipart upload.
pub struct PartWriter<'s, S> {
    store: &'s S,
    pub key: String,
    upload_id: String,
    writer: ArrowWriter<Vec<u8>>,
    parts: Vec<(i32, String)>,
    pub rows: usize,
    uploaded: usize,
}

impl<'s, S: MultipartWrite + Sync> PartWriter<'s, S> {
    pub async fn start(
        store: &'s S,
        key: String,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<Self, crate::CompactError> {
        let writer = ArrowWriter::try_new(Vec::with_capacity(PART_BYTES + (1 << 20)), schema, Some(props))?;
        let upload_id = store.start_upload(&key).await?;
        Ok(PartWriter { store, key, upload_id, writer, parts: Vec::new(), rows: 0, uploaded: 0 })
    }

    /// Bytes of the file so far (uploaded, buffered and in the open row group).
    pub fn size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), crate::CompactError> {
        self.writer.write(batch)?;
        self.rows += batch.num_rows();
        if self.writer.in_progress_size() >= ROW_GROUP_BYTES {
            self.writer.flush()?;
        }
        while self.writer.inner().len() >= PART_BYTES {
            let rest = self.writer.inner_mut().split_off(PART_BYTES);
            let part = std::mem::replace(self.writer.inner_mut(), rest);
            self.upload(part).await?;
        }
        Ok(())
    }

    async fn upload(&mut self, part: Vec<u8>) -> Result<(), crate::CompactError> {
        let n = self.parts.len() as i32 + 1;
        self.uploaded += part.len();
        let etag = self.store.upload_part(&self.key, &self.upload_id, n, Bytes::from(part)).await?;
        self.parts.push((n, etag));
        Ok(())
    }

    /// Closes the file and completes the upload; the object appears whole, at once.
    pub async fn finish(self) -> Result<(String, usize, usize), crate::CompactError> {
        let PartWriter { store, key, upload_id, writer, mut parts, rows, uploaded } = self;
        let tail = writer.into_inner()?;
        let mut size = uploaded;
        for chunk in tail.chunks(PART_BYTES) {
            let n = parts.len() as i32 + 1;
            size += chunk.len();
            parts.push((n, store.upload_part(&key, &upload_id, n, Bytes::copy_from_slice(chunk)).await?));
        }
        store.complete_upload(&key, &upload_id, parts).await?;
        Ok((key, size, rows))
    }

    /// Gives up the upload (nothing becomes visible).
    pub async fn abort(self) {
        let _ = self.store.abort_upload(&self.key, &self.upload_id).await;
    }
}
