//! Which world a compiled guest runs in, and linking it once so each instance is cheap.

use wasmtime::component::Component;
use wasmtime::{Engine, InstancePre, Module};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::capability::Grants;
use crate::engine::Compiled;
use crate::error::{Error, Result, chain};
use crate::guest::link;
use crate::guest::{GuestState, P1State};

/// The world a component runs in: what its host expects it to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum World {
    /// `wasi:cli/command`: run `wasi:cli/run` to completion.
    Command,
    /// `wasi:http/proxy`: serve `wasi:http/incoming-handler`.
    Http,
}

/// A guest linked and pre-instantiated, ready to run.
pub enum Program {
    Command(CommandPre<GuestState>),
    Http(ProxyPre<GuestState>),
    P1(InstancePre<P1State>),
}

impl Program {
    pub fn kind(&self) -> &'static str {
        match self {
            Program::Command(_) => "wasi:cli command component",
            Program::Http(_) => "wasi:http component",
            Program::P1(_) => "WASI preview 1 module",
        }
    }

    /// Picks the world the guest is run in and links it. `hint` is what the image's metadata
    /// says; the component's exports decide when they contradict it. Errors say what the
    /// guest exports or imports that we cannot serve, or imports but was not granted.
    pub fn prepare(
        engine: &Engine,
        compiled: Compiled,
        hint: Option<World>,
        grants: &Grants,
    ) -> Result<Self> {
        match compiled {
            Compiled::Component(c) => {
                let imports: Vec<String> = c
                    .component_type()
                    .imports(engine)
                    .map(|(name, _)| name.to_string())
                    .collect();
                grants.check_imports(imports.iter().map(String::as_str))?;
                prepare_component(engine, c, hint)
            }
            Compiled::Module(m) => prepare_module(engine, m),
        }
    }
}

fn prepare_component(engine: &Engine, c: Component, hint: Option<World>) -> Result<Program> {
    let exports: Vec<String> = c
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let has = |prefix: &str| exports.iter().any(|e| e.starts_with(prefix));
    let (http, cli) = (has("wasi:http/incoming-handler@"), has("wasi:cli/run@"));
    let world = match (hint, http, cli) {
        (Some(World::Http), true, _) | (None, true, _) => World::Http,
        (Some(World::Command), _, true) | (_, false, true) => World::Command,
        (Some(World::Command), true, false) => World::Http,
        _ => {
            return Err(Error::NothingToRun(format!(
                "the component exports neither wasi:cli/run nor wasi:http/incoming-handler, so there is nothing to run; its exports are [{}]",
                exports.join(", ")
            )));
        }
    };
    let pre = link::component_linker(engine)?
        .instantiate_pre(&c)
        .map_err(|e| Error::Link {
            what: "cannot link the component",
            detail: chain(&e),
        })?;
    match world {
        World::Http => ProxyPre::new(pre).map(Program::Http),
        World::Command => CommandPre::new(pre).map(Program::Command),
    }
    .map_err(|e| Error::Link {
        what: "the component does not match its world",
        detail: chain(&e),
    })
}

fn prepare_module(engine: &Engine, m: Module) -> Result<Program> {
    if m.get_export("_start").is_none() {
        let exports: Vec<&str> = m.exports().map(|e| e.name()).collect();
        return Err(Error::NothingToRun(format!(
            "the core module has no _start export (a WASI preview 1 command); its exports are [{}]",
            exports.join(", ")
        )));
    }
    link::module_linker(engine)?
        .instantiate_pre(&m)
        .map(Program::P1)
        .map_err(|e| Error::Link {
            what: "cannot link the module",
            detail: chain(&e),
        })
}
