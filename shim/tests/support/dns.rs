//! Name resolution of a test pod: a DNS server (dnsmasq) on the loopback of the pod's network
//! namespace, the resolv.conf and hosts file CRI would write for the pod, and a name that only
//! the node's /etc/hosts knows.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{NetNs, run, text, wait_until};

/// dnsmasq answering on 127.0.0.1:53 inside a network namespace: the given names, NXDOMAIN
/// for every other one, and nothing from the node (no upstream, no /etc/hosts).
pub struct Dnsmasq {
    child: Child,
    pub log: PathBuf,
}

impl Dnsmasq {
    pub fn start(ns: &NetNs, dir: &Path, records: &[(&str, &str)]) -> Self {
        let log = dir.join("dnsmasq.log");
        let log_file = std::fs::File::create(&log).expect("dnsmasq log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name, "dnsmasq"])
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--user=root",
                "--group=root",
                "--pid-file=",
                "--log-queries",
                "--log-facility=-",
                // Host records win over this: every other name is NXDOMAIN.
                "--address=/#/",
            ])
            .args(
                records
                    .iter()
                    .map(|(name, ip)| format!("--host-record={name},{ip}")),
            )
            .stdout(Stdio::null())
            .stderr(log_file);
        let child = cmd
            .spawn()
            .expect("start dnsmasq (apt-get install dnsmasq-base)");
        let mut dns = Self { child, log };
        let listening = wait_until(Duration::from_secs(10), || {
            let out = run(Command::new("ip").args([
                "netns",
                "exec",
                &ns.name,
                "ss",
                "-Hlun",
                "sport = :53",
            ]));
            !text(&out.stdout).trim().is_empty()
        });
        let exited = dns.child.try_wait().ok().flatten();
        assert!(
            listening && exited.is_none(),
            "dnsmasq did not come up ({exited:?}):\n{}",
            dns.log()
        );
        dns
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The files CRI writes into a sandbox's directory and bind-mounts at /etc/resolv.conf and
/// /etc/hosts in each of its containers; `mount_args` gives the `ctr run` flags doing the same.
pub struct PodFiles {
    pub resolv_conf: PathBuf,
    pub hosts: PathBuf,
}

impl PodFiles {
    pub fn write(dir: &Path, resolv_conf: &str, hosts: &str) -> Self {
        std::fs::create_dir_all(dir).expect("pod dir");
        let files = Self {
            resolv_conf: dir.join("resolv.conf"),
            hosts: dir.join("hosts"),
        };
        std::fs::write(&files.resolv_conf, resolv_conf).expect("write resolv.conf");
        std::fs::write(&files.hosts, hosts).expect("write hosts");
        files
    }

    pub fn mount_args(&self) -> Vec<String> {
        [
            (&self.resolv_conf, "/etc/resolv.conf"),
            (&self.hosts, "/etc/hosts"),
        ]
        .into_iter()
        .flat_map(|(src, dst)| {
            [
                "--mount".to_string(),
                format!("type=bind,src={},dst={dst},options=rbind:ro", src.display()),
            ]
        })
        .collect()
    }
}

/// A line added to the node's /etc/hosts for as long as it lives, so a test can show that a
/// guest does not see it. The file is rewritten in place (it may be a bind mount).
pub struct NodeHostsEntry {
    original: String,
}

impl NodeHostsEntry {
    const PATH: &'static str = "/etc/hosts";

    pub fn add(ip: &str, name: &str) -> Self {
        let original = std::fs::read_to_string(Self::PATH).expect("read /etc/hosts");
        let mut with = original.clone();
        if !with.is_empty() && !with.ends_with('\n') {
            with.push('\n');
        }
        with.push_str(&format!("{ip} {name}\n"));
        std::fs::write(Self::PATH, with).expect("write /etc/hosts");
        Self { original }
    }
}

impl Drop for NodeHostsEntry {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, &self.original);
    }
}
