//! The runtime's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the runtime module.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A file or directory operation failed.
    #[error("failed to {op} {path}: {source}")]
    Io {
        /// What was being done (e.g. "read", "create").
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("failed to {op}: {source}")]
    Sys {
        /// What was being done.
        op: String,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// The configuration asks for something invalid or that this host cannot apply.
    #[error("invalid container configuration: {0}")]
    InvalidConfig(String),
    /// The container process could not be started (Docker-like message and exit code).
    #[error("{message}")]
    StartFailed {
        /// A Docker-like message, e.g. `exec: "foo": executable file not found in $PATH`.
        message: String,
        /// 127 when the executable was not found, 126 otherwise.
        exit_code: i32,
    },
    /// A JSON file in the container directory could not be (de)serialized.
    #[error("failed to parse {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A cgroup operation failed.
    #[error("cgroup {path}: failed to {op}: {source}")]
    Cgroup {
        /// What was being done.
        op: String,
        /// The cgroup file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The container is not in a state that allows the operation.
    #[error("container {id} is {state}: {what}")]
    WrongState {
        /// Container id.
        id: String,
        /// Its current state.
        state: String,
        /// What was refused.
        what: String,
    },
    /// The shim misbehaved or the protocol was violated.
    #[error("shim: {0}")]
    Shim(String),
    /// Building the seccomp filter failed.
    #[error("failed to build seccomp filter: {0}")]
    Seccomp(String),
}

/// Result alias for the runtime.
pub type Result<T> = std::result::Result<T, RuntimeError>;

impl RuntimeError {
    /// Builds an [`RuntimeError::Io`] for `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Builds an [`RuntimeError::Sys`].
    pub fn sys(op: impl Into<String>, source: nix::Error) -> Self {
        RuntimeError::Sys {
            op: op.into(),
            source,
        }
    }
}
