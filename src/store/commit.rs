//! Committing a container's writable layer into the layer store.
//!
//! Stopped containers: the upper dir is *renamed* into `layers/` (no copy)
//! and the container is re-based on the new image with a fresh empty upper,
//! all under an intent record (`containers/<id>/commit.json`) so a crash
//! at any step is rolled forward or back when the store opens.

use std::fs;
use std::path::Path;

use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use super::import::NewLayer;
use super::{db_digest, layers, Store, StoreError};
use crate::types::{Digest, Reference};

/// The intent record of a commit in progress.
const INTENT_FILE: &str = "commit.json";

#[derive(Debug, Serialize, Deserialize)]
struct Intent {
    diff_id: Digest,
    /// The upper dir was renamed into the layer store (not a dedupe).
    moved: bool,
}

/// A layer to commit, whose digest the caller computed over `dir`.
#[derive(Debug, Clone)]
pub struct CommitLayer {
    /// diff_id of the directory's tar.
    pub diff_id: Digest,
    /// Bytes of that tar.
    pub size: u64,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// Layer sizes of an image, bottom first (for building a child image).
    pub fn image_new_layers(&self, image: &Digest) -> Result<Vec<NewLayer>, StoreError> {
        let conn = self.db();
        let mut stmt = conn.prepare(
            "SELECT l.diff_id, l.size FROM image_layers il JOIN layers l ON l.diff_id = il.diff_id
             WHERE il.image_id = ?1 ORDER BY il.position",
        )?;
        let rows: Vec<(String, i64)> = stmt
            .query_map([image.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(d, s)| {
                Ok(NewLayer {
                    diff_id: db_digest(&d)?,
                    size: s as u64,
                })
            })
            .collect()
    }

    /// Commit a stopped container's upper dir as the top layer of a new
    /// image (config already built by the engine) and re-base the container
    /// on it with an empty upper. The upper is renamed, never copied.
    pub fn commit_stopped(
        &self,
        container: &str,
        layer: &CommitLayer,
        config_json: &[u8],
        parent: &Digest,
        tag: Option<&Reference>,
    ) -> Result<Digest, StoreError> {
        let dir = self.container_dir(container);
        let upper = dir.join("upper");
        let dest = layers::layer_dir(&self.root, &layer.diff_id);
        // The same layer loaded and not unpacked yet: unpacked first, so the
        // writable layer is never moved beside a pending tar.
        self.ensure_unpacked(&layer.diff_id)?;
        let moved = !dest.join("diff").exists();
        let intent = Intent {
            diff_id: layer.diff_id.clone(),
            moved,
        };
        super::write_file_synced(
            &dir.join(INTENT_FILE),
            &serde_json::to_vec(&intent).unwrap_or_default(),
            &self.tmp,
        )?;
        if moved {
            fs::create_dir_all(&dest).map_err(io("create", &dest))?;
            fs::rename(&upper, dest.join("diff"))
                .map_err(io("move the writable layer to", &dest))?;
            fs::create_dir(&upper).map_err(io("create", &upper))?;
            super::fsync_dir(&dir).map_err(io("sync", &dir))?;
            super::fsync_dir(&dest).map_err(io("sync", &dest))?;
        }
        let mut all = self.image_new_layers(parent)?;
        all.push(NewLayer {
            diff_id: layer.diff_id.clone(),
            size: layer.size,
        });
        let id = self.add_image_rebasing(config_json, &all, Some(parent), tag, Some(container))?;
        if !moved {
            // Same content already stored: the old upper is now redundant.
            let hidden = self.staging("upper");
            fs::rename(&upper, &hidden).map_err(io("replace", &upper))?;
            fs::create_dir(&upper).map_err(io("create", &upper))?;
            layers::remove_tree(&hidden);
        }
        let _ = fs::remove_file(dir.join(INTENT_FILE));
        Ok(id)
    }

    /// Finish or undo commits a crash interrupted (before orphan removal).
    pub(crate) fn recover_commits(&self) -> Result<(), StoreError> {
        let root = self.root.join("containers");
        let Ok(rd) = fs::read_dir(&root) else {
            return Ok(());
        };
        for e in rd.flatten() {
            let intent_path = e.path().join(INTENT_FILE);
            let Ok(data) = fs::read(&intent_path) else {
                continue;
            };
            let id = e.file_name().to_string_lossy().into_owned();
            if let Ok(intent) = serde_json::from_slice::<Intent>(&data) {
                self.recover_one(&id, &intent)?;
            }
            let _ = fs::remove_file(&intent_path);
        }
        Ok(())
    }

    fn recover_one(&self, id: &str, intent: &Intent) -> Result<(), StoreError> {
        let committed: Option<String> = self
            .db()
            .query_row(
                "SELECT il.diff_id FROM containers c JOIN image_layers il ON il.image_id = c.image_id
                 WHERE c.id = ?1 ORDER BY il.position DESC LIMIT 1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        if committed.as_deref() == Some(intent.diff_id.to_string().as_str()) || !intent.moved {
            return Ok(());
        }
        // Not committed: put the moved upper back.
        let layer_row: Option<String> = self
            .db()
            .query_row(
                "SELECT diff_id FROM layers WHERE diff_id = ?1",
                [intent.diff_id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        let src = layers::layer_dir(&self.root, &intent.diff_id);
        if layer_row.is_none() && src.join("diff").is_dir() {
            let upper = self.container_dir(id).join("upper");
            let _ = fs::remove_dir(&upper);
            fs::rename(src.join("diff"), &upper)
                .map_err(io("restore the writable layer of", &upper))?;
            let _ = fs::remove_dir(&src);
            tracing::info!(container_id = %id, "rolled back an interrupted commit");
        }
        Ok(())
    }
}
