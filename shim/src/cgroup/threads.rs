//! The CPU cgroup of one Wasm container: its guest threads, with the container's CPU limit.
//!
//! A child of the shim's leaf (see the module docs): on v1 a `cpu` and a `cpuacct` cgroup
//! (a thread can join any v1 cgroup on its own); on v2 a threaded cgroup, with `cpu` enabled
//! for the leaf's threaded subtree. Memory stays with the leaf, where the kernel charges it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use oci_spec::runtime::{LinuxCpu, Spec};

use super::{ROOT, ShimCgroup, Version, read_u64, short, stat_value};

/// The cgroup directories a container's threads were placed in, and the threads themselves.
#[derive(Debug, Default)]
pub struct ThreadCgroup {
    version: Option<Version>,
    dirs: Vec<PathBuf>,
    tids: Mutex<Vec<i32>>,
}

impl ThreadCgroup {
    /// Creates the container's CPU cgroup under the shim's leaf and applies the spec's CPU
    /// limits. Without a leaf (no cgroupsPath, or the shim could not join its pod) the
    /// placement is empty and CPU time is summed from /proc.
    pub fn create(spec: &Spec, id: &str, shim: Option<&ShimCgroup>) -> std::io::Result<Arc<Self>> {
        let Some(shim) = shim else {
            return Ok(Arc::default());
        };
        let name = format!("g-{}", short(id, 16));
        let cpu = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.cpu().as_ref());
        let dirs = match shim.version() {
            Version::V2 => vec![v2_threaded(shim, &name, cpu)?],
            Version::V1 => v1_dirs(shim, &name, cpu)?,
        };
        Ok(Arc::new(Self {
            version: Some(shim.version()),
            dirs,
            tids: Mutex::default(),
        }))
    }

    /// Moves the calling thread into the container's cgroups and remembers it.
    pub fn enter_current_thread(&self) -> std::io::Result<()> {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let file = match self.version {
            Some(Version::V2) => "cgroup.threads",
            _ => "tasks",
        };
        for dir in &self.dirs {
            // "0" is the writing thread itself. Named by its tid, the kernel takes the global
            // cgroup_threadgroup_rwsem for writing, which waits out an RCU grace period when
            // no migration ran just before: 6-14 ms on every container start here. For the
            // current thread it skips that lock (0.1 ms).
            std::fs::write(dir.join(file), "0")?;
        }
        if let Ok(mut tids) = self.tids.lock() {
            tids.push(tid);
        }
        Ok(())
    }

    /// CPU time the container's threads used, in nanoseconds.
    pub fn cpu_usage_ns(&self) -> u64 {
        let from_cgroup = match self.version {
            Some(Version::V2) => self.dirs.first().and_then(|d| {
                let s = std::fs::read_to_string(d.join("cpu.stat")).ok()?;
                stat_value(&s, "usage_usec").map(|us| us * 1000)
            }),
            Some(Version::V1) => self
                .dirs
                .iter()
                .find_map(|d| read_u64(&d.join("cpuacct.usage"))),
            None => None,
        };
        from_cgroup.unwrap_or_else(|| {
            let tids = self.tids.lock().map(|t| t.clone()).unwrap_or_default();
            tids.iter().filter_map(|tid| thread_cpu_ns(*tid)).sum()
        })
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

/// v2: `<leaf>/<name>` as a threaded cgroup. The leaf may enable `cpu` for its children even
/// though it holds the shim, because cpu is a threaded controller; it never enables memory,
/// which would forbid threaded children.
fn v2_threaded(shim: &ShimCgroup, name: &str, cpu: Option<&LinuxCpu>) -> std::io::Result<PathBuf> {
    let leaf = PathBuf::from(ROOT).join(shim.leaf());
    let dir = leaf.join(name);
    std::fs::create_dir_all(&dir)?;
    write(&dir, "cgroup.type", "threaded")?;
    let enabled = std::fs::read_to_string(leaf.join("cgroup.subtree_control")).unwrap_or_default();
    if !enabled.split_whitespace().any(|c| c == "cpu") {
        write(&leaf, "cgroup.subtree_control", "+cpu")?;
    }
    if let Some(cpu) = cpu {
        if let Some(shares) = cpu.shares() {
            write(&dir, "cpu.weight", &shares_to_weight(shares).to_string())?;
        }
        if let Some(quota) = cpu.quota().filter(|q| *q > 0) {
            let period = cpu.period().unwrap_or(100_000);
            write(&dir, "cpu.max", &format!("{quota} {period}"))?;
        }
    }
    Ok(dir)
}

/// v1: `<leaf>/<name>` in the cpu and cpuacct hierarchies.
fn v1_dirs(shim: &ShimCgroup, name: &str, cpu: Option<&LinuxCpu>) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for h in ["cpu", "cpuacct"] {
        let root = PathBuf::from(ROOT).join(h);
        if !root.join("tasks").exists() {
            continue;
        }
        let dir = root.join(shim.leaf()).join(name);
        std::fs::create_dir_all(&dir)?;
        if h == "cpu"
            && let Some(cpu) = cpu
        {
            if let Some(shares) = cpu.shares() {
                write(&dir, "cpu.shares", &shares.to_string())?;
            }
            if let Some(period) = cpu.period() {
                write(&dir, "cpu.cfs_period_us", &period.to_string())?;
            }
            if let Some(quota) = cpu.quota() {
                write(&dir, "cpu.cfs_quota_us", &quota.to_string())?;
            }
        }
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    Ok(dirs)
}

fn write(dir: &std::path::Path, file: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(file), value).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("write {value:?} to {}/{file}: {e}", dir.display()),
        )
    })
}

/// cpu.shares (2..262144) to cpu.weight (1..10000), as runc and the kubelet convert them.
fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
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
    fn shares_convert_to_weights_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
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
