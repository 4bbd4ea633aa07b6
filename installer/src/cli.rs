//! Command-line flags; each is also settable through an environment variable (the chart uses
//! those).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
pub use wasmpod_logging::LogFormat;

use crate::config::{self, SystemdCgroup};
use crate::error::IoContext;
use crate::host::Host;
use crate::run::Settings;

/// wasmpod-node-installer: puts the wasmpod shim on this node, registers the `wasmpod` runtime
/// with containerd, and labels the node wasmpod.io/runtime=ready once the shim answers.
#[derive(Parser, Debug, Clone)]
#[command(name = "wasmpod-node-installer", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Log format.
    #[arg(long, global = true, env = "WASMPOD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Install (idempotent), label the node, then with --wait stay running: uninstall when the
    /// DaemonSet asks for it (annotation wasmpod.io/uninstall=true) or, on SIGTERM, when the
    /// DaemonSet is gone or being deleted.
    Install(InstallArgs),
    /// Remove the runtime from this node now: label, containerd config, binaries.
    Uninstall(InstallArgs),
    /// Ask every installer pod to uninstall and wait until their nodes lose the label (the
    /// Helm pre-delete hook).
    UninstallAll(ClusterArgs),
    /// Print a containerd config with the wasmpod runtime merged in: the very merge `install`
    /// makes, without touching the node (test beds and node images that bake the runtime in).
    MergeConfig(MergeArgs),
    /// Exit 0 if the install on this node has completed (readiness probe).
    Probe {
        /// The file `install` writes once the node is ready.
        #[arg(long, env = "WASMPOD_READY_FILE", default_value = DEFAULT_READY_FILE)]
        ready_file: PathBuf,
    },
}

/// Where the installer's readiness file is written.
pub const DEFAULT_READY_FILE: &str = "/run/wasmpod-installer/ready";

/// The DaemonSet the installer belongs to.
#[derive(ClapArgs, Debug, Clone)]
pub struct ClusterArgs {
    /// Namespace of the installer's DaemonSet.
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,

    /// Name of the installer's DaemonSet; without it, SIGTERM never uninstalls.
    #[arg(long, env = "WASMPOD_DAEMONSET")]
    pub daemonset: Option<String>,

    /// Seconds `uninstall-all` waits for the nodes.
    #[arg(long, default_value_t = 180)]
    pub timeout: u64,
}

/// Flags of `merge-config`.
#[derive(ClapArgs, Debug, Clone)]
pub struct MergeArgs {
    /// The containerd config to read; `-` reads standard input.
    #[arg(long)]
    pub config: PathBuf,

    /// The shim's absolute path on the node (`runtime_path`).
    #[arg(long)]
    pub runtime_path: String,

    /// Config version of an empty input (2: containerd 1.6/1.7, 3: 2.x).
    #[arg(long)]
    pub config_version: Option<i64>,

    /// SystemdCgroup of the runtime's options: auto, true or false (as for `install`).
    #[arg(long, default_value = "auto")]
    pub systemd_cgroup: String,
}

impl MergeArgs {
    /// The merged config text.
    pub fn merged(&self) -> crate::Result<String> {
        let systemd = parse_systemd_cgroup(&self.systemd_cgroup).map_err(crate::Error::Config)?;
        if !self.runtime_path.starts_with('/') {
            return Err(crate::Error::Config(format!(
                "--runtime-path must be absolute, not {:?}",
                self.runtime_path
            )));
        }
        let text = if self.config.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).io("read", Path::new("/dev/stdin"))?
        } else {
            std::fs::read_to_string(&self.config).io("read", &self.config)?
        };
        let merged = config::merge(
            &self.config,
            &text,
            &self.runtime_path,
            systemd,
            self.config_version,
        )?;
        Ok(merged.text)
    }
}

fn parse_systemd_cgroup(value: &str) -> Result<SystemdCgroup, String> {
    match value {
        "auto" => Ok(SystemdCgroup::Auto),
        "true" => Ok(SystemdCgroup::Set(true)),
        "false" => Ok(SystemdCgroup::Set(false)),
        other => Err(format!(
            "--systemd-cgroup must be auto, true or false, not {other:?}"
        )),
    }
}

/// Flags of `install` and `uninstall`.
#[derive(ClapArgs, Debug, Clone)]
pub struct InstallArgs {
    /// This node's name (downward API `spec.nodeName`); without it the node is not labelled.
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,

    /// The shim binary to install (inside the installer image).
    #[arg(
        long,
        env = "WASMPOD_SHIM_SOURCE",
        default_value = "/usr/local/share/wasmpod/containerd-shim-wasmpod-v1"
    )]
    pub shim_source: PathBuf,

    /// Directory on the node for the shim (mounted at the same path in the pod).
    #[arg(long, env = "WASMPOD_INSTALL_DIR", default_value = "/opt/wasmpod/bin")]
    pub install_dir: PathBuf,

    /// containerd's config on the node (mounted at the same path in the pod); a `.tmpl` path is
    /// a k3s/RKE2 template (config.toml.tmpl, config-v3.toml.tmpl).
    #[arg(
        long,
        env = "WASMPOD_CONTAINERD_CONFIG",
        default_value = "/etc/containerd/config.toml"
    )]
    pub containerd_config: PathBuf,

    /// Config version to write into a missing or empty config (2: containerd 1.6/1.7, 3: 2.x).
    #[arg(long, env = "WASMPOD_CONFIG_VERSION")]
    pub config_version: Option<i64>,

    /// SystemdCgroup of the runtime's options: auto copies the runc runtime's setting (k3s
    /// templates: k3s's own value).
    #[arg(long, env = "WASMPOD_SYSTEMD_CGROUP", default_value = "auto")]
    pub systemd_cgroup: String,

    /// Command run on the host (via /bin/sh -c) to restart containerd after a config change,
    /// e.g. `systemctl restart k3s` on k3s, or a script on nodes without systemd.
    #[arg(
        long,
        env = "WASMPOD_RESTART_COMMAND",
        default_value = "systemctl restart containerd"
    )]
    pub restart_command: String,

    /// containerd's socket on the host, awaited after a restart ("" skips the wait).
    #[arg(
        long,
        env = "WASMPOD_CONTAINERD_SOCKET",
        default_value = "/run/containerd/containerd.sock"
    )]
    pub containerd_socket: String,

    /// Host command that validates a changed config before the restart; `{config}` is replaced
    /// by the config path. It must exit 0 and print the runtime's path, else the old config is
    /// put back and containerd is not restarted. Skipped when the program is not on the host
    /// ("" disables it; never run for templates).
    #[arg(
        long,
        env = "WASMPOD_CHECK_CONFIG_COMMAND",
        default_value = "containerd --config {config} config dump"
    )]
    pub check_config_command: String,

    /// Host command run after the install (e.g. `crictl info`); must exit 0 and print the
    /// runtime's path ("" disables it).
    #[arg(long, env = "WASMPOD_VERIFY_COMMAND", default_value = "")]
    pub verify_command: String,

    /// Run host commands in the namespaces of this host process: a PID (1 with hostPID: the
    /// node's init), or `parent`: the installer's parent, the container runtime's shim, which
    /// runs in the node's namespaces (for nodes whose PID 1 may not be entered).
    #[arg(long, env = "WASMPOD_HOST_PID", default_value = "1")]
    pub host_pid: String,

    /// Run host commands in the installer's own namespaces (when run on the node directly).
    #[arg(long, env = "WASMPOD_LOCAL")]
    pub local: bool,

    /// Seconds a host command (restart, checks) may take.
    #[arg(long, env = "WASMPOD_COMMAND_TIMEOUT", default_value_t = 120)]
    pub command_timeout: u64,

    /// After installing, keep running until uninstalled or stopped (the DaemonSet's mode).
    #[arg(long)]
    pub wait: bool,

    /// Seconds between checks of the DaemonSet while waiting.
    #[arg(long, env = "WASMPOD_POLL_INTERVAL", default_value_t = 5)]
    pub poll_interval: u64,

    /// File written once the node is ready (read by `probe`).
    #[arg(long, env = "WASMPOD_READY_FILE", default_value = DEFAULT_READY_FILE)]
    pub ready_file: PathBuf,

    /// The DaemonSet.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

impl InstallArgs {
    /// The node-local settings, validated.
    pub fn settings(&self) -> Result<Settings, String> {
        let systemd_cgroup = parse_systemd_cgroup(&self.systemd_cgroup)?;
        if !self.install_dir.is_absolute() || !self.containerd_config.is_absolute() {
            return Err("--install-dir and --containerd-config must be absolute paths".into());
        }
        if self.restart_command.trim().is_empty() {
            return Err("--restart-command is empty".into());
        }
        Ok(Settings {
            shim_source: self.shim_source.clone(),
            install_dir: self.install_dir.clone(),
            containerd_config: self.containerd_config.clone(),
            config_version: self.config_version,
            systemd_cgroup,
            restart_command: self.restart_command.clone(),
            containerd_socket: (!self.containerd_socket.is_empty())
                .then(|| PathBuf::from(&self.containerd_socket)),
            check_config_command: self.check_config_command.clone(),
            verify_command: self.verify_command.clone(),
            host: if self.local {
                Host::Local
            } else {
                Host::Namespaces(host_pid(&self.host_pid)?)
            },
            timeout: Duration::from_secs(self.command_timeout),
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }
}

/// `--host-pid`: a number, or `parent` for this process's parent.
fn host_pid(value: &str) -> Result<u32, String> {
    match value {
        "parent" => Ok(std::os::unix::process::parent_id()),
        v => v
            .parse()
            .map_err(|_| format!("--host-pid must be a PID or \"parent\", not {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_target_a_systemd_node() {
        let cli = Cli::try_parse_from(["wasmpod-node-installer", "install", "--wait"]).unwrap();
        let Command::Install(args) = cli.command else {
            panic!("install expected")
        };
        assert!(args.wait);
        let s = args.settings().unwrap();
        assert_eq!(s.install_dir, PathBuf::from("/opt/wasmpod/bin"));
        assert_eq!(
            s.containerd_config,
            PathBuf::from("/etc/containerd/config.toml")
        );
        assert_eq!(s.restart_command, "systemctl restart containerd");
        assert_eq!(s.host, Host::Namespaces(1));
        assert_eq!(s.systemd_cgroup, SystemdCgroup::Auto);
        assert_eq!(
            s.containerd_socket,
            Some(PathBuf::from("/run/containerd/containerd.sock"))
        );
    }

    #[test]
    fn test_bed_settings_parse() {
        let cli = Cli::try_parse_from([
            "wasmpod-node-installer",
            "install",
            "--containerd-config=/var/lib/wasmpod-cluster/containerd-config.toml",
            "--restart-command=/work/main/e2e/cluster/restart-containerd.sh",
            "--containerd-socket=/run/wasmpod-cluster/containerd.sock",
            "--systemd-cgroup=false",
            "--check-config-command=",
        ])
        .unwrap();
        let Command::Install(args) = cli.command else {
            panic!("install expected")
        };
        let s = args.settings().unwrap();
        assert_eq!(s.systemd_cgroup, SystemdCgroup::Set(false));
        assert!(s.check_config_command.is_empty());
        let parent = InstallArgs {
            host_pid: "parent".into(),
            ..args.clone()
        };
        assert_eq!(
            parent.settings().unwrap().host,
            Host::Namespaces(std::os::unix::process::parent_id())
        );
        let junk = InstallArgs {
            host_pid: "init".into(),
            ..args.clone()
        };
        assert!(junk.settings().unwrap_err().contains("--host-pid"));
        let bad = InstallArgs {
            systemd_cgroup: "yes".into(),
            ..args.clone()
        };
        assert!(bad.settings().unwrap_err().contains("auto, true or false"));
        let relative = InstallArgs {
            install_dir: "bin".into(),
            ..args
        };
        assert!(relative.settings().is_err());
    }
}
