//! Registries: the OCI distribution protocol (registry v2) — the server
//! behind `amber registry serve` / `amber registry gc`, the client the
//! daemon pulls and pushes with, and the vocabulary they share (error
//! codes, media types, name rules). See docs/registry.md.
//!
//! The server keeps its own data directory and never touches the daemon's
//! data root; the client works with the daemon's store.

pub mod client;
pub mod distribution;
pub mod server;
