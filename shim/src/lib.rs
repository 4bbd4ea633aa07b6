//! `containerd-shim-wasmpod-v1`: a containerd runtime shim that runs WebAssembly components
//! (and WASI preview 1 modules) as Kubernetes containers, in-process with wasmtime.
//!
//! Module map: [`cli`] (entry and process model), [`service`] (task API), [`prepare`]
//! (Create), [`container`] (lifecycle), [`source`]/[`content`] (where the Wasm comes from),
//! [`engine`]/[`cache`] (compiling), [`guest`]/[`http`] (running), [`runc`] (native
//! containers), [`netns`]/[`cgroup`]/[`stats`] (isolation and accounting).

pub mod cache;
pub mod cgroup;
pub mod cli;
pub mod container;
pub mod content;
pub mod engine;
pub mod error;
pub mod events;
pub mod guest;
pub mod http;
pub mod logging;
pub mod netns;
pub mod options;
pub mod prepare;
pub mod runc;
pub mod service;
pub mod source;
pub mod stats;
pub mod stdio;

pub use error::{Error, Result};
