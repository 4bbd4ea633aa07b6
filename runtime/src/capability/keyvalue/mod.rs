//! Key-value buckets (`wasi:keyvalue`): one trait, [`KeyValueStore`], and its backends — an
//! in-memory map shared by all instances of a container ([`memory`]), Redis ([`redis`]) and
//! files in one of the container's volumes ([`file`]).
//!
//! A container is granted buckets by name (`WASMPOD_KEYVALUE_<bucket>=<backend>`); each bucket
//! is one store object, made when the guest is set up and shared by all its instances, so an
//! HTTP handler's counter counts across requests. Keys of different buckets never meet: each
//! backend keeps a bucket's keys apart (a map per bucket, a `<bucket>:` prefix in Redis, a
//! directory per bucket on disk). Every operation a backend does over the network is bounded in
//! time, and any failure reaches the guest as the interface's `error` value, never as a trap.

pub mod file;
pub mod memory;
pub mod redis;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::guest::context::Preopen;
use crate::guest::dns::Dns;

/// What a key-value operation can fail with, as `wasi:keyvalue/store.error` says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvError {
    /// The guest opened a bucket it was not granted.
    NoSuchStore,
    /// The backend refused (authentication, a read-only volume).
    AccessDenied(String),
    /// Anything else: the backend is down or slow, a value is no number, ...
    Other(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::NoSuchStore => f.write_str("no such bucket"),
            KvError::AccessDenied(why) => write!(f, "access denied: {why}"),
            KvError::Other(why) => f.write_str(why),
        }
    }
}

pub type KvResult<T> = std::result::Result<T, KvError>;
/// The future of one operation; boxed so that backends can sit behind `dyn KeyValueStore`.
pub type KvFuture<'a, T> = Pin<Box<dyn Future<Output = KvResult<T>> + Send + 'a>>;

/// What `get-many` answers: per key asked, the key and its value, or `None` when absent.
pub type Found = Vec<Option<(String, Vec<u8>)>>;

/// One page of a bucket's keys; `cursor` fetches the next page, `None` when this is the last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPage {
    pub keys: Vec<String>,
    pub cursor: Option<u64>,
}

/// Most keys one `list-keys` call returns, so a large bucket never makes one huge reply.
pub const KEYS_PER_PAGE: usize = 1000;

/// One bucket of a backend. Methods take `&self` and may run concurrently (HTTP handlers run
/// side by side); `increment` is atomic against every other writer of the bucket.
pub trait KeyValueStore: Send + Sync + 'static {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>>;
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()>;
    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()>;
    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool>;
    fn list_keys(&self, cursor: Option<u64>) -> KvFuture<'_, KeyPage>;
    /// Adds `delta` to the decimal number stored at `key` (0 when absent) and returns the sum.
    fn increment<'a>(&'a self, key: &'a str, delta: u64) -> KvFuture<'a, u64>;

    /// Batches: one round trip where the backend has one, else key by key.
    fn get_many<'a>(&'a self, keys: Vec<String>) -> KvFuture<'a, Found> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let value = self.get(&key).await?;
                out.push(value.map(|v| (key, v)));
            }
            Ok(out)
        })
    }
    fn set_many<'a>(&'a self, pairs: Vec<(String, Vec<u8>)>) -> KvFuture<'a, ()> {
        Box::pin(async move {
            for (key, value) in pairs {
                self.set(&key, value).await?;
            }
            Ok(())
        })
    }
    fn delete_many<'a>(&'a self, keys: Vec<String>) -> KvFuture<'a, ()> {
        Box::pin(async move {
            for key in keys {
                self.delete(&key).await?;
            }
            Ok(())
        })
    }
}

/// The decimal number `increment` works on, as wasmtime's own in-memory store and Redis's
/// `INCRBY` keep it, so a bucket's counters read the same on every backend.
pub(crate) fn add_to_counter(current: Option<&[u8]>, delta: u64) -> KvResult<u64> {
    let now = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| KvError::Other("the value is not a decimal number".into()))?,
    };
    now.checked_add(delta)
        .ok_or_else(|| KvError::Other("the counter would overflow".into()))
}

/// What backs one bucket, as its setting names it.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// `memory`: a map in the runtime, shared by the container's instances, gone with it.
    Memory,
    /// `redis://[user:password@]host[:port][/db]`.
    Redis(redis::RedisUrl),
    /// `file:<dir>`: a directory as the container sees it, inside one of its volumes.
    File(PathBuf),
}

/// Never shows a Redis password (the URL often comes from a Secret).
impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Memory => f.write_str("memory"),
            Backend::Redis(url) => write!(f, "{url}"),
            Backend::File(dir) => write!(f, "file:{}", dir.display()),
        }
    }
}

impl Backend {
    /// Parses a bucket's setting; the error says what was expected, never repeating a Redis
    /// URL's credentials.
    pub fn parse(value: &str) -> std::result::Result<Self, String> {
        if value == "memory" {
            return Ok(Backend::Memory);
        }
        if let Some(dir) = value.strip_prefix("file:") {
            let dir = PathBuf::from(dir);
            if !dir.is_absolute()
                || dir
                    .components()
                    .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(
                    "file: takes an absolute directory without `..`, as the container sees it"
                        .into(),
                );
            }
            return Ok(Backend::File(dir));
        }
        if value.starts_with("redis://") || value.starts_with("rediss://") {
            return redis::RedisUrl::parse(value).map(Backend::Redis);
        }
        Err("not a key-value backend: memory, redis://host[:port][/db] or file:/dir".into())
    }
}

/// Opens the store of each granted bucket. Nothing is connected yet (Redis connects on first
/// use, from the guest's threads and so from the pod's network); what can be checked now is:
/// a file bucket's directory must be in a writable volume.
pub(crate) fn open_buckets(
    grants: &BTreeMap<String, Backend>,
    preopens: &[Preopen],
    dns: Option<Arc<Dns>>,
) -> Result<BTreeMap<String, Arc<dyn KeyValueStore>>> {
    let mut redis_servers: BTreeMap<String, Arc<redis::RedisServer>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (bucket, backend) in grants {
        let store: Arc<dyn KeyValueStore> = match backend {
            Backend::Memory => Arc::new(memory::MemoryBucket::default()),
            Backend::Redis(url) => {
                // Buckets on one server share its connection.
                let server = redis_servers
                    .entry(url.full().to_string())
                    .or_insert_with(|| Arc::new(redis::RedisServer::new(url.clone(), dns.clone())))
                    .clone();
                Arc::new(redis::RedisBucket::new(server, bucket))
            }
            Backend::File(dir) => Arc::new(file::FileBucket::open(dir, bucket, preopens).map_err(
                |detail| Error::Capability {
                    what: format!("key-value bucket {bucket} (file:{})", dir.display()),
                    detail,
                },
            )?),
        };
        out.insert(bucket.clone(), store);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_parse_and_never_show_a_password() {
        assert_eq!(Backend::parse("memory"), Ok(Backend::Memory));
        assert_eq!(
            Backend::parse("file:/data/kv"),
            Ok(Backend::File("/data/kv".into()))
        );
        let redis = Backend::parse("redis://app:s3cret@redis.cache:6380/2").expect("redis url");
        let shown = format!("{redis:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("redis.cache:6380"), "{shown}");
        for bad in [
            "",
            "Memory",
            "file:kv",
            "file:/data/../etc",
            "http://x",
            "redis://",
        ] {
            let err = Backend::parse(bad).expect_err(bad);
            assert!(!err.is_empty());
        }
        let err = Backend::parse("redis://app:s3cret@:6379").expect_err("no host");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn counters_are_decimal_and_never_wrap() {
        assert_eq!(add_to_counter(None, 5), Ok(5));
        assert_eq!(add_to_counter(Some(b"41"), 1), Ok(42));
        assert!(add_to_counter(Some(b"x"), 1).is_err());
        assert!(add_to_counter(Some(u64::MAX.to_string().as_bytes()), 1).is_err());
    }
}
