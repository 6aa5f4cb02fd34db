//! Deferred unpack: `load` keeps a layer as its verified tar
//! (`layers/<id>/layer.tar`, durable before the row that names it) and
//! the files are created afterwards, in the background or by the first
//! consumer that needs them. Every reader of a layer's `diff/` goes
//! through [`Store::ensure_unpacked`], which waits for or does the unpack.
//!
//! A layer is unpacked exactly when `layers/<id>/diff` exists; until then
//! `layer.tar` does. The unpack happens in `tmp/`, is synced, then the
//! tar-split and `diff/` are renamed in (in that order), then the tar is
//! removed: a crash at any point leaves either a pending layer (unpacked
//! again: [`Store::pending_layers`] at start) or an unpacked one with a
//! stray tar (removed by the next `ensure_unpacked`).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::import::{NewLayer, StagedLayer};
use super::{layers, Store, StoreError};
use crate::archive::{self, split::SPLIT_FILE, ExtractOptions, WritebackWriter};
use crate::types::Digest;

/// A pending layer's tar, beside where `diff/` will be.
pub(crate) const PENDING_TAR: &str = "layer.tar";
/// Write and read buffer for the pending tar.
const BUF: usize = 1 << 20;

/// One lock per layer being unpacked or removed.
#[derive(Default)]
pub(crate) struct UnpackLocks(Mutex<HashMap<Digest, Arc<Mutex<()>>>>);

impl UnpackLocks {
    fn get(&self, diff_id: &Digest) -> Arc<Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(diff_id.clone()).or_default().clone()
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

impl Store {
    /// Check the layer tar `input` against the extraction rules and keep it,
    /// hashed, its writeback started, in a staging directory for
    /// [`Store::add_image_installing`] (which syncs it and makes it a pending
    /// layer).
    pub(crate) fn stage_pending_layer<R: Read>(&self, input: R) -> Result<StagedLayer, StoreError> {
        let (dir, summary) = self.stage_pending_tar(input, true)?;
        let diff_id = summary.diff_id.expect("hashed when asked");
        Ok(StagedLayer {
            dir,
            layer: NewLayer {
                diff_id,
                size: summary.tar_size,
            },
        })
    }

    /// [`Store::stage_pending_layer`], hashing only with `hash` (a caller
    /// that hashes the same bytes on another thread passes `false`). The
    /// staging directory and what the check found.
    pub(crate) fn stage_pending_tar<R: Read>(
        &self,
        input: R,
        hash: bool,
    ) -> Result<(PathBuf, archive::CheckSummary), StoreError> {
        let staging = self.staging("layer");
        let result = (|| {
            fs::create_dir(&staging).map_err(io_err("create", &staging))?;
            let path = staging.join(PENDING_TAR);
            let f = File::create(&path).map_err(io_err("create", &path))?;
            let out = BufWriter::with_capacity(BUF, WritebackWriter::new(f));
            let (summary, out) = archive::check_layer(input, out, false, hash)?;
            // Synced with the image's other new files (`add_image_installing`).
            out.into_inner()
                .map_err(|e| io_err("write", &path)(e.into_error()))?
                .into_file();
            Ok(summary)
        })();
        match result {
            Ok(summary) => Ok((staging, summary)),
            Err(e) => {
                layers::remove_tree(&staging);
                Err(e)
            }
        }
    }

    /// Make sure the layer's `diff/` exists, unpacking its pending tar if
    /// it has one (waiting for an unpack already under way). A layer the
    /// store does not hold is left to the caller to notice.
    pub fn ensure_unpacked(&self, diff_id: &Digest) -> Result<(), StoreError> {
        let lock = self.unpack_locks.get(diff_id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let dir = layers::layer_dir(&self.root, diff_id);
        let tar = dir.join(PENDING_TAR);
        if dir.join("diff").is_dir() {
            if tar.exists() {
                // Left by a crash after the unpack was installed.
                fs::remove_file(&tar).map_err(io_err("remove", &tar))?;
            }
            return Ok(());
        }
        if !tar.is_file() {
            return Ok(());
        }
        let staging = self.staging("unpack");
        let result = self.unpack_into(diff_id, &tar, &staging, &dir);
        layers::remove_tree(&staging);
        if result.is_ok() {
            tracing::debug!(digest = %diff_id, "layer unpacked");
        }
        result
    }

    fn unpack_into(
        &self,
        diff_id: &Digest,
        tar: &Path,
        staging: &Path,
        dir: &Path,
    ) -> Result<(), StoreError> {
        let diff = staging.join("diff");
        fs::create_dir_all(&diff).map_err(io_err("create", &diff))?;
        let opts = ExtractOptions {
            allow_devices: false,
            split: Some(staging.join(SPLIT_FILE)),
            skip_digest: false,
        };
        let input = File::open(tar).map_err(io_err("open", tar))?;
        let summary = archive::extract_layer(BufReader::with_capacity(BUF, input), &diff, &opts)?;
        if &summary.diff_id != diff_id {
            return Err(StoreError::Corrupt(format!(
                "the pending tar of layer {diff_id} no longer matches its digest (got {}); run `amber system check`",
                summary.diff_id
            )));
        }
        layers::syncfs(staging)?;
        let split = dir.join(SPLIT_FILE);
        fs::rename(staging.join(SPLIT_FILE), &split).map_err(io_err("install", &split))?;
        let dest = dir.join("diff");
        fs::rename(&diff, &dest).map_err(io_err("install", &dest))?;
        super::fsync_dir(dir).map_err(io_err("sync", dir))?;
        fs::remove_file(tar).map_err(io_err("remove", tar))
    }

    /// Layers indexed but not unpacked yet (after a restart: to unpack in
    /// the background).
    pub fn pending_layers(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out = Vec::new();
        for id in self.layer_ids()? {
            let dir = layers::layer_dir(&self.root, &id);
            if dir.join(PENDING_TAR).exists() {
                out.push(id);
            }
        }
        Ok(out)
    }

    fn layer_ids(&self) -> Result<Vec<Digest>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT diff_id FROM layers")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            let row = row?;
            out.push(
                row.parse()
                    .map_err(|_| StoreError::Corrupt(format!("bad layer digest {row:?}")))?,
            );
        }
        Ok(out)
    }

    /// Remove a layer's directory, never in the middle of its unpack.
    pub(crate) fn remove_layer_dir(&self, diff_id: &Digest) -> Result<(), StoreError> {
        let lock = self.unpack_locks.get(diff_id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        layers::remove_visible(&self.tmp, &layers::layer_dir(&self.root, diff_id))
    }
}
