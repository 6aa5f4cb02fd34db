//! Manifests: `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`
//! (reference = tag or digest) and `GET /v2/<name>/referrers/<digest>`.
//!
//! A pushed manifest must be one of the four media types (OCI manifest and
//! index, Docker schema 2 manifest and manifest list), at most
//! [`MAX_MANIFEST_SIZE`] bytes, and everything it references must already be
//! in the repository (blobs for images, manifests for indexes).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::blobs::digest_arg;
use super::error::RegistryError;
use super::routes::Query;
use super::storage::{Storage, StorageError, StoredManifest};
use super::AppState;
use crate::registry::distribution::{
    is_index, valid_tag, ErrorCode, DOCKER_FOREIGN_LAYER, MANIFEST_TYPES, OCI_INDEX,
};
use crate::types::Digest;

/// Largest manifest accepted (Docker's registry uses 4 MiB too).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

/// A manifest reference: tag or digest.
enum Ref {
    Tag(String),
    Digest(Digest),
}

fn parse_ref(reference: &str) -> Result<Ref, RegistryError> {
    if reference.contains(':') {
        return digest_arg(reference).map(Ref::Digest);
    }
    if valid_tag(reference) {
        return Ok(Ref::Tag(reference.to_string()));
    }
    Err(RegistryError::new(ErrorCode::ManifestInvalid)
        .message("invalid tag")
        .detail(reference))
}

fn unknown(reference: &str) -> RegistryError {
    RegistryError::new(ErrorCode::ManifestUnknown).detail(reference)
}

/// Manifest GET/HEAD.
pub async fn get(
    state: &Arc<AppState>,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response, RegistryError> {
    let r = parse_ref(reference)?;
    let (s, n) = (state.storage.clone(), name.to_string());
    let found = tokio::task::spawn_blocking(move || -> Result<_, StorageError> {
        let digest = match r {
            Ref::Digest(d) => d,
            Ref::Tag(t) => match s.tag_target(&n, &t)? {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        s.get_manifest(&n, &digest)
    })
    .await??;
    let m = found.ok_or_else(|| unknown(reference))?;
    let len = m.bytes.len();
    let body = if head {
        Body::empty()
    } else {
        Body::from(m.bytes)
    };
    let mut resp = body.into_response();
    set(&mut resp, header::CONTENT_TYPE, &m.media_type);
    set(&mut resp, header::CONTENT_LENGTH, &len.to_string());
    set(&mut resp, header::ETAG, &format!("\"{}\"", m.digest));
    set(
        &mut resp,
        HeaderName::from_static("docker-content-digest"),
        &m.digest.to_string(),
    );
    Ok(resp)
}

fn set(resp: &mut Response, name: HeaderName, value: &str) {
    if let Ok(v) = value.parse() {
        resp.headers_mut().insert(name, v);
    }
}

/// Manifest PUT.
pub async fn put(
    state: &Arc<AppState>,
    name: &str,
    reference: &str,
    q: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, RegistryError> {
    let r = parse_ref(reference)?;
    let tags = tags_to_apply(&r, q)?;
    let bytes = read_body(headers, body).await?;
    let digest = Digest::of(&bytes);
    if let Ref::Digest(d) = &r {
        if d != &digest {
            return Err(RegistryError::new(ErrorCode::DigestInvalid)
                .message(format!("manifest has digest {digest}, not {d}"))
                .detail(d));
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string());
    let (media_type, json) = classify(&bytes, content_type.as_deref())?;
    let subject = json["subject"]["digest"].as_str().map(str::to_string);
    let m = StoredManifest {
        digest: digest.clone(),
        media_type,
        bytes: bytes.to_vec(),
    };
    let (s, n) = (state.storage.clone(), name.to_string());
    let tags2 = tags.clone();
    tokio::task::spawn_blocking(move || -> Result<(), RegistryError> {
        check_references(&s, &n, &m.media_type, &json)?;
        s.put_manifest(&n, &tags2, &m)?;
        Ok(())
    })
    .await??;
    tracing::info!(repository = name, tags = ?tags, %digest, "manifest stored");
    let mut resp = StatusCode::CREATED.into_response();
    set(
        &mut resp,
        header::LOCATION,
        &format!("/v2/{name}/manifests/{digest}"),
    );
    set(
        &mut resp,
        HeaderName::from_static("docker-content-digest"),
        &digest.to_string(),
    );
    set(&mut resp, header::CONTENT_LENGTH, "0");
    if let Some(subject) = subject {
        set(&mut resp, HeaderName::from_static("oci-subject"), &subject);
    }
    for tag in &tags {
        if let Ok(v) = tag.parse() {
            resp.headers_mut()
                .append(HeaderName::from_static("oci-tag"), v);
        }
    }
    Ok(resp)
}

/// The tags a manifest PUT points at it: the reference when it is a tag,
/// plus `?tag=` parameters (distribution-spec main, end-7b) on a PUT by
/// digest.
fn tags_to_apply(r: &Ref, q: &Query) -> Result<Vec<String>, RegistryError> {
    let mut tags: Vec<String> = match r {
        Ref::Tag(t) => vec![t.clone()],
        Ref::Digest(_) => Vec::new(),
    };
    for t in q.all("tag") {
        if !valid_tag(t) {
            return Err(RegistryError::new(ErrorCode::ManifestInvalid)
                .message("invalid tag")
                .detail(t));
        }
        if !tags.iter().any(|x| x == t) {
            tags.push(t.to_string());
        }
    }
    Ok(tags)
}

/// The request body, at most [`MAX_MANIFEST_SIZE`] bytes.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, RegistryError> {
    let too_big = || {
        RegistryError::new(ErrorCode::SizeInvalid)
            .status(StatusCode::PAYLOAD_TOO_LARGE)
            .message(format!(
                "manifest exceeds the {MAX_MANIFEST_SIZE}-byte limit"
            ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_MANIFEST_SIZE) {
        return Err(too_big());
    }
    axum::body::to_bytes(body, MAX_MANIFEST_SIZE)
        .await
        .map_err(|_| too_big())
}

/// The media type of a pushed manifest (its `mediaType` field, else the
/// `Content-Type`; they must agree when both are given) and its JSON.
fn classify(bytes: &[u8], content_type: Option<&str>) -> Result<(String, Value), RegistryError> {
    let invalid = |m: String| RegistryError::new(ErrorCode::ManifestInvalid).message(m);
    let json: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    if !json.is_object() {
        return Err(invalid("manifest is not a JSON object".into()));
    }
    if json["schemaVersion"].as_u64() != Some(2) {
        return Err(invalid(
            "only schemaVersion 2 manifests are supported".into(),
        ));
    }
    let field = json["mediaType"].as_str();
    let media_type = match (field, content_type) {
        (Some(f), Some(c)) if MANIFEST_TYPES.contains(&c) && f != c => {
            return Err(invalid(format!(
                "mediaType {f} does not match Content-Type {c}"
            )))
        }
        (Some(f), _) => f.to_string(),
        (None, Some(c)) if MANIFEST_TYPES.contains(&c) => c.to_string(),
        // An OCI manifest may omit mediaType; tell it from an index by shape.
        (None, _) if json.get("manifests").is_some() => OCI_INDEX.to_string(),
        (None, _) => crate::registry::distribution::OCI_MANIFEST.to_string(),
    };
    if !MANIFEST_TYPES.contains(&media_type.as_str()) {
        return Err(invalid(format!(
            "unsupported manifest media type {media_type}"
        )));
    }
    Ok((media_type, json))
}

/// Every blob (image) or child manifest (index) must be in the repository.
fn check_references(
    s: &Storage,
    name: &str,
    media_type: &str,
    json: &Value,
) -> Result<(), RegistryError> {
    let invalid = |m: &str| RegistryError::new(ErrorCode::ManifestInvalid).message(m.to_string());
    let descriptor_digest = |d: &Value| -> Result<Digest, RegistryError> {
        let s = d["digest"]
            .as_str()
            .ok_or_else(|| invalid("descriptor without a digest"))?;
        digest_arg(s)
    };
    let missing = |d: &Digest| {
        RegistryError::new(ErrorCode::ManifestBlobUnknown)
            .message(format!(
                "manifest references {d}, which the repository does not hold"
            ))
            .detail(d)
    };
    if is_index(media_type) {
        let children = json["manifests"]
            .as_array()
            .ok_or_else(|| invalid("index without manifests"))?;
        for child in children {
            let d = descriptor_digest(child)?;
            if s.manifest_type(name, &d)?.is_none() {
                return Err(missing(&d));
            }
        }
        return Ok(());
    }
    let config = json
        .get("config")
        .ok_or_else(|| invalid("manifest without config"))?;
    let layers = match json.get("layers") {
        Some(Value::Array(l)) => l.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return Err(invalid("layers is not an array")),
    };
    for desc in std::iter::once(config).chain(layers) {
        let d = descriptor_digest(desc)?;
        // Foreign layers live at their URLs, not here.
        let foreign = desc["mediaType"].as_str() == Some(DOCKER_FOREIGN_LAYER)
            || desc["urls"].as_array().is_some_and(|u| !u.is_empty());
        if !foreign && s.blob_in_repo(name, &d)?.is_none() {
            return Err(missing(&d));
        }
    }
    Ok(())
}

/// Manifest DELETE: by tag removes the tag, by digest the manifest and its tags.
pub async fn delete(
    state: &Arc<AppState>,
    name: &str,
    reference: &str,
) -> Result<Response, RegistryError> {
    let r = parse_ref(reference)?;
    let (s, n) = (state.storage.clone(), name.to_string());
    let removed = tokio::task::spawn_blocking(move || match r {
        Ref::Tag(t) => s.delete_tag(&n, &t),
        Ref::Digest(d) => s.delete_manifest(&n, &d),
    })
    .await??;
    if !removed {
        return Err(unknown(reference));
    }
    tracing::info!(repository = name, reference, "manifest deleted");
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /v2/<name>/referrers/<digest>[?artifactType=]`: an index of the
/// manifests whose `subject` is `digest`.
pub async fn referrers(
    state: &Arc<AppState>,
    name: &str,
    digest: &str,
    q: &Query,
) -> Result<Response, RegistryError> {
    let digest = digest_arg(digest)?;
    let filter = q.get("artifactType").map(str::to_string);
    let (s, n, f) = (state.storage.clone(), name.to_string(), filter.clone());
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, StorageError> {
        let mut out = Vec::new();
        for rev in s.revisions(&n)? {
            let Some(m) = s.get_manifest(&n, &rev)? else {
                continue;
            };
            let Ok(json) = serde_json::from_slice::<Value>(&m.bytes) else {
                continue;
            };
            if json["subject"]["digest"].as_str() != Some(&digest.to_string()) {
                continue;
            }
            let artifact_type = json["artifactType"]
                .as_str()
                .or_else(|| json["config"]["mediaType"].as_str())
                .unwrap_or("");
            if f.as_deref().is_some_and(|f| f != artifact_type) {
                continue;
            }
            let mut desc = serde_json::json!({
                "mediaType": m.media_type,
                "digest": m.digest,
                "size": m.bytes.len(),
                "artifactType": artifact_type,
            });
            if let Some(a) = json.get("annotations") {
                desc["annotations"] = a.clone();
            }
            out.push(desc);
        }
        Ok(out)
    })
    .await??;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": found,
    });
    let mut resp = axum::Json(index).into_response();
    set(&mut resp, header::CONTENT_TYPE, OCI_INDEX);
    if filter.is_some() {
        set(
            &mut resp,
            HeaderName::from_static("oci-filters-applied"),
            "artifactType",
        );
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::distribution::{DOCKER_MANIFEST, OCI_MANIFEST};

    #[test]
    fn media_types() {
        let oci = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(classify(oci, None).unwrap().0, OCI_MANIFEST);
        assert_eq!(
            classify(oci, Some(DOCKER_MANIFEST)).unwrap().0,
            DOCKER_MANIFEST
        );
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(classify(idx, None).unwrap().0, OCI_INDEX);
        let typed = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}"}}"#);
        assert!(classify(typed.as_bytes(), Some(DOCKER_MANIFEST)).is_err());
        assert!(classify(br#"{"schemaVersion":1}"#, None).is_err());
        assert!(classify(b"[]", None).is_err());
        assert!(classify(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None).is_err());
    }
}
