//! `hello-http`: a wasi:http/incoming-handler component (the wasi:http/proxy world, plus the
//! wasi:cli imports Rust's std brings along).
//!
//! Routes (anything else answers like `/`):
//! - `/`: 200 `hello from wasmpod http\n`
//! - `/env`: 200, one `env K=V` line per environment variable (sorted)
//! - `/sleep?ms=N`: prints `sleeping N ms`, sleeps N ms (wasi monotonic clock), then answers
//!   like `/` (drain tests)
//! - `/print`: prints `handled /print` to stdout and to stderr, then answers like `/`
//! - `/echo`: 200 with the request body
//! - `/status?code=N`: answers with status N (probe tests)
//! - `/trap`: panics (the guest traps mid-request)
//! - `/fetch?url=URL`: `GET URL` with `wasi:http/outgoing-handler` (URL as is, not
//!   percent-decoded); answers with its status and body, or 502 `fetch URL failed: ERROR`
//!   when the request fails (a name that does not resolve, a refused connection)

use std::io::Write as _;

use wasi::http::types::{IncomingRequest, ResponseOutparam};

wasi::http::proxy::export!(HelloHttp);

const HELLO: &str = "hello from wasmpod http\n";

struct HelloHttp;

impl wasi::exports::http::incoming_handler::Guest for HelloHttp {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let full = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = full.split_once('?').unwrap_or((full.as_str(), ""));
        let (status, body): (u16, Vec<u8>) = match path {
            "/env" => {
                let mut vars: Vec<(String, String)> = std::env::vars().collect();
                vars.sort();
                let text: String = vars.iter().map(|(k, v)| format!("env {k}={v}\n")).collect();
                (200, text.into_bytes())
            }
            "/sleep" => {
                let ms: u64 = query_param(query, "ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                // Tests wait for this line to know the request is in flight.
                println!("sleeping {ms} ms");
                wasi::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000))
                    .block();
                (200, HELLO.into())
            }
            "/print" => {
                println!("handled /print");
                eprintln!("handled /print");
                let _ = std::io::stdout().flush();
                (200, HELLO.into())
            }
            "/echo" => (200, plain_http::read_body(request)),
            "/status" => {
                let code = query_param(query, "code")
                    .and_then(|v| v.parse().ok())
                    .filter(|c| (100..=599).contains(c))
                    .unwrap_or(200);
                (code, format!("status {code}\n").into_bytes())
            }
            "/trap" => panic!("wasmpod hello-http: deliberate panic in /trap"),
            "/fetch" => {
                let url = query_param(query, "url").unwrap_or_default();
                wasi_fetch::get(url)
                    .unwrap_or_else(|e| (502, format!("fetch {url} failed: {e}\n").into_bytes()))
            }
            _ => (200, HELLO.into()),
        };
        plain_http::respond(response_out, status, &body);
    }
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}
