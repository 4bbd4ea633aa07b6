//! The shim process's own cgroup: a leaf under the pod's cgroup (see the module docs).

use std::io;
use std::path::{Path, PathBuf};

use super::{CgroupsPath, ROOT, Version, read_u64, short, stat_value, version};

/// v1 hierarchies the whole shim joins. cpuset is left alone (a new v1 cpuset cgroup has no
/// CPUs until someone copies them in), and so are devices and freezer, which do not account.
const V1_HIERARCHIES: [&str; 5] = ["memory", "cpu", "cpuacct", "pids", "blkio"];
/// v2 controllers the pod cgroup must hand to its children for the leaf to account.
const V2_CONTROLLERS: [&str; 4] = ["cpu", "memory", "pids", "io"];

/// The leaf the shim process moved into, per hierarchy, and where it came from.
#[derive(Debug)]
pub struct ShimCgroup {
    version: Version,
    /// The leaf, relative to a hierarchy's root (the same in every hierarchy).
    leaf: PathBuf,
    /// (hierarchy root, the shim's cgroup there before it joined the leaf).
    joined: Vec<(PathBuf, PathBuf)>,
}

impl ShimCgroup {
    /// Moves this whole process (every thread) into `wasmpod-<group>` beside the container's
    /// cgroup, creating it and, on v2, handing the accounting controllers down to it.
    pub fn join(path: &CgroupsPath, group: &str) -> io::Result<Self> {
        let version = version();
        let leaf = path.parent().join(format!("wasmpod-{}", short(group, 12)));
        let origins = own_cgroups()?;
        let roots: Vec<PathBuf> = match version {
            Version::V2 => vec![PathBuf::from(ROOT)],
            Version::V1 => v1_roots(),
        };
        let mut joined = Vec::new();
        for root in roots {
            let dir = root.join(&leaf);
            if version == Version::V2 {
                std::fs::create_dir_all(path_or_root(&root, path.parent()))?;
                enable_controllers_down_to(&root, path.parent());
            }
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string())
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
            let origin = origin_in(&origins, &root, version).unwrap_or_default();
            joined.push((root, origin));
        }
        Ok(Self {
            version,
            leaf,
            joined,
        })
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The leaf, relative to a hierarchy's root.
    pub fn leaf(&self) -> &Path {
        &self.leaf
    }

    fn dir(&self, hierarchy: &str) -> Option<PathBuf> {
        match self.version {
            Version::V2 => Some(Path::new(ROOT).join(&self.leaf)),
            Version::V1 => self
                .joined
                .iter()
                .find(|(root, _)| root.ends_with(hierarchy))
                .map(|(root, _)| root.join(&self.leaf)),
        }
    }

    /// Memory the shim costs its pod, as the kubelet counts it: usage less inactive page
    /// cache (the working set).
    pub fn memory_working_set(&self) -> Option<u64> {
        let dir = self.dir("memory")?;
        let (usage, stat, inactive) = match self.version {
            Version::V2 => ("memory.current", "memory.stat", "inactive_file"),
            Version::V1 => (
                "memory.usage_in_bytes",
                "memory.stat",
                "total_inactive_file",
            ),
        };
        let usage = read_u64(&dir.join(usage))?;
        let inactive = std::fs::read_to_string(dir.join(stat))
            .ok()
            .and_then(|s| stat_value(&s, inactive))
            .unwrap_or(0);
        Some(usage.saturating_sub(inactive))
    }

    /// CPU time of the whole shim for this pod (guest threads included), in nanoseconds.
    pub fn cpu_usage_ns(&self) -> Option<u64> {
        match self.version {
            Version::V2 => {
                let s = std::fs::read_to_string(self.dir("cpu")?.join("cpu.stat")).ok()?;
                stat_value(&s, "usage_usec").map(|us| us * 1000)
            }
            Version::V1 => read_u64(&self.dir("cpuacct")?.join("cpuacct.usage")),
        }
    }

    /// Moves the process back to where it came from and removes the leaf, so the pod's
    /// cgroup can be removed as soon as its containers are gone.
    pub fn leave(&self) {
        for (root, origin) in &self.joined {
            let back = root.join(origin);
            if let Err(e) =
                std::fs::write(back.join("cgroup.procs"), std::process::id().to_string())
            {
                tracing::warn!(cgroup = %back.display(), error = %e, "could not leave the pod cgroup");
                continue;
            }
            let dir = root.join(&self.leaf);
            if let Err(e) = std::fs::remove_dir(&dir)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(cgroup = %dir.display(), error = %e, "could not remove the shim cgroup");
            }
        }
    }
}

fn path_or_root(root: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

/// v1 hierarchies mounted here, each once (cpu and cpuacct are often one mount, two links).
pub(crate) fn v1_roots() -> Vec<PathBuf> {
    let mut seen = Vec::new();
    let mut roots = Vec::new();
    for h in V1_HIERARCHIES {
        let root = Path::new(ROOT).join(h);
        if !root.join("cgroup.procs").exists() {
            continue;
        }
        let real = std::fs::canonicalize(&root).unwrap_or_else(|_| root.clone());
        if !seen.contains(&real) {
            seen.push(real);
            roots.push(root);
        }
    }
    roots
}

/// Enables the accounting controllers in each cgroup from the root down to `rel`, so a child
/// of `rel` has them. kubelet and runc normally did this already for a pod's cgroup; a
/// controller the kernel refuses (a cgroup with processes of its own) is logged and skipped.
fn enable_controllers_down_to(root: &Path, rel: &Path) {
    let mut dir = root.to_path_buf();
    let mut chain = vec![dir.clone()];
    for c in rel.components() {
        dir.push(c);
        chain.push(dir.clone());
    }
    for d in chain {
        let available = std::fs::read_to_string(d.join("cgroup.controllers")).unwrap_or_default();
        let enabled = std::fs::read_to_string(d.join("cgroup.subtree_control")).unwrap_or_default();
        for c in V2_CONTROLLERS {
            let has = |list: &str| list.split_whitespace().any(|x| x == c);
            if has(&available)
                && !has(&enabled)
                && let Err(e) = std::fs::write(d.join("cgroup.subtree_control"), format!("+{c}"))
            {
                tracing::warn!(cgroup = %d.display(), controller = c, error = %e, "could not enable a controller for the shim's cgroup");
            }
        }
    }
}

/// `/proc/self/cgroup`: (hierarchy id, controllers, path) per line.
fn own_cgroups() -> io::Result<Vec<(String, PathBuf)>> {
    let text = std::fs::read_to_string("/proc/self/cgroup")?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            Some((
                ctrls.to_string(),
                PathBuf::from(path.trim_start_matches('/')),
            ))
        })
        .collect())
}

fn origin_in(origins: &[(String, PathBuf)], root: &Path, version: Version) -> Option<PathBuf> {
    let name = root.file_name()?.to_string_lossy().to_string();
    origins
        .iter()
        .find(|(ctrls, _)| match version {
            Version::V2 => ctrls.is_empty(),
            Version::V1 => ctrls.split(',').any(|c| c == name),
        })
        .map(|(_, p)| p.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_found_per_hierarchy() {
        let origins = vec![
            (
                "cpu,cpuacct".to_string(),
                PathBuf::from("system.slice/containerd.service"),
            ),
            ("memory".to_string(), PathBuf::from("containerd")),
            (String::new(), PathBuf::from("init.scope")),
        ];
        let v1 = |h: &str| origin_in(&origins, &Path::new(ROOT).join(h), Version::V1);
        assert_eq!(
            v1("cpuacct"),
            Some(PathBuf::from("system.slice/containerd.service"))
        );
        assert_eq!(v1("memory"), Some(PathBuf::from("containerd")));
        assert_eq!(v1("pids"), None);
        assert_eq!(
            origin_in(&origins, Path::new(ROOT), Version::V2),
            Some(PathBuf::from("init.scope"))
        );
    }
}
