//! Serves a `wasi:http/incoming-handler` component: HTTP/1.1 and h2c on a listener its host
//! bound, a fresh instance per request, bounded concurrency (and, where the host asks, a bound
//! on requests waiting: past it a 503 with `Retry-After`), graceful drain when asked.

use std::convert::Infallible;
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

use crate::guest::{Guest, GuestState};
use crate::settings::Settings;
use crate::traffic::Traffic;

/// What a client refused for a full queue is told to wait before trying again, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

/// What the guest's host was asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Run,
    /// Stop accepting, finish in-flight requests, exit 0.
    Drain,
}

/// An HTTP guest being served.
pub struct HttpServer {
    engine: Engine,
    pre: ProxyPre<GuestState>,
    guest: Arc<Guest>,
    /// One per request handled at once (`WASMPOD_HTTP_MAX_CONCURRENCY`).
    permits: Semaphore,
    /// Requests handled or waiting for a permit, at most: past it, 503. `None`: no bound.
    max_held: Option<u64>,
    traffic: Arc<Traffic>,
}

impl HttpServer {
    pub fn new(
        engine: Engine,
        pre: ProxyPre<GuestState>,
        guest: Arc<Guest>,
        settings: &Settings,
    ) -> Self {
        Self {
            engine,
            pre,
            guest,
            permits: Semaphore::new(settings.http_max_concurrency.get()),
            max_held: None,
            traffic: Arc::default(),
        }
    }

    /// Bounds the requests handled or waiting at once: the one past `max_held` is answered
    /// 503 with `Retry-After` at once instead of waiting. The activator, which serves many
    /// apps in one process, bounds every app this way.
    pub fn with_max_held(mut self, max_held: u64) -> Self {
        self.max_held = Some(max_held);
        self
    }

    /// Counts into `traffic` instead of counters of its own, so a host that replaces an app's
    /// server (a new image) keeps counting on.
    pub fn with_traffic(mut self, traffic: Arc<Traffic>) -> Self {
        self.traffic = traffic;
        self
    }

    /// The server's request counters.
    pub fn traffic(&self) -> Arc<Traffic> {
        self.traffic.clone()
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

    /// Serves one connection its host accepted until the client closes it. For hosts that run
    /// their own accept loop (the activator swaps an app's server under a listener it keeps).
    pub async fn serve_stream(self: Arc<Self>, stream: tokio::net::TcpStream) {
        let _ = stream.set_nodelay(true);
        let svc = hyper::service::service_fn(move |req| {
            let me = self.clone();
            async move { Ok::<_, Infallible>(me.handle(req).await) }
        });
        let builder = auto::Builder::new(TokioExecutor::new());
        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<HyperOutgoingBody> {
        let _counted = self.traffic.begin();
        if let Some(max) = self.max_held
            && self.traffic.in_flight() > max
        {
            let mut resp = error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("too many requests for this app at once (more than {max}); retry shortly"),
            );
            resp.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
            return resp;
        }
        // Acquiring fails only once the semaphore is closed, and nothing closes it.
        let _permit = self.permits.acquire().await.ok();
        match self.call(req).await {
            Ok(resp) => resp,
            Err(e) => {
                self.guest.report(&format!("request failed: {e:?}"));
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the Wasm handler failed; see the container log",
                )
            }
        }
    }

    async fn call(&self, req: Request<Incoming>) -> wasmtime::Result<Response<HyperOutgoingBody>> {
        let mut store = self.guest.component_store(&self.engine);
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
