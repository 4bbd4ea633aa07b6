//! A small HTTP/1.1 GET of a JSON document, for the activity poller: one connection per request
//! (pods and activator endpoints come and go), with a deadline on the whole exchange.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Reports are small; anything bigger is not one.
const MAX_BODY: usize = 4 << 20;

/// `GET http://{addr}{path}`, decoded as `T`, within `timeout`.
pub async fn get_json<T: DeserializeOwned>(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<T> {
    let url = format!("http://{addr}{path}");
    let fail = |message: String| Error::Poll {
        url: url.clone(),
        message,
    };
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| fail(format!("connect: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(format!("handshake: {e}")))?;
        // The connection task ends with the exchange (the sender is dropped) or the deadline.
        let conn = tokio::spawn(conn);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, addr.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(|e| fail(format!("request: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| fail(format!("request: {e}")))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| fail(format!("body: {e}")))?
            .to_bytes();
        drop(sender);
        conn.abort();
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}")));
        }
        serde_json::from_slice(&body).map_err(|e| fail(format!("not a report: {e}")))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(fail(format!("no answer within {timeout:?}"))),
    }
}
