//! Puts the threads that run a container's guest into the pod's network namespace.
//!
//! A network namespace is a per-thread property, and every socket belongs to the namespace of
//! the thread that created it. So each Wasm container gets its own small tokio runtime whose
//! threads all join the pod's namespace when they start: the HTTP listener, guest sockets and
//! outgoing requests then live on the pod IP, never on the node's network.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, IoContext, Result};

/// Which network namespace a container's threads use.
#[derive(Clone, Debug)]
pub enum NetNs {
    /// The node's namespace: the spec asks for host networking.
    Host,
    /// A namespace held open by this file descriptor.
    Joined(Arc<OwnedFd>),
}

impl NetNs {
    /// Resolves the spec's network namespace: a path is joined (pods: the sandbox's
    /// namespace); an entry without a path gets a fresh, empty namespace, as runc would do;
    /// no entry at all means host networking.
    pub fn from_spec(spec: &Spec) -> Result<Self> {
        let entry = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .and_then(|ns| ns.iter().find(|n| n.typ() == LinuxNamespaceType::Network));
        let Some(entry) = entry else {
            return Ok(NetNs::Host);
        };
        match entry.path() {
            Some(path) => {
                let file = File::open(path)
                    .io_context(|| format!("open network namespace {}", path.display()))?;
                Ok(NetNs::Joined(Arc::new(file.into())))
            }
            None => Ok(NetNs::Joined(Arc::new(new_netns()?))),
        }
    }

    /// Moves the calling thread into this namespace.
    pub fn enter_current_thread(&self) -> std::io::Result<()> {
        match self {
            NetNs::Host => Ok(()),
            NetNs::Joined(fd) => {
                // SAFETY: setns only reads the fd, which `fd` keeps open.
                let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            }
        }
    }
}

/// Creates a new network namespace on a throwaway thread (so the caller's thread keeps its
/// own) and returns a descriptor that keeps it alive.
fn new_netns() -> Result<OwnedFd> {
    std::thread::spawn(|| -> std::io::Result<OwnedFd> {
        // SAFETY: unshare affects only this short-lived thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let file = File::open("/proc/thread-self/ns/net")?;
        Ok(file.into())
    })
    .join()
    .map_err(|_| Error::InvalidArgument("creating a network namespace panicked".into()))?
    .io_context(|| "create a network namespace for the container".into())
}
