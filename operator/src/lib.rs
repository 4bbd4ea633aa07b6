//! wasmpod-operator: turns a `WasmApp` into a scaled, health-checked, discoverable Wasm service.
//!
//! Module map: [`crd`] (the API), [`resources`] (pure child builders), [`status`] (pure status
//! logic), [`image`] (registry inspection), [`refs`] (referenced ConfigMaps/Secrets), [`resolve`] (whether the keys capabilities read
//! exist),
//! [`controller`] and [`reconcile`] (the control loop), [`apply`], [`events`], [`metrics`],
//! [`scaling`] (scale to zero: activator ports, traffic, the Serve/Proxy switch),
//! [`server`], [`leader`], [`cli`], [`run`] (wiring), [`watch_backoff`] (each watch's retry delay). Logging is `wasmpod-logging`'s, shared with
//! the node installer.

pub mod apply;
pub mod cli;
pub mod controller;
pub mod crd;
mod error;
pub mod events;
pub mod image;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod refs;
pub mod resolve;
pub mod resources;
pub mod run;
pub mod scaling;
pub mod server;
pub mod status;
pub mod watch_backoff;

pub use error::{Error, Result};
