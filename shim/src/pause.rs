//! The pod sandbox's pause process, started by the shim itself instead of through runc.
//!
//! A pause process only holds the pod's namespaces (IPC, UTS and PID; the network namespace is
//! CRI's, pinned before the sandbox exists) and reaps orphans when the pod shares one PID
//! namespace. Through runc it costs a Go process and its re-exec, a mount namespace with a
//! pivot_root, seccomp and a cgroup set-up: `runc create` + `runc start` took ~70 ms of CPU on
//! our 2-core node, in the path of every pod start and of every pod of a density wave. The shim
//! does the part that matters itself:
//!
//! - a thread of its own enters the pod's network namespace and unshares the new IPC, UTS and
//!   PID namespaces the spec asks for (namespaces belong to a thread, and a fork inherits its
//!   thread's: the child is PID 1 of the new PID namespace);
//! - before it executes the image's pause binary, the child joins the sandbox's cgroup and
//!   gives everything up: chroot into the image's rootfs (a container sharing the pod's PID
//!   namespace sees the pause image at `/proc/1/root`, never the node), the spec's user and
//!   groups, no capabilities in any set, no_new_privs.
//!
//! It gets no seccomp filter: it makes a handful of system calls and holds no privilege to
//! abuse. The shim sets the OOM score the spec asks for (CRI's -998), which the child can no
//! longer lower itself.
//!
//! Sandboxes this does not cover (a user namespace, a namespace other than the network one
//! joined by path, a terminal, an entrypoint that is not a plain file of the image) go to runc
//! as before, and so does every sandbox when the runtime's options say `PauseWithRunc = true`.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::cgroup::{CgroupsPath, ROOT, Version, v1_roots, version};
use crate::error::{Error, IoContext, Result};
use crate::netns::NetNs;

/// The annotation CRI puts on the spec of every pod sandbox (containerd 1.7 and 2.x).
const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";

/// What a sandbox's pause process needs, read from its spec: present only when the shim can
/// start it faithfully itself.
#[derive(Debug)]
pub struct PausePlan {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    hostname: Option<String>,
    /// CRI shields sandboxes from the OOM killer (-998).
    oom_score_adj: Option<i32>,
    /// `CLONE_NEW*` flags of the namespaces the spec asks to be created.
    unshare: libc::c_int,
    cgroups_path: Option<CgroupsPath>,
}

impl PausePlan {
    /// The plan for a sandbox's spec, or why runc has to start it instead.
    pub fn for_sandbox(spec: &Spec, rootfs: &Path) -> std::result::Result<Self, String> {
        let is_sandbox = spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(CONTAINER_TYPE))
            .is_some_and(|t| t == "sandbox");
        if !is_sandbox {
            return Err("not a pod sandbox".into());
        }
        let process = spec.process().as_ref().ok_or("the spec has no process")?;
        if process.terminal().unwrap_or(false) {
            return Err("the sandbox asks for a terminal".into());
        }
        let args = process.args().clone().unwrap_or_default();
        let program = args.first().ok_or("the sandbox has no entrypoint")?;
        if !program.starts_with('/') || program.split('/').any(|p| p == "..") {
            return Err(format!("entrypoint {program:?} is not an absolute path"));
        }
        let in_image = rootfs.join(program.trim_start_matches('/'));
        match std::fs::symlink_metadata(&in_image) {
            Ok(m) if m.is_file() => {}
            _ => return Err(format!("entrypoint {program} is not a file of the image")),
        }
        let linux = spec
            .linux()
            .as_ref()
            .ok_or("the spec has no linux section")?;
        let mut unshare = 0;
        for ns in linux.namespaces().as_deref().unwrap_or_default() {
            let flag = match ns.typ() {
                // The network namespace is entered by path (or created) by NetNs.
                LinuxNamespaceType::Network => continue,
                // Nothing joins a sandbox's mount or cgroup namespace; the chroot stands in for
                // the first, and the pause never reads its cgroup.
                LinuxNamespaceType::Mount | LinuxNamespaceType::Cgroup => continue,
                LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
                LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
                LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
                other => return Err(format!("the sandbox asks for a {other:?} namespace")),
            };
            if ns.path().is_some() {
                return Err(format!("the sandbox joins a {:?} namespace", ns.typ()));
            }
            unshare |= flag;
        }
        let env = process
            .env()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let user = process.user();
        Ok(Self {
            program: PathBuf::from(program),
            args: args[1..].to_vec(),
            env,
            uid: user.uid(),
            gid: user.gid(),
            groups: user.additional_gids().clone().unwrap_or_default(),
            hostname: spec.hostname().clone(),
            oom_score_adj: process.oom_score_adj(),
            unshare,
            cgroups_path: linux
                .cgroups_path()
                .as_ref()
                .map(|p| CgroupsPath::parse(&p.to_string_lossy())),
        })
    }
}

/// A running pause process, our child.
pub struct Pause {
    pidfd: OwnedFd,
    cgroups: Vec<PathBuf>,
}

impl Pause {
    /// Starts the pause process; returns it and its pid.
    pub fn spawn(
        plan: &PausePlan,
        spec: &Spec,
        rootfs: &Path,
        stdout: Option<File>,
        stderr: Option<File>,
    ) -> Result<(Self, u32)> {
        let netns = NetNs::from_spec(spec)?;
        let cgroups = match &plan.cgroups_path {
            Some(path) => create_cgroups(path)?,
            None => Vec::new(),
        };
        let procs = cgroups
            .iter()
            .map(|dir| {
                let file = dir.join("cgroup.procs");
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&file)
                    .io_context(|| format!("open {}", file.display()))
            })
            .collect::<Result<Vec<File>>>()?;
        let root = CString::new(rootfs.as_os_str().as_bytes())
            .map_err(|_| Error::InvalidArgument(format!("rootfs {}", rootfs.display())))?;
        let mut cmd = Command::new(&plan.program);
        cmd.args(&plan.args)
            .env_clear()
            .envs(plan.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout.map(Stdio::from).unwrap_or_else(Stdio::null))
            .stderr(stderr.map(Stdio::from).unwrap_or_else(Stdio::null));
        let drop_to = Privileges {
            root,
            procs: procs.iter().map(|f| f.as_raw_fd()).collect(),
            uid: plan.uid,
            gid: plan.gid,
            groups: plan.groups.clone(),
        };
        // SAFETY: the hook runs in the forked child before exec and only makes system calls
        // on values prepared here (no allocation, no locks).
        unsafe { cmd.pre_exec(move || drop_to.apply()) };
        let unshare = plan.unshare;
        let hostname = plan.hostname.clone();
        // A thread of its own: unshare and setns change the calling thread for good, so it must
        // not be one that runs anything else afterwards.
        let child = std::thread::spawn(move || -> std::io::Result<std::process::Child> {
            netns.enter_current_thread()?;
            // SAFETY: unshare only changes this thread's namespaces (none of these flags
            // needs a single-threaded process).
            if unshare != 0 && unsafe { libc::unshare(unshare) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(name) = hostname.filter(|_| unshare & libc::CLONE_NEWUTS != 0) {
                // SAFETY: sethostname reads `len` bytes of the name.
                if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            cmd.spawn()
        })
        .join()
        .map_err(|_| Error::InvalidArgument("starting the pause process panicked".into()))?
        .io_context(|| format!("start the pause process {}", plan.program.display()));
        drop(procs);
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                remove_cgroups(&cgroups);
                return Err(e);
            }
        };
        let pid = child.id();
        // SAFETY: pidfd_open takes a pid and flags; the child cannot be reaped before we wait.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: kill on our own child's pid.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            return Err(e).io_context(|| format!("watch the pause process {pid}"));
        }
        // SAFETY: a fresh descriptor the syscall returned, owned from here on.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        let pause = Self { pidfd, cgroups };
        if let Some(score) = plan.oom_score_adj {
            // Lowering a score takes CAP_SYS_RESOURCE, which the child gave up: the shim sets it.
            let file = format!("/proc/{pid}/oom_score_adj");
            if let Err(e) = std::fs::write(&file, score.to_string()) {
                let _ = pause.kill(libc::SIGKILL as u32);
                return Err(e).io_context(|| format!("write {score} to {file}"));
            }
        }
        Ok((pause, pid))
    }

    /// Sends a signal through the pidfd, so a recycled pid is never hit. `all` needs nothing
    /// more: the pause is PID 1 of its namespace (or alone), and the kernel ends a PID
    /// namespace's processes with its first.
    pub fn kill(&self, signal: u32) -> Result<()> {
        // SAFETY: pidfd_send_signal reads the fd and plain integers.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        match std::io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ESRCH) => {
                Err(Error::NotFound("the pause process already finished".into()))
            }
            e => Err(e).io_context(|| format!("send signal {signal} to the pause process")),
        }
    }

    /// Removes the cgroup it ran in; the caller has seen it exit.
    pub fn release(&self) {
        remove_cgroups(&self.cgroups);
    }
}

/// What the child does to itself between fork and exec: async-signal-safe system calls only.
struct Privileges {
    root: CString,
    procs: Vec<RawFd>,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

impl Privileges {
    fn apply(&self) -> std::io::Result<()> {
        fn check(rc: libc::c_long) -> std::io::Result<()> {
            if rc < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
        // SAFETY (all calls below): plain system calls on memory owned by `self`, which the
        // forked child holds a copy of; nothing allocates or takes a lock.
        unsafe {
            for fd in &self.procs {
                // "0" moves the writer itself.
                check(libc::write(*fd, b"0".as_ptr().cast(), 1) as libc::c_long)?;
            }
            check(libc::chroot(self.root.as_ptr()).into())?;
            check(libc::chdir(c"/".as_ptr()).into())?;
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into())?;
            check(libc::setgroups(self.groups.len(), self.groups.as_ptr()).into())?;
            check(libc::setgid(self.gid).into())?;
            for cap in 0..64 {
                // EINVAL past the kernel's last capability: nothing left to drop.
                if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                    break;
                }
            }
            check(libc::setuid(self.uid).into())?;
            // A uid of 0 keeps its capabilities through setuid; clear every set by hand.
            let mut header = CapHeader {
                version: LINUX_CAPABILITY_VERSION_3,
                pid: 0,
            };
            let data = [CapData::default(); 2];
            check(libc::syscall(
                libc::SYS_capset,
                &mut header as *mut CapHeader,
                data.as_ptr(),
            ))?;
            check(
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL,
                    0,
                    0,
                    0,
                )
                .into(),
            )?;
        }
        Ok(())
    }
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The sandbox's cgroup in every hierarchy the node has, where runc would have made it.
fn create_cgroups(path: &CgroupsPath) -> Result<Vec<PathBuf>> {
    let roots = match version() {
        Version::V2 => vec![PathBuf::from(ROOT)],
        Version::V1 => v1_roots(),
    };
    roots
        .into_iter()
        .map(|root| {
            let dir = root.join(path.container());
            std::fs::create_dir_all(&dir)
                .io_context(|| format!("create the sandbox's cgroup {}", dir.display()))?;
            Ok(dir)
        })
        .collect()
}

fn remove_cgroups(dirs: &[PathBuf]) {
    for dir in dirs {
        if let Err(e) = std::fs::remove_dir(dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(cgroup = %dir.display(), error = %e, "could not remove the sandbox's cgroup");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).expect("spec")
    }

    fn sandbox(namespaces: serde_json::Value) -> Spec {
        spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "annotations": {"io.kubernetes.cri.container-type": "sandbox"},
            "hostname": "pod-a",
            "process": {
                "args": ["/pause"], "cwd": "/", "env": ["PATH=/bin"],
                "user": {"uid": 65535, "gid": 65535, "additionalGids": [65535]},
                "oomScoreAdj": -998
            },
            "root": {"path": "rootfs"},
            "linux": {
                "cgroupsPath": "/kubepods/besteffort/podabc/s1",
                "namespaces": namespaces
            }
        }))
    }

    fn rootfs_with_pause() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pause"), b"\x7fELF").expect("write");
        dir
    }

    #[test]
    fn a_cri_sandbox_is_planned_with_the_namespaces_it_asks_for() {
        let rootfs = rootfs_with_pause();
        let s = sandbox(serde_json::json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "network", "path": "/var/run/netns/cni-1"}
        ]));
        let plan = PausePlan::for_sandbox(&s, rootfs.path()).expect("plan");
        assert_eq!(
            plan.unshare,
            libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS
        );
        assert_eq!(plan.program, Path::new("/pause"));
        assert_eq!(
            (plan.uid, plan.gid, plan.groups.as_slice()),
            (65535, 65535, &[65535][..])
        );
        assert_eq!(plan.hostname.as_deref(), Some("pod-a"));
        assert_eq!(plan.oom_score_adj, Some(-998));
        assert_eq!(plan.env, vec![("PATH".into(), "/bin".into())]);
    }

    #[test]
    fn host_namespaces_are_left_alone() {
        let rootfs = rootfs_with_pause();
        let s = sandbox(serde_json::json!([{"type": "mount"}]));
        let plan = PausePlan::for_sandbox(&s, rootfs.path()).expect("plan");
        assert_eq!(plan.unshare, 0);
    }

    #[test]
    fn what_the_shim_cannot_start_faithfully_goes_to_runc() {
        let rootfs = rootfs_with_pause();
        let user_ns = sandbox(serde_json::json!([{"type": "user"}, {"type": "pid"}]));
        let err = PausePlan::for_sandbox(&user_ns, rootfs.path()).unwrap_err();
        assert!(err.contains("User"), "{err}");
        let joined = sandbox(serde_json::json!([{"type": "ipc", "path": "/proc/1/ns/ipc"}]));
        assert!(PausePlan::for_sandbox(&joined, rootfs.path()).is_err());
        let empty = tempfile::tempdir().expect("tempdir");
        let err =
            PausePlan::for_sandbox(&sandbox(serde_json::json!([])), empty.path()).unwrap_err();
        assert!(err.contains("/pause"), "{err}");
        let mut not_sandbox = sandbox(serde_json::json!([]));
        not_sandbox.set_annotations(None);
        assert!(PausePlan::for_sandbox(&not_sandbox, rootfs.path()).is_err());
    }
}
