//! `containerd-shim-wasmpod-v1`: a containerd runtime shim that runs WebAssembly components
//! (and WASI preview 1 modules) as Kubernetes containers, in-process with wasmtime.
//!
//! The shim is the containerd adapter around the Wasm runtime (the `wasmpod-runtime` crate:
//! engine, compile cache, guest linking and limits, HTTP serving), which a second host (the
//! scale-to-zero activator) is meant to embed as well.
//!
//! Module map: [`cli`] (entry and process model), [`service`] (task API), [`prepare`]
//! (Create), [`container`] (lifecycle), [`source`]/[`content`] (where the Wasm comes from:
//! containerd's content store or the rootfs), [`spec`] (OCI spec → the runtime's inputs),
//! [`stdio`] (the container's FIFOs), [`runc`] (native containers),
//! [`netns`]/[`cgroup`]/[`stats`] (isolation and accounting), [`events`], [`options`],
//! [`logging`].

pub mod cgroup;
pub mod cli;
pub mod container;
pub mod content;
pub mod error;
pub mod events;
pub mod logging;
pub mod netns;
pub mod options;
pub mod pause;
pub mod prepare;
pub mod runc;
pub mod service;
pub mod source;
pub mod spec;
pub mod stats;
pub mod stdio;

pub use error::{Error, Result};
