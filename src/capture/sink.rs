//! Writes a capture's blobs into the shared store and remembers what the
//! bundle references and what it added (the "new bytes" figure).

use std::collections::BTreeMap;

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
}

impl<'a> BlobSink<'a> {
    /// A sink over `store`.
    pub fn new(store: &'a Store) -> BlobSink<'a> {
        BlobSink {
            store,
            blobs: BTreeMap::new(),
            new_bytes: 0,
        }
    }

    /// Store one blob (or find it there) and reference it.
    pub fn put(&mut self, data: &[u8], media_type: &'static str) -> Result<Digest, CaptureError> {
        let (digest, new) = self.store.put_blob_unindexed(data)?;
        if new {
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
