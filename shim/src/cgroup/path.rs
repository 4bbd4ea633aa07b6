//! The OCI `linux.cgroupsPath` in both forms CRI writes, as directories under a hierarchy.

use std::path::{Path, PathBuf};

/// A container's cgroup as a path relative to a hierarchy's mount point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupsPath {
    container: PathBuf,
}

impl CgroupsPath {
    /// cgroupfs paths (`/kubepods/burstable/pod<uid>/<id>`) are used as they are. The systemd
    /// form `slice:prefix:name` (kind, and any node whose kubelet uses the systemd driver)
    /// names a unit `prefix-name.scope` in `slice`, whose directory nests every parent slice
    /// the way systemd names them: `a-b-c.slice` lives in `a.slice/a-b.slice/a-b-c.slice`.
    pub fn parse(path: &str) -> Self {
        let parts: Vec<&str> = path.split(':').collect();
        if parts.len() != 3 || path.starts_with('/') {
            return Self {
                container: PathBuf::from(path.trim_start_matches('/')),
            };
        }
        let (slice, prefix, name) = (parts[0], parts[1], parts[2]);
        // runc's defaults: an empty slice is system.slice; "-.slice" is the root slice.
        let slice = if slice.is_empty() {
            "system.slice"
        } else {
            slice
        };
        let mut container = expand_slice(slice);
        if name.ends_with(".slice") {
            container = expand_slice(name);
        } else if prefix.is_empty() {
            container.push(format!("{name}.scope"));
        } else {
            container.push(format!("{prefix}-{name}.scope"));
        }
        Self { container }
    }

    /// The container's own directory.
    pub fn container(&self) -> &Path {
        &self.container
    }

    /// The directory holding the container's: in Kubernetes, the pod's cgroup.
    pub fn parent(&self) -> &Path {
        self.container.parent().unwrap_or(Path::new(""))
    }
}

fn expand_slice(slice: &str) -> PathBuf {
    let mut dir = PathBuf::new();
    let Some(stem) = slice.strip_suffix(".slice").filter(|s| *s != "-") else {
        return dir;
    };
    let mut acc = String::new();
    for piece in stem.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(piece);
        dir.push(format!("{acc}.slice"));
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroupfs_paths_are_relative_to_the_hierarchy() {
        let p = CgroupsPath::parse("/kubepods/burstable/podabc/c1");
        assert_eq!(p.container(), Path::new("kubepods/burstable/podabc/c1"));
        assert_eq!(p.parent(), Path::new("kubepods/burstable/podabc"));
    }

    #[test]
    fn systemd_paths_expand_their_slices_and_name_a_scope() {
        let p = CgroupsPath::parse("kubepods-burstable-podabc.slice:cri-containerd:c1");
        assert_eq!(
            p.container(),
            Path::new(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/cri-containerd-c1.scope"
            )
        );
        assert_eq!(
            p.parent(),
            Path::new("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice")
        );
    }

    #[test]
    fn systemd_defaults_follow_runc() {
        assert_eq!(
            CgroupsPath::parse(":cri-containerd:c1").container(),
            Path::new("system.slice/cri-containerd-c1.scope")
        );
        assert_eq!(
            CgroupsPath::parse("-.slice::c1").container(),
            Path::new("c1.scope")
        );
        assert_eq!(
            CgroupsPath::parse("kubepods.slice:x:kubepods-besteffort.slice").container(),
            Path::new("kubepods.slice/kubepods-besteffort.slice")
        );
    }
}
