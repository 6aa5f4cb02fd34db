//! What the registry client needs from the store: an image as the blobs a
//! registry holds (config, compressed layers, an OCI manifest), and layers
//! streamed in from a registry, staged, then installed with their image.

use std::io::Read;

use serde_json::json;

use super::import::{NewLayer, StagedLayer};
use super::layer_io::{BlobCompression, LayerBlob};
use super::{layers, Store, StoreError};
use crate::archive;
use crate::types::{Digest, Reference};

/// An image as a registry stores it.
#[derive(Debug, Clone)]
pub struct ImageBlobs {
    /// The config document.
    pub config: Vec<u8>,
    /// Its digest (the image ID).
    pub config_digest: Digest,
    /// Layer blobs, bottom first.
    pub layers: Vec<LayerBlob>,
    /// The OCI image manifest.
    pub manifest: Vec<u8>,
}

/// A layer of an image being pulled: already in the store, or staged.
#[derive(Debug)]
pub enum PulledLayer {
    /// The store has it (diff_id, tar size).
    Present(Digest, u64),
    /// Unpacked in `tmp/`.
    Staged(StagedLayer),
}

impl Store {
    /// The blobs and OCI manifest of image `id`, layers compressed as asked
    /// (compressed blobs are made once and cached).
    pub fn image_blobs(
        &self,
        id: &Digest,
        compression: BlobCompression,
    ) -> Result<ImageBlobs, StoreError> {
        let rec = self.image(id)?;
        let config = self.image_config(id)?;
        let sizes = self.layer_sizes(&rec.layers)?;
        let layers = rec
            .layers
            .iter()
            .zip(sizes)
            .map(|(d, s)| self.layer_blob(d, s, compression))
            .collect::<Result<Vec<_>, _>>()?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": id.to_string(),
                "size": config.len(),
            },
            "layers": layers.iter().map(|l| json!({
                "mediaType": compression.layer_media_type(),
                "digest": l.digest.to_string(),
                "size": l.size,
            })).collect::<Vec<_>>(),
        }))
        .map_err(|e| StoreError::Invalid(format!("failed to encode a manifest: {e}")))?;
        Ok(ImageBlobs {
            config,
            config_digest: id.clone(),
            layers,
            manifest,
        })
    }

    /// Unpack a layer blob (plain, gzip or zstd) into `tmp/`.
    pub fn stage_layer_blob<R: Read + Send + 'static>(
        &self,
        input: R,
    ) -> Result<StagedLayer, StoreError> {
        let reader = archive::decompress(input)?.1;
        self.stage_layer(reader, false, false)
    }

    /// Remove a staged layer that will not be installed.
    pub fn discard_staged(&self, staged: StagedLayer) {
        layers::remove_tree(&staged.dir);
    }

    /// The tar size of a layer the store has.
    pub fn layer_size(&self, diff_id: &Digest) -> Result<u64, StoreError> {
        Ok(self.layer_sizes(std::slice::from_ref(diff_id))?[0])
    }

    /// Install the staged layers of a pulled image, then index it (with
    /// `tag`). The config's diff_ids must be the layers', in order.
    pub fn add_pulled_image(
        &self,
        config: &[u8],
        layers: Vec<PulledLayer>,
        tag: Option<&Reference>,
    ) -> Result<Digest, StoreError> {
        let mut new = Vec::new();
        let mut result = Ok(());
        for l in layers {
            match l {
                PulledLayer::Present(diff_id, size) => new.push(NewLayer { diff_id, size }),
                PulledLayer::Staged(s) => {
                    if result.is_ok() {
                        result = layers::install(&self.root, &s.dir, &s.layer.diff_id);
                    } else {
                        layers::remove_tree(&s.dir);
                    }
                    new.push(s.layer);
                }
            }
        }
        result?;
        self.add_image(config, &new, None, tag)
    }
}
