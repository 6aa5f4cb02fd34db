//! `load`: images from a tar in any of the layouts the world writes —
//! docker-archive (`docker save` before and since Docker 25, `podman save`),
//! OCI image layout (`podman save --format oci-archive`, `skopeo copy
//! oci-archive:`), each plain, gzip or zstd, layers plain or compressed.
//!
//! One pass over the stream: small entries (configs, manifests) are kept in
//! memory; each large entry is handed to its own thread that decompresses
//! it, checks it against the extraction rules (`archive::check_layer`) and
//! keeps the plain tar in `tmp/` while the reader hashes it and goes on to
//! the next. A layer whose blob name is a digest the store already holds is
//! only hashed. Every digest is verified (blob names, manifest descriptors,
//! the config's diff_ids) before anything is installed; images become
//! visible only when complete. A new layer is installed as its synced tar
//! and unpacked afterwards (`store::unpack`): creating its files is most
//! of a load's cost and no longer makes the caller wait.

use std::collections::{HashMap, HashSet};
use std::io::{self, Cursor, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::import::{ImageParts, NewLayer};
use super::{layers, Store, StoreError};
use crate::archive;
use crate::types::{Digest, Reference};

/// Entries up to this size are kept in memory (configs, manifests, tiny
/// layers).
const SMALL: u64 = 1 << 20;
/// At most this much is kept in memory in all.
const MAX_SMALL_TOTAL: u64 = 256 << 20;
/// At most this many entries in an archive.
const MAX_ENTRIES: usize = 100_000;
/// Bytes handed to a layer thread at a time, and how many may wait.
const CHUNK: usize = 256 * 1024;
const QUEUE: usize = 16;
/// Symlink chains in the archive are followed this deep.
const MAX_LINKS: usize = 16;

/// An image `load` added.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// Image ID.
    pub id: Digest,
    /// Tags it was given.
    pub tags: Vec<Reference>,
}

/// What `load` did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// The images, in archive order.
    pub images: Vec<LoadedImage>,
    /// Layers unpacked and added to the store.
    pub layers_added: Vec<Digest>,
    /// Layers the store already had (not added again; when the blob's name
    /// gave its digest, not even unpacked).
    pub layers_present: Vec<Digest>,
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(format!("invalid image archive: {}", msg.into()))
}

/// A layer from the archive, unpacked in `tmp/` or already in the store.
#[derive(Debug, Clone)]
struct Staged {
    layer: NewLayer,
    /// `None`: the store already has it.
    dir: Option<PathBuf>,
}

/// What one archive entry became.
enum Item {
    Small(Vec<u8>),
    Big {
        raw_digest: Digest,
        raw_size: u64,
        staged: Result<Staged, String>,
    },
}

/// The reader's ends of a layer thread's channels: chunks to it, used
/// buffers back.
type LayerFeed = (SyncSender<Vec<u8>>, Receiver<Vec<u8>>);

/// Feeds a layer thread from the reader, and hands the used buffers back
/// (fresh 256 KiB allocations cost a page fault per 4 KiB).
struct ChanReader {
    rx: Receiver<Vec<u8>>,
    back: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    let used = std::mem::replace(&mut self.cur, chunk);
                    // A full return queue only means one more allocation.
                    let _ = self.back.try_send(used);
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The digest a blob's path names: `blobs/sha256/<hex>` (OCI layout,
/// Docker 25+) or `<hex>.tar` / `<hex>.json` (podman's docker-archive).
fn digest_in_name(name: &str) -> Option<Digest> {
    let hex = match name.strip_prefix("blobs/sha256/") {
        Some(h) => h,
        None => name
            .strip_suffix(".tar")
            .or_else(|| name.strip_suffix(".json"))
            .filter(|h| !h.contains('/'))?,
    };
    Digest::from_hex(hex).ok()
}

/// A clean relative name for an archive path, or an error.
fn clean_name(raw: &Path) -> Result<String, StoreError> {
    let p = crate::archive::sanitize_path(raw)?;
    Ok(p.to_string_lossy().into_owned())
}

/// Resolve a symlink at `link` (clean relative) to `target`, inside the
/// archive.
fn link_target(link: &str, target: &Path) -> Result<String, StoreError> {
    let mut parts: Vec<String> = if target.is_absolute() {
        Vec::new()
    } else {
        let mut p: Vec<String> = link.split('/').map(str::to_string).collect();
        p.pop();
        p
    };
    for c in target.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::ParentDir if parts.pop().is_none() => {
                return Err(invalid(format!(
                    "{link} links outside the archive ({})",
                    target.display()
                )));
            }
            _ => {}
        }
    }
    Ok(parts.join("/"))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// One image found in the archive, before verification of its layers.
struct Found {
    config_name: String,
    /// Descriptor digest/size of the config when the layout gives one.
    config_desc: Option<(Digest, u64)>,
    layers: Vec<(String, Option<(Digest, u64)>)>,
    tags: Vec<Reference>,
}

struct Loader<'a> {
    store: &'a Store,
    items: HashMap<String, Item>,
    links: HashMap<String, String>,
    small_total: u64,
    /// Layers unpacked from small entries, by name.
    small_staged: HashMap<String, Staged>,
}

impl Store {
    /// Load every image of an archive (see the module docs). Nothing is
    /// visible unless every image verified.
    pub fn load<R: Read + Send + 'static>(&self, input: R) -> Result<LoadReport, StoreError> {
        let (_, reader) = archive::decompress(input)?;
        let mut loader = Loader {
            store: self,
            items: HashMap::new(),
            links: HashMap::new(),
            small_total: 0,
            small_staged: HashMap::new(),
        };
        let result = loader.read_all(reader).and_then(|()| loader.finish());
        // Whatever was staged and not installed goes away.
        for item in loader.items.values() {
            if let Item::Big {
                staged: Ok(Staged { dir: Some(d), .. }),
                ..
            } = item
            {
                layers::remove_tree(d);
            }
        }
        for s in loader.small_staged.values() {
            if let Some(d) = &s.dir {
                layers::remove_tree(d);
            }
        }
        result
    }
}

impl Loader<'_> {
    fn read_all(&mut self, reader: Box<dyn Read + Send>) -> Result<(), StoreError> {
        let store = self.store;
        let mut tar = tar::Archive::new(reader);
        let entries = tar
            .entries()
            .map_err(|e| invalid(format!("not a tar stream: {e}")))?;
        std::thread::scope(|scope| -> Result<(), StoreError> {
            let mut pending = Vec::new();
            let mut outcome = Ok(());
            for entry in entries {
                let mut entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        outcome = Err(invalid(format!("cannot read the archive: {e}")));
                        break;
                    }
                };
                let step = (|| -> Result<(), StoreError> {
                    let raw = entry
                        .path()
                        .map_err(|e| invalid(format!("bad entry name: {e}")))?
                        .into_owned();
                    let name = clean_name(&raw)?;
                    if name.is_empty() {
                        return Ok(());
                    }
                    if self.items.len() + self.links.len() + pending.len() >= MAX_ENTRIES {
                        return Err(invalid("too many entries"));
                    }
                    let dup = || invalid(format!("duplicate entry {name}"));
                    let kind = entry.header().entry_type();
                    match kind {
                        tar::EntryType::Directory => Ok(()),
                        tar::EntryType::Symlink | tar::EntryType::Link => {
                            let target = entry
                                .link_name()
                                .map_err(|e| invalid(format!("bad link {name}: {e}")))?
                                .ok_or_else(|| invalid(format!("link {name} has no target")))?
                                .into_owned();
                            let target = if kind == tar::EntryType::Link {
                                clean_name(&target)?
                            } else {
                                link_target(&name, &target)?
                            };
                            if self.links.insert(name.clone(), target).is_some()
                                || self.items.contains_key(&name)
                            {
                                return Err(dup());
                            }
                            Ok(())
                        }
                        tar::EntryType::Regular | tar::EntryType::Continuous => {
                            if self.items.contains_key(&name)
                                || self.links.contains_key(&name)
                                || pending.iter().any(|(n, _, _)| n == &name)
                            {
                                return Err(dup());
                            }
                            let size = entry.size();
                            if size <= SMALL {
                                self.small_total += size;
                                if self.small_total > MAX_SMALL_TOTAL {
                                    return Err(invalid("too much metadata"));
                                }
                                let mut data = Vec::with_capacity(size as usize);
                                entry
                                    .read_to_end(&mut data)
                                    .map_err(|e| invalid(format!("cannot read {name}: {e}")))?;
                                if data.len() as u64 != size {
                                    return Err(invalid(format!("{name} is truncated")));
                                }
                                self.items.insert(name, Item::Small(data));
                                return Ok(());
                            }
                            // A blob named by a layer the store has: hash only.
                            let known = digest_in_name(&name)
                                .filter(|d| store.has_layer(d).unwrap_or(false));
                            let (tx, handle) = if known.is_some() {
                                (None, None)
                            } else {
                                let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
                                let (back, spares) = sync_channel::<Vec<u8>>(QUEUE);
                                let h = scope.spawn(move || {
                                    let input = ChanReader {
                                        rx,
                                        back,
                                        cur: Vec::new(),
                                        pos: 0,
                                    };
                                    // A plain tar's digest is the reader's.
                                    archive::decompress(input)
                                        .map_err(StoreError::from)
                                        .and_then(|(kind, r)| {
                                            let hash = kind != archive::Compression::None;
                                            store.stage_pending_tar(r, hash)
                                        })
                                });
                                (Some((tx, spares)), Some(h))
                            };
                            let (raw_digest, raw_size) = pump(&mut entry, tx, &name)?;
                            if raw_size != size {
                                return Err(invalid(format!("{name} is truncated")));
                            }
                            match (known, handle) {
                                (Some(d), _) => {
                                    let staged = if d == raw_digest {
                                        Ok(Staged {
                                            layer: NewLayer { diff_id: d, size },
                                            dir: None,
                                        })
                                    } else {
                                        Err(format!("{name} does not match its digest"))
                                    };
                                    self.items.insert(
                                        name,
                                        Item::Big {
                                            raw_digest,
                                            raw_size,
                                            staged,
                                        },
                                    );
                                }
                                (None, Some(h)) => pending.push((name, (raw_digest, raw_size), h)),
                                (None, None) => unreachable!("a layer thread was started"),
                            }
                            Ok(())
                        }
                        _ => Err(invalid(format!("{name} has an unsupported entry type"))),
                    }
                })();
                if let Err(e) = step {
                    outcome = Err(e);
                    break;
                }
            }
            // Every layer thread is joined, even after an error, so its
            // staging directory is known and removed.
            for (name, (raw_digest, raw_size), h) in pending {
                let staged = match h.join() {
                    Ok(Ok((dir, summary))) => Ok(Staged {
                        layer: NewLayer {
                            // Not hashed by its thread: a plain tar, whose
                            // digest is the blob's.
                            diff_id: summary.diff_id.unwrap_or_else(|| raw_digest.clone()),
                            size: summary.tar_size,
                        },
                        dir: Some(dir),
                    }),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("layer thread panicked".to_string()),
                };
                self.items.insert(
                    name,
                    Item::Big {
                        raw_digest,
                        raw_size,
                        staged,
                    },
                );
            }
            outcome
        })
    }

    fn resolve<'s>(&'s self, name: &'s str) -> Result<&'s str, StoreError> {
        let mut cur = name;
        for _ in 0..MAX_LINKS {
            match self.links.get(cur) {
                Some(t) => cur = t,
                None => return Ok(cur),
            }
        }
        Err(invalid(format!("{name}: too many levels of links")))
    }

    fn small(&self, name: &str) -> Result<&[u8], StoreError> {
        let real = self.resolve(name)?;
        match self.items.get(real) {
            Some(Item::Small(b)) => Ok(b),
            Some(Item::Big { .. }) => Err(invalid(format!("{name} is too large for metadata"))),
            None => Err(invalid(format!("{name} is missing"))),
        }
    }

    /// A layer by entry name, with the digest and size of its blob.
    fn layer(&mut self, name: &str) -> Result<(Staged, Digest, u64), StoreError> {
        let real = self.resolve(name)?.to_string();
        if let Some(s) = self.small_staged.get(&real) {
            let b = self.small(&real)?;
            return Ok((s.clone(), Digest::of(b), b.len() as u64));
        }
        match self.items.get(&real) {
            Some(Item::Big {
                raw_digest,
                raw_size,
                staged,
            }) => {
                let s = staged
                    .clone()
                    .map_err(|e| invalid(format!("layer {name}: {e}")))?;
                Ok((s, raw_digest.clone(), *raw_size))
            }
            Some(Item::Small(b)) => {
                let data = b.clone();
                let reader = archive::decompress(Cursor::new(data.clone()))?.1;
                let st = self
                    .store
                    .stage_pending_layer(reader)
                    .map_err(|e| invalid(format!("layer {name}: {e}")))?;
                let s = Staged {
                    layer: st.layer,
                    dir: Some(st.dir),
                };
                self.small_staged.insert(real, s.clone());
                Ok((s, Digest::of(&data), data.len() as u64))
            }
            None => Err(invalid(format!("layer {name} is missing"))),
        }
    }

    /// The images the archive describes.
    fn images(&self) -> Result<Vec<Found>, StoreError> {
        if self
            .resolve("manifest.json")
            .is_ok_and(|n| self.items.contains_key(n))
        {
            let entries: Vec<DockerManifestEntry> =
                serde_json::from_slice(self.small("manifest.json")?)
                    .map_err(|e| invalid(format!("manifest.json: {e}")))?;
            return entries
                .into_iter()
                .map(|e| {
                    let tags = e
                        .repo_tags
                        .unwrap_or_default()
                        .iter()
                        .map(|t| {
                            Reference::parse(t)
                                .map_err(|e| invalid(format!("manifest.json: tag {t:?}: {e}")))
                        })
                        .collect::<Result<_, _>>()?;
                    Ok(Found {
                        config_name: e.config,
                        config_desc: None,
                        layers: e.layers.into_iter().map(|l| (l, None)).collect(),
                        tags,
                    })
                })
                .collect();
        }
        if self
            .resolve("index.json")
            .is_ok_and(|n| self.items.contains_key(n))
        {
            let index: Value = serde_json::from_slice(self.small("index.json")?)
                .map_err(|e| invalid(format!("index.json: {e}")))?;
            let mut found = Vec::new();
            self.oci_index(&index, None, 0, &mut found)?;
            return Ok(found);
        }
        Err(invalid(
            "no manifest.json or index.json: not a docker-archive or OCI layout",
        ))
    }

    fn oci_index(
        &self,
        index: &Value,
        inherited: Option<&Value>,
        depth: usize,
        found: &mut Vec<Found>,
    ) -> Result<(), StoreError> {
        if depth > 4 {
            return Err(invalid("index.json: indexes nested too deep"));
        }
        let manifests = index["manifests"]
            .as_array()
            .ok_or_else(|| invalid("index.json has no manifests"))?;
        for m in manifests {
            let (digest, size) = descriptor(m)?;
            let annotations = m.get("annotations").or(inherited);
            let blob = self.verified_small(&digest, size)?;
            let doc: Value = serde_json::from_slice(blob)
                .map_err(|e| invalid(format!("manifest {digest}: {e}")))?;
            let media = m["mediaType"]
                .as_str()
                .or_else(|| doc["mediaType"].as_str())
                .unwrap_or("");
            if media.contains("index") || media.contains("manifest.list") {
                if let Some(p) = m.get("platform") {
                    if p["architecture"]
                        .as_str()
                        .is_some_and(|a| a != crate::types::host_arch())
                    {
                        continue;
                    }
                }
                self.oci_index(&doc, annotations, depth + 1, found)?;
                continue;
            }
            if let Some(p) = m.get("platform") {
                if p["architecture"] == "unknown" {
                    continue; // attestation manifests
                }
            }
            let (cd, cs) = descriptor(&doc["config"])?;
            let layers = doc["layers"]
                .as_array()
                .ok_or_else(|| invalid(format!("manifest {digest} has no layers")))?
                .iter()
                .map(|l| {
                    descriptor(l).map(|(d, s)| (format!("blobs/sha256/{}", d.hex()), Some((d, s))))
                })
                .collect::<Result<_, _>>()?;
            let mut tags = Vec::new();
            if let Some(a) = annotations {
                let name = a["io.containerd.image.name"]
                    .as_str()
                    .or_else(|| a["org.opencontainers.image.ref.name"].as_str());
                // A bare tag (`latest`) names no repository: load by ID.
                if let Some(n) = name.filter(|n| n.contains('/') || n.contains(':')) {
                    if let Ok(r) = Reference::parse(n) {
                        tags.push(r);
                    }
                }
            }
            found.push(Found {
                config_name: format!("blobs/sha256/{}", cd.hex()),
                config_desc: Some((cd, cs)),
                layers,
                tags,
            });
        }
        Ok(())
    }

    fn verified_small(&self, digest: &Digest, size: u64) -> Result<&[u8], StoreError> {
        let b = self.small(&format!("blobs/sha256/{}", digest.hex()))?;
        if b.len() as u64 != size || &Digest::of(b) != digest {
            return Err(invalid(format!(
                "blob {digest} does not match its descriptor"
            )));
        }
        Ok(b)
    }

    fn finish(&mut self) -> Result<LoadReport, StoreError> {
        let found = self.images()?;
        if found.is_empty() {
            return Err(invalid("it holds no image"));
        }
        // Verify everything first.
        let mut ready = Vec::new();
        for f in found {
            let config = self.small(&f.config_name)?.to_vec();
            let id = Digest::of(&config);
            let named = digest_in_name(self.resolve(&f.config_name)?);
            if named.as_ref().is_some_and(|d| d != &id)
                || f.config_desc
                    .as_ref()
                    .is_some_and(|(d, s)| d != &id || *s != config.len() as u64)
            {
                return Err(invalid(format!(
                    "config {} does not match its digest",
                    f.config_name
                )));
            }
            let cfg: Value = serde_json::from_slice(&config)
                .map_err(|e| invalid(format!("config {}: {e}", f.config_name)))?;
            let diff_ids: Vec<Digest> = cfg["rootfs"]["diff_ids"]
                .as_array()
                .ok_or_else(|| invalid(format!("config {} has no rootfs.diff_ids", f.config_name)))?
                .iter()
                .map(|d| {
                    d.as_str()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| invalid(format!("config {}: bad diff_id", f.config_name)))
                })
                .collect::<Result<_, _>>()?;
            if diff_ids.len() != f.layers.len() {
                return Err(invalid(format!(
                    "config {} lists {} layers, the manifest {}",
                    f.config_name,
                    diff_ids.len(),
                    f.layers.len()
                )));
            }
            let mut layers = Vec::new();
            for ((name, desc), want) in f.layers.iter().zip(&diff_ids) {
                let (staged, raw_digest, raw_size) = self.layer(name)?;
                let named =
                    digest_in_name(self.resolve(name)?).filter(|_| name.starts_with("blobs/"));
                if named.as_ref().is_some_and(|d| d != &raw_digest)
                    || desc
                        .as_ref()
                        .is_some_and(|(d, s)| d != &raw_digest || *s != raw_size)
                {
                    return Err(invalid(format!("layer {name} does not match its digest")));
                }
                if &staged.layer.diff_id != want {
                    return Err(invalid(format!(
                        "layer {name} has diff_id {}, the config says {want}",
                        staged.layer.diff_id
                    )));
                }
                layers.push(staged);
            }
            ready.push((config, id, layers, f.tags));
        }
        // Each image with its new layers (pending: unpacked afterwards), rows
        // only after files.
        let mut report = LoadReport::default();
        let mut seen = HashSet::new();
        for (config, id, layers, tags) in ready {
            let mut pending = Vec::new();
            for s in &layers {
                let lid = &s.layer.diff_id;
                if !seen.insert(lid.clone()) {
                    continue;
                }
                match &s.dir {
                    Some(dir) if !self.store.has_layer(lid)? => {
                        pending.push((dir.clone(), lid.clone()));
                        report.layers_added.push(lid.clone());
                    }
                    _ => report.layers_present.push(lid.clone()),
                }
            }
            let new: Vec<NewLayer> = layers.iter().map(|s| s.layer.clone()).collect();
            let parts = ImageParts {
                config_json: &config,
                layers: &new,
                parent: None,
                tag: tags.first(),
            };
            let got = self.store.add_image_installing(&parts, None, &pending)?;
            debug_assert_eq!(got, id);
            for t in tags.iter().skip(1) {
                self.store.tag(&id.to_string(), &t.to_string())?;
            }
            report.images.push(LoadedImage { id, tags });
        }
        Ok(report)
    }
}

/// Read one entry to its end, handing it to `tx` while the receiver lives,
/// and hash it. The layer thread checks and writes the same bytes in
/// parallel; a plain tar it does not hash again (this digest is its
/// diff_id), so sha256, the slow part, runs beside the writing.
fn pump<R: Read>(
    entry: &mut R,
    to_layer: Option<LayerFeed>,
    name: &str,
) -> Result<(Digest, u64), StoreError> {
    let (mut tx, spares) = to_layer.unzip();
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut spare = vec![0u8; CHUNK];
    loop {
        let mut buf = if tx.is_some() {
            match spares.as_ref().and_then(|s| s.try_recv().ok()) {
                Some(mut b) => {
                    b.resize(CHUNK, 0);
                    b
                }
                None => vec![0u8; CHUNK],
            }
        } else {
            std::mem::take(&mut spare)
        };
        let n =
            read_full(entry, &mut buf).map_err(|e| invalid(format!("cannot read {name}: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
        match &tx {
            Some(t) => {
                buf.truncate(n);
                if t.send(buf).is_err() {
                    tx = None; // the layer thread stopped; its error is kept
                }
            }
            None => spare = buf,
        }
    }
    Ok((Digest::from_hasher(hasher), total))
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn descriptor(v: &Value) -> Result<(Digest, u64), StoreError> {
    let d = v["digest"]
        .as_str()
        .and_then(|s| s.parse::<Digest>().ok())
        .ok_or_else(|| invalid("a descriptor has no valid sha256 digest"))?;
    let s = v["size"]
        .as_u64()
        .ok_or_else(|| invalid(format!("descriptor {d} has no size")))?;
    Ok((d, s))
}
