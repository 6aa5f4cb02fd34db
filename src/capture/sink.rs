//! Writes a capture's blobs into the shared store and remembers what the
//! bundle references and what it added (the "new bytes" figure). A dry
//! sink only hashes (`bundle diff` against the live containers).

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest as _, Sha256};

use super::CaptureError;
use crate::store::Store;
use crate::types::Digest;

/// The blobs of one bundle being written.
pub struct BlobSink<'a> {
    store: &'a Store,
    /// Every blob the bundle references: digest → (size, media type).
    pub blobs: BTreeMap<Digest, (u64, &'static str)>,
    /// Bytes of blobs this capture wrote (absent from the store before).
    pub new_bytes: u64,
    /// The blobs this capture wrote.
    new: BTreeSet<Digest>,
    /// Only hash, never write (a live diff's throwaway capture).
    dry: bool,
}

impl<'a> BlobSink<'a> {
    /// A sink over `store`.
    pub fn new(store: &'a Store) -> BlobSink<'a> {
        BlobSink {
            store,
            blobs: BTreeMap::new(),
            new_bytes: 0,
            new: BTreeSet::new(),
            dry: false,
        }
    }

    /// A sink that computes digests and writes nothing, so a capture
    /// through it leaves no trace in the store.
    pub fn dry(store: &'a Store) -> BlobSink<'a> {
        BlobSink {
            dry: true,
            ..BlobSink::new(store)
        }
    }

    /// Store one blob (or find it there) and reference it.
    pub fn put(&mut self, data: &[u8], media_type: &'static str) -> Result<Digest, CaptureError> {
        let (digest, new) = match self.dry {
            true => (Digest::of(data), false),
            false => self.store.put_blob_unindexed(data)?,
        };
        if new && self.new.insert(digest.clone()) {
            self.new_bytes += data.len() as u64;
        }
        self.blobs
            .entry(digest.clone())
            .or_insert((data.len() as u64, media_type));
        Ok(digest)
    }

    /// Reference a blob already in the store (from the stat cache).
    pub fn reuse(&mut self, digest: &Digest, size: u64, media_type: &'static str) -> bool {
        if !self.store.has_blob(digest) {
            return false;
        }
        self.blobs
            .entry(digest.clone())
            .or_insert((size, media_type));
        true
    }

    /// Take in what another sink (a parallel capture) referenced and wrote;
    /// a blob both wrote counts once.
    pub fn merge(&mut self, other: BlobSink<'_>) {
        for d in other.new {
            if !self.new.contains(&d) {
                self.new_bytes += other.blobs.get(&d).map_or(0, |(s, _)| *s);
                self.new.insert(d);
            }
        }
        for (d, v) in other.blobs {
            self.blobs.entry(d).or_insert(v);
        }
    }

    /// Remove the blob files this sink wrote that no row indexes (a failed
    /// capture or import): they would otherwise stay until the next start.
    pub fn discard(&self) {
        let unindexed: Vec<Digest> = self
            .store
            .with_db(|conn| {
                let mut stmt = conn.prepare("SELECT 1 FROM blobs WHERE digest = ?1")?;
                let mut out = Vec::new();
                for d in &self.new {
                    if !stmt.exists([d.to_string()])? {
                        out.push(d.clone());
                    }
                }
                Ok(out)
            })
            .unwrap_or_default();
        self.store.remove_blob_files(&unindexed);
    }

    /// Total size of the referenced blobs.
    pub fn size(&self) -> u64 {
        self.blobs.values().map(|(s, _)| s).sum()
    }
}

/// Cut `data` into chunks of `chunk` bytes and store each; returns the
/// chunk digests and the digest of the whole.
pub fn put_chunked(
    sink: &mut BlobSink<'_>,
    mut reader: impl std::io::Read,
    chunk: usize,
) -> Result<(Vec<Digest>, Digest, u64), CaptureError> {
    let mut whole = Sha256::new();
    let mut chunks = Vec::new();
    let mut buf = vec![0u8; chunk];
    let mut total = 0u64;
    loop {
        let n = read_full(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        whole.update(&buf[..n]);
        chunks.push(sink.put(&buf[..n], super::manifest::CHUNK_MEDIA_TYPE)?);
        total += n as u64;
        if n < chunk {
            break;
        }
    }
    Ok((chunks, Digest::from_hasher(whole), total))
}

/// Read until `buf` is full or the end of the input.
fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> Result<usize, CaptureError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CaptureError::io("read", "capture input", e)),
        }
    }
    Ok(n)
}
