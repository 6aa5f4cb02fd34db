//! Resumable uploads: `uploads/<id>/data` (appended to) and
//! `uploads/<id>/repo` (the repository it belongs to), committed into the
//! blob store by a verified rename.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use super::{exists, io_err, list_names, random_id, Result, Storage, StorageError};
use crate::types::Digest;

/// Read chunk size when hashing a finished upload.
const HASH_CHUNK: usize = 1 << 20;

impl Storage {
    fn upload_dir(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// Start an upload into repository `name`; returns its id.
    pub fn create_upload(&self, name: &str) -> Result<String> {
        let id = random_id();
        let staging = self.root.join("tmp").join(format!("upload-{id}"));
        fs::create_dir(&staging).map_err(io_err("create", &staging))?;
        let data = staging.join("data");
        File::create(&data).map_err(io_err("create", &data))?;
        let repo = staging.join("repo");
        fs::write(&repo, name).map_err(io_err("write", &repo))?;
        let dest = self.upload_dir(&id);
        fs::rename(&staging, &dest).map_err(io_err("rename into", &dest))?;
        Ok(id)
    }

    /// The data file of upload `id` of repository `name`, if it exists.
    pub fn upload_file(&self, name: &str, id: &str) -> Result<Option<PathBuf>> {
        if !valid_upload_id(id) {
            return Ok(None);
        }
        let dir = self.upload_dir(id);
        let repo = dir.join("repo");
        match fs::read_to_string(&repo) {
            Ok(r) if r == name => Ok(Some(dir.join("data"))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &repo)(e)),
        }
    }

    /// Bytes received so far by upload `id`, if it exists.
    pub fn upload_size(&self, name: &str, id: &str) -> Result<Option<u64>> {
        let Some(data) = self.upload_file(name, id)? else {
            return Ok(None);
        };
        let meta = fs::metadata(&data).map_err(io_err("stat", &data))?;
        Ok(Some(meta.len()))
    }

    /// Cancel upload `id`; false when it does not exist.
    pub fn cancel_upload(&self, name: &str, id: &str) -> Result<bool> {
        if self.upload_file(name, id)?.is_none() {
            return Ok(false);
        }
        let dir = self.upload_dir(id);
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
        Ok(true)
    }

    /// Every upload in progress: id, bytes received, last write.
    pub fn uploads(&self) -> Result<Vec<(String, u64, std::time::SystemTime)>> {
        let mut out = Vec::new();
        for id in list_names(&self.root.join("uploads"))? {
            if !valid_upload_id(&id) {
                continue;
            }
            let data = self.upload_dir(&id).join("data");
            match fs::metadata(&data) {
                Ok(m) => out.push((id, m.len(), m.modified().map_err(io_err("stat", &data))?)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("stat", &data)(e)),
            }
        }
        Ok(out)
    }

    /// Remove upload `id` whatever its repository.
    pub fn remove_upload(&self, id: &str) -> Result<()> {
        if !valid_upload_id(id) {
            return Ok(());
        }
        let dir = self.upload_dir(id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &dir)(e)),
            _ => Ok(()),
        }
    }

    /// Finish upload `id`: fsync, check the digest (`hashed` is the digest
    /// already computed while receiving, if any), move the data into the
    /// blob store and link it into the repository. The upload is gone
    /// afterwards, also on a digest mismatch. Returns the blob size.
    pub fn commit_upload(
        &self,
        name: &str,
        id: &str,
        expected: &Digest,
        hashed: Option<Digest>,
    ) -> Result<Option<u64>> {
        let Some(data) = self.upload_file(name, id)? else {
            return Ok(None);
        };
        let mut f = File::open(&data).map_err(io_err("open", &data))?;
        f.sync_all().map_err(io_err("fsync", &data))?;
        let size = f.metadata().map_err(io_err("stat", &data))?.len();
        let actual = match hashed {
            Some(d) => d,
            None => hash_reader(&mut f).map_err(io_err("read", &data))?,
        };
        drop(f);
        let dir = self.upload_dir(id);
        if &actual != expected {
            fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
            return Err(StorageError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        let blob = self.blob_path(expected);
        if !exists(&blob)? {
            self.rename_into(&data, &blob)?;
        }
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
        self.link_blob(name, expected)?;
        Ok(Some(size))
    }
}

/// Whether `id` could be an upload id (so it is safe as a path component).
pub fn valid_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The sha256 of everything `r` yields.
pub fn hash_reader(r: &mut impl Read) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(Digest::from_hasher(hasher));
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::Access;
    use super::*;

    #[test]
    fn upload_commit_verifies_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), Access::Write).unwrap();
        let id = s.create_upload("a/b").unwrap();
        assert!(s.upload_file("other", &id).unwrap().is_none());
        let data = s.upload_file("a/b", &id).unwrap().unwrap();
        fs::write(&data, b"hello").unwrap();
        let d = Digest::of(b"hello");
        assert_eq!(s.commit_upload("a/b", &id, &d, None).unwrap(), Some(5));
        assert_eq!(s.blob_in_repo("a/b", &d).unwrap(), Some(5));
        assert_eq!(s.blob_in_repo("a", &d).unwrap(), None);
        assert_eq!(s.repositories().unwrap(), ["a/b"]);

        let id = s.create_upload("a").unwrap();
        fs::write(s.upload_file("a", &id).unwrap().unwrap(), b"bad").unwrap();
        let err = s.commit_upload("a", &id, &d, None).unwrap_err();
        assert!(matches!(err, StorageError::DigestMismatch { .. }), "{err}");
        assert!(s.upload_file("a", &id).unwrap().is_none());
        assert!(!s.blob_path(&Digest::of(b"bad")).exists());
    }
}
