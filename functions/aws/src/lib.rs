//! AWS adapters behind small capability traits. Handlers are generic over the traits, so the
//! same handler code runs against S3 in the cloud, an S3-compatible server locally, and the
//! in-memory [`MemoryStore`] in unit tests.

mod memory;
mod s3;

use std::future::Future;

use bytes::Bytes;

pub use memory::MemoryStore;
pub use s3::S3Store;

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
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
}

/// Writes objects. A put is atomic: readers see the whole object or none.
pub trait ObjectWrite {
    fn put(&self, key: &str, body: Bytes, when: Precondition) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}
