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

use crate::cgroup::is_cgroup_v2;
use crate::container::{Container, Kind};
use crate::error::{Error, Result};

const V1_TYPE: &str = "io.containerd.cgroups.v1.Metrics";
const V2_TYPE: &str = "io.containerd.cgroups.v2.Metrics";

pub fn collect(c: &Container) -> Result<Any> {
    match &c.kind {
        Kind::Native(_) => native(c.pid),
        Kind::Wasm(w) => {
            let cpu_ns = w.cgroup.cpu_usage_ns();
            let mem = w.guest.usage().memory_bytes.load(Ordering::Relaxed);
            let limit = w.guest.memory_limit().unwrap_or(u64::MAX);
            if is_cgroup_v2() {
                pack(V2_TYPE, &wasm_v2(cpu_ns, mem, limit))
            } else {
                pack(V1_TYPE, &wasm_v1(cpu_ns, mem, limit))
            }
        }
    }
}

/// Guest linear memory is the container's memory: it is all anonymous, resident once touched.
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
    if is_cgroup_v2() {
        pack(V2_TYPE, &containerd_shim::cgroup::collect_metrics_v2(&cg)?)
    } else {
        pack(V1_TYPE, &containerd_shim::cgroup::collect_metrics(&cg)?)
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
}
