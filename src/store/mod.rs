//! The image store: content-addressed blobs, unpacked layers, images and
//! tags, indexed in SQLite. Knows nothing of processes or HTTP.
//!
//! Synchronous; async callers use `spawn_blocking`. Files are the truth and
//! the database the index: a file becomes visible by an atomic rename once
//! complete, and a row pointing at it is committed only afterwards. Orphans
//! (files without rows, staging leftovers) are removed when the store opens.

mod blobs;
mod bundles;
mod check;
mod commit;
mod containers;
mod db;
mod images;
mod import;
mod layer_io;
mod layers;
mod load;
mod networks;
mod save;
mod transfer;
mod unpack;
mod volumes;

pub use check::{is_fresh, RESUMABLE_MAX_AGE, RESUMABLE_PREFIX};
pub use commit::CommitLayer;
pub use containers::{ContainerRecord, NewContainer};
pub use images::{repo_of as repo_name, ImageRecord, RemoveOptions};
pub use import::StagedLayer;
pub use import::{apply_change, ImportOptions, NewLayer};
pub use layer_io::{BlobCompression, LayerBlob};
pub use load::{LoadReport, LoadedImage};
pub use networks::{EndpointRecord, NetworkRecord};
pub use save::{SaveFormat, SaveImage, SaveOptions, SavePlan};
pub use transfer::{ImageBlobs, PulledLayer};
pub use volumes::VolumeRecord;

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::archive::ArchiveError;
use crate::types::{Digest, ReferenceError};

/// The lock file that keeps two daemons off one data root.
const LOCK_FILE: &str = "amber.lock";
/// The database file.
const DB_FILE: &str = "amber.db";

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No image matches the name.
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// No container matches the name.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// No network matches the name.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// No volume has the name.
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// An ID prefix matches several images.
    #[error("{0}")]
    Ambiguous(String),
    /// The request conflicts with the store's state (Docker's 409).
    #[error("{0}")]
    Conflict(String),
    /// A malformed reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Another process holds the data root.
    #[error("data root {0} is in use by another amber daemon (lock held on {0}/amber.lock); stop it or use --data-root")]
    Locked(PathBuf),
    /// Bad archive input.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Invalid data found in the store.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// Bad input that is not an archive problem.
    #[error("{0}")]
    Invalid(String),
    /// A filesystem operation failed.
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

/// An open data root.
pub struct Store {
    root: PathBuf,
    tmp: PathBuf,
    conn: Mutex<rusqlite::Connection>,
    _lock: File,
    unpack_locks: unpack::UnpackLocks,
}

impl Store {
    /// Open (creating if needed) the data root at `root`, take its lock,
    /// migrate the database and remove orphans left by a crash.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { op, path, source }
        };
        fs::create_dir_all(root).map_err(io("create data root", root))?;
        let lock = take_lock(root)?;
        let tmp = root.join("tmp");
        for dir in [
            tmp.clone(),
            blobs::blob_dir(root),
            layers::layer_root(root),
            root.join("containers"),
        ] {
            fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        }
        let conn = db::open(&root.join(DB_FILE))?;
        let store = Store {
            root: root.to_path_buf(),
            tmp,
            conn: Mutex::new(conn),
            _lock: lock,
            unpack_locks: Default::default(),
        };
        store.recover_commits()?;
        store.remove_orphans()?;
        store.remove_orphan_volumes()?;
        Ok(store)
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn db(&self) -> MutexGuard<'_, rusqlite::Connection> {
        // A panic while holding the lock leaves the connection usable: every
        // write is one transaction, rolled back when dropped.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh staging path under `tmp/`.
    fn staging(&self, prefix: &str) -> PathBuf {
        self.tmp.join(format!("{prefix}-{}", random_hex(8)))
    }
}

fn take_lock(root: &Path) -> Result<File, StoreError> {
    let path = root.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StoreError::Io {
            op: "open lock file",
            path: path.clone(),
            source,
        })?;
    // SAFETY: flock on an fd we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::WouldBlock {
            return Err(StoreError::Locked(root.to_path_buf()));
        }
        return Err(StoreError::Io {
            op: "lock",
            path,
            source: err,
        });
    }
    Ok(file)
}

/// `n` random bytes as hex, for staging names and IDs.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // invariant: getrandom only fails without a kernel entropy source, which
    // Linux always has after boot.
    getrandom::getrandom(&mut buf).expect("kernel random source");
    hex::encode(buf)
}

/// Start the kernel's writeback of a file just written
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, asynchronous): files written
/// together and then fsynced one after the other share one journal commit.
pub(crate) fn start_writeback(f: &File) {
    // SAFETY: a plain syscall on a descriptor we own; a failure only means
    // the writeback starts at the fsync.
    unsafe {
        libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// fsync a directory so a rename inside it is durable.
pub(crate) fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Write a small file durably: staged in `tmp`, fsynced, renamed.
pub(crate) fn write_file_synced(path: &Path, data: &[u8], tmp: &Path) -> Result<(), StoreError> {
    use std::io::Write;
    let staging = tmp.join(format!("file-{}", random_hex(8)));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&staging)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&staging, path)?;
        fsync_dir(path.parent().unwrap_or(Path::new("/")))
    };
    write().map_err(|source| {
        let _ = fs::remove_file(&staging);
        StoreError::Io {
            op: "write",
            path: path.to_path_buf(),
            source,
        }
    })
}

/// The current time as Docker writes it (RFC 3339, nanoseconds, UTC).
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Parse a digest stored in the database.
pub(crate) fn db_digest(s: &str) -> Result<Digest, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad digest {s:?} in the database")))
}
