//! `save`: images as one tar, in the layout `docker save` writes since
//! Docker 25 (an OCI image layout plus `manifest.json` and `repositories`,
//! read by every `docker load` and `podman load`), or a plain OCI layout
//! archive (`--format oci`). See docs/archive.md.
//!
//! The archive is planned first (every entry's name and length known, so
//! the caller can announce the total), then streamed: layer tars straight
//! from the layer directories, compressed layers from the blobs cached
//! beside them. Nothing is staged as a whole-image copy.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};

use serde_json::{json, Value};

use super::layer_io::{BlobCompression, LayerBlob};
use super::{Store, StoreError};
use crate::types::{Digest, Reference};

/// Tar block size.
const BLOCK: u64 = 512;

/// Archive layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// docker-archive as Docker 25+ writes it (OCI layout + manifest.json).
    Docker,
    /// An OCI image layout only.
    Oci,
}

impl SaveFormat {
    /// Parse `docker`, `docker-archive`, `oci`, `oci-archive`.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "" | "docker" | "docker-archive" => Ok(Self::Docker),
            "oci" | "oci-archive" => Ok(Self::Oci),
            other => Err(StoreError::Invalid(format!(
                "unknown archive format {other:?} (use docker or oci)"
            ))),
        }
    }
}

/// One image to save, with the tags to record for it.
#[derive(Debug, Clone)]
pub struct SaveImage {
    /// Image ID.
    pub id: Digest,
    /// Tags to name it by (none: saved by ID only).
    pub tags: Vec<Reference>,
}

/// How to save.
#[derive(Debug, Clone, Copy)]
pub struct SaveOptions {
    /// Layout.
    pub format: SaveFormat,
    /// Compression of the layer blobs.
    pub compression: BlobCompression,
}

enum Source {
    Dir,
    Bytes(Vec<u8>),
    Layer(Digest),
    File(std::path::PathBuf),
}

struct Entry {
    name: String,
    size: u64,
    source: Source,
}

/// A planned archive: its entries and exact length.
pub struct SavePlan {
    entries: Vec<Entry>,
    /// Bytes the archive will have.
    pub size: u64,
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn json_bytes(v: &Value) -> Vec<u8> {
    // invariant: a serde_json::Value always serialises.
    serde_json::to_vec(v).expect("JSON value serialises")
}

impl Store {
    /// Plan the archive of `images` (compressing and caching layer blobs
    /// that are not cached yet).
    pub fn plan_save(
        &self,
        images: &[SaveImage],
        opts: &SaveOptions,
    ) -> Result<SavePlan, StoreError> {
        let mut entries = vec![
            Entry {
                name: "blobs/".into(),
                size: 0,
                source: Source::Dir,
            },
            Entry {
                name: "blobs/sha256/".into(),
                size: 0,
                source: Source::Dir,
            },
        ];
        let mut seen = std::collections::HashSet::new();
        let mut push_blob = |entries: &mut Vec<Entry>, d: &Digest, size: u64, source: Source| {
            if seen.insert(d.clone()) {
                entries.push(Entry {
                    name: blob_name(d),
                    size,
                    source,
                });
            }
        };
        let mut index = Vec::new();
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for img in images {
            let rec = self.image(&img.id)?;
            let config = self.image_config(&img.id)?;
            let sizes = self.layer_sizes(&rec.layers)?;
            let mut descs = Vec::new();
            let mut layer_names = Vec::new();
            for (diff_id, size) in rec.layers.iter().zip(sizes) {
                let blob: LayerBlob = self.layer_blob(diff_id, size, opts.compression)?;
                let source = match &blob.file {
                    Some(f) => Source::File(f.clone()),
                    None => Source::Layer(diff_id.clone()),
                };
                push_blob(&mut entries, &blob.digest, blob.size, source);
                descs.push(json!({
                    "mediaType": opts.compression.layer_media_type(),
                    "digest": blob.digest.to_string(),
                    "size": blob.size,
                }));
                layer_names.push(blob_name(&blob.digest));
            }
            push_blob(
                &mut entries,
                &img.id,
                config.len() as u64,
                Source::Bytes(config.clone()),
            );
            let manifest = json_bytes(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": img.id.to_string(),
                    "size": config.len(),
                },
                "layers": descs,
            }));
            let manifest_id = Digest::of(&manifest);
            let manifest_len = manifest.len();
            push_blob(
                &mut entries,
                &manifest_id,
                manifest_len as u64,
                Source::Bytes(manifest),
            );
            let desc = |annotations: Option<Value>| {
                let mut d = json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_id.to_string(),
                    "size": manifest_len,
                });
                if let Some(a) = annotations {
                    d["annotations"] = a;
                }
                d
            };
            if img.tags.is_empty() {
                index.push(desc(None));
            }
            for t in &img.tags {
                let ref_name = match opts.format {
                    SaveFormat::Docker => t.tag().unwrap_or("latest").to_string(),
                    SaveFormat::Oci => t.to_string(),
                };
                index.push(desc(Some(json!({
                    "io.containerd.image.name": t.to_string(),
                    "org.opencontainers.image.ref.name": ref_name,
                }))));
                if let (Some(tag), Some(top)) = (t.tag(), rec.layers.last()) {
                    repositories
                        .entry(t.familiar_name())
                        .or_default()
                        .insert(tag.to_string(), top.hex().to_string());
                }
            }
            let tags: Vec<String> = img.tags.iter().map(|t| t.familiar()).collect();
            docker_manifest.push(json!({
                "Config": blob_name(&img.id),
                "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) },
                "Layers": layer_names,
            }));
        }
        let mut add = |name: &str, data: Vec<u8>| {
            entries.push(Entry {
                name: name.into(),
                size: data.len() as u64,
                source: Source::Bytes(data),
            })
        };
        add(
            "index.json",
            json_bytes(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": index,
            })),
        );
        if opts.format == SaveFormat::Docker {
            add("manifest.json", json_bytes(&json!(docker_manifest)));
        }
        add(
            "oci-layout",
            json_bytes(&json!({"imageLayoutVersion": "1.0.0"})),
        );
        if opts.format == SaveFormat::Docker {
            add("repositories", json_bytes(&json!(repositories)));
        }
        let size = entries
            .iter()
            .map(|e| BLOCK + e.size.div_ceil(BLOCK) * BLOCK)
            .sum::<u64>()
            + 2 * BLOCK;
        Ok(SavePlan { entries, size })
    }

    /// Stream a planned archive to `out`.
    pub fn write_save<W: Write>(&self, plan: &SavePlan, mut out: W) -> Result<(), StoreError> {
        let werr = |source: io::Error| StoreError::Io {
            op: "write",
            path: "image archive".into(),
            source,
        };
        for e in &plan.entries {
            let mut h = tar::Header::new_ustar();
            h.set_path(&e.name).map_err(werr)?;
            h.set_size(e.size);
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            if matches!(e.source, Source::Dir) {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
            } else {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
            }
            h.set_cksum();
            out.write_all(h.as_bytes()).map_err(werr)?;
            let written = match &e.source {
                Source::Dir => 0,
                Source::Bytes(b) => {
                    out.write_all(b).map_err(werr)?;
                    b.len() as u64
                }
                Source::Layer(d) => self.write_layer(d, &mut out)?,
                Source::File(p) => {
                    let mut f = File::open(p).map_err(|source| StoreError::Io {
                        op: "open",
                        path: p.clone(),
                        source,
                    })?;
                    io::copy(&mut f, &mut out).map_err(werr)?
                }
            };
            if written != e.size {
                return Err(StoreError::Corrupt(format!(
                    "{} changed size while being saved ({written} bytes, expected {})",
                    e.name, e.size
                )));
            }
            let pad = (BLOCK - e.size % BLOCK) % BLOCK;
            out.write_all(&[0u8; BLOCK as usize][..pad as usize])
                .map_err(werr)?;
        }
        out.write_all(&[0u8; 2 * BLOCK as usize]).map_err(werr)?;
        out.flush().map_err(werr)
    }

    pub(crate) fn layer_sizes(&self, layers: &[Digest]) -> Result<Vec<u64>, StoreError> {
        let conn = self.db();
        layers
            .iter()
            .map(|d| {
                conn.query_row(
                    "SELECT size FROM layers WHERE diff_id = ?1",
                    [d.to_string()],
                    |r| r.get::<_, i64>(0),
                )
                .map(|s| s as u64)
                .map_err(StoreError::from)
            })
            .collect()
    }
}
