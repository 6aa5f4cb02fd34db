//! Unpacked layer directories: `layers/<diff_id hex>/diff`, overlay lower
//! dirs. Installed by one rename from `tmp/` after a filesystem sync.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::unpack::PENDING_TAR;
use super::StoreError;
use crate::types::Digest;

/// The directory holding all layers.
pub(crate) fn layer_root(root: &Path) -> PathBuf {
    root.join("layers")
}

/// The directory of one layer (holding `diff/`).
pub(crate) fn layer_dir(root: &Path, diff_id: &Digest) -> PathBuf {
    layer_root(root).join(diff_id.hex())
}

/// Flush everything written on the filesystem of `path` (one barrier for a
/// whole unpacked tree instead of an fsync per file).
pub(crate) fn syncfs(path: &Path) -> Result<(), StoreError> {
    let f = fs::File::open(path).map_err(|source| StoreError::Io {
        op: "open for sync",
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: syncfs on an fd we own and keep open for the call.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(StoreError::Io {
            op: "sync filesystem of",
            path: path.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Move a finished staging layer (`staging/diff` unpacked, or a pending
/// `staging/layer.tar` already synced) into place. When the layer already
/// exists, unpacked or pending, the staging copy is discarded.
pub(crate) fn install(root: &Path, staging: &Path, diff_id: &Digest) -> Result<(), StoreError> {
    let dest = layer_dir(root, diff_id);
    if dest.join(PENDING_TAR).is_file() || dest.join("diff").is_dir() {
        remove_tree(staging);
        return Ok(());
    }
    if !staging.join(PENDING_TAR).is_file() {
        syncfs(staging)?;
    }
    fs::rename(staging, &dest).map_err(|source| StoreError::Io {
        op: "install layer",
        path: dest.clone(),
        source,
    })?;
    super::fsync_dir(&layer_root(root)).map_err(|source| StoreError::Io {
        op: "sync",
        path: layer_root(root),
        source,
    })
}

/// Make a staged pending layer's tar durable (see `store::unpack`).
pub(crate) fn sync_pending(staging: &Path) -> Result<(), StoreError> {
    let tar = staging.join(PENDING_TAR);
    for p in [&tar, staging] {
        fs::File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(|source| StoreError::Io {
                op: "sync",
                path: p.to_path_buf(),
                source,
            })?;
    }
    Ok(())
}

/// Rename a synced pending layer into place (the caller syncs the layer
/// directory before anything refers to it); when the layer already exists,
/// unpacked or pending, the staging copy is discarded.
pub(crate) fn rename_pending(
    root: &Path,
    staging: &Path,
    diff_id: &Digest,
) -> Result<(), StoreError> {
    let dest = layer_dir(root, diff_id);
    if dest.join(PENDING_TAR).is_file() || dest.join("diff").is_dir() {
        remove_tree(staging);
        return Ok(());
    }
    fs::rename(staging, &dest).map_err(|source| StoreError::Io {
        op: "install layer",
        path: dest.clone(),
        source,
    })
}

/// Remove a directory tree, first renaming it out of sight when it lives in
/// a visible place (so a crash never leaves a half-deleted layer visible).
pub(crate) fn remove_visible(tmp: &Path, dir: &Path) -> Result<(), StoreError> {
    let hidden = tmp.join(format!("del-{}", super::random_hex(8)));
    match fs::rename(dir, &hidden) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                op: "remove",
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    remove_tree(&hidden);
    Ok(())
}

/// Best-effort removal of a staging tree: leftovers in `tmp/` are removed at
/// the next start anyway.
pub(crate) fn remove_tree(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %dir.display(), error = %e, "failed to remove staging directory");
        }
    }
}

impl super::Store {
    /// Whether the store holds the layer `diff_id` (row, and directory or
    /// pending tar).
    pub fn has_layer(&self, diff_id: &Digest) -> Result<bool, StoreError> {
        let n: i64 = self.db().query_row(
            "SELECT COUNT(*) FROM layers WHERE diff_id = ?1",
            [diff_id.to_string()],
            |r| r.get(0),
        )?;
        let dir = layer_dir(&self.root, diff_id);
        // The tar first: an unpack renames `diff/` in before removing it.
        Ok(n > 0 && (dir.join(PENDING_TAR).is_file() || dir.join("diff").is_dir()))
    }
}
