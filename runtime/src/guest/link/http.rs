//! `wasi:http`: the types and `outgoing-handler` a guest imports. Outgoing requests go
//! through our connector (`outgoing.rs`: the pod's resolver, sane timeouts) from the guest's
//! threads, so from the pod's network namespace. Serving `incoming-handler` is `crate::http`.

use wasmtime::component::Linker;
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::guest::GuestState;

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outgoing,
        }
    }
}

pub(super) fn link(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    // Only the http interfaces: wasi p2 is linked by its own module.
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}
