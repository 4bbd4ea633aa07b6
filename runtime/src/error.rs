//! The runtime's one error type. Hosts (the shim, the activator) wrap it with what they know:
//! which container, which image.

use crate::settings::KNOWN_SETTINGS;

/// Everything that can go wrong while setting up or preparing a guest. What goes wrong while
/// a guest runs is its exit status, not an error (see [`crate::guest::run`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A known setting with a value it cannot take.
    #[error("{name}={value} is not {expected}")]
    InvalidSetting {
        name: String,
        value: String,
        expected: &'static str,
    },
    /// A variable with the settings prefix that is no setting: most likely a typo, which
    /// would otherwise be silently ignored.
    #[error("{name}={value} is not a wasmpod setting (known: {known})", known = KNOWN_SETTINGS.join(", "))]
    UnknownSetting { name: String, value: String },
    /// A setting that grants a capability (a bucket, a config key, the outbound allow-list)
    /// with a bad name or value; `detail` never repeats a credential.
    #[error("{name}: {detail}")]
    InvalidGrant { name: String, detail: String },
    /// The component imports an interface the container was not granted.
    #[error("the component imports {interface}, which this container was not granted: {how}")]
    NotGranted { interface: String, how: String },
    /// A granted capability cannot be set up (a file bucket outside the volumes, ...).
    #[error("{what}: {detail}")]
    Capability { what: String, detail: String },
    #[error("create the wasmtime engine: {0}")]
    Engine(String),
    #[error("compile: {0}")]
    Compile(String),
    /// The guest exports nothing this runtime can run; the message lists what it exports.
    #[error("{0}")]
    NothingToRun(String),
    /// The guest imports something we do not provide, or does not match its world.
    #[error("{what}: {detail}")]
    Link { what: &'static str, detail: String },
    /// The pod's resolv.conf or hosts file cannot be read or makes no sense.
    #[error("pod DNS configuration {}: {detail}", file.display())]
    Dns {
        file: std::path::PathBuf,
        detail: String,
    },
    /// `WASMPOD_CA_BUNDLE` names no usable file of CA certificates.
    #[error("{} {path}: {detail}", crate::settings::CA_BUNDLE)]
    CaBundle { path: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the guest's inputs (its settings) are at fault rather than the guest or host.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidSetting { .. }
                | Error::UnknownSetting { .. }
                | Error::CaBundle { .. }
                | Error::InvalidGrant { .. }
                | Error::NotGranted { .. }
                | Error::Capability { .. }
        )
    }
}

/// Adds a context message to I/O errors, the way `anyhow::Context` would.
pub trait IoContext<T> {
    fn io_context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}

/// wasmtime's error with its whole chain of causes, for messages (it is no `std::error::Error`,
/// so it cannot be a `#[source]`).
pub(crate) fn chain(e: &wasmtime::Error) -> String {
    format!("{e:#}")
}
