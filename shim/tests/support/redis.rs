//! A real redis-server (Debian's) on the loopback of a test pod's network namespace, so the
//! key-value backend is tested against the real protocol and nothing leaves the machine. It
//! can be stopped, frozen (SIGSTOP: a server that accepts but never answers) and restarted on
//! the same port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{NetNs, run, text, wait_until};

pub const PORT: u16 = 6379;

pub struct RedisServer {
    ns: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start(ns: &NetNs, dir: &Path) -> Self {
        let mut server = Self {
            ns: ns.name.clone(),
            dir: dir.to_path_buf(),
            child: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.join("redis.log")).expect("redis log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "redis-server"])
            .args(["--bind", "127.0.0.1", "--port", &PORT.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        self.child = Some(child);
        assert!(
            wait_until(Duration::from_secs(10), || self.cli(&["PING"]) == "PONG"),
            "redis-server did not answer PING:\n{}",
            std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
        );
    }

    /// `redis-cli` in the namespace; its trimmed output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = run(Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "redis-cli",
                "-p",
                &PORT.to_string(),
            ])
            .args(args));
        text(&out.stdout).trim().to_string()
    }

    /// Kills the server; its data is gone (nothing is saved).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Freezes (`true`) or thaws the server: frozen, it holds connections but never answers.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.child.as_ref().expect("running").id();
        // `ip netns exec` execs redis-server, so the child's pid is the server's.
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let out = run(Command::new("kill").args([signal, &pid.to_string()]));
        assert!(out.status.success(), "kill {signal}: {}", text(&out.stderr));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            let _ = run(Command::new("kill").args(["-CONT", &c.id().to_string()]));
        }
        self.stop();
    }
}
