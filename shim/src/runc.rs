//! Runs the native containers of a pod (its pause container, ordinary sidecars) with runc.
//!
//! The shim is a child subreaper, so once `runc create` returns, the container's init process
//! is our child. Its exit is watched through a pidfd, which wakes exactly for that process;
//! the shim never calls `wait(-1)`, so it cannot steal exit statuses from tokio's own
//! children (the runc commands).

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::unix::AsyncFd;
use tokio::process::Command;

use crate::error::{Error, IoContext, Result};

/// runc's state directory for this shim's containers: one per containerd daemon (several
/// may run on a node, e.g. a test's) and namespace.
pub fn state_root(containerd_address: &str, namespace: &str) -> PathBuf {
    let daemon = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(
        containerd_address,
    ));
    PathBuf::from("/run/wasmpod/runc")
        .join(hex::encode(&daemon[..6]))
        .join(namespace)
}

fn runc_binary() -> String {
    std::env::var("WASMPOD_RUNC").unwrap_or_else(|_| "runc".into())
}

pub struct Runc {
    root: PathBuf,
    id: String,
    bundle: PathBuf,
    systemd_cgroup: bool,
}

impl Runc {
    pub fn new(root: PathBuf, id: &str, bundle: &Path, systemd_cgroup: bool) -> Self {
        Self {
            root,
            id: id.into(),
            bundle: bundle.into(),
            systemd_cgroup,
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(runc_binary());
        c.arg("--root").arg(&self.root);
        c.arg("--log")
            .arg(self.bundle.join("runc.log"))
            .arg("--log-format")
            .arg("json");
        if self.systemd_cgroup {
            c.arg("--systemd-cgroup");
        }
        c.kill_on_drop(false);
        c
    }

    /// Creates the container with the given stdio; returns its init pid.
    pub async fn create(
        &self,
        stdin: Option<File>,
        stdout: Option<File>,
        stderr: Option<File>,
    ) -> Result<u32> {
        let pid_file = self.bundle.join("init.pid");
        let mut c = self.command();
        c.arg("create")
            .arg("--bundle")
            .arg(&self.bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&self.id);
        // runc hands its own stdio to the container process, so they must be the container's
        // files, never pipes of ours (the container would hold them open forever), and we
        // wait for runc's exit status only; its errors are in its JSON log.
        c.stdin(stdin.map(Stdio::from).unwrap_or_else(Stdio::null));
        c.stdout(stdout.map(Stdio::from).unwrap_or_else(Stdio::null));
        c.stderr(stderr.map(Stdio::from).unwrap_or_else(Stdio::null));
        let status = c
            .status()
            .await
            .io_context(|| format!("run {} create {}", runc_binary(), self.id))?;
        if !status.success() {
            return Err(Error::Runc(format!(
                "create {}: {}",
                self.id,
                last_log_error(&self.bundle.join("runc.log"))
            )));
        }
        let pid = std::fs::read_to_string(&pid_file)
            .io_context(|| format!("read {}", pid_file.display()))?;
        pid.trim()
            .parse()
            .map_err(|_| Error::Runc(format!("bad pid file {}: {pid:?}", pid_file.display())))
    }

    pub async fn start(&self) -> Result<()> {
        let mut c = self.command();
        c.arg("start").arg(&self.id);
        self.run(c, "start").await
    }

    pub async fn kill(&self, signal: u32, all: bool) -> Result<()> {
        let mut c = self.command();
        c.arg("kill");
        if all {
            c.arg("--all");
        }
        c.arg(&self.id).arg(signal.to_string());
        self.run(c, "kill").await
    }

    pub async fn delete(&self) -> Result<()> {
        let mut c = self.command();
        c.arg("delete").arg("--force").arg(&self.id);
        self.run(c, "delete").await
    }

    async fn run(&self, mut c: Command, what: &str) -> Result<()> {
        let out = c
            .output()
            .await
            .io_context(|| format!("run {} {what} {}", runc_binary(), self.id))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::Runc(format!(
            "{what} {}: {} {}",
            self.id,
            last_log_error(&self.bundle.join("runc.log")),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The last error runc wrote to its JSON log (its stderr belongs to the container).
fn last_log_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error")
        .and_then(|v| v["msg"].as_str().map(String::from))
        .unwrap_or_else(|| "runc failed".into())
}

/// Waits for a child process to exit and returns its status as containerd reports it
/// (signals as 128+n).
pub async fn wait_exit(pid: u32) -> Result<u32> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd >= 0 {
        // SAFETY: the syscall returned a fresh fd that we now own.
        let owned = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // SAFETY: `owned` is a pidfd we hold until the AsyncFd is dropped.
        let afd = unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) }
            .map_err(|e| Error::Runc(format!("watch pid {pid}: {e}")))?;
        let _ = afd.readable().await;
    }
    tokio::task::spawn_blocking(move || {
        let mut status = 0;
        // SAFETY: waitpid writes to `status`; the process is our child (we are its subreaper).
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status) as u32
        } else {
            libc::WEXITSTATUS(status) as u32
        })
    })
    .await
    .map_err(|e| Error::Runc(format!("wait for pid {pid}: {e}")))?
    .io_context(|| format!("wait for pid {pid}"))
}

/// Becomes the child subreaper, so orphaned container processes are re-parented to us.
pub fn set_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
