//! `wasi:config@0.2.0-rc.1`: the container's config values (`WASMPOD_CONFIG_<key>`), read-only.
//! wasmtime-wasi-config serves a static map, which is what these are. A component that imports
//! it with no values granted gets `none` for every key, like an unset variable.

use wasmtime::component::Linker;
use wasmtime_wasi_config::WasiConfig;

use crate::guest::GuestState;

pub(super) fn link(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    wasmtime_wasi_config::add_to_linker(linker, |s: &mut GuestState| {
        WasiConfig::new(&s.capabilities.config)
    })
}
