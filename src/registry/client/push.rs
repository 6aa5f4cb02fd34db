//! `push`: compressed layer blobs (made once, cached beside the layer),
//! config and an OCI manifest; a blob the registry has (HEAD) is not sent
//! again, so re-pushing an unchanged image is a few HEADs and one PUT.

use std::sync::Arc;

use hyper::{Method, StatusCode};

use super::{empty, error_of, full, origin, Body, Ctx, RegistryError, Session};
use crate::store::{BlobCompression, LayerBlob};
use crate::types::{Digest, Reference};

/// Blobs uploaded at once.
const PARALLEL: usize = 3;

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's length.
    pub size: usize,
}

/// Push image `id` as `r` (which names the registry, repository and tag).
pub async fn push(
    ctx: Ctx<'_>,
    id: &Digest,
    r: &Reference,
    compression: BlobCompression,
) -> Result<Pushed, RegistryError> {
    let Ctx {
        store,
        creds,
        cfg,
        seen,
        progress,
    } = ctx;
    let ep = origin(r, cfg);
    let tag = r.tag().unwrap_or(crate::types::DEFAULT_TAG).to_string();
    let shown = if r.domain() == crate::types::DEFAULT_DOMAIN {
        format!("{}/{}", r.domain(), r.path())
    } else {
        r.familiar_name()
    };
    progress.status(None, format!("The push refers to repository [{shown}]"));
    let s = Arc::new(Session::new(ep, creds, "pull,push", cfg)?);
    s.authenticate().await?;
    let (st, image) = (store.clone(), id.clone());
    let blobs = tokio::task::spawn_blocking(move || st.image_blobs(&image, compression))
        .await
        .map_err(|e| RegistryError::Invalid(e.to_string()))??;
    let sem = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut tasks = Vec::new();
    for l in blobs.layers.iter().rev() {
        progress.status(Some(l.digest.short()), "Preparing");
        let (s, l, progress, sem) = (s.clone(), l.clone(), progress.clone(), sem.clone());
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let short = l.digest.short().to_string();
            let (host, repo) = (s.endpoint().host.clone(), s.endpoint().repo.clone());
            if exists(&s, &l.digest).await? {
                progress.status(Some(&short), "Layer already exists");
                seen.record(&l.digest, &host, &repo);
                return Ok(());
            }
            for from in seen.sources(&l.digest, &host, &repo) {
                if mount(&s, &l.digest, &from).await? {
                    progress.status(Some(&short), format!("Mounted from {from}"));
                    seen.record(&l.digest, &host, &repo);
                    return Ok(());
                }
            }
            progress.status(Some(&short), "Pushing");
            upload(&s, &l.digest, l.size, layer_body(&l)?).await?;
            progress.bytes(&short, "Pushing", l.size, l.size);
            progress.status(Some(&short), "Pushed");
            seen.record(&l.digest, &host, &repo);
            Ok::<_, RegistryError>(())
        }));
    }
    let mut failed = None;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = failed.or(Some(e)),
            Err(e) => failed = failed.or(Some(RegistryError::Invalid(e.to_string()))),
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if !exists(&s, &blobs.config_digest).await? {
        let len = blobs.config.len() as u64;
        upload(&s, &blobs.config_digest, len, full(blobs.config.clone())).await?;
    }
    let url = s.url(&format!("manifests/{tag}"));
    let resp = s
        .send(
            Method::PUT,
            &url,
            &[
                (
                    "content-type",
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
                ("content-length", blobs.manifest.len().to_string()),
            ],
            full(blobs.manifest.clone()),
        )
        .await?;
    if !resp.status().is_success() {
        return Err(error_of(&format!("manifest {tag}"), resp).await);
    }
    let digest = Digest::of(&blobs.manifest);
    progress.status(
        None,
        format!("{tag}: digest: {digest} size: {}", blobs.manifest.len()),
    );
    progress.send(crate::types::api::JsonMessage {
        aux: Some(serde_json::json!({"Tag": tag, "Digest": digest.to_string(), "Size": blobs.manifest.len()})),
        ..Default::default()
    });
    Ok(Pushed {
        digest,
        size: blobs.manifest.len(),
    })
}

/// Cross-repository mount: 201 means the registry linked the blob.
async fn mount(s: &Session, d: &Digest, from: &str) -> Result<bool, RegistryError> {
    let url = s.url(&format!(
        "blobs/uploads/?mount={d}&from={}",
        super::urlencode(from)
    ));
    let resp = s
        .send(
            Method::POST,
            &url,
            &[("content-length", "0".into())],
            empty(),
        )
        .await?;
    Ok(resp.status() == StatusCode::CREATED)
}

async fn exists(s: &Session, d: &Digest) -> Result<bool, RegistryError> {
    let resp = s
        .send(Method::HEAD, &s.url(&format!("blobs/{d}")), &[], empty())
        .await?;
    Ok(resp.status().is_success())
}

/// The body of a layer blob: its cached compressed file, or the plain tar
/// written from the layer directory (no compression).
fn layer_body(l: &LayerBlob) -> Result<Body, RegistryError> {
    let path = l.file.clone().ok_or_else(|| {
        RegistryError::Invalid(
            "pushing uncompressed layers is not supported: use gzip or zstd".into(),
        )
    })?;
    let file = std::fs::File::open(&path)
        .map_err(|e| RegistryError::Invalid(format!("{}: {e}", path.display())))?;
    let stream =
        tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 1 << 20);
    let stream = futures_util::StreamExt::map(stream, |c| c.map(hyper::body::Frame::data));
    Ok(http_body_util::BodyExt::boxed(
        http_body_util::StreamBody::new(stream),
    ))
}

/// Monolithic upload: POST for a session, then PUT the bytes with the digest.
async fn upload(s: &Session, d: &Digest, size: u64, body: Body) -> Result<(), RegistryError> {
    let resp = s
        .send(
            Method::POST,
            &s.url("blobs/uploads/"),
            &[("content-length", "0".into())],
            empty(),
        )
        .await?;
    if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
        return Err(error_of(&format!("upload of {d}"), resp).await);
    }
    let loc = resp
        .headers()
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            RegistryError::Remote(format!("upload of {d}: the registry gave no Location"))
        })?;
    let mut url = s.absolute(loc);
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&format!("digest={d}"));
    let resp = s
        .send(
            Method::PUT,
            &url,
            &[
                ("content-type", "application/octet-stream".into()),
                ("content-length", size.to_string()),
            ],
            body,
        )
        .await?;
    if !resp.status().is_success() {
        return Err(error_of(&format!("upload of {d}"), resp).await);
    }
    Ok(())
}
