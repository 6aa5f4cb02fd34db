//! Content-addressed blobs under `blobs/sha256/<hex>`: written to `tmp/`,
//! fsynced, renamed into place; immutable afterwards.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{fsync_dir, StoreError};
use crate::types::Digest;

/// The blob directory of a data root.
pub(crate) fn blob_dir(root: &Path) -> PathBuf {
    root.join("blobs").join("sha256")
}

/// Where the blob `digest` lives.
pub(crate) fn blob_path(root: &Path, digest: &Digest) -> PathBuf {
    blob_dir(root).join(digest.hex())
}

/// Blobs written to `tmp/` with their writeback started, not yet durable
/// nor visible: [`StagedBlobs::sync`] then [`StagedBlobs::install`]. Staging
/// files not installed are removed when this is dropped.
pub(crate) struct StagedBlobs {
    dir: PathBuf,
    /// (staging file, destination) of the blobs the store did not have.
    files: Vec<(PathBuf, PathBuf)>,
    /// The digest of every blob given, in order.
    pub digests: Vec<Digest>,
}

/// Write each of `datas` to `tmp/` as a blob to be installed. Several blobs
/// staged together cost one journal commit for their contents and one for
/// their names instead of two each.
pub(crate) fn stage(root: &Path, tmp: &Path, datas: &[&[u8]]) -> Result<StagedBlobs, StoreError> {
    let mut staged = StagedBlobs {
        dir: blob_dir(root),
        files: Vec::new(),
        digests: Vec::new(),
    };
    for data in datas {
        let digest = Digest::of(data);
        let dest = blob_path(root, &digest);
        staged.digests.push(digest);
        if dest.exists() || staged.files.iter().any(|(_, d)| d == &dest) {
            continue;
        }
        let staging = tmp.join(format!("blob-{}", super::random_hex(8)));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&staging)?;
            f.write_all(data)?;
            super::start_writeback(&f);
            Ok(())
        };
        let result = write();
        staged.files.push((staging, dest.clone()));
        result.map_err(|source| StoreError::Io {
            op: "write blob",
            path: dest,
            source,
        })?;
    }
    Ok(staged)
}

impl StagedBlobs {
    /// Make the staged contents durable.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        for (staging, dest) in &self.files {
            File::open(staging)
                .and_then(|f| f.sync_all())
                .map_err(|source| StoreError::Io {
                    op: "sync blob",
                    path: dest.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Rename the synced blobs into place and make the names durable.
    pub(crate) fn install(mut self) -> Result<(), StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io {
                op: "install blob",
                path,
                source,
            }
        };
        if self.files.is_empty() {
            return Ok(());
        }
        for (staging, dest) in std::mem::take(&mut self.files) {
            if let Err(e) = fs::rename(&staging, &dest) {
                let _ = fs::remove_file(&staging);
                return Err(io(&dest)(e));
            }
        }
        fsync_dir(&self.dir).map_err(io(&self.dir))
    }
}

impl Drop for StagedBlobs {
    fn drop(&mut self) {
        for (staging, _) in &self.files {
            let _ = fs::remove_file(staging);
        }
    }
}

/// Read a whole blob, verifying its digest.
pub(crate) fn read(root: &Path, digest: &Digest) -> Result<Vec<u8>, StoreError> {
    let path = blob_path(root, digest);
    let data = fs::read(&path).map_err(|source| StoreError::Io {
        op: "read blob",
        path: path.clone(),
        source,
    })?;
    if Digest::of(&data) != *digest {
        return Err(StoreError::Corrupt(format!(
            "blob {digest} does not match its digest ({})",
            path.display()
        )));
    }
    Ok(data)
}

/// Stream a blob file through sha256 and say whether it matches its name.
pub(crate) fn verify_file(path: &Path, digest: &Digest) -> std::io::Result<bool> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Digest::from_hasher(hasher) == *digest)
}
