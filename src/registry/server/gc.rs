//! `amber registry gc`: mark every blob a stored manifest reaches (config,
//! layers, index children, the manifests themselves, in every repository),
//! then delete the rest and the repository links to them.
//!
//! Not safe beside a server accepting pushes (a blob uploaded but not yet
//! referenced by a manifest would be removed), so it takes the data
//! directory's shared lock, which such a server holds exclusively: it runs
//! with the server stopped or serving `--read-only`, and refuses otherwise.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::storage::{Storage, StorageError};
use crate::types::Digest;

/// What a collection removed (or would remove, on a dry run).
#[derive(Debug, Default, serde::Serialize)]
pub struct GcReport {
    /// Blobs removed with their sizes.
    pub removed: Vec<(Digest, u64)>,
    /// Total bytes freed.
    pub bytes_freed: u64,
    /// Blobs kept.
    pub kept: usize,
    /// Repository links to removed blobs that were dropped.
    pub links_removed: usize,
    /// Abandoned uploads removed (untouched for longer than the limit).
    pub uploads_removed: usize,
    /// Bytes those uploads held.
    pub upload_bytes_freed: u64,
}

/// What a collection does.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Only report.
    pub dry_run: bool,
    /// Uploads untouched for longer than this are abandoned.
    pub upload_max_age: Duration,
}

/// Collect unreferenced blobs and abandoned uploads.
pub fn collect(s: &Storage, opts: GcOptions) -> Result<GcReport, StorageError> {
    let dry_run = opts.dry_run;
    let marked = mark(s)?;
    let mut report = GcReport::default();
    let mut gone = HashSet::new();
    for digest in s.all_blobs()? {
        if marked.contains(&digest) {
            report.kept += 1;
            continue;
        }
        let path = s.blob_path(&digest);
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if !dry_run {
            match fs::remove_file(&path) {
                Ok(()) => tracing::info!(%digest, size, "blob removed"),
                // Another gc got there first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StorageError::Io {
                        op: "remove blob",
                        path,
                        source,
                    })
                }
            }
        }
        report.bytes_freed += size;
        report.removed.push((digest.clone(), size));
        gone.insert(digest);
    }
    for repo in s.repositories()? {
        for digest in s.layer_links(&repo)? {
            let dangling = gone.contains(&digest) || !s.blob_path(&digest).exists();
            if dangling {
                if !dry_run {
                    s.unlink_blob(&repo, &digest)?;
                }
                report.links_removed += 1;
            }
        }
    }
    let now = SystemTime::now();
    for (id, size, modified) in s.uploads()? {
        let idle = now.duration_since(modified).unwrap_or_default();
        if idle > opts.upload_max_age {
            if !dry_run {
                s.remove_upload(&id)?;
            }
            report.uploads_removed += 1;
            report.upload_bytes_freed += size;
        }
    }
    Ok(report)
}

/// Every blob reachable from a manifest revision of any repository.
fn mark(s: &Storage) -> Result<HashSet<Digest>, StorageError> {
    let mut marked = HashSet::new();
    for repo in s.repositories()? {
        for rev in s.revisions(&repo)? {
            marked.insert(rev.clone());
            let Some(m) = s.get_manifest(&repo, &rev)? else {
                continue;
            };
            let Ok(json) = serde_json::from_slice::<Value>(&m.bytes) else {
                continue;
            };
            marked.extend(references(&json));
        }
    }
    Ok(marked)
}

/// Digests a manifest or index points at: config, layers, child manifests.
fn references(json: &Value) -> Vec<Digest> {
    let config = std::iter::once(&json["config"]);
    let lists = ["layers", "manifests"]
        .into_iter()
        .filter_map(|k| json[k].as_array())
        .flatten();
    config
        .chain(lists)
        .filter_map(|d| d["digest"].as_str()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::server::storage::StoredManifest;

    #[test]
    fn removes_only_unreferenced() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), crate::registry::server::storage::Access::Write).unwrap();
        let blob = |data: &[u8]| {
            let id = s.create_upload("r").unwrap();
            fs::write(s.upload_file("r", &id).unwrap().unwrap(), data).unwrap();
            let d = Digest::of(data);
            s.commit_upload("r", &id, &d, None).unwrap();
            d
        };
        let (config, layer, orphan) = (blob(b"config"), blob(b"layer"), blob(b"orphan!"));
        let bytes = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{config}"}},"layers":[{{"digest":"{layer}"}}]}}"#
        );
        let m = StoredManifest {
            digest: Digest::of(bytes.as_bytes()),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            bytes: bytes.into_bytes(),
        };
        s.put_manifest("r", &["t".into()], &m).unwrap();

        let stale = s.create_upload("r").unwrap();
        fs::write(s.upload_file("r", &stale).unwrap().unwrap(), b"partial").unwrap();
        let opts = |dry_run| GcOptions {
            dry_run,
            upload_max_age: Duration::ZERO,
        };
        std::thread::sleep(Duration::from_millis(10));
        let dry = collect(&s, opts(true)).unwrap();
        assert_eq!(dry.uploads_removed, 1);
        assert_eq!(dry.removed, vec![(orphan.clone(), 7)]);
        assert!(s.blob_path(&orphan).exists());

        let real = collect(&s, opts(false)).unwrap();
        assert_eq!(real.upload_bytes_freed, 7);
        assert!(s.upload_file("r", &stale).unwrap().is_none());
        assert_eq!(real.bytes_freed, 7);
        assert_eq!(real.kept, 3);
        assert_eq!(real.links_removed, 1);
        assert!(!s.blob_path(&orphan).exists());
        assert!(s.blob_in_repo("r", &layer).unwrap().is_some());
        assert!(s.blob_in_repo("r", &orphan).unwrap().is_none());
    }
}
