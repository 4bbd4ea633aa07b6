//! The DaemonSet mode: install, label the node, then wait.
//!
//! Uninstall mechanism (the DaemonSet's pods also stop on rollouts, node drains and reboots,
//! which must leave the runtime in place):
//! - **Requested**: the DaemonSet carries the annotation `wasmpod.io/uninstall=true` (set by the
//!   chart's pre-delete hook, `wasmpod-node-installer uninstall-all`, or by hand). Every pod
//!   notices within `--poll-interval`, sets the node label to `removing`, reverts containerd's
//!   config, restarts containerd, deletes the binaries, removes the label, and stays idle (a restarted pod sees the
//!   annotation and does not reinstall).
//! - **On SIGTERM**: the pod reads its DaemonSet. Gone, being deleted (`deletionTimestamp`),
//!   or its own credentials revoked (401/403: the ServiceAccount or RBAC was deleted with it)
//!   means the installation is being removed: revert. Present, or an API error, means a
//!   rollout, drain or reboot: leave everything, exit.
//!
//! - **One node**: the Node carries `wasmpod.io/uninstall=true`. Its pod reverts it the same
//!   way and stays Ready (the node is as asked); taking the annotation off installs again.
//!
//! The label leaves `ready` first on uninstall (no new Wasm pods land on the node) and is
//! deleted last (whoever waits for it to go, the pre-delete hook or the documented `kubectl`
//! loop, then sees a clean node); on install it is set last, once the shim answers.

use std::path::Path;
use std::time::Duration;

use kube::Client;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{ClusterArgs, InstallArgs};
use crate::error::IoContext;
use crate::node::{self, NodeLabel, Owner};
use crate::run::{self, Settings};
use crate::{Error, Result};

/// `install`: installs, labels, and with `--wait` keeps watching (see the module docs).
pub async fn install(args: InstallArgs) -> Result<()> {
    let settings = args.settings().map_err(Error::Config)?;
    let mut term = signal(SignalKind::terminate()).io("install handler", "SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).io("install handler", "SIGINT")?;
    let kube = Kube::connect(&args).await?;
    let _ = std::fs::remove_file(&args.ready_file);

    let mut installed = false;
    // Removed because of the node's own annotation: taking it off installs again.
    let mut removed_for_node = false;
    if kube.owner().await.wants_uninstall() {
        tracing::info!("the DaemonSet asks for an uninstall: not installing");
        remove(&settings, &kube).await?;
    } else if kube.node_asks_uninstall().await == Some(true) {
        tracing::info!("the node asks for an uninstall: not installing");
        remove(&settings, &kube).await?;
        mark_ready(&args.ready_file)?;
        removed_for_node = true;
    } else {
        install_and_label(&settings, &kube).await?;
        mark_ready(&args.ready_file)?;
        installed = true;
    }
    if !args.wait {
        return Ok(());
    }

    let poll = Duration::from_secs(args.poll_interval.max(1));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tokio::time::sleep(poll), if kube.polls() => {
                if installed && kube.owner().await == Owner::UninstallRequested {
                    tracing::info!("uninstall requested through the DaemonSet annotation");
                    let _ = std::fs::remove_file(&args.ready_file);
                    remove(&settings, &kube).await?;
                    installed = false;
                } else if installed && kube.node_asks_uninstall().await == Some(true) {
                    tracing::info!("uninstall requested through the node's annotation");
                    let _ = std::fs::remove_file(&args.ready_file);
                    remove(&settings, &kube).await?;
                    // The node is as asked: this pod is done, not failing.
                    mark_ready(&args.ready_file)?;
                    installed = false;
                    removed_for_node = true;
                } else if removed_for_node
                    && kube.node_asks_uninstall().await == Some(false)
                    && kube.owner().await == Owner::Present
                {
                    tracing::info!("the node's uninstall annotation is gone: installing again");
                    let _ = std::fs::remove_file(&args.ready_file);
                    install_and_label(&settings, &kube).await?;
                    mark_ready(&args.ready_file)?;
                    installed = true;
                    removed_for_node = false;
                }
            }
        }
    }
    if installed {
        match kube.owner().await {
            owner if owner.wants_uninstall() => {
                tracing::info!(
                    ?owner,
                    "stopping because the installation is being removed: uninstalling"
                );
                remove(&settings, &kube).await?;
            }
            owner => tracing::info!(
                ?owner,
                "stopping; the runtime stays installed (rollout, drain or reboot)"
            ),
        }
    }
    Ok(())
}

/// `uninstall`: removes the label, then everything on the node.
pub async fn uninstall(args: InstallArgs) -> Result<()> {
    let settings = args.settings().map_err(Error::Config)?;
    let kube = Kube::connect(&args).await?;
    remove(&settings, &kube).await
}

/// `uninstall-all`: the pre-delete hook. Never fails the uninstall on a timeout (the pods'
/// SIGTERM path still reverts their nodes), but says which nodes did not finish.
pub async fn uninstall_all(args: ClusterArgs) -> Result<()> {
    let (Some(ns), Some(ds)) = (&args.namespace, &args.daemonset) else {
        return Err(Error::Config(
            "uninstall-all needs --namespace and --daemonset".into(),
        ));
    };
    let client = Client::try_default().await?;
    let still = node::uninstall_all(&client, ns, ds, Duration::from_secs(args.timeout)).await?;
    if still.is_empty() {
        tracing::info!("every installer pod removed the runtime from its node");
    } else {
        tracing::warn!(nodes = ?still, "still labelled after the timeout; their pods revert on SIGTERM");
    }
    Ok(())
}

async fn install_and_label(settings: &Settings, kube: &Kube) -> Result<()> {
    let s = settings.clone();
    let result = tokio::task::spawn_blocking(move || run::install(&s))
        .await
        .map_err(|e| Error::Config(format!("install task: {e}")))?;
    match result {
        Ok(report) => {
            tracing::info!(?report, "runtime installed");
            kube.label(NodeLabel::Ready).await
        }
        Err(e) => {
            // The node is not known to work any more: no Wasm pods should be sent there.
            if let Err(le) = kube.label(NodeLabel::Absent).await {
                tracing::warn!(error = %le, "cannot remove the node label");
            }
            Err(e)
        }
    }
}

async fn remove(settings: &Settings, kube: &Kube) -> Result<()> {
    if let Err(e) = kube.label(NodeLabel::Removing).await {
        tracing::warn!(error = %e, "cannot mark the node label removing (already gone with the RBAC?)");
    }
    let s = settings.clone();
    let report = tokio::task::spawn_blocking(move || run::uninstall(&s))
        .await
        .map_err(|e| Error::Config(format!("uninstall task: {e}")))??;
    tracing::info!(?report, "runtime removed from the node");
    if let Err(e) = kube.label(NodeLabel::Absent).await {
        tracing::warn!(error = %e, "cannot remove the node label (already gone with the RBAC?)");
    }
    Ok(())
}

fn mark_ready(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).io("create", dir)?;
    }
    std::fs::write(path, "ready\n").io("write", path)
}

/// The API side, optional: without a node name there is no label, without a DaemonSet no
/// uninstall decisions.
struct Kube {
    client: Option<Client>,
    node: Option<String>,
    daemonset: Option<(String, String)>,
}

impl Kube {
    async fn connect(args: &InstallArgs) -> Result<Self> {
        let daemonset = match (&args.cluster.namespace, &args.cluster.daemonset) {
            (Some(ns), Some(ds)) => Some((ns.clone(), ds.clone())),
            _ => None,
        };
        let client = if args.node_name.is_some() || daemonset.is_some() {
            Some(Client::try_default().await?)
        } else {
            tracing::warn!("no --node-name and no --daemonset: the node is not labelled");
            None
        };
        Ok(Self {
            client,
            node: args.node_name.clone(),
            daemonset,
        })
    }

    /// Whether there is anything to poll: the DaemonSet's or the node's annotation.
    fn polls(&self) -> bool {
        self.client.is_some() && (self.daemonset.is_some() || self.node.is_some())
    }

    /// The node's [`node::UNINSTALL_ANNOTATION`]; `None` without a node or when unreadable.
    async fn node_asks_uninstall(&self) -> Option<bool> {
        match (&self.client, &self.node) {
            (Some(c), Some(n)) => node::node_asks_uninstall(c, n).await,
            _ => None,
        }
    }

    async fn owner(&self) -> Owner {
        match (&self.client, &self.daemonset) {
            (Some(c), Some((ns, ds))) => node::owner(c, ns, ds).await,
            _ => Owner::Present,
        }
    }

    async fn label(&self, state: NodeLabel) -> Result<()> {
        if let (Some(c), Some(n)) = (&self.client, &self.node) {
            node::set_label(c, n, state).await?;
            tracing::info!(node = %n, ?state, "node label {}", node::LABEL);
        }
        Ok(())
    }
}
