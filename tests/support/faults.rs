//! Fault injection at every call the handlers make: a layer over the real adapters (S3 and Glue
//! through the SDK) that fails calls on a seeded schedule, as AWS does.
//!
//! - `Unavailable` (5xx) and `Throttled` (503 SlowDown, ThrottlingException): the call fails and
//!   changes nothing.
//! - `TimedOut`: the call is carried out and then fails, as when the answer is lost or the
//!   function dies right after the step (a crash between any two calls).
//! - `ConditionLost`: a conditional write is carried out and then answers 412, which is what the
//!   SDK's retry of a conditional write whose first answer was lost sees.
//!
//! The layer also plays S3's event notifications: every `PutObject` under the data area that
//! took effect is queued as an `Object Created` event, whether or not its caller heard back.

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use tributary_aws::{
    CatalogError, MultipartWrite, Object, ObjectMeta, ObjectRead, ObjectWrite, PartitionLocation, Precondition, PutOutcome,
    StoreError, StoredTable, TableCatalog, TableDef,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Unavailable,
    Throttled,
    TimedOut,
    ConditionLost,
}

/// The schedule's faults: a seeded generator, a rate, and counts of what was injected.
pub struct Faults {
    rng: Mutex<fastrand::Rng>,
    /// Faults per 1,000 calls; 0 turns injection off (the settle phase).
    pub per_mille: AtomicU32,
    injected: Mutex<BTreeMap<(Fault, &'static str), u64>>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
    /// Keys whose `PutObject` took effect under `data_prefix`, in order: S3's event notifications.
    events: Mutex<Vec<String>>,
    data_prefix: String,
}

impl Faults {
    pub fn new(seed: u64, per_mille: u32, data_prefix: &str) -> Faults {
        Faults {
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            per_mille: AtomicU32::new(per_mille),
            injected: Mutex::default(),
            calls: Mutex::default(),
            events: Mutex::default(),
            data_prefix: data_prefix.to_string(),
        }
    }

    /// Whether this call fails, and how.
    fn draw(&self, op: &'static str, conditional: bool) -> Option<Fault> {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
        let rate = self.per_mille.load(Ordering::Relaxed);
        let mut rng = self.rng.lock().unwrap();
        if rate == 0 || rng.u32(0..1000) >= rate {
            return None;
        }
        // Conditional writes are few and where a lost answer hurts most: half their faults are 412s.
        let fault = match rng.u32(0..6) {
            0..3 if conditional => Fault::ConditionLost,
            0 | 3 => Fault::Unavailable,
            1 | 4 => Fault::Throttled,
            _ => Fault::TimedOut,
        };
        drop(rng);
        *self.injected.lock().unwrap().entry((fault, op)).or_default() += 1;
        Some(fault)
    }

    fn message(fault: Fault) -> String {
        match fault {
            Fault::Unavailable => "injected: 500 InternalError".into(),
            Fault::Throttled => "injected: 503 SlowDown (throttled)".into(),
            Fault::TimedOut => "injected: timed out after the request was carried out".into(),
            Fault::ConditionLost => "injected: 412 on the retry of a write that took effect".into(),
        }
    }

    /// Faults injected, by kind and call.
    pub fn injected(&self) -> BTreeMap<(Fault, &'static str), u64> {
        self.injected.lock().unwrap().clone()
    }

    pub fn injected_total(&self) -> u64 {
        self.injected.lock().unwrap().values().sum()
    }

    /// Calls made, faulted or not, by call.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls.lock().unwrap().clone()
    }

    /// The queued `Object Created` keys, taken.
    pub fn take_events(&self) -> Vec<String> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

/// An adapter with faults injected in front of it.
#[derive(Clone)]
pub struct Faulty<T> {
    pub inner: T,
    pub faults: std::sync::Arc<Faults>,
}

fn store_error(op: &'static str, key: &str, fault: Fault) -> StoreError {
    StoreError { op, bucket: "faulty".into(), key: key.to_string(), message: Faults::message(fault) }
}

fn catalog_error(op: &'static str, table: &str, fault: Fault) -> CatalogError {
    CatalogError { op, table: table.to_string(), values: Vec::new(), message: Faults::message(fault) }
}

impl<T> Faulty<T> {
    /// Runs a call under the schedule: fails before it, or after it took effect.
    async fn call<R, E>(
        &self,
        op: &'static str,
        name: &str,
        error: fn(&'static str, &str, Fault) -> E,
        call: impl Future<Output = Result<R, E>>,
    ) -> Result<R, E> {
        match self.faults.draw(op, false) {
            Some(f @ (Fault::Unavailable | Fault::Throttled)) => Err(error(op, name, f)),
            Some(f) => {
                call.await?;
                Err(error(op, name, f))
            }
            None => call.await,
        }
    }
}

impl<T: ObjectRead + Sync> ObjectRead for Faulty<T> {
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        self.call("GetObject", key, store_error, self.inner.get(key)).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.call("ListObjectsV2", prefix, store_error, self.inner.list(prefix)).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.call("GetObject(range)", key, store_error, self.inner.get_range(key, range)).await
    }
}

impl<T: ObjectWrite + Sync> ObjectWrite for Faulty<T> {
    async fn put(&self, key: &str, body: Bytes, when: Precondition) -> Result<PutOutcome, StoreError> {
        let conditional = when != Precondition::None;
        let fault = self.faults.draw("PutObject", conditional);
        if let Some(f @ (Fault::Unavailable | Fault::Throttled)) = fault {
            return Err(store_error("PutObject", key, f));
        }
        let out = self.inner.put(key, body, when).await?;
        if matches!(out, PutOutcome::Written { .. }) && key.starts_with(&self.faults.data_prefix) {
            self.faults.events.lock().unwrap().push(key.to_string());
        }
        match fault {
            Some(Fault::ConditionLost) if matches!(out, PutOutcome::Written { .. }) => Ok(PutOutcome::PreconditionFailed),
            Some(f) => Err(store_error("PutObject", key, f)),
            None => Ok(out),
        }
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.call("DeleteObject", key, store_error, self.inner.delete(key)).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        self.call("CopyObject", to, store_error, self.inner.copy(from, to)).await
    }
}

impl<T: MultipartWrite + Sync> MultipartWrite for Faulty<T> {
    async fn start_upload(&self, key: &str) -> Result<String, StoreError> {
        self.call("CreateMultipartUpload", key, store_error, self.inner.start_upload(key)).await
    }
    async fn upload_part(&self, key: &str, upload_id: &str, number: i32, body: Bytes) -> Result<String, StoreError> {
        self.call("UploadPart", key, store_error, self.inner.upload_part(key, upload_id, number, body)).await
    }
    async fn complete_upload(&self, key: &str, upload_id: &str, parts: Vec<(i32, String)>) -> Result<(), StoreError> {
        self.call("CompleteMultipartUpload", key, store_error, self.inner.complete_upload(key, upload_id, parts)).await
    }
    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.call("AbortMultipartUpload", key, store_error, self.inner.abort_upload(key, upload_id)).await
    }
}

impl<T: TableCatalog + Sync> TableCatalog for Faulty<T> {
    async fn ensure_database(&self) -> Result<(), CatalogError> {
        self.call("CreateDatabase", "", catalog_error, self.inner.ensure_database()).await
    }
    async fn get_table(&self, table: &str) -> Result<Option<StoredTable>, CatalogError> {
        self.call("GetTable", table, catalog_error, self.inner.get_table(table)).await
    }
    async fn create_table(&self, def: &TableDef) -> Result<bool, CatalogError> {
        self.call("CreateTable", &def.name, catalog_error, self.inner.create_table(def)).await
    }
    async fn update_table(&self, def: &TableDef, version_id: Option<&str>) -> Result<bool, CatalogError> {
        self.call("UpdateTable", &def.name, catalog_error, self.inner.update_table(def, version_id)).await
    }
    async fn create_partitions(&self, def: &TableDef, partitions: &[(Vec<String>, String)]) -> Result<usize, CatalogError> {
        self.call("BatchCreatePartition", &def.name, catalog_error, self.inner.create_partitions(def, partitions)).await
    }
}

impl<T: PartitionLocation + Sync> PartitionLocation for Faulty<T> {
    async fn partition_location(&self, table: &str, values: &[String]) -> Result<Option<String>, CatalogError> {
        self.call("GetPartition", table, catalog_error, self.inner.partition_location(table, values)).await
    }
    async fn set_partition_location(&self, table: &str, values: &[String], location: &str) -> Result<bool, CatalogError> {
        self.call("UpdatePartition", table, catalog_error, self.inner.set_partition_location(table, values, location)).await
    }
}
