//! The outbound allow-list (`WASMPOD_ALLOWED_OUTBOUND_HOSTS`): where a guest may connect,
//! for outgoing `wasi:http` requests and for `wasi:sockets`. Without a list a guest reaches
//! what its pod reaches; with one, only what a rule allows.
//!
//! A rule is `scheme://host[:port]`:
//! - scheme: `http`, `https` (requests), `tcp`, `udp` (sockets) or `*` (all four);
//! - host: a name (`api.example.com`), `*.example.com` (any name below it, not itself), `*`,
//!   an IP address (`10.1.2.3`, `[fd00::1]`) or a CIDR block (`10.0.0.0/8`, `[fd00::]/8`);
//! - port: a number, a range (`8000-8999`) or `*`; without one, 80 for `http`, 443 for
//!   `https`; `tcp`, `udp` and `*` need one (`:*` for any), so no rule opens every port by
//!   omission.
//!
//! Sockets connect to addresses, not names. A guest gets addresses from our name lookup,
//! which the list also governs (a name may be looked up when a socket rule allows it) and which
//! remembers what it answered, so a rule naming a host allows the addresses it resolved to.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};

/// How a guest wants to reach a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Https,
    Tcp,
    Udp,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Host {
    Any,
    Name(String),
    /// `*.suffix`, stored as `.suffix`.
    Below(String),
    Net(IpAddr, u8),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    /// `None` is `*`.
    scheme: Option<Protocol>,
    host: Host,
    ports: (u16, u16),
}

/// Remembered name lookups, for rules that name hosts; bounded so a guest resolving many names
/// cannot grow it without end (the oldest half is dropped; a socket to a forgotten address
/// needs a new lookup).
const MAX_REMEMBERED: usize = 4096;

/// A parsed list, and the lookups its socket rules depend on.
#[derive(Debug)]
pub struct AllowList {
    rules: Vec<Rule>,
    text: String,
    resolved: Mutex<HashMap<IpAddr, BTreeSet<String>>>,
}

impl PartialEq for AllowList {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
    }
}

impl Eq for AllowList {}

impl Clone for AllowList {
    fn clone(&self) -> Self {
        Self {
            rules: self.rules.clone(),
            text: self.text.clone(),
            resolved: Mutex::default(),
        }
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AllowList {
    /// Parses a comma-separated list; an empty one allows nothing. The error names the rule.
    pub fn parse(list: &str) -> Result<Self, String> {
        let rules = list
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| parse_rule(r).map_err(|why| format!("rule {r:?}: {why}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            rules,
            text: list.trim().to_string(),
            resolved: Mutex::default(),
        })
    }

    /// Whether an HTTP request to `host:port` may go out (`host` as in the URL: a name or an
    /// IP literal, IPv6 with or without brackets).
    pub fn allows_request(&self, protocol: Protocol, host: &str, port: u16) -> bool {
        let host = normalize(host);
        let ip = host.parse::<IpAddr>().ok();
        self.rules.iter().any(|r| {
            r.allows_scheme(protocol)
                && r.allows_port(port)
                && match ip {
                    Some(ip) => r.host.matches_ip(ip),
                    None => r.host.matches_name(&host),
                }
        })
    }

    /// Whether a guest may look `name` up: a socket rule must name it (HTTP requests resolve
    /// names themselves, and need no lookup by the guest).
    pub fn allows_lookup(&self, name: &str) -> bool {
        let name = normalize(name);
        if let Ok(ip) = name.parse::<IpAddr>() {
            return self
                .rules
                .iter()
                .any(|r| r.allows_sockets() && r.host.matches_ip(ip));
        }
        self.rules
            .iter()
            .any(|r| r.allows_sockets() && r.host.matches_name(&name))
    }

    /// Remembers what an allowed lookup answered.
    pub fn remember_lookup(&self, name: &str, addresses: &[IpAddr]) {
        let name = normalize(name);
        let mut resolved = self.resolved.lock().unwrap_or_else(PoisonError::into_inner);
        if resolved.len() + addresses.len() > MAX_REMEMBERED {
            let drop: Vec<IpAddr> = resolved.keys().take(MAX_REMEMBERED / 2).copied().collect();
            for ip in drop {
                resolved.remove(&ip);
            }
        }
        for ip in addresses {
            resolved.entry(*ip).or_default().insert(name.clone());
        }
    }

    /// Whether a socket may connect (or send) to `addr`: a rule allows the address itself, or
    /// a name a lookup resolved to it.
    pub fn allows_socket(&self, protocol: Protocol, addr: SocketAddr) -> bool {
        let names = self
            .resolved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&addr.ip())
            .cloned()
            .unwrap_or_default();
        self.rules.iter().any(|r| {
            r.allows_scheme(protocol)
                && r.allows_port(addr.port())
                && (r.host.matches_ip(addr.ip()) || names.iter().any(|n| r.host.matches_name(n)))
        })
    }

    /// The line a refusal logs: what was refused, and by which setting.
    pub fn refusal(protocol: Protocol, host: &str, port: u16) -> String {
        format!(
            "outbound {} to {host}:{port} refused: not in {}",
            protocol.name(),
            crate::settings::ALLOWED_OUTBOUND_HOSTS
        )
    }
}

impl Rule {
    fn allows_scheme(&self, p: Protocol) -> bool {
        self.scheme.is_none_or(|s| s == p)
    }

    fn allows_sockets(&self) -> bool {
        matches!(
            self.scheme,
            None | Some(Protocol::Tcp) | Some(Protocol::Udp)
        )
    }

    fn allows_port(&self, port: u16) -> bool {
        (self.ports.0..=self.ports.1).contains(&port)
    }
}

impl Host {
    fn matches_name(&self, name: &str) -> bool {
        match self {
            Host::Any => true,
            Host::Name(n) => n == name,
            Host::Below(suffix) => name.len() > suffix.len() && name.ends_with(suffix.as_str()),
            Host::Net(..) => false,
        }
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        match self {
            Host::Any => true,
            Host::Net(net, bits) => in_net(ip, *net, *bits),
            Host::Name(_) | Host::Below(_) => false,
        }
    }
}

/// Lowercase, without a trailing dot or IPv6 brackets.
fn normalize(host: &str) -> String {
    let host = host.trim_end_matches('.');
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.to_ascii_lowercase()
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let ip = match (ip, net) {
        (IpAddr::V6(v6), IpAddr::V4(_)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn parse_rule(rule: &str) -> Result<Rule, String> {
    let (scheme, rest) = rule
        .split_once("://")
        .ok_or("expected scheme://host[:port]")?;
    let scheme = match scheme {
        "*" => None,
        "http" => Some(Protocol::Http),
        "https" => Some(Protocol::Https),
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        other => {
            return Err(format!(
                "unknown scheme {other:?} (http, https, tcp, udp or *)"
            ));
        }
    };
    let (host, port) = split_port(rest)?;
    let ports = match port {
        None => match scheme {
            Some(Protocol::Http) => (80, 80),
            Some(Protocol::Https) => (443, 443),
            _ => return Err("tcp, udp and * rules need a port (:* for any)".into()),
        },
        Some("*") => (0, u16::MAX),
        Some(p) => {
            let (lo, hi) = p.split_once('-').unwrap_or((p, p));
            let num = |s: &str| s.parse::<u16>().map_err(|_| format!("bad port {p:?}"));
            let (lo, hi) = (num(lo)?, num(hi)?);
            if lo > hi {
                return Err(format!("bad port range {p:?}"));
            }
            (lo, hi)
        }
    };
    Ok(Rule {
        scheme,
        host: parse_host(host)?,
        ports,
    })
}

/// Splits `host[:port]`, where host may be `[v6]` or `[v6]/bits`.
fn split_port(rest: &str) -> Result<(&str, Option<&str>), String> {
    if rest.contains('/') && !rest.starts_with('[') {
        // a v4 CIDR: `10.0.0.0/8[:port]`
        return Ok(match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        });
    }
    if rest.starts_with('[') {
        let end = rest.find(']').ok_or("unclosed [")?;
        let after = &rest[end + 1..];
        let (bits, port) = match after.split_once(':') {
            Some((b, p)) => (b, Some(p)),
            None => (after, None),
        };
        let host_len = end + 1 + bits.len();
        return Ok((&rest[..host_len], port));
    }
    Ok(match rest.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    })
}

fn parse_host(host: &str) -> Result<Host, String> {
    if host.is_empty() {
        return Err("no host".into());
    }
    if host == "*" {
        return Ok(Host::Any);
    }
    // `[fd00::]/8` and `[fd00::/8]` alike.
    let unbracketed = match host.strip_prefix('[') {
        Some(rest) => rest.replacen(']', "", 1),
        None => host.to_string(),
    };
    let (addr_unbracketed, bits) = match unbracketed.rsplit_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (unbracketed.as_str(), None),
    };
    if let Ok(ip) = addr_unbracketed.parse::<IpAddr>() {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("bad prefix length /{b}"))?,
        };
        return Ok(Host::Net(ip, bits));
    }
    if bits.is_some() {
        return Err(format!("{host:?} is no CIDR block"));
    }
    let name = normalize(host);
    let (below, plain) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest.to_string()),
        None => (false, name.clone()),
    };
    let valid = !plain.is_empty()
        && plain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(format!(
            "{host:?} is not a host name, *.domain, *, an IP or a CIDR block"
        ));
    }
    Ok(if below {
        Host::Below(format!(".{plain}"))
    } else {
        Host::Name(plain)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> AllowList {
        AllowList::parse(s).expect(s)
    }

    #[test]
    fn requests_match_scheme_host_and_port() {
        let l =
            list("https://api.example.com, http://*.svc.cluster.local:8080-8090, *://10.0.0.0/8:*");
        assert!(l.allows_request(Protocol::Https, "api.example.com", 443));
        assert!(l.allows_request(Protocol::Https, "API.Example.com.", 443));
        assert!(
            !l.allows_request(Protocol::Http, "api.example.com", 80),
            "scheme"
        );
        assert!(
            !l.allows_request(Protocol::Https, "api.example.com", 8443),
            "port"
        );
        assert!(!l.allows_request(Protocol::Https, "evil.example.com", 443));
        assert!(l.allows_request(Protocol::Http, "web.default.svc.cluster.local", 8085));
        assert!(
            !l.allows_request(Protocol::Http, "svc.cluster.local", 8085),
            "not the suffix itself"
        );
        assert!(l.allows_request(Protocol::Http, "10.1.2.3", 1234));
        assert!(!l.allows_request(Protocol::Http, "11.1.2.3", 1234));
        for v6 in ["*://[fd00::]/8:*", "*://[fd00::/8]:*"] {
            assert!(
                list(v6).allows_request(Protocol::Https, "[fd12::1]", 443),
                "{v6}"
            );
        }
        assert!(
            !list("").allows_request(Protocol::Https, "api.example.com", 443),
            "empty = none"
        );
    }

    #[test]
    fn sockets_follow_rules_for_addresses_and_for_names_looked_up() {
        let l = list("tcp://redis.cache:6379, udp://10.96.0.10:53, https://web.example.com");
        assert!(l.allows_lookup("redis.cache"));
        assert!(
            !l.allows_lookup("web.example.com"),
            "http-only names need no guest lookup"
        );
        let redis: SocketAddr = "10.96.5.5:6379".parse().expect("addr");
        assert!(!l.allows_socket(Protocol::Tcp, redis), "not resolved yet");
        l.remember_lookup("redis.cache", &[redis.ip()]);
        assert!(l.allows_socket(Protocol::Tcp, redis));
        assert!(!l.allows_socket(Protocol::Tcp, "10.96.5.5:22".parse().expect("addr")));
        assert!(!l.allows_socket(Protocol::Udp, redis));
        assert!(l.allows_socket(Protocol::Udp, "10.96.0.10:53".parse().expect("addr")));
    }

    #[test]
    fn bad_rules_are_named() {
        for bad in [
            "example.com",
            "ftp://x",
            "http://",
            "http://x:99999",
            "http://x:9-1",
            "tcp://10.0.0.0/33",
            "http://a b",
        ] {
            let err = AllowList::parse(&format!("https://ok.example.com,{bad}")).expect_err(bad);
            assert!(err.contains(bad), "{err}");
        }
    }
}
