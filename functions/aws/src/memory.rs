//! An in-memory object store for unit tests, with conditional writes and injectable failures.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use crate::{Object, ObjectMeta, ObjectRead, ObjectWrite, Precondition, PutOutcome, StoreError};

#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, (Bytes, u64)>>,
    version: AtomicUsize,
    failing_puts: AtomicUsize,
    puts: AtomicUsize,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` puts fail as if S3 were unreachable.
    pub fn fail_next_puts(&self, n: usize) {
        self.failing_puts.store(n, Ordering::SeqCst);
    }

    /// How many puts succeeded so far.
    pub fn put_count(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }

    /// All keys, in order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Bytes, u64)>> {
        // A poisoned lock only means another test thread panicked; the map is still whole.
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn etag(v: u64) -> String {
    format!("\"v{v}\"")
}

impl ObjectRead for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        Ok(self.lock().get(key).map(|(b, v)| Object { body: b.clone(), etag: Some(etag(*v)) }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        Ok(self
            .lock()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (b, _))| ObjectMeta { key: k.clone(), size: b.len() as u64 })
            .collect())
    }
}

impl ObjectWrite for MemoryStore {
    async fn put(&self, key: &str, body: Bytes, when: Precondition) -> Result<PutOutcome, StoreError> {
        if self.failing_puts.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(StoreError {
                op: "PutObject",
                bucket: "memory".into(),
                key: key.into(),
                message: "injected failure".into(),
            });
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
        let v = self.version.fetch_add(1, Ordering::SeqCst) as u64 + 1;
        map.insert(key.to_string(), (body, v));
        self.puts.fetch_add(1, Ordering::SeqCst);
        Ok(PutOutcome::Written { etag: Some(etag(v)) })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
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
