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
