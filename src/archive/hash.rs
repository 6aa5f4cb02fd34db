//! Hash a stream while it is read.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use crate::types::Digest;

/// A reader that feeds every byte it passes on into sha256 and counts them.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    active: bool,
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            active: true,
        }
    }

    /// Count only: the digest [`HashingReader::finish`] returns is that of
    /// the empty stream (for callers that know the digest already).
    pub fn counting_only(inner: R) -> Self {
        HashingReader {
            active: false,
            ..Self::new(inner)
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Read the rest of the stream and return its digest and length.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Digest::from_hasher(self.hasher), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.active {
            self.hasher.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}
