//! One home for what wasmpod knows about WebAssembly in OCI images, shared by the shim (which
//! runs what containerd pulled), the operator (which validates the image in its registry before
//! any pod exists) and the test packer. Keeping the rules here means the operator's
//! `ImageValid=True` is a statement about the very manifest and layer the shim will run.
//!
//! - [`media_types`]: the Wasm layer, artifact config, index and image config media types;
//! - [`artifact`]: reading the CNCF Wasm artifact config into a component kind and world;
//! - [`index`]: the one rule for choosing an entry of an image index;
//! - [`layers`]: which layer of a manifest holds the Wasm, or that the rootfs does;
//! - [`names`]: the runtime type, handler and shim binary name containerd knows us by;
//! - [`activity`]: the traffic reports the pods and the activator give the operator for scale to
//!   zero;
//! - `oci_spec_descriptors` (feature `oci-spec`): the inputs above from `oci-spec` descriptors,
//!   as the shim reads what containerd pulled.
//!
//! Everything is pure: callers do the I/O and convert their own descriptor types to the small
//! structs here (or, with `oci-spec` types, use the conversion of the feature of that name).

pub mod activity;
pub mod artifact;
mod error;
pub mod index;
pub mod layers;
pub mod media_types;
pub mod names;
#[cfg(feature = "oci-spec")]
pub mod oci_spec_descriptors;

pub use error::{Error, Result};
