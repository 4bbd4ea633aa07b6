//! CPU accounting and limits for in-process Wasm containers.
//!
//! A Wasm container runs on threads of the shim, not in a process of its own. On cgroup v1
//! a thread can sit in a cgroup of its own (the `tasks` file takes thread ids), so the
//! container's threads join its `cpu` and `cpuacct` cgroups: the CFS quota from the pod spec
//! applies to the guest and `cpuacct.usage` measures exactly its work. Memory is charged per
//! address space, not per thread, so guest memory is capped and counted by the runtime's
//! resource limiter instead (`runtime/src/guest/limits.rs`). On cgroup v2 hosts threads
//! cannot leave their process's cgroup unless it is in threaded mode; there we fall back to
//! summing the CPU time of the container's threads from /proc.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use oci_spec::runtime::Spec;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const V1_CONTROLLERS: [&str; 2] = ["cpu", "cpuacct"];

/// The cgroup directories a container's threads were placed in, and the threads themselves.
#[derive(Debug, Default)]
pub struct ThreadCgroup {
    dirs: Vec<PathBuf>,
    cpuacct: Option<PathBuf>,
    tids: Mutex<Vec<i32>>,
}

impl ThreadCgroup {
    /// Creates (cgroup v1) the container's cpu and cpuacct cgroups and applies the CPU limits
    /// of the spec. A host without v1 controllers or a spec without a cgroups path gives an
    /// empty placement, and stats then come from /proc.
    pub fn from_spec(spec: &Spec) -> std::io::Result<Arc<Self>> {
        let linux = spec.linux().as_ref();
        let Some(path) = linux.and_then(|l| l.cgroups_path().as_ref()) else {
            return Ok(Arc::default());
        };
        if is_cgroup_v2() {
            return Ok(Arc::default());
        }
        let rel = relative_cgroup_path(&path.to_string_lossy());
        let mut dirs = Vec::new();
        for ctrl in V1_CONTROLLERS {
            let base = Path::new(CGROUP_ROOT).join(ctrl);
            if !base.join("tasks").exists() {
                continue;
            }
            let dir = base.join(&rel);
            std::fs::create_dir_all(&dir)?;
            dirs.push(dir);
        }
        let cpuacct = dirs
            .iter()
            .find(|d| d.starts_with(Path::new(CGROUP_ROOT).join("cpuacct")))
            .cloned();
        if let (Some(cpu_dir), Some(cpu)) = (
            dirs.iter()
                .find(|d| d.starts_with(Path::new(CGROUP_ROOT).join("cpu/"))),
            linux
                .and_then(|l| l.resources().as_ref())
                .and_then(|r| r.cpu().as_ref()),
        ) {
            if let Some(shares) = cpu.shares() {
                std::fs::write(cpu_dir.join("cpu.shares"), shares.to_string())?;
            }
            if let Some(period) = cpu.period() {
                std::fs::write(cpu_dir.join("cpu.cfs_period_us"), period.to_string())?;
            }
            if let Some(quota) = cpu.quota() {
                std::fs::write(cpu_dir.join("cpu.cfs_quota_us"), quota.to_string())?;
            }
        }
        Ok(Arc::new(Self {
            dirs,
            cpuacct,
            tids: Mutex::default(),
        }))
    }

    /// Moves the calling thread into the container's cgroups and remembers it.
    pub fn enter_current_thread(&self) -> std::io::Result<()> {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        for dir in &self.dirs {
            // "0" is the writing thread itself. Named by its tid, the kernel takes the global
            // cgroup_threadgroup_rwsem for writing, which waits out an RCU grace period when
            // no migration ran just before: 6-14 ms on every container start here. For the
            // current thread it skips that lock (0.1 ms).
            std::fs::write(dir.join("tasks"), "0")?;
        }
        if let Ok(mut tids) = self.tids.lock() {
            tids.push(tid);
        }
        Ok(())
    }

    /// CPU time the container's threads used, in nanoseconds.
    pub fn cpu_usage_ns(&self) -> u64 {
        if let Some(dir) = &self.cpuacct
            && let Ok(s) = std::fs::read_to_string(dir.join("cpuacct.usage"))
            && let Ok(v) = s.trim().parse()
        {
            return v;
        }
        let tids = self.tids.lock().map(|t| t.clone()).unwrap_or_default();
        tids.iter().filter_map(|tid| thread_cpu_ns(*tid)).sum()
    }

    /// Removes the cgroups once the container's threads are gone; retries while the
    /// runtime's threads finish exiting.
    pub async fn remove(&self) {
        for dir in &self.dirs {
            for _ in 0..50 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            }
        }
    }
}

pub fn is_cgroup_v2() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

/// Turns an OCI cgroupsPath into a path relative to a controller's mount. cgroupfs paths are
/// used as they are; the systemd form `slice:prefix:name` expands the slice hierarchy the way
/// systemd names it (`a-b-c.slice` lives in `a.slice/a-b.slice/a-b-c.slice`).
pub fn relative_cgroup_path(path: &str) -> PathBuf {
    let parts: Vec<&str> = path.split(':').collect();
    if parts.len() == 3 && !path.starts_with('/') {
        let (slice, prefix, name) = (parts[0], parts[1], parts[2]);
        let mut rel = PathBuf::new();
        if let Some(stem) = slice.strip_suffix(".slice") {
            let mut acc = String::new();
            for piece in stem.split('-') {
                if !acc.is_empty() {
                    acc.push('-');
                }
                acc.push_str(piece);
                rel.push(format!("{acc}.slice"));
            }
        }
        rel.push(format!("{prefix}-{name}.scope"));
        return rel;
    }
    PathBuf::from(path.trim_start_matches('/'))
}

fn thread_cpu_ns(tid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(ticks * 1_000_000_000 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroupfs_paths_are_relative_to_the_controller() {
        assert_eq!(
            relative_cgroup_path("/kubepods/burstable/podabc/c1"),
            PathBuf::from("kubepods/burstable/podabc/c1")
        );
    }

    #[test]
    fn systemd_paths_expand_their_slices() {
        assert_eq!(
            relative_cgroup_path("kubepods-burstable-podabc.slice:cri-containerd:c1"),
            PathBuf::from(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/cri-containerd-c1.scope"
            )
        );
    }

    #[test]
    fn thread_cpu_time_is_read_for_the_current_thread() {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(thread_cpu_ns(tid).is_some());
    }
}
