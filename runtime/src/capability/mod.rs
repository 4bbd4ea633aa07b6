//! What a container can be granted beyond WASI, and what backs it: key-value buckets
//! ([`keyvalue`]), runtime config values (`wasi:config`, a plain map) and the outbound
//! allow-list ([`outbound`]). A component reaches nothing it was not granted: opening a bucket
//! that was not granted is `no-such-store`, a host outside the list is refused, and a component
//! that imports `wasi:keyvalue` without any bucket granted fails at create, naming the import.
//!
//! Grants come from the container's settings (`WASMPOD_KEYVALUE_<bucket>`,
//! `WASMPOD_CONFIG_<key>`, `WASMPOD_ALLOWED_OUTBOUND_HOSTS`: see [`crate::settings`]), which
//! the guest never sees, so a Redis password or a Secret-backed config value reaches the
//! runtime, not the guest's env or files. Config values are the guest's through `wasi:config`
//! only.

pub mod keyvalue;
pub mod outbound;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use wasmtime_wasi_config::WasiConfigVariables;

use crate::error::{Error, Result};
use crate::guest::context::Preopen;
use crate::guest::dns::Dns;
use keyvalue::{Backend, KeyValueStore};
use outbound::AllowList;

/// What one container is granted, as plain values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Bucket name → its backend.
    pub buckets: BTreeMap<String, Backend>,
    /// `wasi:config` key → value.
    pub config: BTreeMap<String, String>,
    /// `None`: the pod's reach (no list); `Some`: only what the list allows.
    pub allowed_outbound: Option<AllowList>,
}

/// Shows config keys, never their values (they may come from Secrets).
impl fmt::Debug for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grants")
            .field("buckets", &self.buckets)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field(
                "allowed_outbound",
                &self.allowed_outbound.as_ref().map(ToString::to_string),
            )
            .finish()
    }
}

impl Grants {
    /// Fails when a component imports an interface it was not granted. `imports` are the
    /// component's import names (`wasi:keyvalue/store@0.2.0-draft`, ...).
    pub fn check_imports<'a>(&self, imports: impl IntoIterator<Item = &'a str>) -> Result<()> {
        for import in imports {
            if import.starts_with("wasi:keyvalue/") && self.buckets.is_empty() {
                return Err(Error::NotGranted {
                    interface: import.to_string(),
                    how: format!(
                        "grant a bucket with {}<bucket>=memory|redis://host:port|file:/dir (a WasmApp's spec.capabilities.keyValue)",
                        crate::settings::KEYVALUE_PREFIX
                    ),
                });
            }
        }
        Ok(())
    }
}

/// A guest's granted capabilities, ready: shared by all its instances, so the in-memory
/// buckets and the Redis connections are the container's, not a request's.
pub(crate) struct Capabilities {
    pub(crate) buckets: BTreeMap<String, Arc<dyn KeyValueStore>>,
    pub(crate) config: WasiConfigVariables,
}

impl Capabilities {
    pub(crate) fn open(
        grants: &Grants,
        preopens: &[Preopen],
        dns: Option<Arc<Dns>>,
    ) -> Result<Self> {
        Ok(Self {
            buckets: keyvalue::open_buckets(&grants.buckets, preopens, dns)?,
            config: grants.config.iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyvalue_imports_need_a_bucket_and_config_never_shows_values() {
        let none = Grants::default();
        let err = none
            .check_imports(["wasi:http/types@0.2.6", "wasi:keyvalue/store@0.2.0-draft"])
            .expect_err("not granted");
        assert!(
            err.to_string().contains("wasi:keyvalue/store@0.2.0-draft"),
            "{err}"
        );
        assert!(none.check_imports(["wasi:config/store@0.2.0-rc.1"]).is_ok());

        let granted = Grants {
            buckets: BTreeMap::from([("default".to_string(), Backend::Memory)]),
            config: BTreeMap::from([("token".to_string(), "s3cret".to_string())]),
            allowed_outbound: None,
        };
        assert!(
            granted
                .check_imports(["wasi:keyvalue/atomics@0.2.0-draft"])
                .is_ok()
        );
        assert!(!format!("{granted:?}").contains("s3cret"));
    }
}
