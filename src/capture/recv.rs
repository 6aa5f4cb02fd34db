//! Resumable receiving of bundles (docs/transfer.md): a transfer's
//! verified blobs wait in `tmp/bundle-recv-<bundle ID>/`, each named by its
//! digest only once it matched it (`<hex>.part` while it streams), so a
//! transfer cut mid-stream is retried sending only the rest. The directory
//! is removed when its import succeeds, by `bundle prune`, and at the
//! daemon's start once it is a day old; nothing in it is visible (no row
//! points at it) and `system check` ignores it.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use super::archive::{store_has, ArchiveBlob};
use super::CaptureError;
use crate::store::{Store, RESUMABLE_PREFIX};
use crate::types::Digest;

/// Suffix of a blob still streaming into a staging directory.
pub const PART: &str = ".part";

/// Bundles being received now (one import per bundle at a time).
static BUSY: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn busy() -> std::sync::MutexGuard<'static, Option<HashSet<String>>> {
    BUSY.lock().unwrap_or_else(|p| p.into_inner())
}

/// The resumable staging directory of a bundle.
pub fn dir(store: &Store, bundle: &str) -> PathBuf {
    store.tmp_dir().join(format!("{RESUMABLE_PREFIX}{bundle}"))
}

/// Marks a bundle as being received until dropped.
pub struct Claim(String);

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(set) = busy().as_mut() {
            set.remove(&self.0);
        }
    }
}

/// Claim a bundle for one import; a second concurrent one is refused.
pub fn claim(bundle: &str) -> Result<Claim, CaptureError> {
    let mut b = busy();
    let set = b.get_or_insert_with(HashSet::new);
    if !set.insert(bundle.to_string()) {
        return Err(CaptureError::Invalid(format!(
            "bundle {bundle} is already being received; retry when that transfer ends"
        )));
    }
    Ok(Claim(bundle.to_string()))
}

/// Remove partial (`.part`) files of a staging directory, keeping the
/// verified blobs; touches the directory so its age counts from now.
pub fn drop_partial(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with(PART) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let _ = File::open(dir).and_then(|f| f.set_modified(std::time::SystemTime::now()));
}

/// Whether a blob staged by an earlier attempt is in `dir` and still
/// matches its digest (one that does not is removed).
pub fn reverify(dir: &Path, b: &ArchiveBlob) -> Result<bool, CaptureError> {
    let path = dir.join(b.digest.hex());
    let mut f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(CaptureError::io("open", &path.display().to_string(), e)),
    };
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h)
        .map_err(|e| CaptureError::io("read", &path.display().to_string(), e))?;
    if n == b.size && Digest::from_hasher(h) == b.digest {
        Ok(true)
    } else {
        tracing::warn!(path = %path.display(), "staged blob no longer matches its digest; removed");
        let _ = fs::remove_file(&path);
        Ok(false)
    }
}

/// Of a bundle's blobs, those this store lacks: not in the store (image
/// blobs: the image or layer is not installed) and not already verified in
/// the bundle's resumable staging directory.
pub fn missing(store: &Store, bundle: &str, blobs: &[ArchiveBlob]) -> Vec<Digest> {
    let staged = dir(store, bundle);
    let has_staged = |b: &ArchiveBlob| {
        fs::metadata(staged.join(b.digest.hex())).is_ok_and(|m| m.is_file() && m.len() == b.size)
    };
    blobs
        .iter()
        .filter(|b| !has_staged(b) && !store_has(store, b))
        .map(|b| b.digest.clone())
        .collect()
}

/// Remove the staging directories of transfers not running now (all of
/// them, or only those older than [`crate::store::RESUMABLE_MAX_AGE`]).
/// Returns how many.
pub fn prune(store: &Store, only_stale: bool) -> usize {
    let mut n = 0;
    let Ok(rd) = fs::read_dir(store.tmp_dir()) else {
        return 0;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(bundle) = name.strip_prefix(RESUMABLE_PREFIX) else {
            continue;
        };
        if only_stale && crate::store::is_fresh(&e.path()) {
            continue;
        }
        // Claim it so no import starts using it while it goes.
        let Ok(_claim) = claim(bundle) else {
            continue;
        };
        if fs::remove_dir_all(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}
