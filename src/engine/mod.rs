//! The engine: the one module that combines the store and the runtime, and
//! owns the daemon's state. The API is a thin HTTP shell over it.
//!
//! Synchronous; the API calls it through `spawn_blocking`. Each running
//! container has a monitor thread (waiting on its shim) that records exits,
//! applies `--rm` and restart policies, and wakes `wait` callers.

mod baseline;
mod build;
mod bundle_sets;
mod bundle_transfer;
mod capture;
mod capture_core;
mod capture_live;
mod cluster;
mod commit;
mod containers;
mod digest_cache;
mod exec;
mod files;
mod hosts;
mod images;
mod lifecycle;
mod list;
mod logs;
mod migrate;
mod mounts;
mod network;
mod network_host;
mod network_view;
mod networks;
mod observe;
mod registry;
mod restore;
mod spec;
mod system;
mod transfer;
mod volumes;

pub use bundle_sets::is_set_id;
pub use bundle_transfer::{MissingReport, MissingRequest, ThinExportRequest, TransferReport};
pub use capture::CaptureOptions;
pub use cluster::{
    BundleSet, ClusterBaselineOptions, ClusterCaptureOptions, SetHost, DEFAULT_TIMEOUT_SECS,
};
pub use commit::CommitOptions;
pub use containers::{human_duration, shell_join, status_text, ContainerView};
pub use exec::ExecRecord;
pub use hosts::HostRecord;
pub use images::ImageFilters;
pub use lifecycle::{ExitEvents, WaitCondition};
pub use list::{parse_filter_map, ListOptions};
pub use logs::{parse_time, LogCursor, LogOptions};
pub use migrate::{MigrateOptions, MigrateReport};
pub use networks::NetworkCreateOptions;
pub use restore::RestoreOptions;
pub use spec::ContainerSpec;
pub use system::docker_arch;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;

use crate::runtime::RuntimeError;
use crate::store::{Store, StoreError};

/// Errors of engine operations, with the kind the API maps to a status.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime failed or refused.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// An archive (cp, diff) failed or was refused.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// Bad request parameters.
    #[error("{0}")]
    InvalidArgument(String),
    /// The operation conflicts with the object's state (409).
    #[error("{0}")]
    Conflict(String),
    /// Nothing to do (304).
    #[error("{0}")]
    NotModified(String),
    /// An object that does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// A feature this version does not have.
    #[error("{0}")]
    NotImplemented(String),
    /// A registry refused or failed.
    #[error(transparent)]
    Registry(#[from] crate::registry::client::RegistryError),
    /// Networking failed.
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    /// Another daemon (a transfer's or migration's peer) failed or could
    /// not be reached (502).
    #[error("{0}")]
    Remote(String),
}

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Data root.
    pub data_root: PathBuf,
    /// Cgroup parent of all containers (tests use a unique one).
    pub cgroup_parent: String,
    /// Registry mirrors and insecure registries.
    pub registry: crate::registry::client::RegistryConfig,
    /// The default bridge network (tests use a unique bridge name).
    pub net: crate::net::NetOptions,
}

/// The engine's state.
pub struct Engine {
    store: Arc<Store>,
    registry: crate::registry::client::RegistryConfig,
    /// Where pushed and pulled blobs live (for cross-repository mounts).
    seen_blobs: crate::registry::client::Seen,
    data_root: PathBuf,
    cgroup_parent: String,
    started: Instant,
    /// Exit counters per container, for `wait`.
    events: Mutex<HashMap<String, watch::Sender<ExitEvents>>>,
    /// Containers with an attach request waiting for their start.
    pending_attach: Mutex<HashSet<String>>,
    /// Execs by ID.
    execs: Mutex<HashMap<String, ExecRecord>>,
    /// Serialises temporary mounts of stopped containers.
    mount_lock: Mutex<()>,
    /// Background digests of stopped containers' layers, by container ID.
    digesting: Mutex<HashMap<String, std::thread::JoinHandle<()>>>,
    /// How the default network is set up.
    net_opts: crate::net::NetOptions,
    /// Serialises network set-up and teardown.
    net_lock: Mutex<()>,
}

impl Engine {
    /// Open the engine on a data root (taking its lock), then find running
    /// containers again and apply restart policies.
    pub fn open(opts: &EngineOptions) -> Result<Arc<Engine>, EngineError> {
        let store = Store::open(&opts.data_root)?;
        let engine = Arc::new(Engine {
            store: Arc::new(store),
            registry: opts.registry.clone(),
            seen_blobs: Default::default(),
            data_root: opts.data_root.clone(),
            cgroup_parent: opts.cgroup_parent.clone(),
            started: Instant::now(),
            events: Mutex::new(HashMap::new()),
            pending_attach: Mutex::new(HashSet::new()),
            execs: Mutex::new(HashMap::new()),
            mount_lock: Mutex::new(()),
            digesting: Mutex::new(HashMap::new()),
            net_opts: opts.net.clone(),
            net_lock: Mutex::new(()),
        });
        engine.init_networks()?;
        engine.recover()?;
        engine.unpack_in_background(engine.store.pending_layers()?);
        engine.thaw_interrupted_captures();
        Ok(engine)
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

/// The binary shims run from: the daemon's own executable through
/// `/proc/self/exe`, which stays valid when the file on disk is replaced by
/// an upgrade while the daemon runs (`current_exe()` would then name a
/// deleted file).
fn shim_exe() -> PathBuf {
    PathBuf::from("/proc/self/exe")
}

/// Lock a mutex, keeping the data of a poisoned one (every critical section
/// here leaves its map consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
