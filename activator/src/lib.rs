//! wasmpod-activator: serves WasmApps while they are scaled to zero.
//!
//! The operator hands an idle app's Service to the activator (an EndpointSlice pointing at the
//! activator's pods, on a port of the app's own) and scales its pods to zero. The activator has
//! the app's component pulled and compiled in advance, with the shim's runtime library (same
//! engine configuration, limits and capability bindings), so the first request after idling is
//! answered in-process at once; the operator sees that request in the activator's report and
//! brings the pods back.
//!
//! Each app has its own guest: its own stores (one per request) with the app's memory limit, a
//! CPU cap per request, a cap on requests held at once, and its own capability grants. The
//! boundary between apps is the Wasm sandbox.
//!
//! Module map: [`apps`] (the served apps and their ports), [`prepare`] (pull, compile, guest),
//! [`pull`] (registries), [`env`] and [`expand`] (the pod's environment as the kubelet makes it),
//! [`logs`] (guest output), [`admin`] (health and the report), [`cli`], [`run`] (wiring).

pub mod admin;
pub mod apps;
pub mod cli;
pub mod env;
mod error;
pub mod expand;
pub mod logs;
pub mod prepare;
pub mod pull;
pub mod run;

pub use error::{Error, Result};
