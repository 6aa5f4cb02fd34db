//! Shared value types: digests, image references and IDs as parsed newtypes,
//! and the Docker Engine API request/response bodies.
//!
//! Pure data; no I/O.

pub mod api;
pub mod container;
mod digest;
pub mod ports;
mod reference;

pub use digest::{Digest, DigestError};
pub use reference::{Reference, ReferenceError, DEFAULT_DOMAIN, DEFAULT_TAG};

/// This host's architecture as image configs and indexes name it (`amd64`).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
