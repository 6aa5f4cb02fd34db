//! Tar archives: safe extraction of layers (hostile-input hardened, OCI →
//! overlay whiteout translation), compression detection, digests while
//! streaming; `docker cp` inside a container root (`copy`) and `docker diff`
//! over an overlay upper directory (`changes`). Pure over `Read`/`Write` and
//! directories it is handed; knows nothing of the store's layout.

pub mod changes;
mod compress;
pub mod copy;
mod extract;
mod hash;
pub mod layer_tar;
pub mod pgzip;
pub mod split;
mod validate;
mod writeback;

pub use compress::{decompress, Compression};
pub(crate) use extract::sanitize as sanitize_path;
pub use extract::{extract_layer, ExtractOptions, ExtractSummary};
pub use hash::HashingReader;
pub use layer_tar::{
    layer_diff_id, write_layer_compressed, write_layer_tar, HashingWriter, LayerCompression,
    LayerTarSummary,
};
pub use validate::{check_layer, CheckSummary};
pub(crate) use writeback::WritebackWriter;

use std::path::PathBuf;

/// Why an archive could not be read or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An entry's path or link target would leave the layer root.
    #[error("unsafe path in archive: {path:?} {reason}")]
    UnsafePath {
        /// The offending entry, as written in the archive.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A device node in an archive that may not create them.
    #[error(
        "device node {path:?} in archive: device nodes are only allowed in privileged imports"
    )]
    Device {
        /// The device entry.
        path: String,
    },
    /// The archive ended inside an entry.
    #[error("archive is truncated: entry {path:?} ends after {got} of {want} bytes")]
    Truncated {
        /// The entry being read.
        path: String,
        /// Bytes read.
        got: u64,
        /// Bytes announced by the header.
        want: u64,
    },
    /// The data is not a (supported) tar stream.
    #[error("archive is not a valid tar stream: {source}")]
    Corrupt {
        /// What the reader reported.
        #[source]
        source: std::io::Error,
    },
    /// A compression format amber does not read.
    #[error("unsupported compression {0} (use a plain, gzip or zstd tar)")]
    UnsupportedCompression(&'static str),
    /// A filesystem operation failed while unpacking.
    #[error("failed to {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A path named by the caller does not exist inside the container
    /// (the API answers 404).
    #[error("no such file or directory in container: {path}")]
    NotFound {
        /// The path as the caller wrote it.
        path: String,
    },
    /// A path that must be a directory is something else (the API answers
    /// 400).
    #[error("not a directory in container: {path}")]
    NotADirectory {
        /// The path as the caller wrote it.
        path: String,
    },
    /// `noOverwriteDirNonDir` forbids replacing a directory with a
    /// non-directory or the reverse (the API answers 400).
    #[error("cannot overwrite {path:?}: {reason}")]
    Overwrite {
        /// The entry, as written in the archive.
        path: String,
        /// Which replacement was refused.
        reason: &'static str,
    },
}
