//! How long a failing watch waits before it tries again: each watch on its own.
//!
//! kube-runtime's controller backs off its merged trigger stream as one. After a kube-apiserver
//! restart every watch fails once more (410 Gone, then a relist), and each failure doubled one
//! shared delay up to 30 s: the watches came back one after the other over minutes, and a
//! WasmApp created meanwhile was not reconciled. Here each watch waits for its own errors only,
//! never longer than [`WatchBackoff::MAX`], and the merged stream does not wait at all
//! ([`NoDelay`]), so one watch that keeps failing (say, RBAC refuses Secrets) holds up no other.

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// Doubling delays from [`WatchBackoff::FIRST`] to [`WatchBackoff::MAX`]; back to the first
/// after the watch yields anything but an error.
#[derive(Clone, Debug)]
pub struct WatchBackoff {
    next: Duration,
}

impl WatchBackoff {
    /// The wait after the first error.
    pub const FIRST: Duration = Duration::from_millis(250);
    /// The longest wait: while the apiserver is away each watch asks about every 5 s, and is
    /// back at most that long after it.
    pub const MAX: Duration = Duration::from_secs(5);
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (now * 2).min(Self::MAX);
        Some(now)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// The merged trigger stream's backoff: none, as every watch in it backs off on its own.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDelay;

impl Iterator for NoDelay {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl Backoff for NoDelay {
    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_start_over_after_a_reset() {
        let mut b = WatchBackoff::default();
        let first: Vec<_> = b.by_ref().take(7).collect();
        assert_eq!(
            first,
            [250, 500, 1000, 2000, 4000, 5000, 5000].map(Duration::from_millis)
        );
        b.reset();
        assert_eq!(b.next(), Some(WatchBackoff::FIRST));
    }

    #[test]
    fn the_merged_stream_never_waits() {
        assert!(NoDelay.take(3).all(|d| d.is_zero()));
    }
}
