//! What a guest sees: its args, env, volumes, stdio and network, prepared once per guest so
//! that each instance (one per HTTP request) gets its `WasiCtx` without reopening anything.

use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use wasmtime_wasi::cli::{OutputFile, StdoutStream};
use wasmtime_wasi::filesystem::WasiFilesystemCtx;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiView};

use wasmtime_wasi::sockets::SocketAddrUse;

use crate::capability::outbound::{AllowList, Protocol};
use crate::capability::{Capabilities, Grants};
use crate::error::{Error, Result, chain};
use crate::guest::dns::{Dns, PodDns};
use crate::guest::link::{NameLookup, Outgoing};
use crate::guest::tls;

/// One directory the guest may use.
#[derive(Clone, Debug)]
pub struct Preopen {
    pub host: PathBuf,
    /// Where the guest finds it.
    pub guest: String,
    pub read_only: bool,
}

/// Everything a guest is given, as plain values: what a host turns its own description of a
/// workload (an OCI spec, an app's settings) into. Settings are not in `env`: see
/// [`crate::Settings::from_env`].
#[derive(Debug, Default)]
pub struct GuestConfig {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    /// Where the guest's stdout and stderr go; `None` discards them.
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    /// Cap on the guest's linear memory, in bytes.
    pub memory_limit: Option<u64>,
    /// Cap on the CPU time one instance (one HTTP request) may run Wasm: past it the instance
    /// traps. Counted in epoch ticks the instance was running in, so time spent waiting on I/O
    /// does not count. `None`: no cap (a pod's own cgroup bounds its CPU).
    pub instance_cpu_limit: Option<std::time::Duration>,
    /// Whether the guest may use sockets. Only when its threads run in a network namespace
    /// of its own (the pod's), never on the node's network.
    pub network: bool,
    /// The pod's resolv.conf and hosts file, which name lookups (`wasi:sockets`) and outgoing
    /// `wasi:http` requests use; without them only IP literals resolve.
    pub dns: Option<PodDns>,
    /// Extra CA certificates for outgoing HTTPS (`WASMPOD_CA_BUNDLE`): a PEM file as the
    /// container sees it, found through `preopens`.
    pub ca_bundle: Option<PathBuf>,
    /// Key-value buckets, config values and the outbound allow-list.
    pub grants: Grants,
}

/// Which of the container's volumes holds `path` (as the container sees it): the deepest one.
/// Returns it, its root on the node (canonical) and the rest of the path. Callers check that
/// what they open under the root stays there (symlinks).
pub(crate) fn volume_path<'a>(
    path: &'a Path,
    preopens: &'a [Preopen],
) -> std::result::Result<(&'a Preopen, PathBuf, &'a Path), String> {
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err("not an absolute path without `..`".into());
    }
    let (volume, rest) = preopens
        .iter()
        .filter_map(|p| Some((p, path.strip_prefix(&p.guest).ok()?)))
        .max_by_key(|(p, _)| Path::new(&p.guest).components().count())
        .ok_or("not in any volume of the container")?;
    let root = volume
        .host
        .canonicalize()
        .map_err(|e| format!("volume {}: {e}", volume.guest))?;
    Ok((volume, root, rest))
}

/// The guest's stdio, held until the guest exits.
struct Stdio {
    stdout: Option<OutputFile>,
    stderr: Option<OutputFile>,
}

/// Writes the runtime's own lines about a guest (a refused connection, ...) to its stderr,
/// where `kubectl logs` shows them, for as long as the guest's stdio is open.
#[derive(Clone)]
pub(crate) struct Reporter(Arc<Mutex<Option<Stdio>>>);

impl Reporter {
    /// A reporter that writes nowhere (tests).
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Self(Arc::new(Mutex::new(None)))
    }

    fn stdio(&self) -> MutexGuard<'_, Option<Stdio>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `wasmpod: <line>` to the guest's stderr.
    pub(crate) fn report(&self, line: &str) {
        if let Some(err) = self.stdio().as_ref().and_then(|s| s.stderr.as_ref()) {
            let mut s = err.p2_stream();
            let _ = s.write(bytes::Bytes::from(format!("wasmpod: {line}\n")));
        }
    }
}

/// A guest's view of the world, built once; [`GuestContext::wasi_ctx`] makes each
/// instance's copy.
pub(crate) struct GuestContext {
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The preopened directories, opened once: each instance gets clones of these handles
    /// (reference-counted descriptors), with the permissions they were opened with.
    filesystem: WasiFilesystemCtx,
    /// Emptied when the guest exits: a host's stdio may be a FIFO whose reader waits for
    /// end-of-file (CRI does, before it deletes the task).
    stdio: Reporter,
    network: bool,
    /// Where sockets may connect, when the guest has an allow-list.
    outbound: Option<Arc<AllowList>>,
    capabilities: Arc<Capabilities>,
    /// Name lookups and outgoing HTTP share one resolver, and so its cache.
    name_lookup: NameLookup,
    outgoing: Outgoing,
}

impl GuestContext {
    /// Opens the guest's directories and reads its DNS and TLS configuration. Errors name the
    /// directory or file at fault.
    pub(crate) fn new(config: GuestConfig) -> Result<Self> {
        let mut dirs = WasiCtxBuilder::new();
        for p in &config.preopens {
            let perms = if p.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            dirs.preopened_dir(&p.host, &p.guest, perms)
                .map_err(|e| Error::Io {
                    context: format!("open volume {} for {}", p.host.display(), p.guest),
                    source: std::io::Error::other(chain(&e)),
                })?;
        }
        let filesystem = std::mem::take(dirs.build().filesystem());
        let dns = config
            .dns
            .as_ref()
            .map(Dns::load)
            .transpose()?
            .map(Arc::new);
        let tls = tls::client_config(config.ca_bundle.as_deref(), &config.preopens)?;
        let capabilities = Arc::new(Capabilities::open(
            &config.grants,
            &config.preopens,
            dns.clone(),
        )?);
        let outbound = config.grants.allowed_outbound.map(Arc::new);
        let stdio = Reporter(Arc::new(Mutex::new(Some(Stdio {
            stdout: config.stdout.map(OutputFile::new),
            stderr: config.stderr.map(OutputFile::new),
        }))));
        Ok(Self {
            args: config.args,
            env: config.env,
            filesystem,
            network: config.network,
            name_lookup: NameLookup {
                allowed: config.network,
                dns: dns.clone(),
                outbound: outbound.clone(),
                reporter: stdio.clone(),
            },
            outgoing: Outgoing {
                dns,
                tls,
                outbound: outbound.clone(),
                reporter: stdio.clone(),
            },
            stdio,
            outbound,
            capabilities,
        })
    }

    /// The capabilities every instance shares.
    pub(crate) fn capabilities(&self) -> Arc<Capabilities> {
        self.capabilities.clone()
    }

    /// What an instance's name lookups use.
    pub(crate) fn name_lookup(&self) -> NameLookup {
        self.name_lookup.clone()
    }

    /// The connector of an instance's outgoing HTTP requests.
    pub(crate) fn outgoing(&self) -> Outgoing {
        self.outgoing.clone()
    }

    fn stdio(&self) -> MutexGuard<'_, Option<Stdio>> {
        self.stdio.stdio()
    }

    /// The context of one component instance.
    pub(crate) fn wasi_ctx(&self) -> WasiCtx {
        let mut ctx = self.builder().build();
        *ctx.filesystem() = self.filesystem.clone();
        ctx
    }

    /// The context of one preview 1 module instance.
    pub(crate) fn wasi_p1_ctx(&self) -> WasiP1Ctx {
        let mut ctx = self.builder().build_p1();
        // Preview 1 descriptors are made from these preopens on first use, not when built.
        *WasiView::ctx(&mut ctx).ctx.filesystem() = self.filesystem.clone();
        ctx
    }

    /// Everything but the directories, which the builder could only reopen by path.
    fn builder(&self) -> WasiCtxBuilder {
        let mut b = WasiCtxBuilder::new();
        b.args(&self.args).envs(&self.env);
        if let Some(stdio) = self.stdio().as_ref() {
            if let Some(out) = &stdio.stdout {
                b.stdout(out.clone());
            }
            if let Some(err) = &stdio.stderr {
                b.stderr(err.clone());
            }
        }
        if self.network {
            // wasmtime-wasi allows neither TCP nor UDP unless told: without these a guest's
            // `create-tcp-socket` is `access-denied` however open its network is.
            b.inherit_network().allow_tcp(true).allow_udp(true);
            if let Some(list) = &self.outbound {
                let (list, reporter) = (list.clone(), self.stdio.clone());
                b.socket_addr_check(move |addr, usage| {
                    let allowed = socket_allowed(&list, &reporter, addr, usage);
                    Box::pin(async move { allowed })
                });
            }
        }
        // wasmtime-wasi's lookups would use the node's resolver configuration, not the pod's:
        // ours replace them (`link/ip_name_lookup.rs`); this keeps its own off regardless.
        b.allow_ip_name_lookup(false);
        b
    }

    /// Drops our handles on the guest's stdio (instances still running hold their own
    /// until they are dropped).
    pub(crate) fn close_stdio(&self) {
        self.stdio().take();
    }

    /// Writes a line to the guest's stderr (what `kubectl logs` shows).
    pub(crate) fn report(&self, line: &str) {
        self.stdio.report(line);
    }
}

/// The allow-list's answer for one socket use: connecting and sending out are checked, as is
/// receiving a datagram (only from allowed peers); binding and accepting are the pod's own
/// business.
fn socket_allowed(
    list: &AllowList,
    reporter: &Reporter,
    addr: std::net::SocketAddr,
    usage: SocketAddrUse,
) -> bool {
    let protocol = match usage {
        SocketAddrUse::TcpConnect => Protocol::Tcp,
        SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => Protocol::Udp,
        _ => return true,
    };
    let allowed = list.allows_socket(protocol, addr);
    if !allowed && !matches!(usage, SocketAddrUse::UdpReceive) {
        let line = AllowList::refusal(protocol, &addr.ip().to_string(), addr.port());
        tracing::warn!("{line}");
        reporter.report(&line);
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_open_once_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let preopen = |host: PathBuf| Preopen {
            host,
            guest: "/data".into(),
            read_only: true,
        };
        let ctx = GuestContext::new(GuestConfig {
            preopens: vec![preopen(dir.path().into())],
            ..Default::default()
        })
        .expect("context");
        // Each instance's context shares the descriptors opened once.
        drop([ctx.wasi_ctx(), ctx.wasi_ctx()]);

        let missing = dir.path().join("missing");
        let err = GuestContext::new(GuestConfig {
            preopens: vec![preopen(missing.clone())],
            ..Default::default()
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains(&missing.display().to_string()), "{err}");
    }
}
