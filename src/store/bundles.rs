//! Raw access for capture bundles (`crate::capture`): blob files written
//! without a row (the bundle's one transaction adds the rows after one
//! `syncfs` barrier) and the database connection for the bundle index.
//!
//! A blob file without a row is an orphan removed at open, so a capture
//! killed before its transaction leaves nothing behind.

use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;

use super::{blobs, layers, Store, StoreError};
use crate::types::Digest;

impl Store {
    /// Write `data` as a blob file (no row, no fsync: the caller makes all
    /// its blobs durable with [`Store::sync_blobs`] before indexing them).
    /// Returns the digest and whether the file is new.
    pub fn put_blob_unindexed(&self, data: &[u8]) -> Result<(Digest, bool), StoreError> {
        let digest = Digest::of(data);
        let dest = blobs::blob_path(&self.root, &digest);
        if dest.exists() {
            return Ok((digest, false));
        }
        let staging = self.staging("blob");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&staging)?;
            f.write_all(data)?;
            // The capture's one syncfs then finds it on its way to disk.
            super::start_writeback(&f);
            fs::rename(&staging, &dest)
        };
        write().map_err(|source| {
            let _ = fs::remove_file(&staging);
            StoreError::Io {
                op: "write blob",
                path: dest.clone(),
                source,
            }
        })?;
        Ok((digest, true))
    }

    /// One durability barrier for every blob written since the last one.
    pub fn sync_blobs(&self) -> Result<(), StoreError> {
        layers::syncfs(&blobs::blob_dir(&self.root))
    }

    /// Whether a blob file is present.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        blobs::blob_path(&self.root, digest).exists()
    }

    /// Read a whole blob, verifying its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        blobs::read(&self.root, digest)
    }

    /// Where the blob `digest` lives (for streaming readers).
    pub fn blob_file(&self, digest: &Digest) -> PathBuf {
        blobs::blob_path(&self.root, digest)
    }

    /// Run `f` on the database connection (the bundle index lives in the
    /// same database; `f` opens its own transaction when it writes).
    pub fn with_db<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.db();
        f(&mut conn)
    }

    /// Delete blob files whose rows a committed transaction removed; a
    /// crash before this leaves orphans that the next open removes.
    pub fn remove_blob_files(&self, digests: &[Digest]) {
        for d in digests {
            let p = blobs::blob_path(&self.root, d);
            if let Err(e) = fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(digest = %d, error = %e, "failed to remove blob file");
                }
            }
        }
    }
}

impl Store {
    /// A fresh path under `tmp/` (emptied at open, so a crash leaves
    /// nothing there).
    pub fn staging_path(&self, prefix: &str) -> PathBuf {
        self.staging(prefix)
    }

    /// The store's `tmp/` directory.
    pub fn tmp_dir(&self) -> &std::path::Path {
        &self.tmp
    }

    /// Move a verified staged file into the blob store as `digest` (no row;
    /// see [`Store::put_blob_unindexed`]). Returns whether it is new.
    pub fn install_blob_file(
        &self,
        staged: &std::path::Path,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        let dest = blobs::blob_path(&self.root, digest);
        if dest.exists() {
            let _ = fs::remove_file(staged);
            return Ok(false);
        }
        fs::rename(staged, &dest).map_err(|source| StoreError::Io {
            op: "install blob",
            path: dest,
            source,
        })?;
        Ok(true)
    }
}
