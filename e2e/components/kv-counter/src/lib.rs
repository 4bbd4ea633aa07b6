//! `kv-counter`: a wasi:http/incoming-handler component that drives the host's
//! `wasi:keyvalue@0.2.0-draft` (store, atomics, batch) and `wasi:config@0.2.0-rc.1` imports, so
//! the tests can check the capabilities a pod is granted through plain HTTP requests. The
//! keyvalue/config bindings are generated from `runtime/wit` (world `wasmpod:host/capabilities`),
//! the very WIT the host is built from; wasi:http comes from the `wasi` crate like `hello-http`.
//! `kv-counter-py` answers the same routes the same way, except `/spin` (Rust only).
//!
//! Every body is plain text, one value per line, each line ending in `\n`, except `/get`, which
//! answers the stored bytes exactly. `<bucket>` is the path segment after the route (it may be
//! empty: `/get//k` is key `k` in bucket `""`), `<key>` is the rest of the path (it may contain
//! `/`); neither is percent-decoded; a query string is ignored.
//!
//! - `GET /` (any method): 200 `hello from kv-counter`
//! - `/spin` (any method): loops forever without calling the host: for CPU caps
//! - `POST|GET /increment/<bucket>/<key>`: `atomics.increment` by 1; 200 `<key>=<new value>`
//! - `GET /get/<bucket>/<key>`: 200 with the value's bytes; 404 `missing` when absent
//! - `PUT|POST /set/<bucket>/<key>`: sets the request body; 200 `set <key>`
//! - `DELETE|POST /delete/<bucket>/<key>`: 200 `deleted <key>`
//! - `GET /keys/<bucket>`: 200, every key (all `list-keys` pages), sorted, one per line
//! - `POST|PUT /batch/<bucket>`: the body is one operation per line: `k=v` sets `k` to `v`
//!   (all of them in one `set-many`), `-k` deletes `k` (one `delete-many`, after the
//!   `set-many`), a bare `k` only reads it. Then one `get-many` of every key named, in the
//!   order first named, answers one line per key: `k=v` when present, `k missing` when absent.
//!   An empty body is a 400 `empty batch`.
//! - `GET /config/<key>`: 200 `<value>`; 404 `missing` when unset
//! - `GET /config`: 200, every pair of `get-all` as `k=v`, sorted, one per line
//!
//! A host error is an answer, never a trap: a keyvalue error (from `open` or the operation) is
//! 503 `keyvalue error: no-such-store` | `access-denied` | `other: <message>`, a config error
//! 503 `config error: upstream: <message>` | `io: <message>`. A route without its parameters
//! is 400 `usage: ...`, a wrong method 405 `method not allowed`, any other path 404 `not found`.

mod config;
mod kv;

/// The keyvalue and config imports. In a module of their own because the generated code's
/// top-level module is named `wasi`, like the crate that provides wasi:http.
mod bindings {
    wit_bindgen::generate!({
        world: "wasmpod:host/capabilities",
        path: "../../../runtime/wit",
        // The world's interfaces all live in other packages (wasi:keyvalue, wasi:config);
        // wit-bindgen generates those only when told to.
        generate_all,
    });
}

use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

wasi::http::proxy::export!(KvCounter);

struct KvCounter;

impl wasi::exports::http::incoming_handler::Guest for KvCounter {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let reply = route(request);
        plain_http::respond(response_out, reply.status, &reply.body);
    }
}

/// A response: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// A body of text lines, each ending in a newline.
    pub fn lines<I: IntoIterator<Item = S>, S: AsRef<str>>(status: u16, lines: I) -> Reply {
        let mut body = String::new();
        for line in lines {
            body.push_str(line.as_ref());
            body.push('\n');
        }
        Reply {
            status,
            body: body.into_bytes(),
        }
    }

    /// A one-line body.
    pub fn line(status: u16, line: impl AsRef<str>) -> Reply {
        Reply::lines(status, [line])
    }
}

fn route(request: IncomingRequest) -> Reply {
    let method = request.method();
    let full = request.path_with_query().unwrap_or_else(|| "/".to_string());
    let path = full.split_once('?').map_or(full.as_str(), |(p, _)| p);
    let path = path.strip_prefix('/').unwrap_or(path);
    // `name` is the route, `rest` what follows its slash (None: no slash at all).
    let (name, rest) = match path.split_once('/') {
        Some((name, rest)) => (name, Some(rest)),
        None => (path, None),
    };
    let allowed = |ms: &[Method]| ms.iter().any(|m| same_method(m, &method));
    let bucket_key = |usage: &str| {
        rest.and_then(|r| r.split_once('/'))
            .ok_or_else(|| Reply::line(400, format!("usage: {usage}")))
    };
    let result = match name {
        "" => Ok(Reply::line(200, "hello from kv-counter")),
        "increment" if allowed(&[Method::Post, Method::Get]) => {
            bucket_key("/increment/<bucket>/<key>").map(|(b, k)| kv::increment(b, k))
        }
        "get" if allowed(&[Method::Get]) => {
            bucket_key("/get/<bucket>/<key>").map(|(b, k)| kv::get(b, k))
        }
        "set" if allowed(&[Method::Put, Method::Post]) => bucket_key("/set/<bucket>/<key>")
            .map(|(b, k)| kv::set(b, k, &plain_http::read_body(request))),
        "delete" if allowed(&[Method::Delete, Method::Post]) => {
            bucket_key("/delete/<bucket>/<key>").map(|(b, k)| kv::delete(b, k))
        }
        "keys" if allowed(&[Method::Get]) => rest
            .map(kv::keys)
            .ok_or_else(|| Reply::line(400, "usage: /keys/<bucket>")),
        "batch" if allowed(&[Method::Post, Method::Put]) => rest
            .map(|b| kv::batch(b, &plain_http::read_body(request)))
            .ok_or_else(|| Reply::line(400, "usage: /batch/<bucket>")),
        // Never answers: for the CPU cap of a host that sets one (the activator stops it).
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "config" if allowed(&[Method::Get]) => Ok(match rest {
            Some(key) => config::get(key),
            None => config::get_all(),
        }),
        "increment" | "get" | "set" | "delete" | "keys" | "batch" | "config" => {
            Err(Reply::line(405, "method not allowed"))
        }
        _ => Err(Reply::line(404, "not found")),
    };
    result.unwrap_or_else(|reply| reply)
}

/// `Method` has no `PartialEq`.
fn same_method(a: &Method, b: &Method) -> bool {
    match (a, b) {
        (Method::Other(x), Method::Other(y)) => x == y,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}
