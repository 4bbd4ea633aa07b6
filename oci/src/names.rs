//! The names containerd and Kubernetes know the runtime by (DESIGN.md "Names"). The shim reports
//! them, the installer writes them into containerd's config, the chart's RuntimeClass uses the
//! handler.

/// containerd's runtime type for the shim (`runtime_type` in its config, `-info`'s name).
pub const RUNTIME_TYPE: &str = "io.containerd.wasmpod.v1";
/// The runtime handler: the key of the runtime table in containerd's config and the
/// RuntimeClass's `handler`.
pub const HANDLER: &str = "wasmpod";
/// The shim's binary name. containerd derives it from [`RUNTIME_TYPE`] when no `runtime_path`
/// is set (`io.containerd.<name>.<version>` → `containerd-shim-<name>-<version>`), so the two
/// must agree.
pub const SHIM_BINARY: &str = "containerd-shim-wasmpod-v1";
/// The runtime setting (a container environment variable) naming the port an HTTP component
/// listens on. The operator sets it from a WasmApp's `port`; the runtime reads it.
pub const HTTP_PORT_SETTING: &str = "WASMPOD_HTTP_PORT";
/// Prefix of the runtime settings that grant a `wasi:keyvalue` bucket: `WASMPOD_KEYVALUE_<bucket>`
/// (the bucket name exactly, see [`CAPABILITY_NAME_PATTERN`]) holds its backend: `memory`,
/// `redis://[user:password@]host[:port][/db]` or `file:<absolute path
/// inside a volume>`. The operator sets them from a WasmApp's `spec.capabilities.keyValue`.
pub const KEYVALUE_SETTING_PREFIX: &str = "WASMPOD_KEYVALUE_";
/// Prefix of the runtime settings that hold `wasi:config/store` values: `WASMPOD_CONFIG_<key>`
/// (the key exactly, see [`CAPABILITY_NAME_PATTERN`]). The operator sets them from a WasmApp's
/// `spec.capabilities.config`.
pub const CONFIG_SETTING_PREFIX: &str = "WASMPOD_CONFIG_";
/// The runtime setting holding the outbound allow-list: comma-separated `scheme://host[:port]`
/// patterns. Unset means unrestricted (pod semantics); set but empty allows nothing. The operator
/// sets it from a WasmApp's `spec.capabilities.allowedOutboundHosts`.
pub const ALLOWED_OUTBOUND_HOSTS_SETTING: &str = "WASMPOD_ALLOWED_OUTBOUND_HOSTS";
/// The runtime setting naming the port on which an HTTP guest also reports its traffic
/// (`GET /activity`, see [`crate::activity`]). The operator sets it, to [`ACTIVITY_PORT`], on the
/// pods of a WasmApp that may scale to zero, and polls it to see the app idle.
pub const ACTIVITY_PORT_SETTING: &str = "WASMPOD_ACTIVITY_PORT";
/// The port the operator gives [`ACTIVITY_PORT_SETTING`].
pub const ACTIVITY_PORT: u16 = 9091;
/// The activator's admin port: health, readiness, metrics and its report of the apps it serves.
pub const ACTIVATOR_ADMIN_PORT: u16 = 9090;
/// The range of ports the operator gives apps on the activator (`status.scaleToZero.activatorPort`).
pub const ACTIVATOR_APP_PORTS: std::ops::RangeInclusive<u16> = 20000..=29999;
/// The rule for bucket names and config keys in those settings, as a regular expression:
/// lower case, so a name can never be taken for one of the kubelet's upper-case Service-link
/// variables.
pub const CAPABILITY_NAME_PATTERN: &str = "^[a-z][a-z0-9_]{0,62}$";

#[cfg(test)]
mod tests {
    use super::*;

    /// containerd's rule for the binary of a runtime type, to check our two names agree.
    fn binary_for(runtime_type: &str) -> Option<String> {
        let rest = runtime_type.strip_prefix("io.containerd.")?;
        let (name, version) = rest.rsplit_once('.')?;
        Some(format!(
            "containerd-shim-{}-{version}",
            name.replace('.', "-")
        ))
    }

    #[test]
    fn shim_binary_is_what_containerd_derives_from_the_runtime_type() {
        assert_eq!(binary_for(RUNTIME_TYPE).as_deref(), Some(SHIM_BINARY));
        assert_eq!(
            binary_for("io.containerd.runc.v2").as_deref(),
            Some("containerd-shim-runc-v2")
        );
    }
}
