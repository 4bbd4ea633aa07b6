//! Where the shim's work for a pod is charged, on cgroup v1 and v2.
//!
//! A Wasm container is not a process: its guest runs on threads of the pod's shim. Kubernetes
//! expects every container in its own cgroup at `linux.cgroupsPath`, under the pod's cgroup,
//! and reads a pod's cost from that pod cgroup. The kernel decides what is possible:
//!
//! - Memory is charged to the cgroup of the process (v1: of its `mm` owner; v2: memory is a
//!   domain controller and all threads of a process share one domain cgroup). So the memory of
//!   every guest of a pod and the runtime serving them can only be charged together, to one
//!   cgroup holding the whole shim.
//! - The pod cgroup itself cannot hold that process on v2: kubelet and runc enable domain
//!   controllers in its `cgroup.subtree_control` and it has populated domain children (the
//!   pause container, sidecars), and a cgroup with enabled domain controllers may not have
//!   processes of its own (the no-internal-process rule).
//! - CPU can be split per thread: on v1 any thread can join any `cpu`/`cpuacct` cgroup; on v2
//!   only inside one threaded subtree, whose root (a "threaded domain") must not enable domain
//!   controllers for its children. cpu is a threaded controller, so `cpu.max` applies there.
//!
//! Hence the layout, the same on both versions and for both cgroup drivers (the cgroupfs path
//! `/kubepods/<qos>/pod<uid>/<id>` and the systemd form `<slice>:<prefix>:<id>`, whose slice
//! expands to its directory):
//!
//! ```text
//! <pod cgroup>/                    kubelet's: memory.max / cpu.max of the whole pod
//!   <sandbox id>/                  the pause container (runc)
//!   <sidecar id>/                  native containers of the pod (runc)
//!   wasmpod-<sandbox id, 12>/      the whole shim process: memory, pids, io are charged here
//!     g-<container id, 16>/        v2: a threaded child; v1: a cpu,cpuacct child; holds the
//!                                  guest threads of one Wasm container, with its cpu.max
//! ```
//!
//! The shim joins the leaf as the first thing it does, before the engine exists, so what the
//! runtime allocates for the pod is charged to the pod (the kernel never moves charges that
//! were made before a move). Its names contain no 64-character container id, so cAdvisor does
//! not take them for a container: the kubelet then reports a Wasm container's CPU and memory
//! from the shim's `Stats` (its guest plus its share of the runtime), and the pod's from the
//! pod cgroup (everything). The alternatives were rejected: threaded children directly under
//! the pod are impossible (its children are domains), and a process per Wasm container
//! (runwasi) costs a runtime per container.

mod path;
mod placement;
mod threads;

pub use path::CgroupsPath;
pub use placement::ShimCgroup;
pub(crate) use placement::v1_roots;
pub use threads::ThreadCgroup;

use std::path::Path;

pub const ROOT: &str = "/sys/fs/cgroup";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The host's cgroup mode: unified (v2) when the cgroup2 filesystem is mounted at the root.
pub fn version() -> Version {
    if Path::new(ROOT).join("cgroup.controllers").exists() {
        Version::V2
    } else {
        Version::V1
    }
}

/// A short, id-free name part: the first `n` characters of an id, so no cgroup we create
/// carries a full container id.
fn short(id: &str, n: usize) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(n)
        .collect()
}

/// Reads a `key value` line of a cgroup stat file (cpu.stat, memory.stat).
fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_files_are_read_by_key() {
        let text = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(stat_value(text, "usage_usec"), Some(1500));
        assert_eq!(stat_value(text, "user_usec"), Some(1000));
        assert_eq!(stat_value(text, "nr_periods"), None);
    }

    #[test]
    fn short_names_never_carry_a_whole_container_id() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(short(id, 12), "0123456789ab");
        assert_eq!(short("a/b..c", 12), "abc");
    }
}
