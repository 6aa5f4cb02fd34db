//! Registries: the client the daemon pulls and pushes with (`client`).
//! See docs/registry.md.

pub mod client;
