//! Consistency: orphan removal at open, and `system check` (fsck), which
//! proves files and rows agree and every blob matches its digest.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use super::{blobs, layers, Store, StoreError};
use crate::types::api::CheckReport;
use crate::types::Digest;

/// `tmp/` entries of resumable bundle transfers, kept across a restart
/// for [`RESUMABLE_MAX_AGE`].
pub const RESUMABLE_PREFIX: &str = "bundle-recv-";
/// How long a resumable transfer's staging directory is kept.
pub const RESUMABLE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A directory modified less than [`RESUMABLE_MAX_AGE`] ago.
pub fn is_fresh(p: &Path) -> bool {
    fs::symlink_metadata(p)
        .ok()
        .filter(|m| m.is_dir())
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < RESUMABLE_MAX_AGE)
}

impl Store {
    /// Remove what a crash can leave behind: everything in `tmp/`, blobs and
    /// layer directories that no row points at.
    pub(crate) fn remove_orphans(&self) -> Result<(), StoreError> {
        for entry in read_dir_names(&self.tmp)? {
            let p = self.tmp.join(&entry);
            if entry.starts_with(RESUMABLE_PREFIX) && is_fresh(&p) {
                // A transfer's verified blobs, kept so a retry sends only
                // the rest (docs/transfer.md): only partial files go.
                for name in read_dir_names(&p)? {
                    if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                        let _ = fs::remove_file(p.join(name));
                    }
                }
                continue;
            }
            if p.is_dir() {
                layers::remove_tree(&p);
            } else {
                let _ = fs::remove_file(&p);
            }
        }
        let known_blobs = self.column_set("SELECT digest FROM blobs")?;
        let blob_dir = blobs::blob_dir(&self.root);
        for name in read_dir_names(&blob_dir)? {
            if !known_blobs.contains(&format!("sha256:{name}")) {
                tracing::info!(path = %blob_dir.join(&name).display(), "removing orphaned blob");
                let _ = fs::remove_file(blob_dir.join(&name));
            }
        }
        let known_layers = self.column_set("SELECT diff_id FROM layers")?;
        let layer_root = layers::layer_root(&self.root);
        for name in read_dir_names(&layer_root)? {
            if !known_layers.contains(&format!("sha256:{name}")) {
                tracing::info!(path = %layer_root.join(&name).display(), "removing orphaned layer");
                layers::remove_visible(&self.tmp, &layer_root.join(&name))?;
            }
        }
        let known = self.column_set("SELECT id FROM containers")?;
        let dir = self.root.join("containers");
        for name in read_dir_names(&dir)? {
            if !known.contains(&name) {
                tracing::info!(path = %dir.join(&name).display(), "removing orphaned container directory");
                layers::remove_visible(&self.tmp, &dir.join(&name))?;
            }
        }
        Ok(())
    }

    /// Verify the whole store; every problem is one line in the report.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        self.check_blobs(&mut report)?;
        self.check_layers(&mut report)?;
        self.check_images(&mut report)?;
        self.check_containers(&mut report)?;
        Ok(report)
    }

    fn check_blobs(&self, report: &mut CheckReport) -> Result<(), StoreError> {
        let rows = self.column_set("SELECT digest FROM blobs")?;
        let dir = blobs::blob_dir(&self.root);
        let files: HashSet<String> = read_dir_names(&dir)?
            .into_iter()
            .map(|n| format!("sha256:{n}"))
            .collect();
        for row in &rows {
            if !files.contains(row) {
                report
                    .problems
                    .push(format!("blob {row} is indexed but its file is missing"));
            }
        }
        for file in &files {
            let Ok(d) = file.parse::<Digest>() else {
                report.problems.push(format!(
                    "stray file {} in the blob store",
                    dir.join(&file[7..]).display()
                ));
                continue;
            };
            if !rows.contains(file) {
                report
                    .problems
                    .push(format!("blob file {file} has no database row"));
            }
            report.blobs_checked += 1;
            match blobs::verify_file(&blobs::blob_path(&self.root, &d), &d) {
                Ok(true) => {}
                Ok(false) => report
                    .problems
                    .push(format!("blob {file} does not match its digest")),
                Err(e) => report
                    .problems
                    .push(format!("blob {file} cannot be read: {e}")),
            }
        }
        Ok(())
    }

    fn check_layers(&self, report: &mut CheckReport) -> Result<(), StoreError> {
        let rows = self.column_set("SELECT diff_id FROM layers")?;
        let root = layers::layer_root(&self.root);
        let dirs: HashSet<String> = read_dir_names(&root)?
            .into_iter()
            .map(|n| format!("sha256:{n}"))
            .collect();
        for row in &rows {
            report.layers_checked += 1;
            let Ok(d) = row.parse::<Digest>() else {
                report
                    .problems
                    .push(format!("bad layer digest {row:?} in the database"));
                continue;
            };
            let dir = layers::layer_dir(&self.root, &d);
            let pending = dir.join(super::unpack::PENDING_TAR);
            let unpacked = || dir.join("diff").is_dir();
            if !unpacked() {
                // Not unpacked yet (deferred unpack): its tar must be intact.
                let problem = if !pending.is_file() {
                    Some(format!(
                        "layer {row} is indexed but its directory is missing"
                    ))
                } else if !matches!(blobs::verify_file(&pending, &d), Ok(true)) {
                    Some(format!(
                        "the pending tar of layer {row} does not match its digest"
                    ))
                } else {
                    None
                };
                // The background unpack may have finished meanwhile: it
                // renames `diff/` in, then removes the tar.
                if let Some(p) = problem.filter(|_| !unpacked()) {
                    report.problems.push(p);
                }
            }
            self.check_layer_files(&dir, row, report)?;
        }
        for dir in dirs.difference(&rows) {
            report
                .problems
                .push(format!("layer directory {dir} has no database row"));
        }
        let unused = self.column_set(
            "SELECT diff_id FROM layers WHERE diff_id NOT IN (SELECT diff_id FROM image_layers)",
        )?;
        for l in unused {
            report
                .problems
                .push(format!("layer {l} is used by no image"));
        }
        Ok(())
    }

    /// Cached compressed blobs beside a layer must match their names; the
    /// tar-split and `diff/` are the only other entries.
    fn check_layer_files(
        &self,
        dir: &Path,
        layer: &str,
        report: &mut CheckReport,
    ) -> Result<(), StoreError> {
        for name in read_dir_names(dir)? {
            if name == "diff"
                || name == crate::archive::split::SPLIT_FILE
                || name == super::unpack::PENDING_TAR
            {
                continue;
            }
            let digest = name
                .split_once('-')
                .filter(|(alg, _)| matches!(*alg, "gzip" | "zstd"))
                .and_then(|(_, hex)| Digest::from_hex(hex).ok());
            match digest {
                Some(d) => match blobs::verify_file(&dir.join(&name), &d) {
                    Ok(true) => {}
                    _ => report.problems.push(format!(
                        "cached blob {name} of layer {layer} does not match its digest"
                    )),
                },
                None => report
                    .problems
                    .push(format!("stray file {name} in layer {layer}")),
            }
        }
        Ok(())
    }

    fn check_images(&self, report: &mut CheckReport) -> Result<(), StoreError> {
        for rec in self.list_images()? {
            report.images_checked += 1;
            let config = match self.image_config(&rec.id) {
                Ok(c) => c,
                Err(e) => {
                    report.problems.push(format!("image {}: {e}", rec.id));
                    continue;
                }
            };
            let parsed: Result<oci_spec::image::ImageConfiguration, _> =
                serde_json::from_slice(&config);
            match parsed {
                Ok(c) => {
                    let want: Vec<String> = rec.layers.iter().map(|d| d.to_string()).collect();
                    if c.rootfs().diff_ids() != &want {
                        report.problems.push(format!(
                            "image {}: config layers differ from the index",
                            rec.id
                        ));
                    }
                }
                Err(e) => report
                    .problems
                    .push(format!("image {}: config is not valid: {e}", rec.id)),
            }
        }
        Ok(())
    }

    fn check_containers(&self, report: &mut CheckReport) -> Result<(), StoreError> {
        let rows = self.column_set("SELECT id FROM containers")?;
        let dirs: HashSet<String> = read_dir_names(&self.root.join("containers"))?
            .into_iter()
            .collect();
        for id in &rows {
            if !self.container_dir(id).join("upper").is_dir() {
                report.problems.push(format!(
                    "container {id} is indexed but its writable layer is missing"
                ));
            }
        }
        for d in dirs.difference(&rows) {
            report
                .problems
                .push(format!("container directory {d} has no database row"));
        }
        Ok(())
    }

    fn column_set(&self, sql: &str) -> Result<HashSet<String>, StoreError> {
        let conn = self.db();
        let mut stmt = conn.prepare(sql)?;
        let set = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(set)
    }
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>, StoreError> {
    let rd = fs::read_dir(dir).map_err(|source| StoreError::Io {
        op: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names = Vec::new();
    for e in rd {
        let e = e.map_err(|source| StoreError::Io {
            op: "list",
            path: dir.to_path_buf(),
            source,
        })?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}
