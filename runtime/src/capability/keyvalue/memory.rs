//! The `memory` backend: a bucket kept in the runtime, shared by every instance of the
//! container (so a counter counts across HTTP requests) and gone when the container is.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{KEYS_PER_PAGE, KeyPage, KeyValueStore, KvFuture, add_to_counter};

/// One bucket: a sorted map, so that `list-keys` pages are stable while keys are added.
#[derive(Default)]
pub struct MemoryBucket {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryBucket {
    fn entries(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl KeyValueStore for MemoryBucket {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        let value = self.entries().get(key).cloned();
        Box::pin(async move { Ok(value) })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()> {
        self.entries().insert(key.to_string(), value);
        Box::pin(async { Ok(()) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        self.entries().remove(key);
        Box::pin(async { Ok(()) })
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        let found = self.entries().contains_key(key);
        Box::pin(async move { Ok(found) })
    }

    /// The cursor is the number of keys already returned.
    fn list_keys(&self, cursor: Option<u64>) -> KvFuture<'_, KeyPage> {
        let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        let entries = self.entries();
        let keys: Vec<String> = entries
            .keys()
            .skip(skip)
            .take(KEYS_PER_PAGE)
            .cloned()
            .collect();
        let next = skip.saturating_add(keys.len());
        let cursor = (next < entries.len()).then_some(next as u64);
        drop(entries);
        Box::pin(async move { Ok(KeyPage { keys, cursor }) })
    }

    fn increment<'a>(&'a self, key: &'a str, delta: u64) -> KvFuture<'a, u64> {
        let mut entries = self.entries();
        let result = add_to_counter(entries.get(key).map(Vec::as_slice), delta);
        if let Ok(sum) = result {
            entries.insert(key.to_string(), sum.to_string().into_bytes());
        }
        drop(entries);
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bucket_keeps_its_keys_and_pages_them() {
        let b = MemoryBucket::default();
        assert_eq!(b.get("a").await, Ok(None));
        b.set("a", b"1".to_vec()).await.expect("set");
        assert_eq!(b.increment("a", 2).await, Ok(3));
        assert_eq!(b.get("a").await, Ok(Some(b"3".to_vec())));
        assert_eq!(b.exists("a").await, Ok(true));
        for i in 0..KEYS_PER_PAGE + 5 {
            b.set(&format!("k{i:05}"), vec![]).await.expect("set");
        }
        let first = b.list_keys(None).await.expect("page 1");
        assert_eq!(first.keys.len(), KEYS_PER_PAGE);
        let second = b.list_keys(first.cursor).await.expect("page 2");
        assert_eq!(second.keys.len(), 6);
        assert_eq!(second.cursor, None);
        b.delete("a").await.expect("delete");
        assert_eq!(b.exists("a").await, Ok(false));
    }
}
