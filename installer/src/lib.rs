//! wasmpod-node-installer: puts the wasmpod shim on a Kubernetes node and registers it with
//! containerd, then labels the node `wasmpod.io/runtime=ready`; removing its DaemonSet undoes
//! all of it. See `installer/README.md` for flags, the chart for how it runs.
//!
//! Modules: [`shim`] (versioned binary + atomic symlink), [`config`] (TOML merge of containerd's
//! config), [`template`] (k3s/RKE2 config templates), [`host`] (commands in the host's
//! namespaces), [`run`] (the node-local install/uninstall), [`node`] (label, DaemonSet state),
//! [`daemon`] (the DaemonSet's lifecycle), [`cli`]. The last three are the Kubernetes side, behind
//! the default feature `cluster`.

#[cfg(feature = "cluster")]
pub mod cli;
pub mod config;
#[cfg(feature = "cluster")]
pub mod daemon;
mod error;
pub mod host;
#[cfg(feature = "cluster")]
pub mod node;
pub mod run;
pub mod shim;
pub mod template;

pub use error::{Error, IoContext, Result};
