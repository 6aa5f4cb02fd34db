//! The engine: the one module that combines the store and the runtime, and
//! owns the daemon's state. The API is a thin HTTP shell over it.
//!
//! Synchronous; the API calls it through `spawn_blocking`.

mod images;
mod system;

pub use images::ImageFilters;
pub use system::docker_arch;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::store::{Store, StoreError};

/// Errors of engine operations, with the kind the API maps to a status.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Bad request parameters.
    #[error("{0}")]
    InvalidArgument(String),
    /// A feature this version does not have.
    #[error("{0}")]
    NotImplemented(String),
}

/// The engine's state.
pub struct Engine {
    store: Store,
    data_root: PathBuf,
    started: Instant,
}

impl Engine {
    /// Open the engine on a data root (taking its lock).
    pub fn open(data_root: &Path) -> Result<Engine, EngineError> {
        let store = Store::open(data_root)?;
        Ok(Engine {
            store,
            data_root: data_root.to_path_buf(),
            started: Instant::now(),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The data root.
    pub fn data_root(&self) -> &Path {
        &self.data_root
    }
}
