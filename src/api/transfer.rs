//! Bundle transfer and migration endpoints under `/amber/v1`
//! (docs/transfer.md): missing-blob negotiation, the archive index, thin
//! export and import, push, pull, migrate.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::body::BodyReader;
use super::networks::blocking;
use super::query::{json_body, Query};
use super::stream::sized_stream;
use super::{ApiError, AppState};
use crate::capture::archive::ImportOptions;
use crate::engine::{MigrateOptions, MissingRequest, ThinExportRequest};

fn required(q: &Query, key: &str) -> Result<String, ApiError> {
    q.get(key)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .ok_or_else(|| ApiError::bad_request(format!("missing query parameter {key}")))
}

/// `POST /amber/v1/bundles/missing` with `{bundle, blobs}`: the blobs
/// this daemon lacks.
pub async fn missing(
    State(e): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: MissingRequest = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_request(format!("bad missing-blob request: {err}")))?;
    Ok(Json(blocking(move || e.missing_blobs(&req)).await?).into_response())
}

/// `GET /amber/v1/bundles/{id}/index?images=0`: the archive index.
pub async fn index(
    State(e): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let no_images = Query::of(&uri)
        .get("images")
        .is_some_and(|v| matches!(v, "0" | "false"));
    Ok(Json(blocking(move || e.bundle_index(&id, no_images)).await?).into_response())
}

/// `POST /amber/v1/bundles/{id}/export` with `{exclude, no_images}`: a
/// thin archive, without the blobs the receiver has.
pub async fn thin_export(
    State(e): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: ThinExportRequest = json_body(&body, "export request")?;
    let e2 = e.clone();
    let plan = blocking(move || e2.plan_thin_export(&id, &req)).await?;
    Ok(sized_stream(
        "application/x-tar",
        plan.size,
        "thin bundle export",
        move |out| e.write_bundle_export(&plan, out),
    ))
}

/// `POST /amber/v1/bundles/import?thin=1&bundle=ID`: the import of a
/// transfer (thin: blobs this daemon has may be absent; with `bundle`,
/// resumable). The body is read to its end before the answer (see
/// [`BodyReader`]).
pub async fn import(State(e): State<AppState>, uri: Uri, body: Body) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let opts = ImportOptions {
        thin: q.flag("thin"),
        resume: q.get("bundle").filter(|s| !s.is_empty()).map(String::from),
    };
    let report = blocking(move || e.import_bundle_with(BodyReader::new(body), &opts)).await?;
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

/// `POST /amber/v1/bundles/{id}/push?host=H`.
pub async fn push(
    State(e): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let host = required(&Query::of(&uri), "host")?;
    Ok(Json(e.transfer_bundle(&host, &id, true).await?).into_response())
}

/// `POST /amber/v1/bundles/pull?host=H&id=ID`.
pub async fn pull(State(e): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let host = required(&q, "host")?;
    let id = required(&q, "id")?;
    Ok(Json(e.transfer_bundle(&host, &id, false).await?).into_response())
}

/// `POST /amber/v1/migrate` with a JSON [`MigrateOptions`] body.
pub async fn migrate(
    State(e): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let opts: MigrateOptions = json_body(&body, "migrate request")?;
    if opts.to.is_empty() {
        return Err(ApiError::bad_request("migrate needs a target host (to)"));
    }
    Ok(Json(e.migrate_hosts(&opts).await?).into_response())
}
