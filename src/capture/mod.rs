//! Capture bundles: an immutable, deduplicated record of containers at one
//! moment (docs/bundle-format.md, docs/capture.md).
//!
//! Owns the bundle format (manifest, file lists, chunking), the bundle index
//! in SQLite and reading bundles back (files, cat, diff, search). Content
//! goes into the store's shared blob store, so identical bytes are stored
//! once across bundles. Knows nothing of the runtime: the engine
//! (`engine/capture.rs`) freezes containers and hands their paths and
//! `/proc` pids here.
//!
//! Crash safety: every blob file is written first (no row), one `syncfs`
//! makes them durable, then one transaction adds the blob rows and the
//! bundle's index rows. Until then the files are orphans that the store
//! removes at open.

pub mod archive;
pub mod check;
pub mod coredump;
pub mod diff;
pub mod index;
pub mod manifest;
pub mod procs;
pub mod read;
pub mod recv;
pub mod restore;
pub mod search;
pub mod sink;
pub mod volumes;
pub mod walk;

pub use index::{BundleSummary, IndexedContainer, LogLine};
pub use manifest::{
    ContainerCapture, CoreDump, CoreDumps, FileEntry, LogRef, Manifest, VolumeCapture,
    FORMAT_VERSION,
};
pub use sink::BlobSink;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::store::{Store, StoreError};
use crate::types::Digest;

/// Errors of capture operations.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bundle, container or file that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Bad input (a bad manifest, an unknown format version, a bad archive).
    #[error("{0}")]
    Invalid(String),
    /// A filesystem operation failed.
    #[error("failed to {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl CaptureError {
    /// An I/O error with its context.
    pub fn io(op: &'static str, path: &str, source: std::io::Error) -> CaptureError {
        CaptureError::Io {
            op,
            path: path.to_string(),
            source,
        }
    }
}

impl From<rusqlite::Error> for CaptureError {
    fn from(e: rusqlite::Error) -> CaptureError {
        CaptureError::Store(StoreError::Db(e))
    }
}

/// A new bundle ID.
pub fn new_bundle_id() -> String {
    format!("b-{}", crate::store::random_hex(6))
}

/// What the previous capture of a container lets the next one skip.
#[derive(Debug, Default)]
pub struct StatCache {
    /// The previous file list, by path.
    pub files: HashMap<String, FileEntry>,
    /// The previous log.
    pub log: Option<LogRef>,
}

/// The stat cache of a container: from its newest bundle.
pub fn stat_cache(store: &Store, container_id: &str) -> StatCache {
    let load = || -> Result<StatCache, CaptureError> {
        let Some(m) = index::latest_manifest_of(store, container_id)? else {
            return Ok(StatCache::default());
        };
        let manifest = Manifest::parse(&store.read_blob(&m)?)?;
        let Some(c) = manifest.containers.iter().find(|c| c.id == container_id) else {
            return Ok(StatCache::default());
        };
        let files = read::file_list(store, &c.files)?;
        Ok(StatCache {
            files: files.into_iter().map(|f| (f.path.clone(), f)).collect(),
            log: Some(c.log.clone()),
        })
    };
    load().unwrap_or_else(|e| {
        // A cache miss only costs time: the files are read again.
        tracing::warn!(container_id, error = %e, "no stat cache for capture");
        StatCache::default()
    })
}

/// Store a container's log (JSON lines) in chunks of at most
/// [`manifest::LOG_CHUNK`] bytes cut after a newline, so an appended log
/// keeps every earlier chunk but its last and each chunk holds whole lines
/// (the index is built per chunk, once per container). When the log is the
/// same file as in `prev` and not shorter (the shim only appends), the
/// chunks before `prev`'s last are reused and only the rest is read.
pub fn capture_log(
    sink: &mut BlobSink<'_>,
    path: &Path,
    prev: Option<&LogRef>,
) -> Result<LogRef, CaptureError> {
    let name = path.display().to_string();
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LogRef::default()),
        Err(e) => return Err(CaptureError::io("open log", &name, e)),
    };
    let meta = f
        .metadata()
        .map_err(|e| CaptureError::io("stat log", &name, e))?;
    let mut out = LogRef {
        chunk_size: manifest::LOG_CHUNK as u64,
        ino: meta.ino(),
        ..LogRef::default()
    };
    if let Some(p) = prev
        .filter(|p| p.ino == meta.ino() && meta.len() >= p.size && p.sizes.len() == p.chunks.len())
    {
        let keep = p.chunks.len().saturating_sub(1);
        if p.chunks[..keep]
            .iter()
            .zip(&p.sizes)
            .all(|(d, s)| sink.reuse(d, *s, manifest::CHUNK_MEDIA_TYPE))
        {
            out.chunks = p.chunks[..keep].to_vec();
            out.sizes = p.sizes[..keep].to_vec();
            out.size = out.sizes.iter().sum();
        }
    }
    f.seek(SeekFrom::Start(out.size))
        .map_err(|e| CaptureError::io("seek log", &name, e))?;
    let mut data = Vec::new();
    f.read_to_end(&mut data)
        .map_err(|e| CaptureError::io("read log", &name, e))?;
    // Only whole lines: the shim may be writing the last one.
    let end = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    for piece in line_chunks(&data[..end], manifest::LOG_CHUNK) {
        out.chunks
            .push(sink.put(piece, manifest::CHUNK_MEDIA_TYPE)?);
        out.sizes.push(piece.len() as u64);
        out.size += piece.len() as u64;
    }
    Ok(out)
}

/// Cut `data` into pieces of at most `max` bytes, each ending after a
/// newline when there is one in reach.
pub fn line_chunks(data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = if rest.len() <= max {
            rest.len()
        } else {
            rest[..max]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(max, |i| i + 1)
        };
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

/// Parse JSON log records into lines; lines that are not records are kept
/// as text without a time.
pub fn log_lines(data: &[u8]) -> Vec<LogLine> {
    data.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(
            |l| match serde_json::from_slice::<crate::runtime::LogRecord>(l) {
                Ok(r) => LogLine {
                    time: r.time,
                    text: r.log.trim_end_matches('\n').to_string(),
                },
                Err(_) => LogLine {
                    time: String::new(),
                    text: String::from_utf8_lossy(l).into_owned(),
                },
            },
        )
        .collect()
}

/// Write the file list of a container as a blob.
pub fn put_file_list(sink: &mut BlobSink<'_>, files: &[FileEntry]) -> Result<Digest, CaptureError> {
    let data = serde_json::to_vec(files)
        .map_err(|e| CaptureError::Invalid(format!("cannot encode the file list: {e}")))?;
    sink.put(&data, manifest::FILES_MEDIA_TYPE)
}

/// Finish a bundle: write its manifest, make every blob durable, index it
/// in one transaction. Returns the manifest digest.
pub fn finish(
    store: &Store,
    sink: &mut BlobSink<'_>,
    manifest: &Manifest,
    indexed: &[IndexedContainer],
    baseline: Option<&str>,
) -> Result<(Digest, u64, u64), CaptureError> {
    let data = serde_json::to_vec_pretty(manifest)
        .map_err(|e| CaptureError::Invalid(format!("cannot encode the manifest: {e}")))?;
    let digest = sink.put(&data, manifest::MANIFEST_MEDIA_TYPE)?;
    store.sync_blobs()?;
    index::commit(store, manifest, &digest, sink, indexed, baseline)?;
    Ok((digest, sink.size(), sink.new_bytes))
}

/// Read a chunked stream back (a file's content, the log).
pub fn read_chunks(
    store: &Store,
    chunks: &[Digest],
    out: &mut impl std::io::Write,
) -> Result<u64, CaptureError> {
    let mut n = 0u64;
    for d in chunks {
        let data = store.read_blob(d)?;
        out.write_all(&data)
            .map_err(|e| CaptureError::io("write", "output", e))?;
        n += data.len() as u64;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_chunks_end_on_newlines_and_keep_their_prefix() {
        let data = b"aaa\nbbbb\ncc\nd\n";
        let c = line_chunks(data, 6);
        assert_eq!(c, [&b"aaa\n"[..], b"bbbb\n", b"cc\nd\n"]);
        assert_eq!(c.concat(), data);
        // A line longer than a chunk is cut at the chunk size.
        assert_eq!(
            line_chunks(b"0123456789\n", 4),
            [&b"0123"[..], b"4567", b"89\n"]
        );
        // Appending keeps every chunk but the last.
        let mut more = data.to_vec();
        more.extend_from_slice(b"eeee\n");
        let c2 = line_chunks(&more, 6);
        assert_eq!(c2[..2], c[..2]);
        assert!(line_chunks(b"", 6).is_empty());
    }
}
