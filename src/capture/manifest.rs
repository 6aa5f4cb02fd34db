//! The bundle manifest, format version 1 (docs/bundle-format.md): one JSON
//! blob naming every other blob of the bundle.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::Digest;

/// The bundle format this code writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Media type of the manifest blob.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.amber.bundle.manifest.v1+json";
/// Media type of a file list blob.
pub const FILES_MEDIA_TYPE: &str = "application/vnd.amber.bundle.files.v1+json";
/// Media type of a content chunk (file data or log bytes).
pub const CHUNK_MEDIA_TYPE: &str = "application/vnd.amber.bundle.chunk.v1";
/// Regular files are cut into chunks of this size, so a change re-stores
/// only the chunks it touches.
pub const FILE_CHUNK: usize = 1 << 20;
/// The log is cut into chunks of this size: an appended log re-stores only
/// its last chunk and the new ones.
pub const LOG_CHUNK: usize = 64 << 10;

/// A bundle: an immutable record of one moment of some containers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Bundle ID (`b-` and 12 hex digits).
    pub id: String,
    /// Free-form label.
    #[serde(default)]
    pub label: String,
    /// `key=value` annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 UTC time of the capture.
    pub created: String,
    /// The host it was captured on.
    pub host: Value,
    /// One entry per captured container.
    pub containers: Vec<ContainerCapture>,
}

/// What a bundle holds of one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerCapture {
    /// Container ID.
    pub id: String,
    /// Container name (without `/`).
    pub name: String,
    /// The image reference it was created from.
    pub image_ref: String,
    /// The image ID.
    pub image_id: Digest,
    /// Docker's status word at capture time.
    pub status: String,
    /// Whether it was frozen while its writable layer was read.
    pub frozen: bool,
    /// The inspect document.
    pub inspect: Value,
    /// The file list blob (a JSON array of [`FileEntry`]).
    pub files: Digest,
    /// Number of entries in the file list.
    pub file_count: u64,
    /// The log (`container.log`, JSON lines).
    pub log: LogRef,
    /// Process state from `/proc` (see `capture::procs`).
    pub processes: Vec<Value>,
    /// Sockets of the container's network namespace.
    pub sockets: Value,
    /// Cgroup statistics (raw controller files).
    pub cgroup: Value,
    /// Network settings plus the namespace's addresses and routes.
    pub network: Value,
    /// Content of its volumes and bind mounts (`capture --volumes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeCapture>,
    /// Core dumps of its processes (`capture --core`); absent when not
    /// asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<CoreDumps>,
}

/// The content of one volume or bind mount of a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VolumeCapture {
    /// `volume` or `bind`.
    pub kind: String,
    /// Volume name (named and anonymous volumes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Host path read (a volume's `_data`, a bind mount's source).
    pub source: String,
    /// Mount point in the container.
    pub destination: String,
    /// Bytes of regular files found.
    pub size: u64,
    /// The file list blob (as the writable layer's); absent when skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Digest>,
    /// Entries in the file list.
    #[serde(default)]
    pub file_count: u64,
    /// Why the content was not kept (over the size cap, unreadable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The core dumps of one container's processes (`capture --core`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CoreDumps {
    /// Why no core at all was taken (gcore not found, container paused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// One entry per process of the container.
    #[serde(default)]
    pub processes: Vec<CoreDump>,
}

/// The core dump of one process: an ELF core file that gdb loads, stored
/// in chunks of [`FILE_CHUNK`] bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CoreDump {
    /// Host pid.
    pub pid: i32,
    /// Pid in the container's pid namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_pid: Option<i32>,
    /// The executable, as the container sees it (`/proc/PID/exe`).
    #[serde(default)]
    pub exe: String,
    /// Size of the core file in bytes.
    pub size: u64,
    /// sha256 of the whole core file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Content chunks, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<Digest>,
    /// Why this process has no core (gcore failed, timed out, too big).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A chunked byte stream (the log).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LogRef {
    /// Total size in bytes.
    pub size: u64,
    /// Chunk size used.
    pub chunk_size: u64,
    /// Chunks in order.
    pub chunks: Vec<Digest>,
    /// Size of each chunk (lets the next capture reuse all but the last).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sizes: Vec<u64>,
    /// Inode of the log file (the next capture's cache key).
    #[serde(default)]
    pub ino: u64,
}

/// One entry of a container's writable layer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Path relative to the upper dir, without a leading `/`.
    pub path: String,
    /// `file`, `dir`, `symlink`, `whiteout`, `fifo`, `char`, `block`, `socket`.
    pub kind: String,
    /// Permission and type bits (`st_mode`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Size in bytes (regular files).
    pub size: u64,
    /// Symlink target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Extended attributes, values base64.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, String>,
    /// An overlay opaque directory (hides the lower dirs' content).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub opaque: bool,
    /// Device number (char/block devices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<u64>,
    /// sha256 of the whole content (regular files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Content chunks of [`FILE_CHUNK`] bytes (regular files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<Digest>,
    /// Stat cache key: inode number.
    #[serde(default)]
    pub ino: u64,
    /// Stat cache key: change time, nanoseconds.
    #[serde(default)]
    pub ctime_ns: i64,
}

impl Manifest {
    /// Parse a manifest, refusing unknown format versions.
    pub fn parse(data: &[u8]) -> Result<Manifest, super::CaptureError> {
        let v: Value = serde_json::from_slice(data).map_err(|e| {
            super::CaptureError::Invalid(format!("bundle manifest is not JSON: {e}"))
        })?;
        let version = v["format_version"].as_u64().unwrap_or(0);
        if version != u64::from(FORMAT_VERSION) {
            return Err(super::CaptureError::Invalid(format!(
                "unsupported bundle format version {version} (this amber reads version {FORMAT_VERSION})"
            )));
        }
        serde_json::from_value(v)
            .map_err(|e| super::CaptureError::Invalid(format!("bad bundle manifest: {e}")))
    }

    /// The container entry named by ID (prefix) or name.
    pub fn container(&self, name: &str) -> Option<&ContainerCapture> {
        let name = name.trim_start_matches('/');
        self.containers
            .iter()
            .find(|c| c.name == name || c.id == name)
            .or_else(|| {
                let mut m = self.containers.iter().filter(|c| c.id.starts_with(name));
                match (m.next(), m.next()) {
                    (Some(c), None) if !name.is_empty() => Some(c),
                    _ => None,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_versions_are_refused() {
        for (doc, ok) in [
            (r#"{"format_version":2}"#, false),
            (r#"{"format_version":"1"}"#, false),
            (r#"[]"#, false),
            (
                r#"{"format_version":1,"id":"b-1","created":"t","host":{},"containers":[]}"#,
                true,
            ),
        ] {
            assert_eq!(Manifest::parse(doc.as_bytes()).is_ok(), ok, "{doc}");
        }
    }
}
