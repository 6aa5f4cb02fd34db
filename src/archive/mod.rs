//! Tar archives: safe extraction of layers (hostile-input hardened, OCI →
//! overlay whiteout translation), compression detection, digests while
//! streaming. Pure over `Read`/`Write`; knows nothing of the store's layout.

mod compress;
mod extract;
mod hash;

pub use compress::{decompress, Compression};
pub use extract::{extract_layer, ExtractOptions, ExtractSummary};
pub use hash::HashingReader;

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
}
