//! The keyvalue routes: `wasi:keyvalue/store`, `atomics` and `batch` on one bucket per
//! request (opened per request, as a handler instance lives for one request anyway).

use crate::Reply;
use crate::bindings::wasi::keyvalue::store::{self, Error};
use crate::bindings::wasi::keyvalue::{atomics, batch as kv_batch};

/// A host could hand out cursors forever; a test component must still answer.
const MAX_PAGES: usize = 10_000;

pub fn increment(bucket: &str, key: &str) -> Reply {
    answer(|| {
        let n = atomics::increment(&store::open(bucket)?, key, 1)?;
        Ok(Reply::line(200, format!("{key}={n}")))
    })
}

pub fn get(bucket: &str, key: &str) -> Reply {
    answer(|| {
        Ok(match store::open(bucket)?.get(key)? {
            Some(value) => Reply {
                status: 200,
                body: value,
            },
            None => Reply::line(404, "missing"),
        })
    })
}

pub fn set(bucket: &str, key: &str, value: &[u8]) -> Reply {
    answer(|| {
        store::open(bucket)?.set(key, value)?;
        Ok(Reply::line(200, format!("set {key}")))
    })
}

pub fn delete(bucket: &str, key: &str) -> Reply {
    answer(|| {
        store::open(bucket)?.delete(key)?;
        Ok(Reply::line(200, format!("deleted {key}")))
    })
}

pub fn keys(bucket: &str) -> Reply {
    answer(|| {
        let b = store::open(bucket)?;
        let mut keys = Vec::new();
        let mut cursor = None;
        for _ in 0..MAX_PAGES {
            let page = b.list_keys(cursor)?;
            keys.extend(page.keys);
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        if cursor.is_some() {
            return Err(Error::Other(format!(
                "list-keys gave more than {MAX_PAGES} pages"
            )));
        }
        keys.sort();
        keys.dedup();
        Ok(Reply::lines(200, keys))
    })
}

/// See the crate doc for the protocol.
pub fn batch(bucket: &str, body: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(body);
    let mut sets: Vec<(String, Vec<u8>)> = Vec::new();
    let mut deletes: Vec<String> = Vec::new();
    let mut named: Vec<String> = Vec::new();
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        let key = if let Some((k, v)) = line.split_once('=') {
            sets.push((k.to_string(), v.as_bytes().to_vec()));
            k
        } else if let Some(k) = line.strip_prefix('-') {
            deletes.push(k.to_string());
            k
        } else {
            line
        };
        if !line.is_empty() && !named.iter().any(|n| n == key) {
            named.push(key.to_string());
        }
    }
    if named.is_empty() {
        return Reply::line(400, "empty batch");
    }
    answer(|| {
        let b = store::open(bucket)?;
        if !sets.is_empty() {
            kv_batch::set_many(&b, &sets)?;
        }
        if !deletes.is_empty() {
            kv_batch::delete_many(&b, &deletes)?;
        }
        let got = kv_batch::get_many(&b, &named)?;
        if got.len() != named.len() {
            let n = got.len();
            return Err(Error::Other(format!(
                "get-many: {n} results for {} keys",
                named.len()
            )));
        }
        let lines = named.iter().zip(got).map(|(asked, pair)| match pair {
            // The key the host returns, not the one asked for: a test sees a mix-up.
            Some((k, v)) => format!("{k}={}", String::from_utf8_lossy(&v)),
            None => format!("{asked} missing"),
        });
        Ok(Reply::lines(200, lines))
    })
}

/// Runs `op`; a host error is a 503 that names it (never a trap: the tests check that a
/// denied or unknown bucket is reported, not that the guest dies).
fn answer(op: impl FnOnce() -> Result<Reply, Error>) -> Reply {
    op().unwrap_or_else(|e| Reply::line(503, format!("keyvalue error: {}", describe(&e))))
}

fn describe(e: &Error) -> String {
    match e {
        Error::NoSuchStore => "no-such-store".to_string(),
        Error::AccessDenied => "access-denied".to_string(),
        Error::Other(m) => format!("other: {m}"),
    }
}
