//! The shim's one error type, and how each variant maps onto a ttrpc status code.

use containerd_shim_protos::ttrpc;

/// Everything that can go wrong inside the shim.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0} not found")]
    NotFound(String),
    #[error("container {0} already exists in this shim")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unimplemented(String),
    /// The container's image or file holds nothing this shim can run; the message says what
    /// was found and what was expected.
    #[error("container {id}: {detail}")]
    NoWasm { id: String, detail: String },
    /// The Wasm runtime refused the container's guest or settings; `what` names what it was
    /// given (the guest's origin, or "settings").
    #[error("container {id}: {what}: {source}")]
    Runtime {
        id: String,
        what: String,
        #[source]
        source: wasmpod_runtime::Error,
    },
    /// A task setting up the Wasm container failed (panicked or was cancelled).
    #[error("container {id}: {detail}")]
    Wasm { id: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("containerd API: {0}")]
    Containerd(String),
    #[error("runc: {0}")]
    Runc(String),
    #[error(transparent)]
    Shim(#[from] containerd_shim::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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

impl From<Error> for ttrpc::Error {
    fn from(e: Error) -> Self {
        use ttrpc::Code;
        let code = match &e {
            Error::NotFound(_) => Code::NOT_FOUND,
            Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
            Error::InvalidArgument(_) | Error::NoWasm { .. } => Code::INVALID_ARGUMENT,
            Error::Runtime { source, .. } if source.is_invalid_input() => Code::INVALID_ARGUMENT,
            Error::Runtime {
                source: wasmpod_runtime::Error::Io { .. },
                ..
            } => Code::INTERNAL,
            Error::FailedPrecondition(_) | Error::Runtime { .. } | Error::Wasm { .. } => {
                Code::FAILED_PRECONDITION
            }
            Error::Unimplemented(_) => Code::UNIMPLEMENTED,
            Error::Io { .. } | Error::Containerd(_) | Error::Runc(_) | Error::Shim(_) => {
                Code::INTERNAL
            }
        };
        ttrpc::Error::RpcStatus(ttrpc::get_status(code, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::ttrpc::Code;

    fn code_of(e: Error) -> Code {
        match ttrpc::Error::from(e) {
            ttrpc::Error::RpcStatus(s) => s.code(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unsupported_calls_are_unimplemented_never_not_found() {
        // containerd reads NotFound as "task gone" and would delete a live container.
        assert_eq!(
            code_of(Error::Unimplemented("exec".into())),
            Code::UNIMPLEMENTED
        );
        assert_eq!(code_of(Error::NotFound("x".into())), Code::NOT_FOUND);
        let e = Error::NoWasm {
            id: "c".into(),
            detail: "found text".into(),
        };
        assert_eq!(code_of(e), Code::INVALID_ARGUMENT);
    }
}
