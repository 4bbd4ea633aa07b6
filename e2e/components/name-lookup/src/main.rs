//! `name-lookup`: a wasi:cli command that resolves each of its arguments with a bare
//! `wasi:sockets/ip-name-lookup` lookup and prints one line per name:
//! `lookup NAME -> ADDR ADDR...` or `lookup NAME -> error CODE` (the WIT name of the error
//! code, e.g. `name-unresolvable`). An argument `connect:IPV4:PORT` opens a TCP connection
//! instead: `connect IPV4:PORT -> ok` or `-> error CODE`. Exits 0 either way. Used to prove a
//! Wasm guest resolves names from its pod's resolv.conf and hosts file, and nothing from the
//! node's, and that the outbound allow-list governs sockets.

use wasi::sockets::instance_network::instance_network;
use wasi::sockets::ip_name_lookup::resolve_addresses;
use wasi::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Network,
};
use wasi::sockets::tcp_create_socket::create_tcp_socket;

fn main() {
    let network = instance_network();
    for name in std::env::args().skip(1) {
        if let Some(target) = name.strip_prefix("connect:") {
            match connect(&network, target) {
                Ok(()) => println!("connect {target} -> ok"),
                Err(code) => println!("connect {target} -> error {}", code_name(code)),
            }
            continue;
        }
        match lookup(&network, &name) {
            Ok(addrs) => println!("lookup {name} -> {}", addrs.join(" ")),
            Err(code) => println!("lookup {name} -> error {}", code_name(code)),
        }
    }
}

fn lookup(network: &Network, name: &str) -> Result<Vec<String>, ErrorCode> {
    let stream = resolve_addresses(network, name)?;
    let mut addrs = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(addr)) => addrs.push(show(addr)),
            Ok(None) => return Ok(addrs),
            Err(ErrorCode::WouldBlock) => stream.subscribe().block(),
            Err(code) => return Err(code),
        }
    }
}

fn connect(network: &Network, target: &str) -> Result<(), ErrorCode> {
    let addr: std::net::SocketAddrV4 = target.parse().map_err(|_| ErrorCode::InvalidArgument)?;
    let [a, b, c, d] = addr.ip().octets();
    let socket = create_tcp_socket(IpAddressFamily::Ipv4)?;
    let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: addr.port(),
        address: (a, b, c, d),
    });
    socket.start_connect(network, remote)?;
    loop {
        match socket.finish_connect() {
            Ok(_streams) => return Ok(()),
            Err(ErrorCode::WouldBlock) => socket.subscribe().block(),
            Err(code) => return Err(code),
        }
    }
}

fn show(addr: IpAddress) -> String {
    match addr {
        IpAddress::Ipv4((a, b, c, d)) => std::net::Ipv4Addr::new(a, b, c, d).to_string(),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h).to_string()
        }
    }
}

fn code_name(code: ErrorCode) -> String {
    match code {
        ErrorCode::NameUnresolvable => "name-unresolvable".into(),
        ErrorCode::TemporaryResolverFailure => "temporary-resolver-failure".into(),
        ErrorCode::PermanentResolverFailure => "permanent-resolver-failure".into(),
        ErrorCode::InvalidArgument => "invalid-argument".into(),
        ErrorCode::AccessDenied => "access-denied".into(),
        ErrorCode::ConnectionRefused => "connection-refused".into(),
        other => format!("{other:?}"),
    }
}
