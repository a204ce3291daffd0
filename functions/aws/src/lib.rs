//! AWS adapters behind small capability traits. Handlers are generic over the traits, so the
//! same handler code runs against S3 in the cloud, an S3-compatible server locally, and the
//! in-memory [`MemoryStore`] in unit tests.

mod glue;
mod json;
mod memory;
mod s3;

use std::future::Future;
use std::ops::Range;

use bytes::Bytes;

pub use glue::GlueCatalog;
pub use json::{Versioned, get_json, put_json_if};
pub use memory::{MemoryCatalog, MemoryStore};
pub use s3::S3Store;

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Milliseconds since the epoch, when the store reports it.
    pub last_modified_ms: Option<i64>,
}

/// An object's content and entity tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub body: Bytes,
    pub etag: Option<String>,
}

/// A condition on a write (S3 conditional writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Write unconditionally.
    None,
    /// Only if no object exists under the key (`If-None-Match: *`).
    IfAbsent,
    /// Only if the object still has this entity tag (`If-Match`).
    IfMatch(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Written {
        etag: Option<String>,
    },
    /// The precondition did not hold; nothing was written.
    PreconditionFailed,
}

/// An infrastructure failure, after the SDK's own retries. Handlers fail the invocation on it,
/// so the trigger retries.
#[derive(Debug, thiserror::Error)]
#[error("{op} s3://{bucket}/{key}: {message}")]
pub struct StoreError {
    pub op: &'static str,
    pub bucket: String,
    pub key: String,
    pub message: String,
}

/// Reads objects.
pub trait ObjectRead {
    /// The object, or `None` if there is none under the key.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Object>, StoreError>> + Send;
    /// Every object whose key starts with `prefix`, in key order.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<ObjectMeta>, StoreError>> + Send;
    /// Bytes `range` of an object (for reading Parquet footers and row groups without the whole file).
    fn get_range(&self, key: &str, range: Range<u64>) -> impl Future<Output = Result<Bytes, StoreError>> + Send;
}

/// Writes objects. A put is atomic: readers see the whole object or none.
pub trait ObjectWrite {
    fn put(&self, key: &str, body: Bytes, when: Precondition) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Copies an object within the bucket (server-side).
    fn copy(&self, from: &str, to: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Sets one tag on an object (lifecycle rules expire objects by tag).
    fn tag(&self, key: &str, name: &str, value: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Writes one large object in parts, so it never has to be in memory whole. Nothing is visible
/// under the key until [`MultipartWrite::complete_upload`].
pub trait MultipartWrite {
    fn start_upload(&self, key: &str) -> impl Future<Output = Result<String, StoreError>> + Send;
    /// Uploads part `number` (from 1); every part but the last must be at least 5 MiB.
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<(i32, String)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn abort_upload(&self, key: &str, upload_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A catalog failure (Glue), after the SDK's retries.
#[derive(Debug, thiserror::Error)]
#[error("{op} {table}{values:?}: {message}")]
pub struct CatalogError {
    pub op: &'static str,
    pub table: String,
    pub values: Vec<String>,
    pub message: String,
}

/// Where a table partition's files are, as Athena reads it (Glue partition locations).
pub trait PartitionLocation {
    /// The partition's location (`s3://bucket/prefix/`), or `None` if it is not registered.
    fn partition_location(
        &self,
        table: &str,
        values: &[String],
    ) -> impl Future<Output = Result<Option<String>, CatalogError>> + Send;
    /// Points a registered partition at `location` in one catalog call. Returns `false` (and
    /// changes nothing) when the partition is not registered.
    fn set_partition_location(
        &self,
        table: &str,
        values: &[String],
        location: &str,
    ) -> impl Future<Output = Result<bool, CatalogError>> + Send;
}

/// Shared handles: two handlers (two "processes" in a test, or two functions in the local
/// pipeline) can use one store.
impl<T: ObjectRead + Send + Sync> ObjectRead for std::sync::Arc<T> {
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Object>, StoreError>> + Send {
        self.as_ref().get(key)
    }
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<ObjectMeta>, StoreError>> + Send {
        self.as_ref().list(prefix)
    }
    fn get_range(&self, key: &str, range: Range<u64>) -> impl Future<Output = Result<Bytes, StoreError>> + Send {
        self.as_ref().get_range(key, range)
    }
}

impl<T: ObjectWrite + Send + Sync> ObjectWrite for std::sync::Arc<T> {
    fn put(&self, key: &str, body: Bytes, when: Precondition) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send {
        self.as_ref().put(key, body, when)
    }
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.as_ref().delete(key)
    }
    fn copy(&self, from: &str, to: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.as_ref().copy(from, to)
    }
    fn tag(&self, key: &str, name: &str, value: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.as_ref().tag(key, name, value)
    }
}

impl<T: MultipartWrite + Send + Sync> MultipartWrite for std::sync::Arc<T> {
    fn start_upload(&self, key: &str) -> impl Future<Output = Result<String, StoreError>> + Send {
        self.as_ref().start_upload(key)
    }
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> impl Future<Output = Result<String, StoreError>> + Send {
        self.as_ref().upload_part(key, upload_id, number, body)
    }
    fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<(i32, String)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.as_ref().complete_upload(key, upload_id, parts)
    }
    fn abort_upload(&self, key: &str, upload_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.as_ref().abort_upload(key, upload_id)
    }
}

impl<T: PartitionLocation + Send + Sync> PartitionLocation for std::sync::Arc<T> {
    fn partition_location(
        &self,
        table: &str,
        values: &[String],
    ) -> impl Future<Output = Result<Option<String>, CatalogError>> + Send {
        self.as_ref().partition_location(table, values)
    }
    fn set_partition_location(
        &self,
        table: &str,
        values: &[String],
        location: &str,
    ) -> impl Future<Output = Result<bool, CatalogError>> + Send {
        self.as_ref().set_partition_location(table, values, location)
    }
}
