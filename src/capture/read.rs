//! Reading bundles back without restoring: manifests, file lists, files.

use serde_json::{json, Value};

use super::manifest::{ContainerCapture, CoreDump, FileEntry, Manifest};
use super::{index, CaptureError};
use crate::store::Store;
use crate::types::Digest;

/// A bundle's manifest, by ID, prefix or baseline name.
pub fn manifest(store: &Store, name: &str) -> Result<Manifest, CaptureError> {
    let b = index::resolve(store, name)?;
    let digest: Digest = b
        .manifest
        .parse()
        .map_err(|_| CaptureError::Invalid(format!("bad manifest digest of bundle {}", b.id)))?;
    Manifest::parse(&store.read_blob(&digest)?)
}

/// A container's file list.
pub fn file_list(store: &Store, digest: &Digest) -> Result<Vec<FileEntry>, CaptureError> {
    serde_json::from_slice(&store.read_blob(digest)?)
        .map_err(|e| CaptureError::Invalid(format!("bad file list {digest}: {e}")))
}

/// The container entry, or a not-found error naming the bundle.
pub fn container<'m>(m: &'m Manifest, name: &str) -> Result<&'m ContainerCapture, CaptureError> {
    m.container(name)
        .ok_or_else(|| CaptureError::NotFound(format!("bundle {} has no container {name}", m.id)))
}

/// `bundle files`: the entries at or under `path` (all when empty).
pub fn files(
    store: &Store,
    m: &Manifest,
    name: &str,
    path: &str,
) -> Result<Vec<Value>, CaptureError> {
    let c = container(m, name)?;
    let prefix = path.trim_matches('/');
    Ok(super::volumes::stored_files(store, c)?
        .into_iter()
        .filter(|f| {
            prefix.is_empty()
                || f.path == prefix
                || f.path.strip_prefix(prefix).is_some_and(|r| r.starts_with('/'))
        })
        .map(|f| {
            json!({
                "path": format!("/{}", f.path), "kind": f.kind, "mode": format!("{:o}", f.mode & 0o7777),
                "uid": f.uid, "gid": f.gid, "size": f.size, "mtime_ns": f.mtime_ns,
                "target": f.target, "digest": f.digest, "opaque": f.opaque,
            })
        })
        .collect())
}

/// `bundle cat`: the content of one captured regular file.
pub fn cat(store: &Store, m: &Manifest, name: &str, path: &str) -> Result<Vec<u8>, CaptureError> {
    let c = container(m, name)?;
    let want = path.trim_matches('/');
    let list = super::volumes::stored_files(store, c)?;
    let f = list.iter().find(|f| f.path == want).ok_or_else(|| {
        CaptureError::NotFound(format!(
            "{path} is not in the captured writable layer or volumes of {} (only changed files are captured)",
            c.name
        ))
    })?;
    if f.kind != "file" {
        return Err(CaptureError::Invalid(format!(
            "{path} is a {}, not a regular file",
            f.kind
        )));
    }
    let mut out = Vec::with_capacity(f.size as usize);
    super::read_chunks(store, &f.chunks, &mut out)?;
    Ok(out)
}

/// A container's captured log bytes.
pub fn log(store: &Store, c: &ContainerCapture) -> Result<Vec<u8>, CaptureError> {
    let mut out = Vec::with_capacity(c.log.size as usize);
    super::read_chunks(store, &c.log.chunks, &mut out)?;
    Ok(out)
}

/// The core dump of one process of a bundle's container, by host pid or,
/// when no host pid matches, by its pid in the container's namespace.
pub fn core<'m>(m: &'m Manifest, name: &str, pid: i32) -> Result<&'m CoreDump, CaptureError> {
    let c = container(m, name)?;
    let Some(cores) = &c.cores else {
        return Err(CaptureError::NotFound(format!(
            "bundle {} has no core dumps of {} (capture with --core)",
            m.id, c.name
        )));
    };
    let found = cores
        .processes
        .iter()
        .find(|d| d.pid == pid)
        .or_else(|| cores.processes.iter().find(|d| d.ns_pid == Some(pid)));
    let Some(d) = found else {
        let have: Vec<String> = cores.processes.iter().map(|d| d.pid.to_string()).collect();
        let why = match (&cores.error, have.is_empty()) {
            (Some(e), _) => format!(" ({e})"),
            (None, true) => " (it had no processes)".to_string(),
            (None, false) => format!(" (pids: {})", have.join(", ")),
        };
        return Err(CaptureError::NotFound(format!(
            "bundle {} has no core of pid {pid} in {}{why}",
            m.id, c.name
        )));
    };
    match &d.error {
        Some(e) => Err(CaptureError::NotFound(format!(
            "bundle {} has no core of pid {pid} in {}: {e}",
            m.id, c.name
        ))),
        None => Ok(d),
    }
}
