//! Serves a `wasi:http/incoming-handler` component: HTTP/1.1 and h2c on the container's port,
//! a fresh instance per request, bounded concurrency, graceful drain on SIGTERM.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use wasmtime::Engine;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::guest::{GuestEnv, GuestState, component_store};

/// Container env var (removed from the guest's env) that sets the listening port.
pub const PORT_ENV: &str = "WASMPOD_HTTP_PORT";
/// Container env var that caps requests handled at once; more wait in line.
pub const CONCURRENCY_ENV: &str = "WASMPOD_HTTP_MAX_CONCURRENCY";
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_CONCURRENCY: usize = 256;

/// What the container was asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Run,
    /// Stop accepting, finish in-flight requests, exit 0.
    Drain,
}

pub struct HttpGuest {
    pub engine: Engine,
    pub pre: ProxyPre<GuestState>,
    pub env: Arc<GuestEnv>,
    permits: Semaphore,
}

/// Listening address for a container, from its env.
pub fn listen_addr(env: &GuestEnv) -> Result<SocketAddr, String> {
    let port = match env.shim_setting(PORT_ENV) {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{PORT_ENV}={p} is not a port number (1-65535)"))?,
    };
    Ok(SocketAddr::from(([0, 0, 0, 0], port)))
}

impl HttpGuest {
    pub fn new(
        engine: Engine,
        pre: ProxyPre<GuestState>,
        env: Arc<GuestEnv>,
    ) -> Result<Self, String> {
        let permits = match env.shim_setting(CONCURRENCY_ENV) {
            None => DEFAULT_CONCURRENCY,
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{CONCURRENCY_ENV}={n} is not a positive number"))?,
        };
        Ok(Self {
            engine,
            pre,
            env,
            permits: Semaphore::new(permits),
        })
    }

    /// Accepts connections until asked to stop, then drains. Returns the exit status.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        mut stop: watch::Receiver<Stop>,
    ) -> i32 {
        let graceful = GracefulShutdown::new();
        let builder = auto::Builder::new(TokioExecutor::new());
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        let me = self.clone();
                        let svc = hyper::service::service_fn(move |req| {
                            let me = me.clone();
                            async move { Ok::<_, Infallible>(me.handle(req).await) }
                        });
                        let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                        let conn = graceful.watch(conn);
                        tokio::spawn(async move {
                            let _ = conn.await;
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                },
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() == Stop::Drain {
                        break;
                    }
                }
            }
        }
        drop(listener);
        graceful.shutdown().await;
        0
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<HyperOutgoingBody> {
        let Ok(_permit) = self.permits.acquire().await else {
            return error_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        };
        match self.call(req).await {
            Ok(resp) => resp,
            Err(e) => {
                self.env.report(&format!("request failed: {e:?}"));
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the Wasm handler failed; see the container log",
                )
            }
        }
    }

    async fn call(&self, req: Request<Incoming>) -> wasmtime::Result<Response<HyperOutgoingBody>> {
        let mut store = component_store(&self.engine, &self.env)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(tx)?;
        let pre = self.pre.clone();
        // The handler may keep streaming the body after it set the response, so it runs in
        // a task of its own.
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        });
        match rx.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(wasmtime::format_err!(
                "the handler answered with error code {code:?}"
            )),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(wasmtime::format_err!(
                    "the handler returned without setting a response"
                )),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(wasmtime::format_err!("the handler task failed: {e}")),
            },
        }
    }
}

fn error_response(status: StatusCode, msg: &str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(format!("{msg}\n")))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp
}
