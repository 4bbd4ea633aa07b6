//! Remembers inspection results so reconciles triggered by child events do not hit registries,
//! and spaces out retries against a registry that does not answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::ImageCheck;
use super::auth::Credentials;

/// How long a valid result is trusted before the tag is resolved again.
pub const VALID_TTL: Duration = Duration::from_secs(300);
/// How long an invalid result is trusted (a missing tag may be pushed soon).
pub const INVALID_TTL: Duration = Duration::from_secs(60);
/// First retry delay for an unreachable registry; doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(5);
/// Longest retry delay for an unreachable registry.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Entry {
    check: ImageCheck,
    expires: Instant,
    failures: u32,
}

/// Inspection results keyed by image and credentials.
#[derive(Debug, Default)]
pub struct ImageCache {
    entries: Mutex<HashMap<String, Entry>>,
}

/// Cache key: the image plus a fingerprint of the credentials (never the credentials).
pub fn key(image: &str, creds: Option<&Credentials>) -> String {
    let Some(c) = creds else {
        return image.to_string();
    };
    let mut h = Sha256::new();
    for part in [&c.secret, &c.username, &c.password] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("{image}#{}", hex::encode(&h.finalize()[..8]))
}

/// Retry delay after `failures` consecutive unknown results.
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(10);
    MIN_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

impl ImageCache {
    /// A fresh result for `key`, with the time left until it expires.
    pub fn get(&self, key: &str, now: Instant) -> Option<(ImageCheck, Duration)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(key)?;
        (e.expires > now).then(|| (e.check.clone(), e.expires - now))
    }

    /// Stores a result; returns how long it stays fresh (for unknown results: the retry delay).
    pub fn put(&self, key: &str, check: ImageCheck, now: Instant) -> Duration {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let failures = match (&check, entries.get(key)) {
            (ImageCheck::Unknown { .. }, Some(prev)) => prev.failures + 1,
            (ImageCheck::Unknown { .. }, None) => 1,
            _ => 0,
        };
        let ttl = match check {
            ImageCheck::Valid(_) => VALID_TTL,
            ImageCheck::Invalid { .. } => INVALID_TTL,
            ImageCheck::Unknown { .. } => backoff(failures),
        };
        entries.insert(
            key.to_string(),
            Entry {
                check,
                expires: now + ttl,
                failures,
            },
        );
        // Keep the map bounded: drop entries expired long ago.
        if entries.len() > 4096 {
            entries.retain(|_, e| e.expires + MAX_BACKOFF > now);
        }
        ttl
    }

    /// Forgets `key` (e.g. when its pull secret changed).
    pub fn forget(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(20));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }

    #[test]
    fn unknown_results_back_off_and_success_resets() {
        let cache = ImageCache::default();
        let t = Instant::now();
        let down = ImageCheck::unknown(ImageCheck::UNREACHABLE, "refused");
        assert_eq!(cache.put("k", down.clone(), t), Duration::from_secs(5));
        assert_eq!(cache.put("k", down.clone(), t), Duration::from_secs(10));
        assert!(cache.get("k", t + Duration::from_secs(9)).is_some());
        assert!(cache.get("k", t + Duration::from_secs(11)).is_none());
        let ok = ImageCheck::invalid(ImageCheck::NOT_FOUND, "gone");
        assert_eq!(cache.put("k", ok, t), INVALID_TTL);
        assert_eq!(
            cache.put("k", down, t),
            Duration::from_secs(5),
            "count restarts"
        );
    }

    #[test]
    fn keys_differ_by_credentials_without_exposing_them() {
        let c = |p: &str| Credentials {
            username: "u".into(),
            password: p.into(),
            secret: "s".into(),
        };
        assert_eq!(key("r/a:1", None), "r/a:1");
        let (k1, k2) = (key("r/a:1", Some(&c("one"))), key("r/a:1", Some(&c("two"))));
        assert_ne!(k1, k2);
        assert!(!k1.contains("one"));
    }
}
