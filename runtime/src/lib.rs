//! The Wasm runtime wasmpod's hosts embed: the shim (`containerd-shim-wasmpod-v1`, which runs
//! a pod's Wasm containers) and the activator (`wasmpod-activator`, which serves an app while
//! it is scaled to zero). Both get the same engine configuration, compile cache, limits and
//! host interfaces, so an app behaves the same whichever host runs it.
//!
//! A host hands the runtime plain values, never its own formats: [`Wasm`] (bytes, digest,
//! world hint), [`GuestConfig`] (args, env, volumes, stdio, memory limit, network) and
//! [`Settings`] (parsed from the `WASMPOD_*` variables of the env). The flow:
//! [`WasmEngine::compile`] → [`Program::prepare`] → [`Guest::new`] → [`run_to_completion`]
//! or [`HttpServer::serve`].
//!
//! Module map:
//! - [`engine`]: the process's one wasmtime `Engine` (pooling allocator, epoch ticker) and
//!   compiling through [`cache`], the node's cache of compiled code;
//! - [`program`]: choosing the world a component runs in and pre-instantiating it;
//! - [`guest`]: one guest's inputs and stores — [`guest::context`] (what it sees),
//!   [`guest::dns`] (the pod's resolver), [`guest::limits`] (memory limit and usage),
//!   `guest::link` (one module per host interface: `ip_name_lookup` and `outgoing` put
//!   names and HTTP through the pod's resolver), [`guest::run`] (running to completion,
//!   exit statuses);
//! - [`http`]: serving `wasi:http/incoming-handler`; [`traffic`]: its request counters and
//!   the activity report scale to zero reads;
//! - [`capability`]: what a container can be granted beyond WASI — key-value buckets and their
//!   backends, config values, the outbound allow-list (linked by `guest::link::keyvalue` and
//!   `guest::link::config`, enforced in `outgoing`, `ip_name_lookup` and the socket check);
//! - [`settings`]: the `WASMPOD_*` settings; [`error`]: the crate's error type.

pub mod cache;
pub mod capability;
pub mod engine;
pub mod error;
pub mod guest;
pub mod http;
pub mod program;
pub mod settings;
pub mod traffic;

pub use cache::CacheOutcome;
pub use capability::Grants;
pub use engine::{Compiled, Wasm, WasmEngine};
pub use error::{Error, Result};
pub use guest::context::{GuestConfig, Preopen};
pub use guest::dns::PodDns;
pub use guest::limits::Usage;
pub use guest::run::{OOM_EXIT_CODE, TRAP_EXIT_CODE, run_to_completion};
pub use guest::{Guest, GuestState, P1State};
pub use http::{HttpServer, Stop};
pub use program::{Program, World};
pub use settings::{SETTING_PREFIX, Settings};
pub use traffic::{Traffic, serve_activity};
