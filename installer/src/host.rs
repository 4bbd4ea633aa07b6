//! Running commands on the node itself from the installer's pod, like
//! `nsenter -t 1 -m -u -i -n -C -- CMD` but without needing `nsenter` in the image: the child
//! joins the mount, UTS, IPC, network and cgroup namespaces of the host's PID 1 (visible
//! because the pod has `hostPID: true`) before it execs, so `systemctl`, the node's `containerd`
//! and the node's files are the host's. The PID namespace is already the host's.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Namespaces joined, in nsenter's order (mount last: it changes what paths mean).
const NAMESPACES: [&str; 5] = ["cgroup", "ipc", "uts", "net", "mnt"];
/// PATH for host commands (the image's PATH means nothing on the host).
const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where commands run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// In the namespaces of this process (host PID 1 with `hostPID`).
    Namespaces(u32),
    /// In the installer's own namespaces (tests, or running the installer on the node itself).
    Local,
}

/// What a finished command printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// stdout and stderr, interleaved as written.
    pub output: String,
}

impl Output {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl Host {
    /// A path on the host as the installer can open it (`/proc/<pid>/root/...`).
    pub fn path(&self, path: &Path) -> PathBuf {
        match self {
            Self::Namespaces(pid) => {
                let rel = path.strip_prefix("/").unwrap_or(path);
                PathBuf::from(format!("/proc/{pid}/root")).join(rel)
            }
            Self::Local => path.to_path_buf(),
        }
    }

    /// The host's `/proc` (this pod shares the host's PID namespace).
    pub fn proc_root(&self) -> PathBuf {
        PathBuf::from("/proc")
    }

    /// Runs `/bin/sh -c script` on the host; output is captured, the run is killed after
    /// `timeout`.
    pub fn shell(&self, script: &str, timeout: Duration) -> Result<Output> {
        self.run(&["/bin/sh".into(), "-c".into(), script.into()], timeout)
    }

    /// Runs `argv` on the host (`argv[0]` an absolute path, or found on the host's PATH).
    pub fn run(&self, argv: &[String], timeout: Duration) -> Result<Output> {
        let shown = argv.join(" ");
        let fail = |message: String| Error::Command {
            command: shown.clone(),
            message,
        };
        let (program, args) = argv.split_first().ok_or_else(|| fail("is empty".into()))?;
        let (mut reader, writer) = std::io::pipe().map_err(|e| fail(format!("pipe: {e}")))?;
        let writer2 = writer.try_clone().map_err(|e| fail(format!("pipe: {e}")))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("PATH", HOST_PATH)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer2);
        let _fds = match self {
            Self::Namespaces(pid) => Some(self.enter(&mut cmd, *pid).map_err(&fail)?),
            Self::Local => None,
        };
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("did not start: {e}")))?;
        drop(cmd);
        let collector = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = reader.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!("timed out after {}s", timeout.as_secs())));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(fail(format!("wait: {e}"))),
            }
        };
        let output = collector.join().unwrap_or_default();
        Ok(Output {
            code: status.code(),
            output,
        })
    }

    /// Makes `cmd`'s child join `pid`'s namespaces before exec. The namespace files are opened
    /// here (returned so they outlive the spawn); the child only calls setns(2).
    fn enter(&self, cmd: &mut Command, pid: u32) -> std::result::Result<Vec<File>, String> {
        let own = |ns: &str| std::fs::read_link(format!("/proc/self/ns/{ns}")).ok();
        let mut files = Vec::new();
        for ns in NAMESPACES {
            let path = format!("/proc/{pid}/ns/{ns}");
            let target = std::fs::read_link(&path).ok();
            if target.is_some() && target == own(ns) {
                continue; // already there (setns into the own mount namespace needs privileges)
            }
            let f = File::open(&path).map_err(|e| {
                format!("cannot open {path} ({e}); the pod needs hostPID: true and privileged")
            })?;
            files.push(f);
        }
        let fds: Vec<RawFd> = files.iter().map(AsRawFd::as_raw_fd).collect();
        // SAFETY: the closure runs in the forked child before exec and only calls setns(2),
        // which is async-signal-safe, on descriptors opened above and kept open by the caller.
        unsafe {
            cmd.pre_exec(move || {
                for fd in &fds {
                    if libc::setns(*fd, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        Ok(files)
    }
}

/// Splits a command line into words: whitespace separates, single and double quotes group
/// (no escapes inside single quotes; `\` escapes the next character elsewhere).
pub fn split_words(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(Error::Config(format!("unclosed ' in {line:?}"))),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => cur.extend(chars.next()),
                        Some(c) => cur.push(c),
                        None => return Err(Error::Config(format!("unclosed \" in {line:?}"))),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn local_commands_report_exit_code_and_output() {
        let out = Host::Local
            .shell("echo out; echo err >&2; exit 3", T)
            .unwrap();
        assert_eq!(out.code, Some(3));
        assert!(out.output.contains("out") && out.output.contains("err"));
        assert!(Host::Local.shell("true", T).unwrap().success());
    }

    #[test]
    fn missing_program_is_an_error_naming_it() {
        let err = Host::Local
            .run(&["/nonexistent/prog".into(), "-v".into()], T)
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/prog -v"), "{err}");
        assert!(err.to_string().contains("did not start"), "{err}");
    }

    #[test]
    fn slow_commands_are_killed_at_the_timeout() {
        let start = Instant::now();
        let err = Host::Local
            .shell("sleep 30", Duration::from_millis(300))
            .unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn namespaces_of_another_process_are_joined() {
        // A process in its own UTS and mount namespaces (needs root, like the installer): a
        // command run "on" it sees its hostname and its private tmpfs, not ours.
        let mut other = Command::new("unshare")
            .args(["--uts", "--mount", "--propagation", "private", "sh", "-c"])
            .arg("hostname wasmpod-ns-test && mount -t tmpfs none /mnt && echo hi > /mnt/marker && exec sleep 30")
            .spawn()
            .expect("unshare (util-linux)");
        let host = Host::Namespaces(other.id());
        let marker = host.path(Path::new("/mnt/marker"));
        let deadline = Instant::now() + T;
        while !marker.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = host.shell("hostname; cat /mnt/marker", T);
        let _ = other.kill();
        let _ = other.wait();
        let out = out.unwrap();
        assert_eq!(out.output, "wasmpod-ns-test\nhi\n");
        assert!(
            !Path::new("/mnt/marker").exists(),
            "our own /mnt is untouched"
        );
        assert_eq!(
            Host::Namespaces(1).path(Path::new("/run/containerd/containerd.sock")),
            PathBuf::from("/proc/1/root/run/containerd/containerd.sock")
        );
    }

    #[test]
    fn namespaces_of_a_missing_process_fail_with_a_hint() {
        let err = Host::Namespaces(u32::MAX - 1).shell("true", T).unwrap_err();
        assert!(err.to_string().contains("hostPID"), "{err}");
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"systemctl restart "k3s agent" 'a b'\ c"#).unwrap(),
            ["systemctl", "restart", "k3s agent", "a b c"]
        );
        assert!(split_words("a 'b").is_err());
        assert!(split_words("   ").unwrap().is_empty());
    }
}
