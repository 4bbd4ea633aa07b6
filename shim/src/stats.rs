//! Container statistics in the exact message types CRI accepts
//! (`io.containerd.cgroups.v1.Metrics` / `io.containerd.cgroups.v2.Metrics`).

use std::sync::atomic::Ordering;

use containerd_shim_protos::cgroups::metrics::{
    CPUStat, CPUUsage, MemoryEntry, MemoryStat, Metrics,
};
use containerd_shim_protos::cgroups_v2::metrics::{
    CPUStat as CPUStatV2, MemoryStat as MemoryStatV2, Metrics as MetricsV2,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;

use crate::cgroup::{ShimCgroup, Version, version};
use crate::container::{Container, Kind, Status};
use crate::error::{Error, Result};

const V1_TYPE: &str = "io.containerd.cgroups.v1.Metrics";
const V2_TYPE: &str = "io.containerd.cgroups.v2.Metrics";

/// What the runtime costs beyond its guests' own memory and CPU, split evenly over the
/// pod's running Wasm containers: a container's figures are what serving it costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeShare {
    pub memory_bytes: u64,
    pub cpu_ns: u64,
}

pub fn runtime_share(shim: &ShimCgroup, containers: &[std::sync::Arc<Container>]) -> RuntimeShare {
    let guests: Vec<(u64, u64)> = containers
        .iter()
        .filter(|c| !matches!(c.status(), Status::Stopped { .. }))
        .filter_map(|c| match &c.kind {
            Kind::Wasm(w) => Some((
                w.guest.usage().memory_bytes.load(Ordering::Relaxed),
                w.cgroup.cpu_usage_ns(),
            )),
            Kind::Native(_) => None,
        })
        .collect();
    split(
        shim.memory_working_set().unwrap_or(0),
        shim.cpu_usage_ns().unwrap_or(0),
        &guests,
    )
}

/// The shim's totals less what its guests account themselves, per guest.
fn split(total_memory: u64, total_cpu_ns: u64, guests: &[(u64, u64)]) -> RuntimeShare {
    let n = guests.len().max(1) as u64;
    let guest_memory: u64 = guests.iter().map(|g| g.0).sum();
    let guest_cpu: u64 = guests.iter().map(|g| g.1).sum();
    RuntimeShare {
        memory_bytes: total_memory.saturating_sub(guest_memory) / n,
        cpu_ns: total_cpu_ns.saturating_sub(guest_cpu) / n,
    }
}

pub fn collect(c: &Container, share: RuntimeShare) -> Result<Any> {
    match &c.kind {
        Kind::Native(_) => native(c.pid),
        Kind::Wasm(w) => {
            let cpu_ns = w.cgroup.cpu_usage_ns() + share.cpu_ns;
            let mem = w.guest.usage().memory_bytes.load(Ordering::Relaxed) + share.memory_bytes;
            let limit = w.guest.memory_limit().unwrap_or(u64::MAX);
            match version() {
                Version::V2 => pack(V2_TYPE, &wasm_v2(cpu_ns, mem, limit)),
                Version::V1 => pack(V1_TYPE, &wasm_v1(cpu_ns, mem, limit)),
            }
        }
    }
}

/// Guest linear memory plus the runtime's share: all anonymous, resident once touched.
fn wasm_v1(cpu_ns: u64, mem: u64, limit: u64) -> Metrics {
    let mut m = Metrics::new();
    let mut usage = CPUUsage::new();
    usage.total = cpu_ns;
    let mut cpu = CPUStat::new();
    cpu.usage = Some(usage).into();
    m.cpu = Some(cpu).into();
    let mut entry = MemoryEntry::new();
    entry.usage = mem;
    entry.limit = limit;
    let mut memory = MemoryStat::new();
    memory.usage = Some(entry).into();
    memory.rss = mem;
    memory.total_rss = mem;
    m.memory = Some(memory).into();
    m
}

fn wasm_v2(cpu_ns: u64, mem: u64, limit: u64) -> MetricsV2 {
    let mut m = MetricsV2::new();
    let mut cpu = CPUStatV2::new();
    cpu.usage_usec = cpu_ns / 1000;
    m.cpu = Some(cpu).into();
    let mut memory = MemoryStatV2::new();
    memory.usage = mem;
    memory.usage_limit = limit;
    memory.anon = mem;
    m.memory = Some(memory).into();
    m
}

fn native(pid: u32) -> Result<Any> {
    let cg = containerd_shim::cgroup::get_cgroup(pid)?;
    match version() {
        Version::V2 => pack(V2_TYPE, &containerd_shim::cgroup::collect_metrics_v2(&cg)?),
        Version::V1 => pack(V1_TYPE, &containerd_shim::cgroup::collect_metrics(&cg)?),
    }
}

fn pack(type_url: &str, m: &dyn containerd_shim_protos::protobuf::MessageDyn) -> Result<Any> {
    let mut any = Any::new();
    any.type_url = type_url.into();
    any.value = m
        .write_to_bytes_dyn()
        .map_err(|e| Error::InvalidArgument(format!("encode metrics: {e}")))?;
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::Message;

    #[test]
    fn wasm_metrics_round_trip_with_the_type_cri_expects() {
        let any = pack(V1_TYPE, &wasm_v1(5_000, 1 << 20, 64 << 20)).expect("pack");
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let back = Metrics::parse_from_bytes(&any.value).expect("parse");
        assert_eq!(back.cpu.usage.total, 5_000);
        assert_eq!(back.memory.usage.usage, 1 << 20);
        assert_eq!(back.memory.usage.limit, 64 << 20);
    }

    #[test]
    fn the_runtime_share_is_what_the_guests_do_not_account_split_evenly() {
        let guests = [(10 << 20, 3_000), (2 << 20, 1_000)];
        let share = split(40 << 20, 10_000, &guests);
        assert_eq!(share.memory_bytes, 14 << 20);
        assert_eq!(share.cpu_ns, 3_000);
        assert_eq!(split(1 << 20, 0, &guests).memory_bytes, 0, "never negative");
        assert_eq!(split(8 << 20, 0, &[]).memory_bytes, 8 << 20);
    }

    #[test]
    fn v2_metrics_count_cpu_in_microseconds() {
        let m = wasm_v2(5_000_000, 1 << 20, 64 << 20);
        assert_eq!(m.cpu.usage_usec, 5_000);
        assert_eq!(m.memory.usage, 1 << 20);
        assert_eq!(m.memory.usage_limit, 64 << 20);
    }
}
