//! The registry's data directory. Synchronous; async callers use
//! `spawn_blocking` (or stream upload bodies straight into the upload file).
//!
//! ```text
//! blobs/sha256/<hex>                                  content, immutable
//! uploads/<uuid>/data, uploads/<uuid>/repo            resumable uploads
//! repositories/<name>/_layers/sha256/<hex>            blob is in the repository
//! repositories/<name>/_manifests/revisions/sha256/<hex>   manifest (content: media type)
//! repositories/<name>/_manifests/tags/<tag>           content: the manifest digest
//! tmp/                                                staging: write, fsync, rename
//! lock                                                flock: one writer or readers
//! ```
//!
//! Repository names are validated by the spec's grammar before they reach a
//! path (no `..`, no component starting with `_`), upload ids are 32 hex
//! digits and digests 64: nothing here can name a file outside the root.
//! A blob becomes visible only by a rename after its digest was verified and
//! its data fsynced, so a crash never leaves a corrupt blob to serve.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod uploads;

pub use uploads::{hash_reader, valid_upload_id};

use crate::registry::distribution::valid_tag;
use crate::types::Digest;

/// A failure of the data directory.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A filesystem operation failed.
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The uploaded content does not have the digest the client claimed.
    #[error("upload content has digest {actual}, not {expected}")]
    DigestMismatch {
        /// The digest the client sent.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// Another process holds the data directory.
    #[error("data directory {} is in use: {holder}", path.display())]
    Locked {
        /// The data directory.
        path: PathBuf,
        /// Who may hold it.
        holder: &'static str,
    },
    /// A stored file holds something it never should.
    #[error("corrupt registry data at {}: {what}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

type Result<T> = std::result::Result<T, StorageError>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// How a process uses the data directory, enforced with `flock` on
/// `DIR/lock`: one writer (a server) and nothing else, or any number of
/// readers (read-only servers and `gc`, which must not run beside a writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A server accepting pushes: exclusive.
    Write,
    /// A read-only server or gc: shared.
    Shared,
}

/// The registry's data directory.
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    /// Held for the life of the storage; the lock goes with the descriptor.
    _lock: nix::fcntl::Flock<File>,
}

/// A manifest as stored: its digest, media type and bytes.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Digest of `bytes`.
    pub digest: Digest,
    /// Media type recorded when it was pushed.
    pub media_type: String,
    /// The exact bytes pushed.
    pub bytes: Vec<u8>,
}

impl Storage {
    /// Open (creating) the data directory, lock it for `access`, and drop
    /// staging leftovers of a previous run. Uploads are kept: clients may
    /// resume them.
    pub fn open(root: &Path, access: Access) -> Result<Storage> {
        for dir in ["blobs/sha256", "uploads", "repositories", "tmp"] {
            let p = root.join(dir);
            fs::create_dir_all(&p).map_err(io_err("create directory", &p))?;
        }
        let lock = lock(root, access)?;
        let tmp = root.join("tmp");
        for entry in fs::read_dir(&tmp).map_err(io_err("read directory", &tmp))? {
            let path = entry.map_err(io_err("read directory", &tmp))?.path();
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(io_err("remove staging leftover", &path))?;
        }
        Ok(Storage {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the content of `digest` lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// The directory of repository `name` (validated by the caller).
    pub fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    fn layer_link(&self, name: &str, digest: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_layers/sha256")
            .join(digest.hex())
    }

    fn revision_link(&self, name: &str, digest: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests/revisions/sha256")
            .join(digest.hex())
    }

    fn tag_dir(&self, name: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests/tags")
    }

    /// Size of the blob if repository `name` holds it.
    pub fn blob_in_repo(&self, name: &str, digest: &Digest) -> Result<Option<u64>> {
        if !exists(&self.layer_link(name, digest))? {
            return Ok(None);
        }
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("stat blob", &path)(e)),
        }
    }

    /// Record that repository `name` holds the (existing) blob `digest`.
    pub fn link_blob(&self, name: &str, digest: &Digest) -> Result<()> {
        let link = self.layer_link(name, digest);
        if exists(&link)? {
            return Ok(());
        }
        self.write_atomic(&link, b"")
    }

    /// Drop the blob from repository `name`; false when it was not there.
    /// The content stays until `registry gc`.
    pub fn unlink_blob(&self, name: &str, digest: &Digest) -> Result<bool> {
        remove_if_exists(&self.layer_link(name, digest))
    }

    /// Write `data` at `dest`: temp file, fsync, rename, fsync directory.
    pub fn write_atomic(&self, dest: &Path, data: &[u8]) -> Result<()> {
        let tmp = self.root.join("tmp").join(random_id());
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(data).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(f);
        self.rename_into(&tmp, dest)
    }

    /// Rename a finished file into place and make the rename durable.
    fn rename_into(&self, from: &Path, dest: &Path) -> Result<()> {
        let dir = dest.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        if let Err(e) = fs::rename(from, dest) {
            let _ = fs::remove_file(from);
            return Err(io_err("rename into", dest)(e));
        }
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync directory", dir))
    }

    /// Store a manifest (already validated) and point `tags` at it.
    pub fn put_manifest(&self, name: &str, tags: &[String], m: &StoredManifest) -> Result<()> {
        let blob = self.blob_path(&m.digest);
        if !exists(&blob)? {
            self.write_atomic(&blob, &m.bytes)?;
        }
        // A re-push of what is already there writes (and fsyncs) nothing.
        let revision = self.revision_link(name, &m.digest);
        if self.manifest_type(name, &m.digest)?.as_deref() != Some(m.media_type.as_str()) {
            self.write_atomic(&revision, m.media_type.as_bytes())?;
        }
        for tag in tags {
            // An unreadable or corrupt tag link is simply rewritten.
            let current = self.tag_target(name, tag).unwrap_or(None);
            if current.as_ref() != Some(&m.digest) {
                let link = self.tag_dir(name).join(tag);
                self.write_atomic(&link, m.digest.to_string().as_bytes())?;
            }
        }
        Ok(())
    }

    /// The digest a tag points at.
    pub fn tag_target(&self, name: &str, tag: &str) -> Result<Option<Digest>> {
        let path = self.tag_dir(name).join(tag);
        match fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| StorageError::Corrupt {
                    path,
                    what: format!("tag link holds {s:?}, not a digest"),
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Media type of manifest `digest` if repository `name` holds it.
    pub fn manifest_type(&self, name: &str, digest: &Digest) -> Result<Option<String>> {
        let path = self.revision_link(name, digest);
        match fs::read_to_string(&path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// The manifest `digest` of repository `name`, verified against its digest.
    pub fn get_manifest(&self, name: &str, digest: &Digest) -> Result<Option<StoredManifest>> {
        let Some(media_type) = self.manifest_type(name, digest)? else {
            return Ok(None);
        };
        let path = self.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        if &Digest::of(&bytes) != digest {
            return Err(StorageError::Corrupt {
                path,
                what: "content does not match its digest".into(),
            });
        }
        Ok(Some(StoredManifest {
            digest: digest.clone(),
            media_type,
            bytes,
        }))
    }

    /// Remove a tag; false when it did not exist.
    pub fn delete_tag(&self, name: &str, tag: &str) -> Result<bool> {
        remove_if_exists(&self.tag_dir(name).join(tag))
    }

    /// Remove manifest `digest` from repository `name` with every tag that
    /// points at it; false when it was not there.
    pub fn delete_manifest(&self, name: &str, digest: &Digest) -> Result<bool> {
        // Tags first: a crash in between leaves a manifest without tags,
        // never a tag to a missing manifest.
        for tag in self.tags(name)?.unwrap_or_default() {
            if self.tag_target(name, &tag)?.as_ref() == Some(digest) {
                self.delete_tag(name, &tag)?;
            }
        }
        remove_if_exists(&self.revision_link(name, digest))
    }

    /// The sorted tags of repository `name`, or None when it does not exist.
    pub fn tags(&self, name: &str) -> Result<Option<Vec<String>>> {
        let dir = self.repo_dir(name);
        if !exists(&dir.join("_manifests"))? && !exists(&dir.join("_layers"))? {
            return Ok(None);
        }
        let mut tags = list_names(&self.tag_dir(name))?;
        tags.retain(|t| valid_tag(t));
        tags.sort();
        Ok(Some(tags))
    }

    /// Digests of every manifest revision of repository `name`.
    pub fn revisions(&self, name: &str) -> Result<Vec<Digest>> {
        let dir = self.repo_dir(name).join("_manifests/revisions/sha256");
        Ok(list_names(&dir)?
            .into_iter()
            .filter_map(|h| Digest::from_hex(&h).ok())
            .collect())
    }

    /// Digests of every blob linked into repository `name`.
    pub fn layer_links(&self, name: &str) -> Result<Vec<Digest>> {
        let dir = self.repo_dir(name).join("_layers/sha256");
        Ok(list_names(&dir)?
            .into_iter()
            .filter_map(|h| Digest::from_hex(&h).ok())
            .collect())
    }

    /// Every repository name, sorted.
    pub fn repositories(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.walk_repos(&self.root.join("repositories"), "", &mut out)?;
        out.sort();
        Ok(out)
    }

    fn walk_repos(&self, dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        let mut is_repo = false;
        for child in list_names(dir)? {
            if child.starts_with('_') {
                is_repo |= child == "_manifests" || child == "_layers";
                continue;
            }
            let name = if prefix.is_empty() {
                child.clone()
            } else {
                format!("{prefix}/{child}")
            };
            let path = dir.join(&child);
            if path.is_dir() {
                self.walk_repos(&path, &name, out)?;
            }
        }
        if is_repo && !prefix.is_empty() {
            out.push(prefix.to_string());
        }
        Ok(())
    }

    /// Every blob in the store.
    pub fn all_blobs(&self) -> Result<Vec<Digest>> {
        Ok(list_names(&self.root.join("blobs/sha256"))?
            .into_iter()
            .filter_map(|h| Digest::from_hex(&h).ok())
            .collect())
    }
}

fn lock(root: &Path, access: Access) -> Result<nix::fcntl::Flock<File>> {
    use nix::fcntl::{Flock, FlockArg};
    let path = root.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    let arg = match access {
        Access::Write => FlockArg::LockExclusiveNonblock,
        Access::Shared => FlockArg::LockSharedNonblock,
    };
    Flock::lock(file, arg).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            StorageError::Locked {
                path: root.to_path_buf(),
                holder: match access {
                    Access::Write => "another registry server or gc runs on it",
                    Access::Shared => "a registry server accepting pushes runs on it (stop it or restart it with --read-only)",
                },
            }
        } else {
            io_err("lock", &path)(errno.into())
        }
    })
}

/// A new 32-hex-digit random id (upload ids, temp names).
pub fn random_id() -> String {
    let mut buf = [0u8; 16];
    // invariant: getrandom only fails without a kernel entropy source, which
    // every supported Linux has.
    getrandom::getrandom(&mut buf).expect("kernel random source");
    hex::encode(buf)
}

fn exists(path: &Path) -> Result<bool> {
    path.try_exists().map_err(io_err("stat", path))
}

fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

/// File names in `dir` (none when it does not exist).
fn list_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read directory", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("read directory", dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            out.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(bytes: &[u8]) -> StoredManifest {
        StoredManifest {
            digest: Digest::of(bytes),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn manifests_tags_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), Access::Write).unwrap();
        let m = manifest(b"{}");
        s.put_manifest("r", &["v1".into()], &m).unwrap();
        s.put_manifest("r", &["v2".into()], &m).unwrap();
        assert_eq!(s.tags("r").unwrap().unwrap(), ["v1", "v2"]);
        assert_eq!(s.tag_target("r", "v1").unwrap(), Some(m.digest.clone()));
        assert_eq!(
            s.get_manifest("r", &m.digest).unwrap().unwrap().bytes,
            b"{}"
        );
        assert!(s.delete_tag("r", "v1").unwrap());
        assert!(s.delete_manifest("r", &m.digest).unwrap());
        assert_eq!(s.tags("r").unwrap().unwrap(), Vec::<String>::new());
        assert!(s.get_manifest("r", &m.digest).unwrap().is_none());
        assert!(s.tags("nope").unwrap().is_none());
    }

    #[test]
    fn open_clears_staging_but_keeps_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), Access::Write).unwrap();
        let id = s.create_upload("r").unwrap();
        fs::write(dir.path().join("tmp/leftover"), b"x").unwrap();
        let err = Storage::open(dir.path(), Access::Shared).unwrap_err();
        assert!(matches!(err, StorageError::Locked { .. }), "{err}");
        drop(s);
        let s = Storage::open(dir.path(), Access::Write).unwrap();
        assert!(Storage::open(dir.path(), Access::Write).is_err());
        assert!(!dir.path().join("tmp/leftover").exists());
        assert_eq!(s.upload_size("r", &id).unwrap(), Some(0));
        assert!(s.upload_file("r", "../../etc").unwrap().is_none());
    }
}
