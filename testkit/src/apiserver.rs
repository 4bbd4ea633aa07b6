//! A node-less control plane (etcd + kube-apiserver on free loopback ports) for the tiers that
//! test against a real API server: `e2e/cluster/apiserver-only.sh`, stopped on drop.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::paths::{deps_dir, first_missing, missing_file, repo_root};

/// The variable that makes the apiserver tiers mandatory.
pub const REQUIRE_VAR: &str = "WASMPOD_REQUIRE_APISERVER";

fn script() -> PathBuf {
    repo_root().join("e2e/cluster/apiserver-only.sh")
}

/// Why an apiserver can not be started here, if it can not.
pub fn missing_prerequisites() -> Option<String> {
    let build = "e2e/build-deps.sh etcd kubernetes";
    let k8s = deps_dir("kubernetes").unwrap_or_default();
    let etcd = deps_dir("etcd").unwrap_or_default();
    first_missing([
        missing_file(&script(), "git checkout e2e/cluster"),
        missing_file(&k8s.join("kube-apiserver"), build),
        missing_file(&k8s.join("kubectl"), build),
        missing_file(&etcd.join("etcd"), build),
    ])
}

/// A running etcd + kube-apiserver. `kubeconfig` is an admin (system:masters) config.
pub struct ApiServer {
    dir: Mutex<Option<tempfile::TempDir>>,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
}

impl ApiServer {
    /// Starts one in a fresh temp dir (a few seconds).
    pub fn start() -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("wasmpod-apiserver-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run apiserver-only.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "apiserver-only.sh start failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Self {
            dir: Mutex::new(Some(dir)),
            kubeconfig: PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
            kubectl: deps_dir("kubernetes")?.join("kubectl"),
        })
    }

    /// Stops etcd and the apiserver and removes their files (also done on drop; call it for
    /// a server kept in a `static`, which is never dropped).
    pub fn stop(&self) {
        let dir = self
            .dir
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(dir) = dir {
            let _ = Command::new("bash")
                .arg(script())
                .arg("stop")
                .arg(dir.path())
                .output();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}
