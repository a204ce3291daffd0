//! An in-memory object store for unit tests, with conditional writes and injectable failures.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use crate::{
    CatalogError, MappingError, MappingRead, MappingStatus, MultipartWrite, Object, ObjectMeta, ObjectRead, ObjectWrite,
    PartitionLocation, Precondition, PutOutcome, StoreError,
};

type Uploads = HashMap<String, (String, BTreeMap<i32, Bytes>)>;

#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, (Bytes, u64)>>,
    uploads: Mutex<Uploads>,
    version: AtomicUsize,
    failing_puts: AtomicUsize,
    lost_answer: AtomicUsize,
    puts: AtomicUsize,
    deletes: AtomicUsize,
    copies: AtomicUsize,
    gets: AtomicUsize,
    lists: AtomicUsize,
    /// Parquet GETs by key.
    reads: Mutex<BTreeMap<String, usize>>,
    data_read: AtomicUsize,
    data_written: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another test thread panicked; the data is still whole.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn failure(op: &'static str, key: &str, message: &str) -> StoreError {
    StoreError { op, bucket: "memory".into(), key: key.into(), message: message.into() }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` puts fail as if S3 were unreachable.
    pub fn fail_next_puts(&self, n: usize) {
        self.failing_puts.store(n, Ordering::SeqCst);
    }

    /// The `n`-th conditional put from now (1 = the next) takes effect but answers 412, which is
    /// what the SDK's retry sees when the answer to a conditional write that took effect is lost.
    pub fn lose_answer_of_conditional_put(&self, n: usize) {
        self.lost_answer.store(n, Ordering::SeqCst);
    }

    /// How many puts succeeded so far.
    pub fn put_count(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }

    /// How many deletes were asked for so far.
    pub fn delete_count(&self) -> usize {
        self.deletes.load(Ordering::SeqCst)
    }

    /// How many server-side copies succeeded so far.
    pub fn copy_count(&self) -> usize {
        self.copies.load(Ordering::SeqCst)
    }

    /// Bytes of Parquet objects read so far (whole and ranged GETs), and written (PUTs and
    /// completed multipart uploads; copies are counted by [`Self::copy_count`], not here).
    pub fn data_bytes(&self) -> (usize, usize) {
        (self.data_read.load(Ordering::SeqCst), self.data_written.load(Ordering::SeqCst))
    }

    /// How many GETs (whole or ranged, of any object) and LISTs were asked for so far.
    pub fn read_requests(&self) -> (usize, usize) {
        (self.gets.load(Ordering::SeqCst), self.lists.load(Ordering::SeqCst))
    }

    /// How many GETs (whole or ranged) each Parquet object had so far.
    pub fn reads(&self) -> BTreeMap<String, usize> {
        lock(&self.reads).clone()
    }

    fn count_data(counter: &AtomicUsize, key: &str, n: usize) {
        if key.ends_with(".parquet") {
            counter.fetch_add(n, Ordering::SeqCst);
        }
    }

    fn count_read(&self, key: &str, n: usize) {
        if key.ends_with(".parquet") {
            self.data_read.fetch_add(n, Ordering::SeqCst);
            *lock(&self.reads).entry(key.to_string()).or_default() += 1;
        }
    }

    /// All keys, in order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        lock(&self.uploads).len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Bytes, u64)>> {
        lock(&self.objects)
    }

    fn next_version(&self) -> u64 {
        self.version.fetch_add(1, Ordering::SeqCst) as u64 + 1
    }

    fn injected(&self) -> bool {
        self.failing_puts.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }
}

fn etag(v: u64) -> String {
    format!("\"v{v}\"")
}

impl ObjectRead for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let found = self.lock().get(key).map(|(b, v)| Object { body: b.clone(), etag: Some(etag(*v)) });
        if let Some(o) = &found {
            self.count_read(key, o.body.len());
        }
        Ok(found)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .lock()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (b, _))| ObjectMeta { key: k.clone(), size: b.len() as u64, last_modified_ms: None })
            .collect())
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let map = self.lock();
        let (b, _) = map.get(key).ok_or_else(|| failure("GetObject", key, "no such key"))?;
        let (start, end) = (range.start as usize, (range.end as usize).min(b.len()));
        if start > end {
            return Err(failure("GetObject", key, "range not satisfiable"));
        }
        let out = b.slice(start..end);
        drop(map);
        self.count_read(key, end - start);
        Ok(out)
    }
}

impl ObjectWrite for MemoryStore {
    async fn put(&self, key: &str, body: Bytes, when: Precondition) -> Result<PutOutcome, StoreError> {
        if self.injected() {
            return Err(failure("PutObject", key, "injected failure"));
        }
        let mut map = self.lock();
        let current = map.get(key).map(|(_, v)| etag(*v));
        let ok = match &when {
            Precondition::None => true,
            Precondition::IfAbsent => current.is_none(),
            Precondition::IfMatch(e) => current.as_ref() == Some(e),
        };
        if !ok {
            return Ok(PutOutcome::PreconditionFailed);
        }
        let v = self.next_version();
        Self::count_data(&self.data_written, key, body.len());
        map.insert(key.to_string(), (body, v));
        self.puts.fetch_add(1, Ordering::SeqCst);
        let lost = when != Precondition::None
            && self.lost_answer.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) == Ok(1);
        if lost {
            return Ok(PutOutcome::PreconditionFailed);
        }
        Ok(PutOutcome::Written { etag: Some(etag(v)) })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.lock().remove(key);
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        if self.injected() {
            return Err(failure("CopyObject", to, "injected failure"));
        }
        let v = self.next_version();
        let mut map = self.lock();
        let body = map.get(from).map(|(b, _)| b.clone()).ok_or_else(|| failure("CopyObject", from, "no such key"))?;
        map.insert(to.to_string(), (body, v));
        self.copies.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl MultipartWrite for MemoryStore {
    async fn start_upload(&self, key: &str) -> Result<String, StoreError> {
        let id = format!("upload-{}", self.next_version());
        lock(&self.uploads).insert(id.clone(), (key.to_string(), BTreeMap::new()));
        Ok(id)
    }

    async fn upload_part(&self, key: &str, upload_id: &str, number: i32, body: Bytes) -> Result<String, StoreError> {
        if self.injected() {
            return Err(failure("UploadPart", key, "injected failure"));
        }
        let mut uploads = lock(&self.uploads);
        let (_, parts) = uploads.get_mut(upload_id).ok_or_else(|| failure("UploadPart", key, "no such upload"))?;
        parts.insert(number, body);
        Ok(format!("\"part-{number}\""))
    }

    async fn complete_upload(&self, key: &str, upload_id: &str, parts: Vec<(i32, String)>) -> Result<(), StoreError> {
        let (_, stored) =
            lock(&self.uploads).remove(upload_id).ok_or_else(|| failure("CompleteMultipartUpload", key, "no such upload"))?;
        let mut body = Vec::new();
        for (i, (n, _)) in parts.iter().enumerate() {
            let part = stored.get(n).ok_or_else(|| failure("CompleteMultipartUpload", key, "missing part"))?;
            if i + 1 < parts.len() && part.len() < 5 * 1024 * 1024 {
                return Err(failure("CompleteMultipartUpload", key, "EntityTooSmall: a part but the last is under 5 MiB"));
            }
            body.extend_from_slice(part);
        }
        let v = self.next_version();
        Self::count_data(&self.data_written, key, body.len());
        self.lock().insert(key.to_string(), (Bytes::from(body), v));
        Ok(())
    }

    async fn abort_upload(&self, _key: &str, upload_id: &str) -> Result<(), StoreError> {
        lock(&self.uploads).remove(upload_id);
        Ok(())
    }
}

/// An in-memory catalog for unit tests, with optimistic table versions like Glue's.
#[derive(Debug, Default)]
pub struct MemoryCatalog {
    partitions: Mutex<BTreeMap<(String, Vec<String>), String>>,
    tables: Mutex<BTreeMap<String, (crate::TableDef, u64)>>,
    /// The next `n` table updates fail as if another writer changed the table first.
    pub conflicting_updates: AtomicUsize,
}

impl MemoryCatalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every partition: `(table, values) -> location`.
    pub fn partitions(&self) -> BTreeMap<(String, Vec<String>), String> {
        lock(&self.partitions).clone()
    }

    /// Registers a partition (the catalog function's job in the cloud).
    pub fn register(&self, table: &str, values: &[String], location: &str) {
        lock(&self.partitions).insert((table.to_string(), values.to_vec()), location.to_string());
    }
}

impl PartitionLocation for MemoryCatalog {
    async fn partition_location(&self, table: &str, values: &[String]) -> Result<Option<String>, CatalogError> {
        Ok(lock(&self.partitions).get(&(table.to_string(), values.to_vec())).cloned())
    }

    async fn set_partition_location(&self, table: &str, values: &[String], location: &str) -> Result<bool, CatalogError> {
        let mut p = lock(&self.partitions);
        match p.get_mut(&(table.to_string(), values.to_vec())) {
            Some(l) => {
                *l = location.to_string();
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl crate::TableCatalog for MemoryCatalog {
    async fn ensure_database(&self) -> Result<(), CatalogError> {
        Ok(())
    }

    async fn get_table(&self, table: &str) -> Result<Option<crate::StoredTable>, CatalogError> {
        Ok(lock(&self.tables).get(table).map(|(d, v)| crate::StoredTable { def: d.clone(), version_id: Some(v.to_string()) }))
    }

    async fn create_table(&self, def: &crate::TableDef) -> Result<bool, CatalogError> {
        let mut t = lock(&self.tables);
        if t.contains_key(&def.name) {
            return Ok(false);
        }
        t.insert(def.name.clone(), (def.clone(), 1));
        Ok(true)
    }

    async fn update_table(&self, def: &crate::TableDef, version_id: Option<&str>) -> Result<bool, CatalogError> {
        let mut t = lock(&self.tables);
        let Some((stored, v)) = t.get_mut(&def.name) else {
            return Err(CatalogError {
                op: "UpdateTable",
                table: def.name.clone(),
                values: vec![],
                message: "no such table".into(),
            });
        };
        if self.conflicting_updates.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            *v += 1; // someone else's update
            return Ok(false);
        }
        if version_id.is_some_and(|want| want != v.to_string()) {
            return Ok(false);
        }
        *stored = def.clone();
        *v += 1;
        Ok(true)
    }

    async fn create_partitions(
        &self,
        def: &crate::TableDef,
        partitions: &[(Vec<String>, String)],
    ) -> Result<usize, CatalogError> {
        let mut p = lock(&self.partitions);
        let mut created = 0;
        for (values, location) in partitions {
            let key = (def.name.clone(), values.clone());
            if let std::collections::btree_map::Entry::Vacant(e) = p.entry(key) {
                e.insert(location.clone());
                created += 1;
            }
        }
        Ok(created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conditional_writes() {
        let s = MemoryStore::new();
        let w = s.put("a", Bytes::from_static(b"1"), Precondition::IfAbsent).await.unwrap();
        let PutOutcome::Written { etag: Some(e1) } = w else { panic!("{w:?}") };
        assert_eq!(s.put("a", Bytes::from_static(b"2"), Precondition::IfAbsent).await.unwrap(), PutOutcome::PreconditionFailed);
        assert_eq!(
            s.put("a", Bytes::from_static(b"2"), Precondition::IfMatch("\"x\"".into())).await.unwrap(),
            PutOutcome::PreconditionFailed
        );
        assert!(matches!(
            s.put("a", Bytes::from_static(b"2"), Precondition::IfMatch(e1)).await.unwrap(),
            PutOutcome::Written { .. }
        ));
        assert_eq!(s.get("a").await.unwrap().unwrap().body, Bytes::from_static(b"2"));
        s.put("ab/c", Bytes::new(), Precondition::None).await.unwrap();
        s.put("b", Bytes::new(), Precondition::None).await.unwrap();
        let keys: Vec<String> = s.list("a").await.unwrap().into_iter().map(|m| m.key).collect();
        assert_eq!(keys, ["a", "ab/c"]);
        s.fail_next_puts(1);
        assert!(s.put("c", Bytes::new(), Precondition::None).await.is_err());
        assert!(s.put("c", Bytes::new(), Precondition::None).await.is_ok());
        s.delete("c").await.unwrap();
        assert_eq!(s.get("c").await.unwrap(), None);
    }
}

/// Event source mappings in memory: set a mapping's status, or make reads fail.
#[derive(Debug, Default)]
pub struct MemoryMappings {
    mappings: Mutex<BTreeMap<String, MappingStatus>>,
    /// The next `n` reads fail as an unreachable Lambda API would.
    pub failing_reads: AtomicUsize,
}

impl MemoryMappings {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&self, uuid: &str, status: MappingStatus) {
        lock(&self.mappings).insert(uuid.to_string(), status);
    }
}

impl MappingRead for MemoryMappings {
    async fn status(&self, uuid: &str) -> Result<MappingStatus, MappingError> {
        let failing = self.failing_reads.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        let error = |message: &str| MappingError { uuid: uuid.into(), message: message.into() };
        if failing {
            return Err(error("injected: 503 ServiceUnavailable"));
        }
        lock(&self.mappings).get(uuid).cloned().ok_or_else(|| error("ResourceNotFoundException: the mapping does not exist"))
    }
}
