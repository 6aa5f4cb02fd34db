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
    /// Every blob of the bundle.
    pub blobs: Vec<ArchiveBlob>,
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
}

/// Plan the export of a bundle.
pub fn plan_export(store: &Store, name: &str) -> Result<ExportPlan, CaptureError> {
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
    let index = ArchiveIndex {
        format_version: FORMAT_VERSION,
        bundle: b.id,
        manifest: manifest_digest,
        blobs,
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
    })
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

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &mut impl Read,
    size: u64,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path(name)?;
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
}

/// Blobs staged by an import, with their sizes.
type StagedBlobs = BTreeMap<Digest, u64>;

/// Removes the staging directory however the import ends.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Import a bundle archive: verify everything, then make it visible at once.
pub fn import(store: &Store, reader: impl Read) -> Result<ImportReport, CaptureError> {
    let staging = Staging(store.staging_path("bundle-import"));
    fs::create_dir(&staging.0)
        .map_err(|e| CaptureError::io("create", &staging.0.display().to_string(), e))?;
    let (index_data, staged) = read_archive(&staging.0, reader)?;
    let index_data = index_data.ok_or_else(|| {
        CaptureError::Invalid(format!("not a bundle archive: it has no {INDEX_FILE}"))
    })?;
    let index = parse_index(&index_data)?;
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
    if let Some(missing) = index.blobs.iter().find(|b| !staged.contains_key(&b.digest)) {
        return Err(invalid(format!(
            "blob {} is missing (truncated archive?)",
            missing.digest
        )));
    }
    let manifest_path = staging.0.join(index.manifest.hex());
    let manifest_data = fs::read(&manifest_path)
        .map_err(|_| invalid(format!("the manifest blob {} is missing", index.manifest)))?;
    let manifest = Manifest::parse(&manifest_data)?;
    if manifest.id != index.bundle {
        return Err(invalid(format!(
            "the manifest is of bundle {}, the index says {}",
            manifest.id, index.bundle
        )));
    }
    check_bundle_id(&manifest.id)?;
    let indexed = containers_of(&staging.0, &manifest, &listed)?;
    if index::resolve(store, &manifest.id).is_ok_and(|b| b.id == manifest.id) {
        return Err(CaptureError::Invalid(format!(
            "bundle {} already exists",
            manifest.id
        )));
    }
    install(store, &staging.0, &index, &manifest, &indexed)
}

fn invalid(msg: String) -> CaptureError {
    CaptureError::Invalid(format!("bad bundle archive: {msg}"))
}

/// Stream the tar: the index into memory, every blob into `dir/<hex>`,
/// verified against its name.
fn read_archive(
    dir: &Path,
    reader: impl Read,
) -> Result<(Option<Vec<u8>>, StagedBlobs), CaptureError> {
    let corrupt = |e: std::io::Error| invalid(format!("truncated or not a tar: {e}"));
    // Large reads: the body comes through an async bridge, where each small
    // read costs a round trip.
    let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(COPY_BUF, reader));
    let mut index = None;
    let mut staged = BTreeMap::new();
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
            index = Some(v);
        } else if path == MANIFEST_FILE {
            std::io::copy(&mut entry, &mut std::io::sink()).map_err(corrupt)?;
        } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            let digest =
                Digest::from_hex(hex).map_err(|_| invalid(format!("bad blob name {path}")))?;
            let want = entry.size();
            let size = stage_blob(dir, &digest, want, &mut entry)?;
            if size != want {
                return Err(invalid(format!(
                    "truncated: blob {digest} has {size} of {want} bytes"
                )));
            }
            staged.insert(digest, size);
        } else {
            return Err(invalid(format!("unexpected entry {path}")));
        }
    }
    Ok((index, staged))
}

/// Copy one blob entry to `dir/<hex>`, verifying its digest; a short entry
/// (truncated archive) returns its short length for the caller to refuse.
fn stage_blob(
    dir: &Path,
    digest: &Digest,
    entry_len: u64,
    entry: &mut impl Read,
) -> Result<u64, CaptureError> {
    let path = dir.join(digest.hex());
    let mut out = File::create(&path)
        .map_err(|e| CaptureError::io("create", &path.display().to_string(), e))?;
    let mut r = HashingReader {
        inner: entry,
        hasher: Sha256::new(),
        n: 0,
    };
    let mut buf = vec![0u8; (entry_len as usize).clamp(1, COPY_BUF)];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(invalid(format!("truncated or not a tar: {e}"))),
        };
        out.write_all(&buf[..n])
            .map_err(|e| CaptureError::io("write", &path.display().to_string(), e))?;
    }
    if r.n < entry_len {
        return Ok(r.n);
    }
    if Digest::from_hasher(r.hasher) != *digest {
        return Err(invalid(format!("blob {digest} does not match its digest")));
    }
    Ok(r.n)
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
        let files: Vec<super::FileEntry> = serde_json::from_slice(
            &fs::read(dir.join(c.files.hex()))
                .map_err(|e| CaptureError::io("read", "staged file list", e))?,
        )
        .map_err(|e| invalid(format!("bad file list {}: {e}", c.files)))?;
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
    let media: BTreeSet<&str> = [
        super::manifest::MANIFEST_MEDIA_TYPE,
        super::manifest::FILES_MEDIA_TYPE,
        super::manifest::CHUNK_MEDIA_TYPE,
    ]
    .into();
    let result = (|| {
        for b in &index.blobs {
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
    })
}
