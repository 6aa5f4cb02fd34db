//! A container's writable layer (overlay upper dir) as a file list whose
//! regular files are chunk digests. A stat cache from the previous capture
//! of the same container skips reading files that did not change.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use base64::Engine as _;

use super::manifest::{FileEntry, CHUNK_MEDIA_TYPE, FILE_CHUNK};
use super::sink::{put_chunked, BlobSink};
use super::CaptureError;

/// The xattr overlayfs marks an opaque directory with.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// How many files the stat cache let the walk skip, and how many it read.
#[derive(Debug, Default, Clone, Copy)]
pub struct WalkStats {
    /// Regular files whose chunks came from the cache.
    pub reused: u64,
    /// Regular files read.
    pub read: u64,
}

/// Walk `upper` into a file list, storing file content through `sink`.
/// `cache` is the previous capture's list of the same container, by path.
pub fn walk_upper(
    upper: &Path,
    sink: &mut BlobSink<'_>,
    cache: &HashMap<String, FileEntry>,
) -> Result<(Vec<FileEntry>, WalkStats), CaptureError> {
    let mut out = Vec::new();
    let mut stats = WalkStats::default();
    let walker = walkdir::WalkDir::new(upper)
        .min_depth(1)
        .follow_links(false)
        // A bind mount's tree may hold other mounts: never cross into them.
        .same_file_system(true)
        .sort_by_file_name();
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().map(Path::to_path_buf).unwrap_or_default();
            CaptureError::io("walk", &path.display().to_string(), e.into())
        })?;
        let rel = entry
            .path()
            .strip_prefix(upper)
            .map_err(|_| CaptureError::Invalid("walk left the upper dir".into()))?
            .to_string_lossy()
            .into_owned();
        let meta = match entry.path().symlink_metadata() {
            Ok(m) => m,
            // Removed by the container while we walk (with --no-pause).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CaptureError::io("stat", &rel, e)),
        };
        let mut fe = describe(entry.path(), rel, &meta)?;
        if fe.kind == "file" {
            file_content(entry.path(), &mut fe, sink, cache, &mut stats)?;
        }
        out.push(fe);
    }
    Ok((out, stats))
}

/// The entry without content.
fn describe(path: &Path, rel: String, meta: &std::fs::Metadata) -> Result<FileEntry, CaptureError> {
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        "file"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_char_device() && meta.rdev() == 0 {
        "whiteout"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else {
        "socket"
    };
    let target = if ft.is_symlink() {
        Some(
            std::fs::read_link(path)
                .map_err(|e| CaptureError::io("read link", &rel, e))?
                .to_string_lossy()
                .into_owned(),
        )
    } else {
        None
    };
    let (xattrs, opaque) = read_xattrs(path);
    Ok(FileEntry {
        kind: kind.to_string(),
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        size: if ft.is_file() { meta.size() } else { 0 },
        target,
        xattrs,
        opaque,
        rdev: matches!(kind, "char" | "block").then(|| meta.rdev()),
        digest: None,
        chunks: Vec::new(),
        ino: meta.ino(),
        ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        path: rel,
    })
}

/// Extended attributes (values base64) and the overlay opaque mark.
fn read_xattrs(path: &Path) -> (BTreeMap<String, String>, bool) {
    let mut out = BTreeMap::new();
    let mut opaque = false;
    let Ok(names) = xattr::list(path) else {
        return (out, false);
    };
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let Ok(Some(value)) = xattr::get(path, &name) else {
            continue;
        };
        if name == OPAQUE_XATTR {
            opaque = value == b"y";
            continue;
        }
        out.insert(
            name,
            base64::engine::general_purpose::STANDARD.encode(value),
        );
    }
    (out, opaque)
}

/// Fill a regular file's chunks: from the cache when its inode, size,
/// mtime and ctime are unchanged (and its chunks still stored), else by
/// reading it.
fn file_content(
    path: &Path,
    fe: &mut FileEntry,
    sink: &mut BlobSink<'_>,
    cache: &HashMap<String, FileEntry>,
    stats: &mut WalkStats,
) -> Result<(), CaptureError> {
    if let Some(prev) = cache.get(&fe.path) {
        let same = prev.kind == "file"
            && prev.ino == fe.ino
            && prev.size == fe.size
            && prev.mtime_ns == fe.mtime_ns
            && prev.ctime_ns == fe.ctime_ns
            && prev.digest.is_some();
        if same && reuse_chunks(prev, sink) {
            fe.chunks = prev.chunks.clone();
            fe.digest = prev.digest.clone();
            stats.reused += 1;
            return Ok(());
        }
    }
    let f = File::open(path).map_err(|e| CaptureError::io("open", &fe.path, e))?;
    let (chunks, digest, size) = put_chunked(sink, f, FILE_CHUNK)?;
    // The file may have grown or shrunk since the stat (with --no-pause):
    // the list records what was read.
    fe.size = size;
    fe.chunks = chunks;
    fe.digest = Some(digest);
    stats.read += 1;
    Ok(())
}

fn reuse_chunks(prev: &FileEntry, sink: &mut BlobSink<'_>) -> bool {
    let n = prev.chunks.len();
    prev.chunks.iter().enumerate().all(|(i, d)| {
        let size = if i + 1 == n {
            prev.size - (FILE_CHUNK as u64) * (n as u64 - 1)
        } else {
            FILE_CHUNK as u64
        };
        sink.reuse(d, size, CHUNK_MEDIA_TYPE)
    })
}
