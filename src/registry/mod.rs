//! The OCI distribution protocol (registry v2): the server behind
//! `amber registry serve` / `amber registry gc`, and the vocabulary shared
//! with the registry client (error codes, media types, name rules).
//!
//! Owns nothing of the engine's store: the server keeps its own data
//! directory and never touches the daemon's data root.

pub mod distribution;
pub mod server;
