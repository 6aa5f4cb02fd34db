//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (start, monolithic with
//! `?digest=`, cross-repository mount with `?mount=&from=`), `PATCH` (a
//! chunk, streamed or with `Content-Range`), `PUT ?digest=` (finish),
//! `GET` (status, for resuming) and `DELETE` (cancel) on the upload.
//!
//! Data is appended to `uploads/<id>/data` and hashed while it arrives; the
//! digest is checked at `PUT` (re-reading the file only when the running
//! hash was lost, e.g. after a restart) and the file renamed into the blob
//! store. A client that disconnects mid-chunk leaves a valid prefix: the
//! status `Range` tells it where to continue.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::blobs::digest_arg;
use super::error::RegistryError;
use super::routes::Query;
use super::{AppState, RunningHash};
use crate::registry::distribution::{
    valid_name, ErrorCode, CONTENT_DIGEST_HEADER, UPLOAD_UUID_HEADER,
};
use crate::types::Digest;

/// Write buffer between the request body and the upload file.
const WRITE_BUFFER: usize = 1 << 20;
/// A chunk whose sender goes silent this long is ended (what arrived
/// stays), so a half-open connection cannot hold an upload forever.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a status request waits for a chunk in flight to settle.
const STATUS_SETTLE: Duration = Duration::from_secs(2);

/// `POST /v2/<name>/blobs/uploads/`.
pub async fn start(
    state: &Arc<AppState>,
    name: &str,
    q: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, RegistryError> {
    // distribution-spec main (end-4c): only sha256 is offered.
    if let Some(alg) = q.get("digest-algorithm").filter(|a| *a != "sha256") {
        return Err(RegistryError::new(ErrorCode::Unsupported)
            .status(StatusCode::BAD_REQUEST)
            .message("unsupported digest algorithm: only sha256 is supported")
            .detail(alg));
    }
    if let (Some(mount), Some(from)) = (q.get("mount"), q.get("from")) {
        let digest = digest_arg(mount)?;
        if valid_name(from) && state.blob_in_repo(from, &digest).await?.is_some() {
            let (s, n, d) = (state.storage.clone(), name.to_string(), digest.clone());
            tokio::task::spawn_blocking(move || s.link_blob(&n, &d)).await??;
            tracing::info!(repository = name, from, %digest, "blob mounted");
            return Ok(created(name, &digest));
        }
        // Not mountable: the spec says to fall back to a new upload.
    }
    let (s, n) = (state.storage.clone(), name.to_string());
    let id = tokio::task::spawn_blocking(move || s.create_upload(&n)).await??;
    if let Some(digest) = q.get("digest") {
        let digest = digest_arg(digest)?;
        return finish_with(state, name, &id, &digest, headers, body).await;
    }
    Ok(accepted(name, &id, 0))
}

/// `GET` on an upload: where it stands.
pub async fn status(
    state: &Arc<AppState>,
    name: &str,
    id: &str,
) -> Result<Response, RegistryError> {
    existing(state, name, id).await?;
    // A chunk still arriving (the client may be asking because its own
    // connection broke before the server noticed) holds the lock: let it
    // settle for a moment so the size is not taken mid-write.
    let lock = state.upload_lock(id);
    let _settled = tokio::time::timeout(STATUS_SETTLE, lock.lock()).await;
    let (s, n, i) = (state.storage.clone(), name.to_string(), id.to_string());
    let size = tokio::task::spawn_blocking(move || s.upload_size(&n, &i))
        .await??
        .ok_or_else(|| unknown_upload(id))?;
    let mut resp = accepted(name, id, size);
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}

/// `PATCH` on an upload: append a chunk.
pub async fn patch(
    state: &Arc<AppState>,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, RegistryError> {
    let size = append(state, name, id, headers, body).await?;
    Ok(accepted(name, id, size))
}

/// `PUT` on an upload: optional last chunk, then verify and store.
pub async fn finish(
    state: &Arc<AppState>,
    name: &str,
    id: &str,
    q: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, RegistryError> {
    let digest = q.get("digest").ok_or_else(|| {
        RegistryError::new(ErrorCode::DigestInvalid)
            .message("the digest query parameter is required")
    })?;
    let digest = digest_arg(digest)?;
    finish_with(state, name, id, &digest, headers, body).await
}

async fn finish_with(
    state: &Arc<AppState>,
    name: &str,
    id: &str,
    digest: &Digest,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, RegistryError> {
    append(state, name, id, headers, body).await?;
    let lock = state.upload_lock(id);
    let mut running = lock.lock().await;
    let hashed = running
        .take()
        .map(|r| (r.offset, Digest::from_hasher(r.hasher)));
    let (s, n, i, d) = (
        state.storage.clone(),
        name.to_string(),
        id.to_string(),
        digest.clone(),
    );
    let committed = tokio::task::spawn_blocking(move || {
        // The running hash counts only if it covers the whole file.
        let size = s.upload_size(&n, &i)?;
        let hashed = hashed.filter(|(off, _)| Some(*off) == size).map(|(_, d)| d);
        s.commit_upload(&n, &i, &d, hashed)
    })
    .await?;
    drop(running);
    state.forget_upload(id);
    let size = committed?.ok_or_else(|| unknown_upload(id))?;
    tracing::info!(repository = name, %digest, size, "blob stored");
    Ok(created(name, digest))
}

/// `DELETE` on an upload.
pub async fn cancel(
    state: &Arc<AppState>,
    name: &str,
    id: &str,
) -> Result<Response, RegistryError> {
    existing(state, name, id).await?;
    let lock = state.upload_lock(id);
    let _running = lock.lock().await;
    let (s, n, i) = (state.storage.clone(), name.to_string(), id.to_string());
    let removed = tokio::task::spawn_blocking(move || s.cancel_upload(&n, &i)).await??;
    state.forget_upload(id);
    if !removed {
        return Err(unknown_upload(id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Append the request body to upload `id`, honouring `Content-Range`;
/// returns the upload's new size.
async fn append(
    state: &Arc<AppState>,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<u64, RegistryError> {
    // Check first, so unknown ids never get a lock entry.
    existing(state, name, id).await?;
    let lock = state.upload_lock(id);
    let mut running = lock.lock().await;
    // Again under the lock: a concurrent PUT or DELETE may have ended it.
    let path = existing(state, name, id).await?;
    let file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .await?;
    let size = file.metadata().await?.len();
    check_range(headers, size, name, id)?;
    let hash = match running.take() {
        Some(r) if r.offset == size => Some(r),
        _ if size == 0 => Some(RunningHash {
            offset: 0,
            hasher: Sha256::new(),
        }),
        _ => None,
    };
    let (received, hash, failure) = receive(file, body, hash).await;
    *running = hash;
    match failure {
        Some(e) => Err(e),
        None => Ok(size + received),
    }
}

/// A `Content-Range` must start where the upload ends.
fn check_range(headers: &HeaderMap, size: u64, name: &str, id: &str) -> Result<(), RegistryError> {
    let Some(range) = headers.get(header::CONTENT_RANGE) else {
        return Ok(());
    };
    let start = range
        .to_str()
        .ok()
        .and_then(content_range_start)
        .ok_or_else(|| {
            RegistryError::new(ErrorCode::BlobUploadInvalid).detail(format!("{range:?}"))
        })?;
    if start == size {
        return Ok(());
    }
    // Out of order or a repeated chunk: say where the upload stands.
    Err(RegistryError::new(ErrorCode::RangeInvalid)
        .message(format!(
            "chunk starts at {start}, the upload holds {size} bytes"
        ))
        .header(header::RANGE, range_value(size))
        .header(header::LOCATION, location(name, id))
        .header(HeaderName::from_static("docker-upload-uuid"), id))
}

/// Stream `body` to the end of `file`, feeding the running hash; returns
/// the bytes written, the hash (None once it no longer matches the file)
/// and the failure, if any. What arrived before a failure stays: a cut-off
/// chunk leaves a prefix to resume from.
async fn receive(
    file: tokio::fs::File,
    body: Body,
    mut hash: Option<RunningHash>,
) -> (u64, Option<RunningHash>, Option<RegistryError>) {
    let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    let mut failure = None;
    loop {
        let next = match tokio::time::timeout(BODY_IDLE_TIMEOUT, stream.next()).await {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(_) => {
                failure = Some(
                    RegistryError::new(ErrorCode::BlobUploadInvalid)
                        .message("the client sent nothing for too long"),
                );
                break;
            }
        };
        let chunk = match next {
            Ok(c) => c,
            Err(e) => {
                failure = Some(
                    RegistryError::new(ErrorCode::BlobUploadInvalid)
                        .message(format!("failed to receive the chunk: {e}")),
                );
                break;
            }
        };
        if let Err(e) = out.write_all(&chunk).await {
            hash = None;
            failure = Some(e.into());
            break;
        }
        if let Some(h) = hash.as_mut() {
            h.hasher.update(&chunk);
            h.offset += chunk.len() as u64;
        }
        received += chunk.len() as u64;
    }
    if let Err(e) = out.flush().await {
        hash = None;
        failure.get_or_insert(e.into());
    }
    (received, hash, failure)
}

/// `bytes 0-99` or `0-99` (Docker clients send the latter) → 0.
fn content_range_start(v: &str) -> Option<u64> {
    let v = v.trim();
    let v = v.strip_prefix("bytes ").unwrap_or(v);
    let v = v.split('/').next()?;
    let (a, b) = v.split_once('-')?;
    let (a, b) = (a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?);
    (b >= a).then_some(a)
}

/// The data file of an upload that exists, or BLOB_UPLOAD_UNKNOWN.
async fn existing(state: &Arc<AppState>, name: &str, id: &str) -> Result<PathBuf, RegistryError> {
    let (s, n, i) = (state.storage.clone(), name.to_string(), id.to_string());
    tokio::task::spawn_blocking(move || s.upload_file(&n, &i))
        .await??
        .ok_or_else(|| unknown_upload(id))
}

fn unknown_upload(id: &str) -> RegistryError {
    RegistryError::new(ErrorCode::BlobUploadUnknown).detail(id)
}

fn location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// Docker's `Range` of an upload: `0-<last byte>`, `0-0` when empty.
fn range_value(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// 202 for an upload in progress.
fn accepted(name: &str, id: &str, size: u64) -> Response {
    let mut resp = StatusCode::ACCEPTED.into_response();
    let h = resp.headers_mut();
    for (k, v) in [
        (header::LOCATION.as_str(), location(name, id)),
        (header::RANGE.as_str(), range_value(size)),
        (UPLOAD_UUID_HEADER, id.to_string()),
        (header::CONTENT_LENGTH.as_str(), "0".to_string()),
    ] {
        if let (Ok(k), Ok(v)) = (k.parse::<HeaderName>(), v.parse()) {
            h.insert(k, v);
        }
    }
    resp
}

/// 201 for a blob now in the repository.
fn created(name: &str, digest: &Digest) -> Response {
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    for (k, v) in [
        (
            header::LOCATION.as_str(),
            format!("/v2/{name}/blobs/{digest}"),
        ),
        (CONTENT_DIGEST_HEADER, digest.to_string()),
        (header::CONTENT_LENGTH.as_str(), "0".to_string()),
    ] {
        if let (Ok(k), Ok(v)) = (k.parse::<HeaderName>(), v.parse()) {
            h.insert(k, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range_start("0-99"), Some(0));
        assert_eq!(content_range_start("bytes 100-199/*"), Some(100));
        assert_eq!(content_range_start("bytes 100-199/300"), Some(100));
        assert_eq!(content_range_start("5-1"), None);
        assert_eq!(content_range_start("x"), None);
        assert_eq!(range_value(0), "0-0");
        assert_eq!(range_value(10), "0-9");
    }
}
