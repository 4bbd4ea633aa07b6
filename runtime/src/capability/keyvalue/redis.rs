//! The `redis://` backend: a bucket is the keys `<bucket>:<key>` of one Redis database, so
//! buckets sharing a server never collide (bucket names cannot contain `:`), and two apps
//! granted the same bucket on the same server share it.
//!
//! Connections are made on first use from the guest's threads, so from the pod's network, and
//! names resolve through the pod's resolver like the guest's own (a `redis.cache` Service name
//! works). One multiplexed connection per server serves every instance of the container. It is
//! replaced when it breaks: the next operation reconnects, so a Redis restart costs the
//! requests that were in flight, not the container. Every step is bounded: an operation gets
//! [`CONNECT_TIMEOUT`] to connect and [`RESPONSE_TIMEOUT`] for its answer, and a guest sees the
//! interface's `other` error after that, never a hung request.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, FromRedisValue, RedisError, RedisFuture};
use tokio::sync::Mutex;

use super::{Found, KeyPage, KeyValueStore, KvError, KvFuture, KvResult};
use crate::guest::dns::{Dns, resolve};

/// Connecting to the server, name lookup and the AUTH/SELECT handshake included.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// From a command sent to its answer.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How many keys a `SCAN` step asks for.
const SCAN_COUNT: usize = 1000;

/// A Redis URL, checked; shown without its credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    full: String,
    shown: String,
}

impl RedisUrl {
    pub(super) fn parse(value: &str) -> Result<Self, String> {
        let (scheme, rest) = value.split_once("://").unwrap_or(("", value));
        let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((_, host)) => (true, host),
            None => (false, authority),
        };
        let shown = format!(
            "{scheme}://{}{host}{path}",
            if credentials { "***@" } else { "" }
        );
        if scheme == "rediss" {
            return Err(format!(
                "{shown}: TLS to Redis (rediss://) is not supported yet; use redis:// inside the cluster"
            ));
        }
        if host.is_empty() || host.starts_with(':') {
            return Err(format!("{shown}: the URL names no host"));
        }
        Client::open(value).map_err(|_| {
            format!("{shown}: not a Redis URL (redis://[user:password@]host[:port][/db])")
        })?;
        Ok(Self {
            full: value.to_string(),
            shown,
        })
    }

    pub(super) fn full(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// One Redis server and the connection every bucket on it shares.
pub struct RedisServer {
    url: RedisUrl,
    dns: Option<Arc<Dns>>,
    /// `None` until first use and after the connection broke; numbered, so that a caller
    /// whose connection broke drops that one and not a newer one.
    connection: Mutex<Option<(u64, MultiplexedConnection)>>,
    connections_made: AtomicU64,
}

impl RedisServer {
    pub(super) fn new(url: RedisUrl, dns: Option<Arc<Dns>>) -> Self {
        Self {
            url,
            dns,
            connection: Mutex::new(None),
            connections_made: AtomicU64::new(0),
        }
    }

    /// The live connection, or a new one. Callers wait for one connection attempt at a time,
    /// so a server coming back is not hit by one connect per waiting request.
    async fn connection(&self) -> KvResult<(u64, MultiplexedConnection)> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let client = Client::open(self.url.full()).map_err(|e| self.error("open", &e))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_dns_resolver(PodResolver(self.dns.clone()));
        let connect = client.get_multiplexed_async_connection_with_config(&config);
        let c = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(self.error("connect to", &e)),
            Err(_) => {
                return Err(KvError::Other(format!(
                    "connect to Redis at {}: no answer within {CONNECT_TIMEOUT:?}",
                    self.url
                )));
            }
        };
        let numbered = (self.connections_made.fetch_add(1, Ordering::Relaxed), c);
        *slot = Some(numbered.clone());
        Ok(numbered)
    }

    /// Runs one command; a broken connection is dropped so the next command reconnects.
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> KvResult<T> {
        let (number, mut c) = self.connection().await?;
        let answer = tokio::time::timeout(RESPONSE_TIMEOUT, cmd.query_async::<T>(&mut c)).await;
        match answer {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if !e.is_timeout() => {
                if e.is_unrecoverable_error() || e.is_io_error() {
                    self.forget(number).await;
                }
                Err(self.error("query", &e))
            }
            // The connection's own response timeout, or ours as a backstop: either way the
            // connection may be stuck behind an unanswered command, so it is replaced.
            Ok(Err(_)) | Err(_) => {
                self.forget(number).await;
                Err(KvError::Other(format!(
                    "Redis at {}: no answer within {RESPONSE_TIMEOUT:?}",
                    self.url
                )))
            }
        }
    }

    /// Drops the connection unless another caller already replaced it.
    async fn forget(&self, broken: u64) {
        let mut slot = self.connection.lock().await;
        if slot.as_ref().map(|(n, _)| *n) == Some(broken) {
            *slot = None;
        }
    }

    /// The error a guest sees: what failed and where, never the credentials.
    fn error(&self, what: &str, e: &RedisError) -> KvError {
        let detail = format!("{what} Redis at {}: {e}", self.url);
        if e.kind() == redis::ErrorKind::AuthenticationFailed {
            KvError::AccessDenied(detail)
        } else {
            KvError::Other(detail)
        }
    }
}

/// Redis's connections look names up with our pod resolver, not getaddrinfo (the node's).
struct PodResolver(Option<Arc<Dns>>);

impl redis::io::AsyncDNSResolver for PodResolver {
    fn resolve<'a, 'b: 'a>(
        &'a self,
        host: &'b str,
        port: u16,
    ) -> RedisFuture<'a, Box<dyn Iterator<Item = SocketAddr> + Send + 'a>> {
        Box::pin(async move {
            let ips = resolve(self.0.as_deref(), host).await.map_err(|f| {
                RedisError::from(std::io::Error::other(format!("resolve {host}: {f:?}")))
            })?;
            Ok(
                Box::new(ips.into_iter().map(move |ip| SocketAddr::new(ip, port)))
                    as Box<dyn Iterator<Item = SocketAddr> + Send>,
            )
        })
    }
}

/// One bucket: the keys of the server under `<bucket>:`.
pub struct RedisBucket {
    server: Arc<RedisServer>,
    prefix: String,
}

impl RedisBucket {
    pub(super) fn new(server: Arc<RedisServer>, bucket: &str) -> Self {
        Self {
            server,
            prefix: format!("{bucket}:"),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl KeyValueStore for RedisBucket {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        let cmd = redis::cmd("GET").arg(self.key(key)).clone();
        Box::pin(async move { self.server.query(&cmd).await })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()> {
        let cmd = redis::cmd("SET").arg(self.key(key)).arg(value).clone();
        Box::pin(async move { self.server.query::<()>(&cmd).await })
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        let cmd = redis::cmd("DEL").arg(self.key(key)).clone();
        Box::pin(async move { self.server.query::<()>(&cmd).await })
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        let cmd = redis::cmd("EXISTS").arg(self.key(key)).clone();
        Box::pin(async move { self.server.query::<bool>(&cmd).await })
    }

    /// The cursor is Redis's `SCAN` cursor; 0 means done, as in Redis.
    fn list_keys(&self, cursor: Option<u64>) -> KvFuture<'_, KeyPage> {
        let cmd = redis::cmd("SCAN")
            .arg(cursor.unwrap_or(0))
            .arg("MATCH")
            .arg(format!("{}*", self.prefix))
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .clone();
        Box::pin(async move {
            let (next, keys): (u64, Vec<String>) = self.server.query(&cmd).await?;
            let keys = keys
                .into_iter()
                .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_string))
                .collect();
            Ok(KeyPage {
                keys,
                cursor: (next != 0).then_some(next),
            })
        })
    }

    fn increment<'a>(&'a self, key: &'a str, delta: u64) -> KvFuture<'a, u64> {
        Box::pin(async move {
            let delta = i64::try_from(delta).map_err(|_| {
                KvError::Other("Redis counters take increments up to 2^63-1".into())
            })?;
            let cmd = redis::cmd("INCRBY").arg(self.key(key)).arg(delta).clone();
            let sum: i64 = self.server.query(&cmd).await?;
            u64::try_from(sum)
                .map_err(|_| KvError::Other(format!("the counter is negative: {sum}")))
        })
    }

    fn get_many<'a>(&'a self, keys: Vec<String>) -> KvFuture<'a, Found> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let mut cmd = redis::cmd("MGET");
            for k in &keys {
                cmd.arg(self.key(k));
            }
            let values: Vec<Option<Vec<u8>>> = self.server.query(&cmd).await?;
            Ok(keys
                .into_iter()
                .zip(values)
                .map(|(k, v)| v.map(|v| (k, v)))
                .collect())
        })
    }

    fn set_many<'a>(&'a self, pairs: Vec<(String, Vec<u8>)>) -> KvFuture<'a, ()> {
        Box::pin(async move {
            if pairs.is_empty() {
                return Ok(());
            }
            let mut cmd = redis::cmd("MSET");
            for (k, v) in &pairs {
                cmd.arg(self.key(k)).arg(v.as_slice());
            }
            self.server.query::<()>(&cmd).await
        })
    }

    fn delete_many<'a>(&'a self, keys: Vec<String>) -> KvFuture<'a, ()> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(());
            }
            let mut cmd = redis::cmd("DEL");
            for k in &keys {
                cmd.arg(self.key(k));
            }
            self.server.query::<()>(&cmd).await
        })
    }
}
