//! Name resolution as a container of the guest's pod would see it: the pod's resolv.conf (name
//! servers, search domains, ndots, timeout, attempts) and hosts file, the files CRI bind-mounts
//! at `/etc/resolv.conf` and `/etc/hosts`. Never the node's: getaddrinfo (what wasmtime-wasi and
//! wasmtime-wasi-http would use) reads the shim's, and the node's name server may not even be
//! reachable from the pod's network namespace.
//!
//! One [`Dns`] per guest, shared by all its instances, so its cache serves all of them. The
//! resolver opens its sockets lazily, on the tokio runtime that polls a lookup, and a socket
//! belongs to the network namespace of the thread that creates it: lookups run on the guest's
//! own runtime, whose threads are in the pod's namespace ([`spawn_resolve`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hickory_resolver::config::{
    LookupIpStrategy, ResolveHosts, ResolverOpts, ServerOrderingStrategy,
};
use hickory_resolver::lookup_ip::LookupIp;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::{Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{Hosts, TokioResolver};
use wasmtime_wasi::runtime::AbortOnDropJoinHandle;

use crate::capability::outbound::AllowList;
use crate::error::{Error, Result};

/// Where a pod's name resolution is configured: the host paths of the files a container of the
/// pod sees as `/etc/resolv.conf` and `/etc/hosts` (the sources of those bind mounts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodDns {
    pub resolv_conf: PathBuf,
    pub hosts: Option<PathBuf>,
}

/// Why a name did not resolve, in terms that `wasi:sockets` and `wasi:http` can both express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LookupFailure {
    /// Not a host name or address.
    InvalidName,
    /// The name does not exist (`NXDOMAIN`) or has no address (`NOERROR` without records):
    /// the DNS response code.
    NotFound(&'static str),
    /// No name server answered in time.
    Timeout,
    /// The name servers failed (`SERVFAIL`, `REFUSED`, I/O): worth trying again later.
    Failed(String),
    /// The guest may not resolve names: it has no network, or no resolver configuration.
    NotAllowed,
}

/// A guest's resolver: the pod's hosts file first (as `hosts: files dns` in nsswitch.conf and
/// musl do), then DNS with the pod's search list.
pub(crate) struct Dns {
    resolver: TokioResolver,
    hosts: Hosts,
}

impl Dns {
    /// Reads the pod's files. Errors name the file.
    pub(crate) fn load(pod: &PodDns) -> Result<Self> {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|e| Error::Dns {
                file: path.clone(),
                detail: e.to_string(),
            })
        };
        let resolv_conf = read(&pod.resolv_conf)?;
        let hosts = pod.hosts.as_ref().map(read).transpose()?;
        Self::parse(&resolv_conf, hosts.as_deref()).map_err(|(which, detail)| Error::Dns {
            file: match which {
                File::ResolvConf => pod.resolv_conf.clone(),
                File::Hosts => pod.hosts.clone().unwrap_or_default(),
            },
            detail,
        })
    }

    /// The resolver of a resolv.conf and a hosts file, given as their contents.
    pub(crate) fn parse(resolv_conf: &[u8], hosts: Option<&[u8]>) -> Result<Self, (File, String)> {
        let (config, options) = resolver_config(resolv_conf).map_err(|e| (File::ResolvConf, e))?;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|e| (File::ResolvConf, e.to_string()))?;
        let mut table = Hosts::default();
        if let Some(h) = hosts {
            table
                .read_hosts_conf(h)
                .map_err(|e| (File::Hosts, e.to_string()))?;
        }
        Ok(Self {
            resolver,
            hosts: table,
        })
    }

    /// The addresses of a host name, IPv4 first.
    async fn lookup(&self, name: Name) -> Result<Vec<IpAddr>, LookupFailure> {
        if let Some(ips) = self.in_hosts_file(&name) {
            return Ok(ips);
        }
        let found = self.resolver.lookup_ip(name).await.map_err(failure)?;
        let ips: Vec<IpAddr> = found.iter().collect();
        if ips.is_empty() {
            return Err(LookupFailure::NotFound("NOERROR"));
        }
        Ok(ips)
    }

    /// The pod's hosts file is matched against the name as given, without search domains,
    /// as glibc's `files` source does.
    fn in_hosts_file(&self, name: &Name) -> Option<Vec<IpAddr>> {
        let ips: Vec<IpAddr> = [RecordType::A, RecordType::AAAA]
            .into_iter()
            .filter_map(|t| {
                self.hosts
                    .lookup_static_host(&Query::query(name.clone(), t))
            })
            .flat_map(|l| LookupIp::from(l).iter().collect::<Vec<_>>())
            .collect();
        (!ips.is_empty()).then_some(ips)
    }
}

/// The addresses of `host`, an IP literal or a name, IPv4 first. IP literals need no
/// resolver; names need the pod's (`dns`), and fail as not allowed without one.
pub(crate) async fn resolve(dns: Option<&Dns>, host: &str) -> Result<Vec<IpAddr>, LookupFailure> {
    match parse_host(host)? {
        Host::Ip(ip) => Ok(vec![ip]),
        Host::Name(name) => dns.ok_or(LookupFailure::NotAllowed)?.lookup(name).await,
    }
}

/// [`resolve`] in a task of the calling thread's tokio runtime, which must be the guest's: the
/// resolver's sockets are created where it is polled, so a lookup polled anywhere else would
/// leave from another network namespace. Without a runtime the lookup fails rather than fall
/// back to one (wasmtime-wasi's `spawn` would use a global runtime of its own).
/// With an allow-list, the answer is remembered there, for the guest's socket checks.
pub(crate) fn spawn_resolve(
    dns: Option<Arc<Dns>>,
    host: String,
    remember_in: Option<Arc<AllowList>>,
) -> Result<AbortOnDropJoinHandle<Result<Vec<IpAddr>, LookupFailure>>, LookupFailure> {
    let rt = tokio::runtime::Handle::try_current().map_err(|_| {
        tracing::error!("name lookup outside the guest's runtime refused");
        LookupFailure::Failed("no guest runtime".into())
    })?;
    Ok(rt
        .spawn(async move {
            let answer = resolve(dns.as_deref(), &host).await;
            if let (Some(list), Ok(addrs)) = (&remember_in, &answer) {
                list.remember_lookup(&host, addrs);
            }
            answer
        })
        .into())
}

/// Which of the pod's files is at fault.
#[derive(Debug)]
pub(crate) enum File {
    ResolvConf,
    Hosts,
}

/// glibc's name server when resolv.conf names none (CRI may write such a file for a pod with
/// `dnsPolicy: Default` on a node without one); hickory would refuse the file instead.
const DEFAULT_NAMESERVER: &str = "nameserver 127.0.0.1\n";

/// The resolver configuration of a resolv.conf, with the differences from glibc taken out.
fn resolver_config(
    resolv_conf: &[u8],
) -> std::result::Result<(hickory_resolver::config::ResolverConfig, ResolverOpts), String> {
    let text = String::from_utf8_lossy(resolv_conf);
    let names_a_server = text
        .lines()
        .any(|l| l.split_whitespace().next() == Some("nameserver"));
    let text = if names_a_server {
        text.into_owned()
    } else {
        format!("{text}\n{DEFAULT_NAMESERVER}")
    };
    let (mut config, mut options) =
        hickory_resolver::system_conf::parse_resolv_conf(text).map_err(|e| e.to_string())?;
    // The search list already holds the last `search` or `domain` line, which is all glibc
    // uses. hickory would append its `domain` after the list, and fills that in from the
    // node's host name when the file has no `domain` line.
    config.domain = None;
    // Only the pod's hosts file, never the node's /etc/hosts: see `Dns::in_hosts_file`.
    options.use_hosts_file = ResolveHosts::Never;
    // resolv.conf lists name servers in the order to try them (no `rotate` support).
    options.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
    // Both families, IPv4 first: most pods have no IPv6 route, and connecting goes in order.
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    Ok((config, options))
}

enum Host {
    Ip(IpAddr),
    Name(Name),
}

/// An IP literal (IPv6 with or without brackets) or a host name, internationalized names
/// turned into their ASCII form.
fn parse_host(host: &str) -> Result<Host, LookupFailure> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    if bare != host || host.is_empty() || host == "." {
        return Err(LookupFailure::InvalidName);
    }
    Name::from_utf8(host)
        .map(Host::Name)
        .map_err(|_| LookupFailure::InvalidName)
}

fn failure(e: NetError) -> LookupFailure {
    match &e {
        _ if e.is_nx_domain() => LookupFailure::NotFound("NXDOMAIN"),
        _ if e.is_no_records_found() => LookupFailure::NotFound("NOERROR"),
        NetError::Timeout => LookupFailure::Timeout,
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => LookupFailure::Timeout,
        NetError::Dns(DnsError::ResponseCode(code)) => LookupFailure::Failed(rcode(*code)),
        _ => LookupFailure::Failed(e.to_string()),
    }
}

/// The response code as RFC 1035 and its successors name it (`SERVFAIL`, `REFUSED`, ...).
fn rcode(code: ResponseCode) -> String {
    match code {
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hickory_resolver::net::NoRecords;

    use super::*;

    const KUBE_RESOLV_CONF: &str = "search ns1.svc.cluster.local svc.cluster.local cluster.local\n\
        nameserver 10.96.0.10\n\
        nameserver 10.96.0.11\n\
        options ndots:5 timeout:2 attempts:3\n";

    fn names(v: &[Name]) -> Vec<String> {
        v.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_pods_resolv_conf_gives_its_servers_search_list_and_options() {
        let (config, options) = resolver_config(KUBE_RESOLV_CONF.as_bytes()).expect("parse");
        let servers: Vec<String> = config
            .name_servers
            .iter()
            .map(|s| s.ip.to_string())
            .collect();
        assert_eq!(servers, ["10.96.0.10", "10.96.0.11"]);
        assert_eq!(
            names(&config.search),
            [
                "ns1.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(config.domain, None, "nothing of the node's host name");
        assert_eq!(options.ndots, 5);
        assert_eq!(options.timeout, Duration::from_secs(2));
        assert_eq!(options.attempts, 3);
        assert_eq!(options.use_hosts_file, ResolveHosts::Never);
        assert_eq!(
            options.server_ordering_strategy,
            ServerOrderingStrategy::UserProvidedOrder
        );
    }

    #[test]
    fn the_last_search_or_domain_line_wins_and_no_server_means_loopback() {
        let (config, options) =
            resolver_config(b"search a.example\ndomain b.example\n").expect("parse");
        assert_eq!(names(&config.search), ["b.example"]);
        assert_eq!(config.domain, None);
        assert_eq!(config.name_servers.len(), 1);
        assert_eq!(config.name_servers[0].ip.to_string(), "127.0.0.1");
        // glibc's defaults where the file says nothing.
        assert_eq!(
            (options.ndots, options.timeout, options.attempts),
            (1, Duration::from_secs(5), 2)
        );
    }

    #[test]
    fn hosts_file_names_match_as_given_with_both_families() {
        let dns = Dns::parse(
            KUBE_RESOLV_CONF.as_bytes(),
            Some(b"# kubelet\n127.0.0.1 localhost\n10.1.2.3 web-0 alias\nfd00::3 web-0\n"),
        )
        .expect("parse");
        let lookup = |n: &str| dns.in_hosts_file(&Name::from_utf8(n).expect("name"));
        let web: Vec<String> = lookup("web-0")
            .unwrap_or_default()
            .iter()
            .map(|ip| ip.to_string())
            .collect();
        assert_eq!(web, ["10.1.2.3", "fd00::3"], "IPv4 first");
        assert!(lookup("ALIAS").is_some(), "names are case-insensitive");
        assert!(
            lookup("alias.").is_some(),
            "a trailing dot is the same name"
        );
        assert_eq!(lookup("missing"), None);
        assert_eq!(
            lookup("web-0.ns1.svc.cluster.local"),
            None,
            "no search domains in the hosts file"
        );
    }

    #[test]
    fn ip_literals_need_no_lookup_and_bad_names_are_invalid() {
        for (host, ip) in [
            ("10.0.0.1", "10.0.0.1"),
            ("::1", "::1"),
            ("[fd00::1]", "fd00::1"),
        ] {
            match parse_host(host) {
                Ok(Host::Ip(got)) => assert_eq!(got.to_string(), ip),
                _ => panic!("{host} is an IP literal"),
            }
        }
        for bad in ["", ".", "[web]", "a..b", "bad name", &"x".repeat(64)] {
            assert!(
                matches!(parse_host(bad), Err(LookupFailure::InvalidName)),
                "{bad:?}"
            );
        }
        match parse_host("bücher.example") {
            Ok(Host::Name(n)) => assert_eq!(n.to_ascii(), "xn--bcher-kva.example"),
            _ => panic!("internationalized names resolve by their ASCII form"),
        }
    }

    #[test]
    fn resolver_errors_map_to_what_the_guest_is_told() {
        assert_eq!(failure(NetError::Timeout), LookupFailure::Timeout);
        assert_eq!(
            failure(NetError::Dns(DnsError::ResponseCode(
                ResponseCode::ServFail
            ))),
            LookupFailure::Failed("SERVFAIL".into())
        );
        let io = NetError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(failure(io), LookupFailure::Timeout);
        let query = Query::query(Name::from_utf8("missing.").expect("name"), RecordType::A);
        for (code, said) in [
            (ResponseCode::NXDomain, "NXDOMAIN"),
            (ResponseCode::NoError, "NOERROR"),
        ] {
            let none = NetError::from(NoRecords::new(query.clone(), code));
            assert_eq!(failure(none), LookupFailure::NotFound(said));
        }
    }
}
