//! Detect and undo the compression of a tar stream by its magic bytes.

use std::io::{self, Cursor, Read};

use super::ArchiveError;

/// Compression formats recognised on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard.
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const BZIP2_MAGIC: &[u8] = b"BZh";
/// Enough bytes to recognise every magic above.
const MAGIC_LEN: usize = 6;

/// Wrap `input` in the decompressor its first bytes call for.
pub fn decompress<R: Read + Send + 'static>(
    mut input: R,
) -> Result<(Compression, Box<dyn Read + Send>), ArchiveError> {
    let mut head = Vec::with_capacity(MAGIC_LEN);
    (&mut input)
        .take(MAGIC_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|source| ArchiveError::Corrupt { source })?;
    let stream = Cursor::new(head.clone()).chain(input);
    if head.starts_with(GZIP_MAGIC) {
        let dec = flate2::read::MultiGzDecoder::new(stream);
        Ok((Compression::Gzip, Box::new(dec)))
    } else if head.starts_with(ZSTD_MAGIC) {
        let dec = zstd::stream::read::Decoder::new(stream)
            .map_err(|source| ArchiveError::Corrupt { source })?;
        Ok((Compression::Zstd, Box::new(dec)))
    } else if head.starts_with(XZ_MAGIC) {
        Err(ArchiveError::UnsupportedCompression("xz"))
    } else if head.starts_with(BZIP2_MAGIC) {
        Err(ArchiveError::UnsupportedCompression("bzip2"))
    } else {
        Ok((Compression::None, Box::new(stream)))
    }
}

/// Turn an unexpected end of a compressed stream into a clear error.
pub(crate) fn is_truncation(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::UnexpectedEof
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detects_formats() {
        let plain = b"hello world, not compressed".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&plain[..], 1).unwrap();
        for (data, want) in [
            (plain.clone(), Compression::None),
            (gz, Compression::Gzip),
            (zs, Compression::Zstd),
        ] {
            let (got, mut r) = decompress(Cursor::new(data)).unwrap();
            assert_eq!(got, want);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn short_and_unsupported_inputs() {
        let (c, mut r) = decompress(Cursor::new(b"ab".to_vec())).unwrap();
        assert_eq!(c, Compression::None);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
        let xz = decompress(Cursor::new(XZ_MAGIC.to_vec()));
        assert!(matches!(
            xz,
            Err(ArchiveError::UnsupportedCompression("xz"))
        ));
    }
}
