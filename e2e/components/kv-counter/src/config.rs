//! `/config` and `/config/<key>`: `wasi:config/store` `get-all` and `get`.

use crate::Reply;
use crate::bindings::wasi::config::store::{self, Error};

pub fn get(key: &str) -> Reply {
    match store::get(key) {
        Ok(Some(value)) => Reply::line(200, value),
        Ok(None) => Reply::line(404, "missing"),
        Err(e) => error(&e),
    }
}

pub fn get_all() -> Reply {
    match store::get_all() {
        Ok(mut pairs) => {
            pairs.sort();
            Reply::lines(200, pairs.iter().map(|(k, v)| format!("{k}={v}")))
        }
        Err(e) => error(&e),
    }
}

/// 503: the key may well exist, the host could not say (a source down, an unreadable file).
fn error(e: &Error) -> Reply {
    let what = match e {
        Error::Upstream(m) => format!("upstream: {m}"),
        Error::Io(m) => format!("io: {m}"),
    };
    Reply::line(503, format!("config error: {what}"))
}
