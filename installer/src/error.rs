//! The installer's error type.

use std::path::PathBuf;

/// Everything that can stop an install or uninstall.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read, written, renamed or removed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was attempted ("read", "write", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// containerd's config is not valid TOML; the file was left untouched.
    #[error("{path} is not valid TOML, left untouched: {message}")]
    Toml {
        /// The config file.
        path: PathBuf,
        /// The parser's message (line and column included).
        message: String,
    },
    /// The config's layout is one the installer does not know how to edit; left untouched.
    #[error("{path}: {message}; left untouched")]
    UnsupportedConfig {
        /// The config file.
        path: PathBuf,
        /// Why, and what to do about it.
        message: String,
    },
    /// A command run on the host failed or could not start.
    #[error("host command `{command}` {message}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status and output, or why it did not start.
        message: String,
    },
    /// The runtime does not answer after the install.
    #[error("runtime check failed: {0}")]
    Check(String),
    /// A Kubernetes API call failed.
    #[cfg(feature = "cluster")]
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Bad flags or environment.
    #[error("configuration: {0}")]
    Config(String),
}

/// Result with the installer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches an action and a path to an `io::Error`.
pub trait IoContext<T> {
    /// Maps the error to [`Error::Io`].
    fn io(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            action,
            path: path.into(),
            source,
        })
    }
}
