//! A guest's memory limit, and the live count of its memory that stats report.
//!
//! A guest runs on threads of its host process, so the kernel cannot cap or count its memory
//! apart from the host's: every instance gets a limiter that adds what its linear memories
//! grow by to the guest's [`Usage`] and refuses growth past the limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wasmtime::ResourceLimiter;

/// Live accounting of one guest's memory (all its instances), and whether it hit its limit.
#[derive(Debug, Default)]
pub struct Usage {
    pub memory_bytes: AtomicU64,
    pub oom: AtomicBool,
}

/// The memory limit of a guest and its usage, shared by all its instances.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    pub(crate) memory: Option<u64>,
    /// Epoch ticks one instance may run, if capped.
    pub(crate) instance_ticks: Option<u64>,
    pub(crate) usage: Arc<Usage>,
}

impl Limits {
    pub(crate) fn new(memory: Option<u64>, instance_cpu: Option<std::time::Duration>) -> Self {
        let tick = crate::engine::EPOCH_TICK.as_millis().max(1);
        Self {
            memory,
            instance_ticks: instance_cpu.map(|d| {
                u64::try_from(d.as_millis().div_ceil(tick))
                    .unwrap_or(u64::MAX)
                    .max(1)
            }),
            usage: Arc::default(),
        }
    }

    /// The limiter of one instance.
    pub(crate) fn limiter(&self) -> MemoryLimiter {
        MemoryLimiter {
            limit: self.memory,
            current: 0,
            usage: self.usage.clone(),
        }
    }
}

/// Caps one instance's linear memory so the guest's total stays under its limit, and counts it.
pub struct MemoryLimiter {
    limit: Option<u64>,
    /// What this instance added to the guest's usage, given back when it is dropped.
    current: u64,
    usage: Arc<Usage>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = (desired - current) as u64;
        let total = self.usage.memory_bytes.load(Ordering::Relaxed) + grow;
        if let Some(limit) = self.limit
            && total > limit
        {
            self.usage.oom.store(true, Ordering::SeqCst);
            wasmtime::bail!(
                "out of memory: guest linear memory would grow to {total} bytes, over the container's memory limit of {limit} bytes"
            );
        }
        self.current += grow;
        self.usage.memory_bytes.fetch_add(grow, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.usage
            .memory_bytes
            .fetch_sub(self.current, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_share_one_limit_and_give_back_what_they_used() {
        let limits = Limits::new(Some(100), None);
        let (mut a, mut b) = (limits.limiter(), limits.limiter());
        assert!(a.memory_growing(0, 60, None).expect("under the limit"));
        assert!(b.memory_growing(0, 50, None).is_err(), "60 + 50 > 100");
        assert!(limits.usage.oom.load(Ordering::SeqCst));
        drop(a);
        assert_eq!(limits.usage.memory_bytes.load(Ordering::Relaxed), 0);
        assert!(b.memory_growing(0, 50, None).expect("a gave its 60 back"));
    }
}
