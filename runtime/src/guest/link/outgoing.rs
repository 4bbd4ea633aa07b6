//! How a guest's outgoing `wasi:http` requests leave: our connector in place of
//! wasmtime-wasi-http's default one, which resolves with getaddrinfo (the node's resolver and
//! /etc/hosts) and waits up to 600 s for each step.
//!
//! Names resolve through the pod's resolver (`guest/dns.rs`); the addresses are tried in order
//! within the connect timeout; TLS verifies the server against the original host name with the
//! guest's roots (`guest/tls.rs`); HTTP/1.1, as the default connector. All of it runs in the
//! task wasmtime-wasi-http spawns on the guest's runtime, so every socket is the pod's.

use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::BodyExt;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::capability::outbound::{AllowList, Protocol};
use crate::guest::context::Reporter;
use crate::guest::dns::{Dns, LookupFailure, resolve};

/// Connecting (TCP and the TLS and HTTP handshakes), unless the guest asks for less.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// From the request sent to the response's head, unless the guest asks for less.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);
/// Between two chunks of the response body, unless the guest asks for less.
pub const BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(60);

/// The connector of one guest instance (clones share the resolver and TLS configuration).
#[derive(Clone)]
pub(crate) struct Outgoing {
    pub(crate) dns: Option<Arc<Dns>>,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    /// Where requests may go, when the guest has an allow-list.
    pub(crate) outbound: Option<Arc<AllowList>>,
    pub(crate) reporter: Reporter,
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for Outgoing {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send> {
        let this = self.clone();
        Box::new(async move { this.send(request, options).await })
    }
}

/// What the guest may ask for, capped by our defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Timeouts {
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl Timeouts {
    fn of(options: Option<RequestOptions>) -> Self {
        let o = options.unwrap_or_default();
        let pick = |asked: Option<Duration>, cap: Duration| asked.map_or(cap, |a| a.min(cap));
        Self {
            connect: pick(o.connect_timeout, CONNECT_TIMEOUT),
            first_byte: pick(o.first_byte_timeout, FIRST_BYTE_TIMEOUT),
            between_bytes: pick(o.between_bytes_timeout, BETWEEN_BYTES_TIMEOUT),
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

impl Outgoing {
    async fn send(
        self,
        mut req: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        let timeouts = Timeouts::of(options);
        let uri = req.uri();
        let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.to_string();
        let use_tls = uri.scheme() == Some(&Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if use_tls { 443 } else { 80 });
        if let Some(list) = &self.outbound {
            let protocol = if use_tls {
                Protocol::Https
            } else {
                Protocol::Http
            };
            if !list.allows_request(protocol, &host, port) {
                let line = AllowList::refusal(protocol, &host, port);
                tracing::warn!("{line}");
                self.reporter.report(&line);
                return Err(Error::HttpRequestDenied);
            }
        }

        let addrs = resolve(self.dns.as_deref(), &host)
            .await
            .map_err(dns_error)?;
        let deadline = Instant::now() + timeouts.connect;
        let tcp = connect(&addrs, port, deadline).await?;
        let stream: Box<dyn Stream> = if use_tls {
            let name = server_name(&host)?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone());
            match timeout_at(deadline, tls.connect(name, tcp)).await {
                Ok(Ok(s)) => Box::new(s),
                Ok(Err(e)) => return Err(tls_error(e)),
                Err(_) => return Err(Error::ConnectionTimeout),
            }
        } else {
            Box::new(tcp)
        };
        let (mut sender, conn) = timeout_at(
            deadline,
            hyper::client::conn::http1::handshake(TokioIo::new(stream)),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;

        // The request line carries only the path: scheme and authority are for proxies.
        let path = uri_path(req.uri());
        *req.uri_mut() = path;

        let mut conn = Some(conn);
        let mut response = pin!(async {
            timeout(timeouts.first_byte, sender.send_request(req))
                .await
                .map_err(|_| Error::ConnectionReadTimeout)?
                .map_err(Error::from)
        });
        // The connection does the I/O: drive it while waiting for the response's head, then
        // hand what is left of it to wasmtime-wasi-http, which drives it while the guest
        // reads the body and stops it when the guest drops the response.
        let head = poll_fn(|cx| {
            if let Poll::Ready(r) = response.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            let Some(c) = conn.as_mut() else {
                return Poll::Pending;
            };
            let done = ready!(Pin::new(c).poll(cx));
            conn = None;
            match done {
                Ok(()) => response.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(Error::from(e))),
            }
        })
        .await?;
        // tokio refuses a zero period; a nanosecond is as good as none.
        let idle = timeouts.between_bytes.max(Duration::from_nanos(1));
        let body = head.map(|incoming| {
            Timed {
                incoming,
                idle: tokio::time::interval_at(Instant::now() + idle, idle),
            }
            .boxed_unsync()
        });
        let io: IoFuture = Box::new(async move {
            match conn {
                Some(c) => c.await.map_err(Error::from),
                None => Ok(()),
            }
        });
        Ok((body, io))
    }
}

/// Tries the addresses in order until one accepts or the deadline passes; the error of the
/// last one tells the guest why.
async fn connect(addrs: &[IpAddr], port: u16, deadline: Instant) -> Result<TcpStream, Error> {
    let mut last = None;
    for ip in addrs {
        let addr = SocketAddr::new(*ip, port);
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => {
                tracing::debug!(%addr, error = %e, "connect failed");
                last = Some(e);
            }
            Err(_) => return Err(Error::ConnectionTimeout),
        }
    }
    Err(last.map_or(Error::DestinationNotFound, connect_error))
}

/// The request's path and query, `/` when it has none.
fn uri_path(uri: &http::Uri) -> http::Uri {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    http::Uri::try_from(path).unwrap_or_else(|_| http::Uri::from_static("/"))
}

/// The name TLS verifies the certificate against: the host as the guest wrote it.
fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ServerName::from(ip));
    }
    Ok(ServerName::try_from(host.to_string())?)
}

/// What `wasi:http` tells the guest when the name did not resolve.
fn dns_error(failure: LookupFailure) -> Error {
    let dns = |rcode: String| Error::DnsError {
        rcode: Some(rcode),
        info_code: None,
    };
    match failure {
        LookupFailure::InvalidName => dns("invalid dns name".into()),
        LookupFailure::NotFound(rcode) => dns(rcode.into()),
        LookupFailure::Timeout => Error::DnsTimeout,
        LookupFailure::Failed(why) => dns(why),
        LookupFailure::NotAllowed => {
            dns("no resolver: the container has no /etc/resolv.conf".into())
        }
    }
}

fn connect_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Error::ConnectionRefused,
        io::ErrorKind::TimedOut => Error::ConnectionTimeout,
        io::ErrorKind::HostUnreachable => Error::DestinationUnavailable,
        io::ErrorKind::NetworkUnreachable | io::ErrorKind::AddrNotAvailable => {
            Error::DestinationIpUnroutable
        }
        _ => Error::Connect(e),
    }
}

/// A certificate the guest's roots do not accept, or an alert from the server, as such;
/// anything else as a TLS protocol error.
fn tls_error(e: io::Error) -> Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(_)) => Error::TlsCertificateError,
        Some(rustls::Error::AlertReceived(alert)) => Error::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => Error::Tls(e),
    }
}

/// The response body, failing when the server goes quiet for longer than the between-bytes
/// timeout.
struct Timed {
    incoming: hyper::body::Incoming,
    idle: tokio::time::Interval,
}

impl http_body::Body for Timed {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.idle.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) if e.is_timeout() => {
                Poll::Ready(Some(Err(Error::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(self.idle.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn guest_timeouts_apply_only_when_shorter_than_ours() {
        assert_eq!(
            Timeouts::of(None),
            Timeouts {
                connect: CONNECT_TIMEOUT,
                first_byte: FIRST_BYTE_TIMEOUT,
                between_bytes: BETWEEN_BYTES_TIMEOUT,
            }
        );
        let asked = Timeouts::of(Some(RequestOptions {
            connect_timeout: Some(Duration::from_secs(2)),
            first_byte_timeout: Some(Duration::from_secs(600)),
            between_bytes_timeout: None,
        }));
        assert_eq!(asked.connect, Duration::from_secs(2));
        assert_eq!(asked.first_byte, FIRST_BYTE_TIMEOUT);
        assert_eq!(asked.between_bytes, BETWEEN_BYTES_TIMEOUT);
    }

    #[test]
    fn failures_to_resolve_and_connect_have_their_wasi_http_codes() {
        assert!(matches!(
            dns_error(LookupFailure::NotFound("NXDOMAIN")),
            Error::DnsError { rcode: Some(r), .. } if r == "NXDOMAIN"
        ));
        assert!(matches!(
            dns_error(LookupFailure::Timeout),
            Error::DnsTimeout
        ));
        assert!(matches!(
            dns_error(LookupFailure::NotAllowed),
            Error::DnsError { .. }
        ));
        for (kind, want) in [
            (io::ErrorKind::ConnectionRefused, "connection refused"),
            (io::ErrorKind::TimedOut, "connection timeout"),
            (io::ErrorKind::HostUnreachable, "destination unavailable"),
            (
                io::ErrorKind::NetworkUnreachable,
                "destination IP address is unroutable",
            ),
        ] {
            assert_eq!(connect_error(kind.into()).to_string(), want, "{kind:?}");
        }
        assert!(matches!(
            connect_error(io::ErrorKind::PermissionDenied.into()),
            Error::Connect(_)
        ));
    }

    #[test]
    fn tls_names_the_host_as_written_and_rejects_bad_certificates_as_such() {
        assert_eq!(
            server_name("api.example").ok(),
            ServerName::try_from("api.example").ok()
        );
        assert_eq!(
            server_name("[::1]").ok(),
            Some(ServerName::from(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])))
        );
        assert!(server_name("bad name").is_err());
        let bad_cert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(matches!(tls_error(bad_cert), Error::TlsCertificateError));
        assert!(matches!(
            tls_error(io::ErrorKind::UnexpectedEof.into()),
            Error::Tls(_)
        ));
    }

    /// HTTPS to a name of the pod's hosts file, served on loopback with a certificate of
    /// the test CA: trusted with the CA bundle, refused as a certificate error without it.
    #[tokio::test]
    async fn https_verifies_the_original_host_against_the_guests_roots() {
        use crate::guest::context::Preopen;
        use crate::guest::tls::client_config;

        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/guest/testdata");
        let port = serve_tls(&testdata).await;
        let dns = Dns::parse(
            b"nameserver 127.0.0.1\n",
            Some(b"127.0.0.1 web.wasmpod.test\n"),
        )
        .map(Arc::new)
        .expect("dns");
        let volume = Preopen {
            host: testdata,
            guest: "/ca".into(),
            read_only: true,
        };
        let trusting = Outgoing {
            dns: Some(dns.clone()),
            tls: client_config(Some(Path::new("/ca/ca.pem")), &[volume]).expect("tls"),
            outbound: None,
            reporter: Reporter::none(),
        };
        let url = format!("https://web.wasmpod.test:{port}/hello?x=1");
        let (resp, io) = trusting.send(get(&url), None).await.expect("response");
        tokio::spawn(Pin::from(io));
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"GET /hello?x=1 over TLS");

        let webpki_only = Outgoing {
            dns: Some(dns),
            tls: client_config(None, &[]).expect("tls"),
            outbound: None,
            reporter: Reporter::none(),
        };
        let err = webpki_only.send(get(&url), None).await.err();
        assert!(matches!(err, Some(Error::TlsCertificateError)), "{err:?}");
    }

    fn get(url: &str) -> http::Request<WasiBody> {
        let body = http_body_util::Empty::<Bytes>::new()
            .map_err(|never: std::convert::Infallible| match never {})
            .boxed_unsync();
        http::Request::get(url).body(body).expect("request")
    }

    /// An HTTPS server on a loopback port with testdata/server.pem (web.wasmpod.test),
    /// answering every request with its method and path.
    async fn serve_tls(testdata: &Path) -> u16 {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let certs = CertificateDer::pem_file_iter(testdata.join("server.pem"))
            .expect("server.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("certs");
        let key = PrivateKeyDer::from_pem_file(testdata.join("server.key")).expect("server.key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(
                        |req: http::Request<hyper::body::Incoming>| async move {
                            let said = format!("{} {} over TLS", req.method(), req.uri());
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(Bytes::from(said)),
                            ))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        port
    }

    #[test]
    fn the_request_line_keeps_only_path_and_query() {
        let uri: http::Uri = "https://api.example:8443/a/b?c=d".parse().expect("uri");
        assert_eq!(uri_path(&uri).to_string(), "/a/b?c=d");
        let uri: http::Uri = "http://api.example".parse().expect("uri");
        assert_eq!(uri_path(&uri).to_string(), "/");
    }
}
