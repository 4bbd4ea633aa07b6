//! What an HTTP guest's host counts of its traffic, for scale to zero: requests since the
//! process started and requests under way. The shim serves it on the pod's activity port
//! ([`serve_activity`]); the activator puts every app's into its report. The operator polls
//! both to see an app idle (see `wasmpod_oci::activity`).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use wasmpod_oci::activity::{ACTIVITY_PATH, Activity};

use crate::http::Stop;

/// Counters of one app's requests in one host process.
#[derive(Debug, Default)]
pub struct Traffic {
    requests: AtomicU64,
    in_flight: AtomicU64,
}

impl Traffic {
    /// Counts a request from arrival (including time waiting for a slot) until its response
    /// head is sent or it is refused.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Requests since the process started.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests under way now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn report(&self, instance: &str) -> Activity {
        Activity {
            instance: instance.to_string(),
            requests: self.requests(),
            in_flight: self.in_flight(),
        }
    }
}

/// One request under way; it stops counting as in flight when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Traffic>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A name for this process's counters: a new process gets a new one, so the operator never
/// takes restarted counters for fewer requests.
pub fn instance_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", std::process::id(), now.as_nanos())
}

/// Answers `GET /activity` with the app's [`Activity`] as JSON until asked to stop; anything
/// else is a 404. Plain HTTP/1.1 and h2c, like the app.
pub async fn serve_activity(
    listener: TcpListener,
    traffic: Arc<Traffic>,
    instance: String,
    mut stop: watch::Receiver<Stop>,
) {
    let instance: Arc<str> = instance.into();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (traffic, instance) = (traffic.clone(), instance.clone());
                let svc = hyper::service::service_fn(move |req| {
                    let resp = answer(&req, &traffic, &instance);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() == Stop::Drain {
                    return;
                }
            }
        }
    }
}

fn answer<B>(req: &Request<B>, traffic: &Traffic, instance: &str) -> Response<Full<Bytes>> {
    let (status, body) = if req.method() == Method::GET && req.uri().path() == ACTIVITY_PATH {
        let json = serde_json::to_vec(&traffic.report(instance)).unwrap_or_default();
        (StatusCode::OK, json)
    } else {
        (
            StatusCode::NOT_FOUND,
            format!("only GET {ACTIVITY_PATH} here\n").into_bytes(),
        )
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_and_those_under_way() {
        let t = Arc::new(Traffic::default());
        let a = t.begin();
        let b = t.begin();
        assert_eq!((t.requests(), t.in_flight()), (2, 2));
        drop(a);
        assert_eq!((t.requests(), t.in_flight()), (2, 1));
        drop(b);
        let r = t.report("i1");
        assert_eq!((r.instance.as_str(), r.requests, r.in_flight), ("i1", 2, 0));
    }

    #[test]
    fn answers_activity_and_nothing_else() {
        let t = Traffic::default();
        let get = Request::get(ACTIVITY_PATH).body(()).unwrap();
        assert_eq!(answer(&get, &t, "i").status(), StatusCode::OK);
        let other = Request::get("/").body(()).unwrap();
        assert_eq!(answer(&other, &t, "i").status(), StatusCode::NOT_FOUND);
    }
}
