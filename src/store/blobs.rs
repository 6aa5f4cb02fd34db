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

/// Write `data` as a blob; "already there" is success.
pub(crate) fn put(root: &Path, tmp: &Path, data: &[u8]) -> Result<Digest, StoreError> {
    let digest = Digest::of(data);
    let dest = blob_path(root, &digest);
    if dest.exists() {
        return Ok(digest);
    }
    let staging = tmp.join(format!("blob-{}", super::random_hex(8)));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&staging)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&staging, &dest)?;
        fsync_dir(dest.parent().unwrap_or(root))
    };
    write().map_err(|source| {
        let _ = fs::remove_file(&staging);
        StoreError::Io {
            op: "write blob",
            path: dest.clone(),
            source,
        }
    })?;
    Ok(digest)
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
