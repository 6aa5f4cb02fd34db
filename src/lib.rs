//! amber: an application container engine built for preserving and moving
//! state for testers. See `docs/` and `../shared/DESIGN.md` for the map.
//!
//! Dependencies point one way:
//! `cli → client → api types`, `api → engine → { runtime, store } → { archive, types }`.

// serde_json's json! macro for Docker's large /info document.
#![recursion_limit = "256"]

pub mod api;
pub mod archive;
pub mod build;
pub mod capture;
pub mod cli;
pub mod engine;
pub mod net;
pub mod registry;
pub mod runtime;
pub mod store;
pub mod types;

/// The engine's version, as reported by `amber version` and `GET /version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
