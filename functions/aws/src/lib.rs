//! AWS adapters behind small capability traits. Handlers are generic over the traits, so the
//! same handler code runs against S3 in the cloud, an S3-compatible server locally, and the
//! in-memory [`MemoryStore`] in unit tests.

mod athena;
#[cfg(feature = "embedded")]
pub mod embedded;
mod glue;
mod json;
mod lambda;
pub mod logging;
mod memory;
mod s3;
pub mod startup;

/// The system clock, in milliseconds since the epoch: the one place that reads it (handlers take
/// a clock, so tests set the time).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// What a handler reads the time from and writes its EMF metric lines to: the system clock and
/// standard output (which CloudWatch Logs reads) in Lambda; tests set both.
#[derive(Clone)]
pub struct Instruments {
    clock: std::sync::Arc<dyn Fn() -> i64 + Send + Sync>,
    metrics_sink: fn(&str),
}

impl Default for Instruments {
    fn default() -> Self {
        Instruments { clock: std::sync::Arc::new(now_ms), metrics_sink: |line| println!("{line}") }
    }
}

impl Instruments {
    /// The time, in milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// Writes one EMF line.
    pub fn emit(&self, line: &str) {
        (self.metrics_sink)(line)
    }
}

/// A handler with [`Instruments`]: tests, the fault campaign and the local tool set its clock and
/// where its metrics go.
pub trait Instrumented: Sized {
    /// The handler's instruments.
    fn instruments_mut(&mut self) -> &mut Instruments;

    /// The clock the handler judges claims, leases, windows and look-backs by.
    fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.instruments_mut().clock = std::sync::Arc::new(clock);
        self
    }

    /// Sends the EMF metric lines somewhere else (the local tool discards them).
    fn with_metrics_sink(mut self, sink: fn(&str)) -> Self {
        self.instruments_mut().metrics_sink = sink;
        self
    }
}

use std::future::Future;
use std::ops::Range;

use bytes::Bytes;

pub use athena::AthenaQueries;
pub use glue::GlueCatalog;
pub use json::{Versioned, get_json, partition_state, put_json_if};
pub use lambda::LambdaMappings;
pub use memory::{MemoryCatalog, MemoryMappings, MemoryStore};
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
    /// Copies an object within the bucket (server-side), without the source's tags.
    fn copy(&self, from: &str, to: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
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

/// A table as the catalog describes it. Columns are `(name, Athena type)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableDef {
    pub name: String,
    pub columns: Vec<(String, String)>,
    pub partition_keys: Vec<(String, String)>,
    /// `s3://bucket/prefix/`
    pub location: String,
    pub parameters: std::collections::BTreeMap<String, String>,
}

/// A stored table and the version to update it from (optimistic concurrency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTable {
    pub def: TableDef,
    pub version_id: Option<String>,
}

/// Tables and partitions of one catalog database (Glue).
pub trait TableCatalog {
    /// Creates the database unless it exists.
    fn ensure_database(&self) -> impl Future<Output = Result<(), CatalogError>> + Send;
    fn get_table(&self, table: &str) -> impl Future<Output = Result<Option<StoredTable>, CatalogError>> + Send;
    /// Creates a Parquet table; `false` if it exists already.
    fn create_table(&self, def: &TableDef) -> impl Future<Output = Result<bool, CatalogError>> + Send;
    /// Replaces the table's columns if it is still at `version_id`; `false` if it changed meanwhile.
    fn update_table(&self, def: &TableDef, version_id: Option<&str>) -> impl Future<Output = Result<bool, CatalogError>> + Send;
    /// Registers partitions `(values, location)` (at most 100 per call underneath); those that
    /// exist already are left as they are. Returns how many were created.
    fn create_partitions(
        &self,
        def: &TableDef,
        partitions: &[(Vec<String>, String)],
    ) -> impl Future<Output = Result<usize, CatalogError>> + Send;
}

/// The state of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryStatus {
    /// `QUEUED`, `RUNNING`, `SUCCEEDED`, `FAILED` or `CANCELLED`.
    pub state: String,
    pub reason: Option<String>,
    pub scanned_bytes: Option<i64>,
    pub elapsed_ms: Option<i64>,
}

impl QueryStatus {
    pub fn is_done(&self) -> bool {
        matches!(self.state.as_str(), "SUCCEEDED" | "FAILED" | "CANCELLED")
    }
}

/// A query's result: column names and rows of nullable strings, as Athena returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// Runs SQL (Athena).
pub trait QueryRun {
    fn start(&self, sql: &str, database: &str, workgroup: &str) -> impl Future<Output = Result<String, CatalogError>> + Send;
    fn status(&self, id: &str) -> impl Future<Output = Result<QueryStatus, CatalogError>> + Send;
    fn results(&self, id: &str) -> impl Future<Output = Result<QueryResult, CatalogError>> + Send;
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

/// An event source mapping's state, as `GetEventSourceMapping` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingStatus {
    /// `Creating`, `Enabling`, `Enabled`, `Disabling`, `Disabled`, `Updating` or `Deleting`.
    pub state: String,
    /// Who changed the state last: `User initiated` or `Lambda initiated`, with a cause.
    pub state_transition_reason: Option<String>,
    /// The result of the mapping's last poll (for Kafka: `OK`, `PROBLEM: …`, `No records processed`).
    pub last_processing_result: Option<String>,
    /// When the mapping was last changed (milliseconds since the epoch).
    pub last_modified_ms: Option<i64>,
}

/// The mapping could not be read, after the SDK's retries.
#[derive(Debug, thiserror::Error)]
#[error("GetEventSourceMapping {uuid}: {message}")]
pub struct MappingError {
    pub uuid: String,
    pub message: String,
}

/// Reads event source mappings (Lambda).
pub trait MappingRead {
    fn status(&self, uuid: &str) -> impl Future<Output = Result<MappingStatus, MappingError>> + Send;
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

impl<T: TableCatalog + Send + Sync> TableCatalog for std::sync::Arc<T> {
    fn ensure_database(&self) -> impl Future<Output = Result<(), CatalogError>> + Send {
        self.as_ref().ensure_database()
    }
    fn get_table(&self, table: &str) -> impl Future<Output = Result<Option<StoredTable>, CatalogError>> + Send {
        self.as_ref().get_table(table)
    }
    fn create_table(&self, def: &TableDef) -> impl Future<Output = Result<bool, CatalogError>> + Send {
        self.as_ref().create_table(def)
    }
    fn update_table(&self, def: &TableDef, version_id: Option<&str>) -> impl Future<Output = Result<bool, CatalogError>> + Send {
        self.as_ref().update_table(def, version_id)
    }
    fn create_partitions(
        &self,
        def: &TableDef,
        partitions: &[(Vec<String>, String)],
    ) -> impl Future<Output = Result<usize, CatalogError>> + Send {
        self.as_ref().create_partitions(def, partitions)
    }
}
