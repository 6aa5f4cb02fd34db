//! Volumes and bind mounts in bundles (`capture --volumes`): their content
//! is kept like a writable layer (a file list of chunked blobs), up to a
//! size cap per mount, and is browsed under its mount point.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::manifest::{ContainerCapture, FileEntry, VolumeCapture};
use super::{read, BlobSink, CaptureError};
use crate::store::Store;

/// Default cap of one mount's content (bytes of regular files).
pub const DEFAULT_MAX_SIZE: u64 = 1 << 30;

/// A mount of the inspect document to capture: `(kind, name, source,
/// destination)`; tmpfs and other kinds have no host content to read.
pub fn mounts_of(
    inspect: &Value,
    volume_dir: impl Fn(&str) -> String,
) -> Vec<(String, String, String, String)> {
    inspect["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    let kind = m["Type"].as_str()?;
                    let dest = m["Destination"].as_str()?.to_string();
                    match kind {
                        "volume" => {
                            let name = m["Name"].as_str()?.to_string();
                            let src = volume_dir(&name);
                            Some((kind.to_string(), name, src, dest))
                        }
                        "bind" => Some((
                            kind.to_string(),
                            String::new(),
                            m["Source"].as_str()?.to_string(),
                            dest,
                        )),
                        _ => None,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Bytes of regular files under `dir` (not crossing into other
/// filesystems, not following links); stops counting past `max`.
fn content_size(dir: &Path, max: u64) -> Result<u64, CaptureError> {
    let mut total = 0;
    for e in walkdir::WalkDir::new(dir)
        .same_file_system(true)
        .follow_links(false)
    {
        let e = e.map_err(|e| CaptureError::io("walk", &dir.display().to_string(), e.into()))?;
        if e.file_type().is_file() {
            total += e.metadata().map(|m| m.len()).unwrap_or(0);
            if total > max {
                break;
            }
        }
    }
    Ok(total)
}

/// Capture one mount's content, or record why it was skipped. Returns the
/// entry and its files (for the index).
pub fn capture_mount(
    sink: &mut BlobSink<'_>,
    (kind, name, source, destination): (String, String, String, String),
    max_size: u64,
) -> Result<(VolumeCapture, Vec<FileEntry>), CaptureError> {
    let mut v = VolumeCapture {
        kind,
        name,
        source,
        destination,
        size: 0,
        files: None,
        file_count: 0,
        skipped: None,
    };
    let src = Path::new(&v.source).to_path_buf();
    match std::fs::symlink_metadata(&src) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            v.skipped = Some("not a directory (single-file mounts are not captured)".into());
            return Ok((v, Vec::new()));
        }
        Err(e) => {
            v.skipped = Some(format!("cannot read {}: {e}", v.source));
            return Ok((v, Vec::new()));
        }
    }
    v.size = content_size(&src, max_size)?;
    if v.size > max_size {
        v.skipped = Some(format!(
            "over the cap of {max_size} bytes (--volumes-max-size); at least {} bytes",
            v.size
        ));
        return Ok((v, Vec::new()));
    }
    let (files, _) = super::walk::walk_upper(&src, sink, &HashMap::new())?;
    v.files = Some(super::put_file_list(sink, &files)?);
    v.file_count = files.len() as u64;
    Ok((v, files))
}

/// `dest/path` without the leading `/`: where a mount's file is seen in the
/// container.
pub fn in_container(destination: &str, path: &str) -> String {
    let d = destination.trim_matches('/');
    if d.is_empty() {
        path.to_string()
    } else {
        format!("{d}/{path}")
    }
}

/// Every captured file of a container as the container sees it: the
/// writable layer's, then each captured mount's under its mount point
/// (which hides what the layer has there). `load` reads a file list blob.
pub fn container_files(
    c: &ContainerCapture,
    load: impl Fn(&crate::types::Digest) -> Result<Vec<FileEntry>, CaptureError>,
) -> Result<Vec<FileEntry>, CaptureError> {
    let mut mounts = Vec::new();
    for v in &c.volumes {
        if let Some(d) = &v.files {
            mounts.push((v.destination.as_str(), load(d)?));
        }
    }
    Ok(merge(load(&c.files)?, mounts))
}

/// The writable layer's entries with each mount's entries laid over them
/// under its mount point.
pub fn merge(mut out: Vec<FileEntry>, mounts: Vec<(&str, Vec<FileEntry>)>) -> Vec<FileEntry> {
    for (destination, files) in mounts {
        let dest = destination.trim_matches('/');
        if !dest.is_empty() {
            out.retain(|f| {
                !f.path
                    .strip_prefix(dest)
                    .is_some_and(|r| r.starts_with('/'))
            });
        }
        for mut f in files {
            f.path = in_container(destination, &f.path);
            out.push(f);
        }
    }
    out
}

/// [`container_files`] from the store.
pub fn stored_files(store: &Store, c: &ContainerCapture) -> Result<Vec<FileEntry>, CaptureError> {
    container_files(c, |d| read::file_list(store, d))
}
