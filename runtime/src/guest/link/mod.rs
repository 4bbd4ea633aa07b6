//! The host interfaces a guest can import, one module each. A new interface is a module here
//! (its view of the store data and its `link` function) plus one line in [`COMPONENT`].

mod config;
mod http;
mod ip_name_lookup;
mod keyvalue;
mod outgoing;
mod wasi;

pub(crate) use ip_name_lookup::NameLookup;
pub(crate) use outgoing::Outgoing;

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::error::{Error, Result, chain};
use crate::guest::{GuestState, P1State};

type LinkFn = fn(&mut Linker<GuestState>) -> wasmtime::Result<()>;

/// Every interface linked into component guests (commands and HTTP handlers), in this order:
/// ours of `wasi:sockets/ip-name-lookup` replaces wasmtime-wasi's, so it comes after it.
const COMPONENT: &[(&str, LinkFn)] = &[
    ("wasi p2", wasi::link),
    ("wasi:sockets/ip-name-lookup", ip_name_lookup::link),
    ("wasi:http", http::link),
    ("wasi:keyvalue", keyvalue::link),
    ("wasi:config", config::link),
];

/// A linker with every component interface; a component that imports anything else fails
/// to pre-instantiate, naming the import.
pub(crate) fn component_linker(engine: &Engine) -> Result<Linker<GuestState>> {
    let mut linker = Linker::new(engine);
    for (name, link) in COMPONENT {
        link(&mut linker).map_err(|e| Error::Link {
            what: "link host interfaces",
            detail: format!("{name}: {}", chain(&e)),
        })?;
    }
    Ok(linker)
}

/// A linker for WASI preview 1 core modules, which can import nothing but preview 1.
pub(crate) fn module_linker(engine: &Engine) -> Result<wasmtime::Linker<P1State>> {
    let mut linker = wasmtime::Linker::new(engine);
    wasi::link_p1(&mut linker).map_err(|e| Error::Link {
        what: "link host interfaces",
        detail: format!("wasi p1: {}", chain(&e)),
    })?;
    Ok(linker)
}
