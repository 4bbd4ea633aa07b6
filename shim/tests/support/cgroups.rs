//! Reading the cgroups the shim placed itself and its guests in, on v1 and v2 hosts.

use std::path::{Path, PathBuf};

pub const ROOT: &str = "/sys/fs/cgroup";

pub fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// The hierarchy that accounts `controller` (v2: the one unified tree).
pub fn hierarchy(controller: &str) -> PathBuf {
    if is_v2() {
        PathBuf::from(ROOT)
    } else {
        Path::new(ROOT).join(controller)
    }
}

/// The shim's leaf for the group `group` beside a container whose cgroup parent is `parent`.
pub fn shim_leaf(controller: &str, parent: &str, group: &str) -> PathBuf {
    let short: String = group.chars().take(12).collect();
    hierarchy(controller)
        .join(parent)
        .join(format!("wasmpod-{short}"))
}

/// The CPU cgroup of one Wasm container inside the shim's leaf.
pub fn guest_dir(controller: &str, parent: &str, group: &str, id: &str) -> PathBuf {
    let short: String = id.chars().take(16).collect();
    shim_leaf(controller, parent, group).join(format!("g-{short}"))
}

/// Pids of the processes in a cgroup.
pub fn procs(dir: &Path) -> Vec<u32> {
    read_ids(&dir.join("cgroup.procs"))
}

/// Thread ids in a cgroup (v2 threaded: cgroup.threads; v1: tasks).
pub fn threads(dir: &Path) -> Vec<u32> {
    read_ids(&dir.join(if is_v2() { "cgroup.threads" } else { "tasks" }))
}

fn read_ids(file: &Path) -> Vec<u32> {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// CPU time charged to a cgroup, in nanoseconds (v2 cpu.stat usage_usec, v1 cpuacct.usage).
pub fn cpu_ns(dir: &Path) -> u64 {
    if is_v2() {
        let s = std::fs::read_to_string(dir.join("cpu.stat"))
            .unwrap_or_else(|e| panic!("{}/cpu.stat: {e}", dir.display()));
        s.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|us| us * 1000)
            .unwrap_or(0)
    } else {
        std::fs::read_to_string(dir.join("cpuacct.usage"))
            .unwrap_or_else(|e| panic!("{}/cpuacct.usage: {e}", dir.display()))
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

/// Memory charged to a cgroup now, in bytes.
pub fn memory_bytes(dir: &Path) -> u64 {
    let file = if is_v2() {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    };
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Removes a directory tree of empty cgroups, deepest first.
pub fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
