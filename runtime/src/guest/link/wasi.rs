//! WASI preview 2 (`wasi:cli`, `wasi:filesystem`, `wasi:sockets`, ...) for components, and
//! preview 1 for core modules. What each guest is given comes from its context
//! (`guest/context.rs`); these functions only make the interfaces importable.

use wasmtime::component::Linker;
use wasmtime_wasi::{WasiCtxView, WasiView};

use crate::guest::{GuestState, P1State};

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

pub(super) fn link(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
}

pub(super) fn link_p1(linker: &mut wasmtime::Linker<P1State>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_async(linker, |s| &mut s.ctx)
}
