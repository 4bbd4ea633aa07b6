//! The activator's error type. Every error names the app it is about and what failed, since an
//! app's error ends up in the operator's `ScaledToZero` condition.

/// What can go wrong preparing or serving an app.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image {image}: {detail}")]
    Image { image: String, detail: String },
    #[error("{field}: {detail}")]
    Env { field: String, detail: String },
    #[error("the Wasm runtime: {0}")]
    Runtime(#[from] wasmpod_runtime::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds what was being done to an I/O error.
pub trait IoContext<T> {
    fn io_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}
