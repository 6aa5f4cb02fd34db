//! Bundle archives (docs/bundle-format.md): one plain tar holding
//! `amber-bundle.json` (format version, bundle ID, manifest digest, every
//! blob with size and media type), `manifest.json` (a readable copy) and
//! every blob as `blobs/sha256/<hex>`, so `tar -x` and `sha256sum` can check
//! it without amber.
//!
//! Import stages every blob in `tmp/`, verifying its digest while it
//! streams, checks that the manifest is a known format version and that
//! every blob it names is present, and only then installs the blobs and
//! indexes the bundle in one transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::manifest::{Manifest, FORMAT_VERSION};
use super::{index, read, BlobSink, CaptureError, IndexedContainer};
use crate::store::Store;
use crate::types::Digest;

/// The archive's table of contents.
pub const INDEX_FILE: &str = "amber-bundle.json";
/// A readable copy of the manifest blob.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Largest `amber-bundle.json` accepted (it lists every blob).
const MAX_INDEX: u64 = 256 << 20;
/// Tar block size.
const BLOCK: u64 = 512;
/// Read and copy buffer of imports.
const COPY_BUF: usize = 1 << 20;

/// `amber-bundle.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiveIndex {
    /// Bundle format version.
    pub format_version: u32,
    /// Bundle ID.
    pub bundle: String,
    /// Digest of the manifest blob.
    pub manifest: Digest,
    /// Every blob of the bundle, the images' config and layer blobs
    /// included.
    pub blobs: Vec<ArchiveBlob>,
    /// The images the bundle's containers were created from, so a restore
    /// on another host needs nothing else (absent from archives written
    /// without images, and from older ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ArchiveImage>,
}

/// An image carried by a bundle archive: its config blob (whose digest is
/// the image ID) and its uncompressed layer tars (whose digests are the
/// diff_ids), all listed in [`ArchiveIndex::blobs`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiveImage {
    /// Image ID (the config blob's digest).
    pub id: Digest,
    /// Tags it had when exported (re-applied on import where still free).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Layer diff_ids, bottom first.
    pub layers: Vec<Digest>,
}

/// Media type of an image config blob in a bundle archive.
pub const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of an image layer (an uncompressed tar) in a bundle archive.
pub const IMAGE_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// Whether a blob belongs to an image (installed as an image and its
/// layers, not into the bundle blob store).
pub fn is_image_blob(b: &ArchiveBlob) -> bool {
    matches!(
        b.media_type.as_str(),
        IMAGE_CONFIG_MEDIA_TYPE | IMAGE_LAYER_MEDIA_TYPE
    )
}

/// Whether this store already holds a blob of a bundle archive: a bundle
/// blob in the blob store, an image config as an image, a layer as a layer.
/// (What a transfer between hosts can leave out.)
pub fn store_has(store: &Store, b: &ArchiveBlob) -> bool {
    match b.media_type.as_str() {
        IMAGE_CONFIG_MEDIA_TYPE => store.image(&b.digest).is_ok(),
        IMAGE_LAYER_MEDIA_TYPE => store.has_layer(&b.digest).unwrap_or(false),
        _ => store.blob_file(&b.digest).exists(),
    }
}

/// What an export leaves out.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Leave the images out (the importing host must have them).
    pub no_images: bool,
}

/// One blob in the archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiveBlob {
    /// Its digest (its file is `blobs/sha256/<hex>`).
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
}

/// What an export will write.
pub struct ExportPlan {
    /// The table of contents.
    pub index: ArchiveIndex,
    /// The manifest bytes.
    pub manifest: Vec<u8>,
    /// Exact size of the tar.
    pub size: u64,
    /// Blobs listed in the index but not written (a thin export, for a
    /// receiver that already holds them: docs/transfer.md).
    pub left_out: BTreeSet<Digest>,
}

impl ExportPlan {
    /// Make the export thin: the blobs of `have` stay listed in the index
    /// but are not written. Recomputes the exact size.
    pub fn leave_out(&mut self, have: impl IntoIterator<Item = Digest>) {
        let listed: BTreeSet<&Digest> = self.index.blobs.iter().map(|b| &b.digest).collect();
        let have: Vec<Digest> = have.into_iter().filter(|d| listed.contains(d)).collect();
        self.left_out.extend(have);
        let index_len = index_bytes(&self.index).map_or(0, |v| v.len() as u64);
        self.size = entry_size(index_len)
            + entry_size(self.manifest.len() as u64)
            + self
                .index
                .blobs
                .iter()
                .filter(|b| !self.left_out.contains(&b.digest))
                .map(|b| entry_size(b.size))
                .sum::<u64>()
            + 2 * BLOCK;
    }

    /// Blobs this export writes.
    pub fn blobs_written(&self) -> usize {
        self.index.blobs.len() - self.left_out.len()
    }
}

/// Plan the export of a bundle with its images.
pub fn plan_export(store: &Store, name: &str) -> Result<ExportPlan, CaptureError> {
    plan_export_with(store, name, &ExportOptions::default())
}

/// Plan the export of a bundle.
pub fn plan_export_with(
    store: &Store,
    name: &str,
    opts: &ExportOptions,
) -> Result<ExportPlan, CaptureError> {
    let b = index::resolve(store, name)?;
    let manifest_digest: Digest = b
        .manifest
        .parse()
        .map_err(|_| CaptureError::Invalid(format!("bad manifest digest of bundle {}", b.id)))?;
    let manifest = store.read_blob(&manifest_digest)?;
    let rows: Vec<(String, i64, String)> = store.with_db(|conn| {
        let mut stmt = conn.prepare(
            "SELECT bb.digest, b.size, b.media_type FROM bundle_blobs bb
             JOIN blobs b ON b.digest = bb.digest WHERE bb.bundle_id = ?1 ORDER BY bb.digest",
        )?;
        let v = stmt
            .query_map([&b.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        Ok(v)
    })?;
    let mut blobs = Vec::new();
    for (d, size, media_type) in rows {
        let digest = d
            .parse()
            .map_err(|_| CaptureError::Invalid(format!("bad digest {d:?} in the bundle index")))?;
        blobs.push(ArchiveBlob {
            digest,
            size: size as u64,
            media_type,
        });
    }
    let images = if opts.no_images {
        Vec::new()
    } else {
        let m = Manifest::parse(&manifest)?;
        images_of(store, &m, &mut blobs)?
    };
    let index = ArchiveIndex {
        format_version: FORMAT_VERSION,
        bundle: b.id,
        manifest: manifest_digest,
        blobs,
        images,
    };
    let index_len = index_bytes(&index)?.len() as u64;
    let size = entry_size(index_len)
        + entry_size(manifest.len() as u64)
        + index.blobs.iter().map(|b| entry_size(b.size)).sum::<u64>()
        + 2 * BLOCK;
    Ok(ExportPlan {
        index,
        manifest,
        size,
        left_out: BTreeSet::new(),
    })
}

/// The images of a bundle's containers, their blobs appended to `blobs`
/// (each layer once, even when images share it).
fn images_of(
    store: &Store,
    m: &Manifest,
    blobs: &mut Vec<ArchiveBlob>,
) -> Result<Vec<ArchiveImage>, CaptureError> {
    let mut images: Vec<ArchiveImage> = Vec::new();
    let mut seen: BTreeSet<Digest> = blobs.iter().map(|b| b.digest.clone()).collect();
    for c in &m.containers {
        if images.iter().any(|i| i.id == c.image_id) {
            continue;
        }
        let rec = store.image(&c.image_id).map_err(|_| {
            CaptureError::NotFound(format!(
                "image {} ({}) of container {} is no longer in this store: load or pull it, or export with --no-images",
                c.image_ref, c.image_id, c.name
            ))
        })?;
        let config = store.image_config(&rec.id)?;
        if seen.insert(rec.id.clone()) {
            blobs.push(ArchiveBlob {
                digest: rec.id.clone(),
                size: config.len() as u64,
                media_type: IMAGE_CONFIG_MEDIA_TYPE.into(),
            });
        }
        let sizes = store.layer_sizes(&rec.layers)?;
        for (d, size) in rec.layers.iter().zip(sizes) {
            if seen.insert(d.clone()) {
                blobs.push(ArchiveBlob {
                    digest: d.clone(),
                    size,
                    media_type: IMAGE_LAYER_MEDIA_TYPE.into(),
                });
            }
        }
        images.push(ArchiveImage {
            id: rec.id,
            tags: rec.tags,
            layers: rec.layers,
        });
    }
    Ok(images)
}

fn index_bytes(index: &ArchiveIndex) -> Result<Vec<u8>, CaptureError> {
    serde_json::to_vec_pretty(index)
        .map_err(|e| CaptureError::Invalid(format!("cannot encode the archive index: {e}")))
}

/// A tar entry's size: its header and its content padded to a block.
fn entry_size(len: u64) -> u64 {
    BLOCK + len.div_ceil(BLOCK) * BLOCK
}

/// Write the archive; every blob is hashed on the way out and one that no
/// longer matches its digest ends the archive with an error (the reader
/// then sees a truncated archive, which import refuses).
pub fn write_export(store: &Store, plan: &ExportPlan, w: impl Write) -> Result<(), CaptureError> {
    let io = |e| CaptureError::io("write", "bundle archive", e);
    let mut tar = tar::Builder::new(w);
    let index = index_bytes(&plan.index)?;
    append(&mut tar, INDEX_FILE, &mut &index[..], index.len() as u64).map_err(io)?;
    append(
        &mut tar,
        MANIFEST_FILE,
        &mut &plan.manifest[..],
        plan.manifest.len() as u64,
    )
    .map_err(io)?;
    for b in &plan.index.blobs {
        if plan.left_out.contains(&b.digest) {
            continue;
        }
        match b.media_type.as_str() {
            IMAGE_LAYER_MEDIA_TYPE => {
                write_layer_entry(store, &mut tar, b)?;
                continue;
            }
            IMAGE_CONFIG_MEDIA_TYPE => {
                let config = store.image_config(&b.digest)?;
                if Digest::of(&config) != b.digest || config.len() as u64 != b.size {
                    return Err(CaptureError::Invalid(format!(
                        "image config {} no longer matches its digest; run amber system check",
                        b.digest
                    )));
                }
                let name = format!("blobs/sha256/{}", b.digest.hex());
                append(&mut tar, &name, &mut &config[..], b.size).map_err(io)?;
                continue;
            }
            _ => {}
        }
        let path = store.blob_file(&b.digest);
        let f = File::open(&path)
            .map_err(|e| CaptureError::io("open", &path.display().to_string(), e))?;
        let mut hashing = HashingReader {
            inner: f.take(b.size),
            hasher: Sha256::new(),
            n: 0,
        };
        append(
            &mut tar,
            &format!("blobs/sha256/{}", b.digest.hex()),
            &mut hashing,
            b.size,
        )
        .map_err(io)?;
        if hashing.n != b.size || Digest::from_hasher(hashing.hasher) != b.digest {
            return Err(CaptureError::Invalid(format!(
                "blob {} no longer matches its digest; run amber system check",
                b.digest
            )));
        }
    }
    tar.into_inner().map_err(io)?.flush().map_err(io)
}

/// A layer's tar, streamed from the layer store (which verifies it still
/// reproduces its diff_id) straight into the archive.
fn write_layer_entry<W: Write>(
    store: &Store,
    tar: &mut tar::Builder<W>,
    b: &ArchiveBlob,
) -> Result<(), CaptureError> {
    let io = |e| CaptureError::io("write", "bundle archive", e);
    let mut h = entry_header(&format!("blobs/sha256/{}", b.digest.hex()), b.size).map_err(io)?;
    h.set_cksum();
    let out = tar.get_mut();
    out.write_all(h.as_bytes()).map_err(io)?;
    let written = store.write_layer(&b.digest, &mut *out)?;
    if written != b.size {
        return Err(CaptureError::Invalid(format!(
            "layer {} is {written} bytes, {} expected; run amber system check",
            b.digest, b.size
        )));
    }
    let pad = (BLOCK - b.size % BLOCK) % BLOCK;
    out.write_all(&[0u8; BLOCK as usize][..pad as usize])
        .map_err(io)
}

fn entry_header(name: &str, size: u64) -> std::io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path(name)?;
    Ok(h)
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &mut impl Read,
    size: u64,
) -> std::io::Result<()> {
    let mut h = entry_header(name, size)?;
    h.set_cksum();
    tar.append(&h, data)
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    n: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.hasher.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
}

/// What an import added.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The bundle ID.
    pub id: String,
    /// Blobs in the archive.
    pub blobs: u64,
    /// Bytes new to this store.
    pub new_bytes: u64,
    /// Images the archive carried that this store did not have.
    pub images_loaded: Vec<Digest>,
}

/// Blobs staged by an import, with their sizes.
type StagedBlobs = BTreeMap<Digest, u64>;

/// Removes the staging directory however the import ends, unless it is a
/// resumable transfer's (kept on failure, removed on success).
struct Staging {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.keep {
            super::recv::drop_partial(&self.dir);
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// How an import reads its archive (docs/transfer.md).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Blobs listed in the index may be absent from the archive when this
    /// store (or the resumable staging directory) already holds them.
    pub thin: bool,
    /// Stage in the bundle's resumable directory `tmp/bundle-recv-<ID>/`,
    /// kept when the import fails, so a retry needs only the rest; the
    /// archive must be of this bundle.
    pub resume: Option<String>,
}

/// Import a bundle archive: verify everything, then make it visible at once.
pub fn import(store: &Store, reader: impl Read) -> Result<ImportReport, CaptureError> {
    let lock = std::sync::Mutex::new(());
    import_with(store, reader, &ImportOptions::default(), &lock)
}

/// Import with options; `lock` is held only around the final step that
/// makes the bundle visible (streaming and verifying run without it, so
/// several imports run in parallel).
pub fn import_with(
    store: &Store,
    reader: impl Read,
    opts: &ImportOptions,
    lock: &std::sync::Mutex<()>,
) -> Result<ImportReport, CaptureError> {
    let mut _claim = None;
    let staging = match &opts.resume {
        Some(id) => {
            check_bundle_id(id)?;
            // Transfers abandoned a day ago go first.
            super::recv::prune(store, true);
            _claim = Some(super::recv::claim(id)?);
            let dir = super::recv::dir(store, id);
            fs::create_dir_all(&dir)
                .map_err(|e| CaptureError::io("create", &dir.display().to_string(), e))?;
            Staging { dir, keep: true }
        }
        None => {
            let dir = store.staging_path("bundle-import");
            fs::create_dir(&dir)
                .map_err(|e| CaptureError::io("create", &dir.display().to_string(), e))?;
            Staging { dir, keep: false }
        }
    };
    let dir = staging.dir.clone();
    let (index_data, staged) = read_archive(store, &dir, reader)?;
    let index_data = index_data.ok_or_else(|| {
        CaptureError::Invalid(format!("not a bundle archive: it has no {INDEX_FILE}"))
    })?;
    let index = parse_index(&index_data)?;
    if let Some(id) = &opts.resume {
        if &index.bundle != id {
            return Err(invalid(format!(
                "the archive is of bundle {}, the transfer is of {id}",
                index.bundle
            )));
        }
    }
    let listed: BTreeMap<&Digest, &ArchiveBlob> =
        index.blobs.iter().map(|b| (&b.digest, b)).collect();
    for (d, size) in &staged {
        match listed.get(d) {
            Some(b) if b.size == *size => {}
            Some(b) => {
                return Err(invalid(format!(
                    "blob {d} is {size} bytes, the index says {}",
                    b.size
                )))
            }
            None => return Err(invalid(format!("blob {d} is not listed in {INDEX_FILE}"))),
        }
    }
    for b in index
        .blobs
        .iter()
        .filter(|b| !staged.contains_key(&b.digest))
    {
        if !opts.thin {
            return Err(invalid(format!(
                "blob {} is missing (truncated archive?)",
                b.digest
            )));
        }
        // Thin: it must be here already, staged by an earlier attempt
        // (verified again now) or in the store.
        if !super::recv::reverify(&dir, b)? && !store_has(store, b) {
            return Err(invalid(format!(
                "blob {} ({}) is neither in the archive nor in this store (thin import)",
                b.digest, b.media_type
            )));
        }
    }
    let manifest_data = read_staged(store, &dir, &index.manifest)
        .map_err(|_| invalid(format!("the manifest blob {} is missing", index.manifest)))?;
    let manifest = Manifest::parse(&manifest_data)?;
    if manifest.id != index.bundle {
        return Err(invalid(format!(
            "the manifest is of bundle {}, the index says {}",
            manifest.id, index.bundle
        )));
    }
    check_bundle_id(&manifest.id)?;
    let indexed = containers_of(store, &dir, &manifest, &listed)?;
    check_images(&index, &listed)?;
    // The staged contents on disk before taking the lock: imports running
    // together flush their own data side by side, and the syncfs that
    // makes the installed names durable, under the lock, has little left.
    store.sync_blobs()?;
    let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    if index::resolve(store, &manifest.id).is_ok_and(|b| b.id == manifest.id) {
        return Err(CaptureError::Invalid(format!(
            "bundle {} already exists",
            manifest.id
        )));
    }
    // Blobs taken from the store must still be there (a `bundle rm` may
    // have run since they were found; it takes the same lock).
    for b in index.blobs.iter().filter(|b| !is_image_blob(b)) {
        if !dir.join(b.digest.hex()).exists() && !store.has_blob(&b.digest) {
            return Err(CaptureError::Invalid(format!(
                "blob {} was removed from this store during the import; retry",
                b.digest
            )));
        }
    }
    let report = install(store, &dir, &index, &manifest, &indexed)?;
    drop(_guard);
    if opts.resume.is_some() {
        let _ = fs::remove_dir_all(&dir);
    }
    Ok(report)
}

fn invalid(msg: String) -> CaptureError {
    CaptureError::Invalid(format!("bad bundle archive: {msg}"))
}

/// Stream the tar: the index into memory, every blob into `dir/<hex>`,
/// verified against its name. The reader only parses the tar; hashing and
/// writing run on worker threads (sha256 is the bottleneck), each blob on
/// one worker in order. A bundle blob the store already has is only
/// hashed, not written (its staged name is then absent: see
/// [`read_staged`]).
fn read_archive(
    store: &Store,
    dir: &Path,
    reader: impl Read,
) -> Result<(Option<Vec<u8>>, StagedBlobs), CaptureError> {
    let corrupt = |e: std::io::Error| invalid(format!("truncated or not a tar: {e}"));
    // Large reads: the body comes through an async bridge, where each small
    // read costs a round trip.
    let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(COPY_BUF, reader));
    let mut index = None;
    // Bundle blobs (not images') the index lists, once it is read.
    let mut bundle_blobs: BTreeSet<Digest> = BTreeSet::new();
    let mut staged = BTreeMap::new();
    let pool = StagePool::new(dir);
    let result = (|| {
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let path = entry
                .path()
                .map_err(corrupt)?
                .to_string_lossy()
                .into_owned();
            let path = path.trim_start_matches("./").to_string();
            let kind = entry.header().entry_type();
            if kind.is_dir() && matches!(path.trim_end_matches('/'), "blobs" | "blobs/sha256") {
                continue;
            }
            if !kind.is_file() {
                return Err(invalid(format!("unexpected {kind:?} entry {path}")));
            }
            if path == INDEX_FILE {
                if entry.size() > MAX_INDEX {
                    return Err(invalid(format!("{INDEX_FILE} is too large")));
                }
                let mut v = Vec::new();
                entry.read_to_end(&mut v).map_err(corrupt)?;
                if let Ok(i) = serde_json::from_slice::<ArchiveIndex>(&v) {
                    bundle_blobs = i
                        .blobs
                        .into_iter()
                        .filter(|b| !is_image_blob(b))
                        .map(|b| b.digest)
                        .collect();
                }
                index = Some(v);
            } else if path == MANIFEST_FILE {
                std::io::copy(&mut entry, &mut std::io::sink()).map_err(corrupt)?;
            } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                let digest =
                    Digest::from_hex(hex).map_err(|_| invalid(format!("bad blob name {path}")))?;
                if staged.contains_key(&digest) {
                    return Err(invalid(format!("blob {digest} appears twice")));
                }
                let want = entry.size();
                // Index and manifest come first, so the media type of a
                // blob is known: only bundle blobs may skip the write.
                let held = bundle_blobs.contains(&digest) && store.has_blob(&digest);
                let write = !(held || dir.join(digest.hex()).exists());
                pool.stage(&digest, want, write, &mut entry)?;
                staged.insert(digest, want);
            } else {
                return Err(invalid(format!("unexpected entry {path}")));
            }
        }
        Ok(())
    })();
    let workers = pool.finish();
    result?;
    workers?;
    Ok((index, staged))
}

/// A staged blob's bytes: from `dir`, or from the store when the import
/// only verified it (the store had it).
fn read_staged(store: &Store, dir: &Path, d: &Digest) -> Result<Vec<u8>, CaptureError> {
    match fs::read(dir.join(d.hex())) {
        Ok(v) => Ok(v),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(store.read_blob(d)?),
        Err(e) => Err(CaptureError::io("read", "staged blob", e)),
    }
}

/// What the reader sends a stage worker.
enum StageMsg {
    /// A new blob: its digest, and whether to write it (else only hash).
    Start(Digest, bool),
    /// The next bytes of the current blob.
    Data(Vec<u8>),
    /// The current blob is complete.
    End,
}

/// Workers that hash (and write) blobs streamed to them by the reader.
struct StagePool {
    senders: Vec<std::sync::mpsc::SyncSender<StageMsg>>,
    handles: Vec<std::thread::JoinHandle<Result<(), CaptureError>>>,
    next: std::cell::Cell<usize>,
}

impl StagePool {
    fn new(dir: &Path) -> StagePool {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..n {
            // Bounded: at most ~8 MiB in flight per worker.
            let (tx, rx) = std::sync::mpsc::sync_channel::<StageMsg>(8);
            let dir = dir.to_path_buf();
            handles.push(std::thread::spawn(move || stage_worker(&dir, rx)));
            senders.push(tx);
        }
        StagePool {
            senders,
            handles,
            next: std::cell::Cell::new(0),
        }
    }

    /// Read one entry to its end, handing it to a worker; a short entry is
    /// a truncated archive.
    fn stage(
        &self,
        digest: &Digest,
        len: u64,
        write: bool,
        entry: &mut impl Read,
    ) -> Result<(), CaptureError> {
        let i = self.next.get();
        self.next.set((i + 1) % self.senders.len());
        let tx = &self.senders[i];
        let gone = || invalid("a staging worker stopped".into());
        tx.send(StageMsg::Start(digest.clone(), write))
            .map_err(|_| gone())?;
        let mut left = len;
        while left > 0 {
            let mut buf = vec![0u8; left.min(COPY_BUF as u64) as usize];
            let n = read_full(entry, &mut buf)
                .map_err(|e| invalid(format!("truncated or not a tar: {e}")))?;
            if n == 0 {
                return Err(invalid(format!(
                    "truncated: blob {digest} has {} of {len} bytes",
                    len - left
                )));
            }
            buf.truncate(n);
            left -= n as u64;
            tx.send(StageMsg::Data(buf)).map_err(|_| gone())?;
        }
        tx.send(StageMsg::End).map_err(|_| gone())
    }

    /// Stop the workers; the first error any of them met.
    fn finish(self) -> Result<(), CaptureError> {
        drop(self.senders);
        let mut first = Ok(());
        for h in self.handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(invalid("a staging worker panicked".into())));
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Hash (and write to `dir/<hex>`) the blobs sent, in order; stops at the
/// first blob that does not match its name. A worker whose reader failed
/// mid-blob sees its channel close and leaves the partial file to the
/// staging directory's removal.
fn stage_worker(dir: &Path, rx: std::sync::mpsc::Receiver<StageMsg>) -> Result<(), CaptureError> {
    let mut current: Option<(Digest, Sha256, Option<File>)> = None;
    for msg in rx {
        match msg {
            StageMsg::Start(digest, write) => {
                let file =
                    if write {
                        let path = dir.join(format!("{}{}", digest.hex(), super::recv::PART));
                        Some(File::create(&path).map_err(|e| {
                            CaptureError::io("create", &path.display().to_string(), e)
                        })?)
                    } else {
                        None
                    };
                current = Some((digest, Sha256::new(), file));
            }
            StageMsg::Data(buf) => {
                let Some((digest, hasher, file)) = current.as_mut() else {
                    continue;
                };
                hasher.update(&buf);
                if let Some(f) = file {
                    f.write_all(&buf).map_err(|e| {
                        CaptureError::io("write", &dir.join(digest.hex()).display().to_string(), e)
                    })?;
                }
            }
            StageMsg::End => {
                if let Some((digest, hasher, file)) = current.take() {
                    let part = dir.join(format!("{}{}", digest.hex(), super::recv::PART));
                    if Digest::from_hasher(hasher) != digest {
                        if file.is_some() {
                            let _ = fs::remove_file(&part);
                        }
                        return Err(invalid(format!("blob {digest} does not match its digest")));
                    }
                    // Only a verified blob gets its name: a resumed
                    // transfer trusts the names it finds. Its writeback
                    // starts now, so the import's one syncfs finds the
                    // bundle mostly on disk.
                    if let Some(f) = &file {
                        crate::store::start_writeback(f);
                        let path = dir.join(digest.hex());
                        fs::rename(&part, &path).map_err(|e| {
                            CaptureError::io("rename", &path.display().to_string(), e)
                        })?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn parse_index(data: &[u8]) -> Result<ArchiveIndex, CaptureError> {
    let v: serde_json::Value = serde_json::from_slice(data)
        .map_err(|e| invalid(format!("{INDEX_FILE} is not JSON: {e}")))?;
    let version = v["format_version"].as_u64().unwrap_or(0);
    if version != u64::from(FORMAT_VERSION) {
        return Err(CaptureError::Invalid(format!(
            "unsupported bundle format version {version} (this amber reads version {FORMAT_VERSION})"
        )));
    }
    serde_json::from_value(v).map_err(|e| invalid(format!("bad {INDEX_FILE}: {e}")))
}

/// Bundle IDs go into paths of the CLI and API: keep them plain.
fn check_bundle_id(id: &str) -> Result<(), CaptureError> {
    let ok = id.len() <= 64
        && id.starts_with("b-")
        && id[2..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("bad bundle ID {id:?}")))
    }
}

/// Every blob the manifest names must be in the archive; returns what the
/// index needs (file lists) per container.
fn containers_of(
    store: &Store,
    dir: &Path,
    m: &Manifest,
    listed: &BTreeMap<&Digest, &ArchiveBlob>,
) -> Result<Vec<IndexedContainer>, CaptureError> {
    let need = |d: &Digest| -> Result<(), CaptureError> {
        if listed.contains_key(d) {
            Ok(())
        } else {
            Err(invalid(format!(
                "blob {d} named by the manifest is missing"
            )))
        }
    };
    let mut out = Vec::new();
    for c in &m.containers {
        need(&c.files)?;
        for v in &c.volumes {
            if let Some(d) = &v.files {
                need(d)?;
            }
        }
        let files = super::volumes::container_files(c, |d| {
            serde_json::from_slice(&read_staged(store, dir, d)?)
                .map_err(|e| invalid(format!("bad file list {d}: {e}")))
        })?;
        for f in &files {
            super::restore::safe_relative(&f.path)?;
            f.chunks.iter().try_for_each(need)?;
        }
        c.log.chunks.iter().try_for_each(need)?;
        let cores = c.cores.iter().flat_map(|k| &k.processes);
        cores.flat_map(|d| &d.chunks).try_for_each(need)?;
        out.push(IndexedContainer { files });
    }
    Ok(out)
}

/// Every image of the index names blobs of the right kinds.
fn check_images(
    index: &ArchiveIndex,
    listed: &BTreeMap<&Digest, &ArchiveBlob>,
) -> Result<(), CaptureError> {
    let kind = |d: &Digest, want: &str| -> Result<(), CaptureError> {
        match listed.get(d) {
            Some(b) if b.media_type == want => Ok(()),
            Some(b) => Err(invalid(format!(
                "blob {d} is a {}, the index names it as a {want}",
                b.media_type
            ))),
            None => Err(invalid(format!("image blob {d} is missing"))),
        }
    };
    for i in &index.images {
        kind(&i.id, IMAGE_CONFIG_MEDIA_TYPE)?;
        for l in &i.layers {
            kind(l, IMAGE_LAYER_MEDIA_TYPE)?;
        }
    }
    Ok(())
}

/// Install the archive's images this store lacks, through `load` (which
/// verifies the config against the image ID and every layer against its
/// diff_id, skips layers the store has, and makes an image visible only
/// when all of it is installed). A tag is re-applied only when free here.
/// Returns the IDs of the images added.
fn install_images(
    store: &Store,
    dir: &Path,
    images: &[ArchiveImage],
) -> Result<Vec<Digest>, CaptureError> {
    let missing: Vec<&ArchiveImage> = images
        .iter()
        .filter(|i| store.image(&i.id).is_err())
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let entries: Vec<Value> = missing
        .iter()
        .map(|i| {
            let tags: Vec<&String> = i
                .tags
                .iter()
                .filter(|t| store.resolve_image(t).is_err())
                .collect();
            json!({
                "Config": format!("blobs/sha256/{}", i.id.hex()),
                "RepoTags": tags,
                "Layers": i.layers.iter().map(|l| format!("blobs/sha256/{}", l.hex())).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut files: Vec<Digest> = Vec::new();
    for i in &missing {
        for d in std::iter::once(&i.id).chain(&i.layers) {
            if !files.contains(d) {
                files.push(d.clone());
            }
        }
    }
    let manifest = serde_json::to_vec(&entries)
        .map_err(|e| CaptureError::Invalid(format!("cannot encode the image manifest: {e}")))?;
    let (reader, writer) = std::io::pipe().map_err(|e| CaptureError::io("create", "pipe", e))?;
    // The images go to `load` as a docker-archive streamed from the staged
    // blobs: one verification and installation path for every image. A
    // thin import may have left out a layer this store already has: it is
    // streamed from the layer store.
    let (loaded, fed) = std::thread::scope(|s| {
        let feeder = s.spawn(move || -> std::io::Result<()> {
            let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(COPY_BUF, writer));
            let mut h = entry_header("manifest.json", manifest.len() as u64)?;
            h.set_cksum();
            tar.append(&h, &manifest[..])?;
            for d in &files {
                let name = format!("blobs/sha256/{}", d.hex());
                match File::open(dir.join(d.hex())) {
                    Ok(f) => {
                        let len = f.metadata()?.len();
                        let mut h = entry_header(&name, len)?;
                        h.set_cksum();
                        tar.append(&h, f)?;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let len = store
                            .layer_sizes(std::slice::from_ref(d))
                            .map_err(std::io::Error::other)?
                            .first()
                            .copied()
                            .ok_or_else(|| std::io::Error::other(format!("no layer {d}")))?;
                        let mut h = entry_header(&name, len)?;
                        h.set_cksum();
                        let out = tar.get_mut();
                        out.write_all(h.as_bytes())?;
                        let n = store
                            .write_layer(d, &mut *out)
                            .map_err(std::io::Error::other)?;
                        if n != len {
                            return Err(std::io::Error::other(format!(
                                "layer {d} is {n} bytes, {len} expected"
                            )));
                        }
                        let pad = (BLOCK - len % BLOCK) % BLOCK;
                        out.write_all(&[0u8; BLOCK as usize][..pad as usize])?;
                    }
                    Err(e) => return Err(e),
                }
            }
            tar.into_inner()?.flush()
        });
        let loaded = store.load(reader);
        // A load that stopped early closed the pipe: the feeder's error is
        // then only a consequence.
        let fed = feeder
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the image feeder panicked")));
        (loaded, fed)
    });
    let report = loaded.map_err(|e| invalid(format!("its images: {e}")))?;
    fed.map_err(|e| CaptureError::io("read", "staged image blobs", e))?;
    Ok(report.images.into_iter().map(|i| i.id).collect())
}

/// Move the verified blobs into the store, one barrier, one transaction.
fn install(
    store: &Store,
    dir: &Path,
    index: &ArchiveIndex,
    manifest: &Manifest,
    indexed: &[IndexedContainer],
) -> Result<ImportReport, CaptureError> {
    let mut sink = BlobSink::new(store);
    let mut installed = Vec::new();
    let mut images = Vec::new();
    let media: BTreeSet<&str> = [
        super::manifest::MANIFEST_MEDIA_TYPE,
        super::manifest::FILES_MEDIA_TYPE,
        super::manifest::CHUNK_MEDIA_TYPE,
    ]
    .into();
    let result = (|| {
        // Images first: a bundle is visible only with everything it needs.
        images = install_images(store, dir, &index.images)?;
        for b in index.blobs.iter().filter(|b| !is_image_blob(b)) {
            if store.install_blob_file(&dir.join(b.digest.hex()), &b.digest)? {
                installed.push(b.digest.clone());
                sink.new_bytes += b.size;
            }
            let mt = media
                .get(b.media_type.as_str())
                .copied()
                .unwrap_or(super::manifest::CHUNK_MEDIA_TYPE);
            sink.blobs.insert(b.digest.clone(), (b.size, mt));
        }
        store.sync_blobs()?;
        index::commit(store, manifest, &index.manifest, &sink, indexed, None)
    })();
    if let Err(e) = result {
        store.remove_blob_files(&installed);
        return Err(e);
    }
    let _ = read::manifest(store, &manifest.id)?;
    Ok(ImportReport {
        id: manifest.id.clone(),
        blobs: index.blobs.len() as u64,
        new_bytes: sink.new_bytes,
        images_loaded: images,
    })
}
