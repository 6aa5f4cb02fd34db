//! A stored layer as a byte stream again: the exact tar its diff_id names
//! (from the tar-split kept at import, or amber's deterministic writer for
//! layers made by commit), and compressed blobs cached beside it.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use super::{layers, random_hex, Store, StoreError};
use crate::archive::split::{self, SPLIT_FILE};
use crate::archive::{write_layer_tar, HashingWriter};
use crate::types::Digest;

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobCompression {
    /// The plain tar (its digest is the diff_id).
    None,
    /// gzip.
    Gzip,
    /// Zstandard (multi-threaded).
    Zstd,
}

impl BlobCompression {
    /// Parse `none`, `gzip`, `zstd`.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "" | "none" => Ok(Self::None),
            "gzip" | "gz" => Ok(Self::Gzip),
            "zstd" | "zst" => Ok(Self::Zstd),
            other => Err(StoreError::Invalid(format!(
                "unknown compression {other:?} (use none, gzip or zstd)"
            ))),
        }
    }

    /// The OCI media type of a layer blob compressed this way.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Self::None => "application/vnd.oci.image.layer.v1.tar",
            Self::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Self::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    fn cache_prefix(self) -> &'static str {
        match self {
            Self::None => "tar",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }
}

/// A layer blob ready to be sent: where its bytes come from.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// The blob's digest (the diff_id when uncompressed).
    pub digest: Digest,
    /// The blob's length.
    pub size: u64,
    /// The cached compressed file, or `None` for the plain tar (written by
    /// [`Store::write_layer`]).
    pub file: Option<PathBuf>,
}

impl Store {
    /// Write the layer `diff_id`'s tar to `out`, byte for byte the tar its
    /// diff_id names; a layer that no longer reproduces its digest is an
    /// error (the store is damaged). Returns the length written.
    pub fn write_layer<W: Write>(&self, diff_id: &Digest, out: W) -> Result<u64, StoreError> {
        self.ensure_unpacked(diff_id)?;
        let dir = layers::layer_dir(&self.root, diff_id);
        let diff = dir.join("diff");
        let split_path = dir.join(SPLIT_FILE);
        let (digest, size) = if split_path.exists() {
            split::replay(&diff, &split_path, out)?
        } else {
            // The deterministic writer hashes what it writes.
            let s = write_layer_tar(&diff, out)?;
            (s.diff_id, s.size)
        };
        if &digest != diff_id {
            return Err(StoreError::Corrupt(format!(
                "layer {diff_id} no longer reproduces its content (got {digest}); run `amber system check`"
            )));
        }
        Ok(size)
    }

    /// The layer's blob in the given compression: the plain tar needs no
    /// file; a compressed one is made once, cached beside the layer
    /// (`layers/<id>/<alg>-<digest>`), and reused.
    pub fn layer_blob(
        &self,
        diff_id: &Digest,
        size: u64,
        compression: BlobCompression,
    ) -> Result<LayerBlob, StoreError> {
        if compression == BlobCompression::None {
            return Ok(LayerBlob {
                digest: diff_id.clone(),
                size,
                file: None,
            });
        }
        let dir = layers::layer_dir(&self.root, diff_id);
        let prefix = format!("{}-", compression.cache_prefix());
        let io = |op, path: PathBuf| move |source| StoreError::Io { op, path, source };
        for entry in fs::read_dir(&dir).map_err(io("read", dir.clone()))? {
            let entry = entry.map_err(io("read", dir.clone()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_prefix(&prefix) else {
                continue;
            };
            if let Ok(digest) = format!("sha256:{hex}").parse::<Digest>() {
                let len = entry.metadata().map_err(io("inspect", entry.path()))?.len();
                return Ok(LayerBlob {
                    digest,
                    size: len,
                    file: Some(entry.path()),
                });
            }
        }
        let staging = self.tmp.join(format!("blob-{}", random_hex(8)));
        let result = (|| {
            let f = File::create(&staging).map_err(io("create", staging.clone()))?;
            let out = HashingWriter::new(BufWriter::with_capacity(1 << 20, f));
            let out = match compression {
                BlobCompression::Gzip => {
                    // Level 1 on every core, as members of one gzip stream.
                    let mut enc = crate::archive::pgzip::ParallelGzip::new(out, 1);
                    self.write_layer(diff_id, &mut enc)?;
                    enc.finish().map_err(io("compress", staging.clone()))?
                }
                _ => {
                    let mut enc =
                        zstd::Encoder::new(out, 3).map_err(io("compress", staging.clone()))?;
                    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                    enc.multithread(threads as u32)
                        .map_err(io("compress", staging.clone()))?;
                    self.write_layer(diff_id, &mut enc)?;
                    enc.finish().map_err(io("compress", staging.clone()))?
                }
            };
            let (digest, len, w) = out.finish();
            let f = w
                .into_inner()
                .map_err(|e| io("write", staging.clone())(e.into_error()))?;
            f.sync_all().map_err(io("sync", staging.clone()))?;
            let dest = dir.join(format!("{prefix}{}", digest.hex()));
            fs::rename(&staging, &dest).map_err(io("install", dest.clone()))?;
            super::fsync_dir(&dir).map_err(io("sync", dir.clone()))?;
            Ok(LayerBlob {
                digest,
                size: len,
                file: Some(dest),
            })
        })();
        if result.is_err() {
            let _ = fs::remove_file(&staging);
        }
        result
    }
}
