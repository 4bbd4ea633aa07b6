//! `http-get`: a wasi:cli command that fetches the URL in env `TARGET_URL` with
//! wasi:http/outgoing-handler and prints the status line and body; exits 1 on failure.
//! Used to prove a Wasm pod reaches a container pod.

use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, Method, OutgoingRequest, Scheme};

fn main() {
    let url = std::env::var("TARGET_URL").unwrap_or_default();
    match fetch(&url) {
        Ok((status, body)) => {
            println!("GET {url} -> {status}");
            print!("{body}");
        }
        Err(e) => {
            eprintln!("GET {url} failed: {e}");
            std::process::exit(1);
        }
    }
}

fn fetch(url: &str) -> Result<(u16, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not an absolute URL: {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let req = OutgoingRequest::new(Fields::new());
    req.set_method(&Method::Get).map_err(|_| "method")?;
    req.set_scheme(Some(&if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    }))
    .map_err(|_| "scheme")?;
    req.set_authority(Some(authority))
        .map_err(|_| "authority")?;
    req.set_path_with_query(Some(path)).map_err(|_| "path")?;
    let pending = outgoing_handler::handle(req, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let resp = pending
        .get()
        .ok_or("no response")?
        .map_err(|_| "response taken twice")?
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status();
    let body = resp.consume().map_err(|_| "body")?;
    let stream = body.stream().map_err(|_| "stream")?;
    let mut bytes = Vec::new();
    // The stream ends with a "closed" error.
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        bytes.extend_from_slice(&chunk);
    }
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
