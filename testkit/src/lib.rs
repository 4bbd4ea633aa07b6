//! What every integration-test tier of wasmpod shares, so that a tier is gated, located and
//! waited on the same way whichever crate it tests.
//!
//! Module map:
//! - [`tier`]: the harness (`harness = false` test binaries). A tier states its prerequisites;
//!   when one is missing every test is reported ignored with the reason (never passed), and
//!   fails instead when the tier's `WASMPOD_REQUIRE_*` variable is `1` or `CI=true`.
//! - [`paths`]: the repository, the cache outside the clone, binaries built by
//!   `e2e/build-deps.sh`, and the tools and components `make components` builds.
//! - [`apiserver`]: a node-less etcd + kube-apiserver (`e2e/cluster/apiserver-only.sh`).
//! - [`wait`]: polling for a condition with a deadline.

pub mod apiserver;
pub mod paths;
pub mod tier;
pub mod wait;

pub use tier::{Test, Tier};
