//! A stopped container's writable layer digest, computed ahead: when a
//! container exits, its upper dir is hashed in the background (the same
//! streaming pass `commit` would do) and kept with a signature of the tree
//! (every entry's path, inode, mode, owner, size, mtime and ctime). A later
//! `commit` recomputes only the signature — a walk, no file reads — and
//! uses the digest when they match, so committing a stopped container is a
//! rename whatever its size. Any change to the tree changes a ctime, and
//! with it the signature; a stale digest can never be used.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::archive::{self, LayerTarSummary};
use crate::types::Digest;

/// The cache file in a container's directory.
const CACHE_FILE: &str = "layer-digest.json";

#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    signature: String,
    diff_id: Digest,
    size: u64,
    entries: u64,
}

/// The signature of a tree's metadata (no file contents are read).
pub fn tree_signature(dir: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.map_err(std::io::Error::other)?;
        let m = e.path().symlink_metadata()?;
        let rel = e.path().strip_prefix(dir).unwrap_or(e.path());
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update([0]);
        for v in [
            m.ino(),
            m.mode() as u64,
            m.uid() as u64,
            m.gid() as u64,
            m.size(),
            m.mtime() as u64,
            m.mtime_nsec() as u64,
            m.ctime() as u64,
            m.ctime_nsec() as u64,
            m.rdev(),
        ] {
            h.update(v.to_le_bytes());
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Hash `container_dir/upper` and keep the result if the tree did not
/// change meanwhile. Best effort: any failure only means no cache.
pub fn precompute(container_dir: &Path) {
    let upper = container_dir.join("upper");
    let run = || -> Option<()> {
        let before = tree_signature(&upper).ok()?;
        let s = archive::layer_diff_id(&upper).ok()?;
        let after = tree_signature(&upper).ok()?;
        if before != after {
            return None;
        }
        let c = Cached {
            signature: after,
            diff_id: s.diff_id,
            size: s.size,
            entries: s.entries,
        };
        let tmp = container_dir.join(format!(".{CACHE_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(&c).ok()?).ok()?;
        std::fs::rename(&tmp, container_dir.join(CACHE_FILE)).ok()
    };
    if run().is_none() {
        let _ = std::fs::remove_file(container_dir.join(CACHE_FILE));
    }
}

/// The digest of `container_dir/upper`: the cached one when the tree's
/// signature still matches, else one streaming pass now.
pub fn diff_id(container_dir: &Path) -> Result<LayerTarSummary, archive::ArchiveError> {
    let upper = container_dir.join("upper");
    let cache = container_dir.join(CACHE_FILE);
    let cached = std::fs::read(&cache)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cached>(&b).ok());
    let _ = std::fs::remove_file(&cache);
    if let Some(c) = cached {
        if tree_signature(&upper).ok().as_deref() == Some(c.signature.as_str()) {
            return Ok(LayerTarSummary {
                diff_id: c.diff_id,
                size: c.size,
                entries: c.entries,
            });
        }
    }
    archive::layer_diff_id(&upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_invalidates_the_cached_digest() {
        let d = tempfile::tempdir().unwrap();
        let upper = d.path().join("upper");
        std::fs::create_dir_all(upper.join("a")).unwrap();
        std::fs::write(upper.join("a/f"), b"one").unwrap();
        precompute(d.path());
        assert!(d.path().join(CACHE_FILE).is_file());
        let first = archive::layer_diff_id(&upper).unwrap().diff_id;
        // Same size, new content: ctime moves, the cache is not used.
        std::fs::write(upper.join("a/f"), b"two").unwrap();
        let got = diff_id(d.path()).unwrap().diff_id;
        assert_ne!(got, first);
        assert_eq!(got, archive::layer_diff_id(&upper).unwrap().diff_id);
        // Unchanged since the precompute: the cached digest, right.
        precompute(d.path());
        assert_eq!(diff_id(d.path()).unwrap().diff_id, got);
    }
}
