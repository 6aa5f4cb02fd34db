//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`, with single byte ranges.

use std::io::SeekFrom;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::error::RegistryError;
use super::AppState;
use crate::registry::distribution::{parse_digest, ErrorCode, CONTENT_DIGEST_HEADER};
use crate::types::Digest;

/// Read buffer when streaming a blob out.
const STREAM_CHUNK: usize = 256 << 10;

/// Parse a digest from a path or query, as the spec's errors want.
pub fn digest_arg(s: &str) -> Result<Digest, RegistryError> {
    parse_digest(s).map_err(|p| RegistryError::bad_digest(s, p))
}

/// Blob GET/HEAD.
pub async fn get(
    state: &Arc<AppState>,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, RegistryError> {
    let digest = digest_arg(digest)?;
    let size = state
        .blob_in_repo(name, &digest)
        .await?
        .ok_or_else(|| RegistryError::new(ErrorCode::BlobUnknown).detail(&digest))?;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) => parse_range(r, size).map_err(|()| {
            RegistryError::new(ErrorCode::RangeInvalid)
                .detail(r)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
        })?,
        None => None,
    };
    let (status, start, len) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut h = vec![
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::CONTENT_LENGTH, len.to_string()),
        (header::ACCEPT_RANGES, "bytes".to_string()),
        (header::ETAG, format!("\"{digest}\"")),
    ];
    if range.is_some() {
        h.push((
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        ));
    }
    let body = if head {
        Body::empty()
    } else {
        let path = state.storage.blob_path(&digest);
        let mut f = tokio::fs::File::open(&path).await?;
        if start > 0 {
            f.seek(SeekFrom::Start(start)).await?;
        }
        Body::from_stream(ReaderStream::with_capacity(f.take(len), STREAM_CHUNK))
    };
    let mut resp = (status, body).into_response();
    for (k, v) in h {
        if let Ok(v) = v.parse() {
            resp.headers_mut().insert(k, v);
        }
    }
    if let Ok(v) = digest.to_string().parse() {
        resp.headers_mut().insert(CONTENT_DIGEST_HEADER, v);
    }
    Ok(resp)
}

/// Blob DELETE: unlink it from the repository (content goes at `gc`).
pub async fn delete(
    state: &Arc<AppState>,
    name: &str,
    digest: &str,
) -> Result<Response, RegistryError> {
    let digest = digest_arg(digest)?;
    let (s, n, d) = (state.storage.clone(), name.to_string(), digest.clone());
    if !tokio::task::spawn_blocking(move || s.unlink_blob(&n, &d)).await?? {
        return Err(RegistryError::new(ErrorCode::BlobUnknown).detail(&digest));
    }
    tracing::info!(repository = name, %digest, "blob deleted");
    Ok(StatusCode::ACCEPTED.into_response())
}

/// A single `bytes=` range over `size` bytes: Ok(None) to ignore it (not
/// bytes, several ranges), Err when unsatisfiable or malformed.
pub fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| ());
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, true) => return Err(()),
        // bytes=-N: the last N bytes.
        (true, false) => {
            let n = num(b)?;
            if n == 0 || size == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size - 1)
        }
        (false, true) => (num(a)?, size.saturating_sub(1)),
        (false, false) => (num(a)?, num(b)?.min(size.saturating_sub(1))),
    };
    if start >= size || end < start {
        return Err(());
    }
    Ok(Some((start, end)))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-0", 10), Ok(Some((0, 0))));
        assert_eq!(parse_range("bytes=2-", 10), Ok(Some((2, 9))));
        assert_eq!(parse_range("bytes=-3", 10), Ok(Some((7, 9))));
        assert_eq!(parse_range("bytes=5-100", 10), Ok(Some((5, 9))));
        assert_eq!(parse_range("bytes=0-1,4-5", 10), Ok(None));
        assert_eq!(parse_range("items=0-1", 10), Ok(None));
        assert_eq!(parse_range("bytes=10-", 10), Err(()));
        assert_eq!(parse_range("bytes=5-2", 10), Err(()));
        assert_eq!(parse_range("bytes=x-2", 10), Err(()));
        assert_eq!(parse_range("bytes=0-0", 0), Err(()));
    }
}
