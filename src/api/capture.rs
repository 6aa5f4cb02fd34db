//! amber's own capture endpoints under `/amber/v1` (docs/capture.md):
//! capture, and bundle list, inspect, remove, prune, search, files, cat,
//! diff, core, export, import.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::networks::blocking;
use super::query::Query;
use super::stream::sized_stream;
use super::{ApiError, AppState};
use crate::engine::{CaptureOptions, RestoreOptions};

/// Most search results one request returns.
const SEARCH_LIMIT: usize = 1000;

/// `POST /amber/v1/capture` with a JSON [`CaptureOptions`] body.
pub async fn capture(
    State(e): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let opts: CaptureOptions = if body.is_empty() {
        CaptureOptions::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|err| ApiError::bad_request(format!("bad capture request: {err}")))?
    };
    let v = blocking(move || e.capture(&opts)).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `GET /amber/v1/bundles`.
pub async fn list(State(e): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || e.list_bundles()).await?).into_response())
}

/// `GET /amber/v1/bundles/{id}`: the manifest.
pub async fn inspect(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || e.bundle_manifest(&id)).await?).into_response())
}

/// `DELETE /amber/v1/bundles/{id}`.
pub async fn remove(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let freed = blocking(move || e.remove_bundle(&id)).await?;
    Ok(Json(serde_json::json!({"SpaceReclaimed": freed})).into_response())
}

/// `POST /amber/v1/bundles/prune`.
pub async fn prune(State(e): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || e.prune_bundles()).await?).into_response())
}

/// `GET /amber/v1/bundles/search?text=&bundle=&container=`.
pub async fn search(State(e): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let text = q.get("text").unwrap_or_default().to_string();
    let bundle = q.get("bundle").filter(|s| !s.is_empty()).map(String::from);
    let container = q
        .get("container")
        .filter(|s| !s.is_empty())
        .map(String::from);
    let v = blocking(move || {
        e.search_with_sets(&text, bundle.as_deref(), container.as_deref(), SEARCH_LIMIT)
    })
    .await?;
    Ok(Json(v).into_response())
}

/// `GET /amber/v1/bundles/{id}/files?container=&path=`.
pub async fn files(
    State(e): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let container = required(&q, "container")?;
    let path = q.get("path").unwrap_or_default().to_string();
    Ok(Json(blocking(move || e.bundle_files(&id, &container, &path)).await?).into_response())
}

/// `GET /amber/v1/bundles/{id}/cat?container=&path=`: the raw content.
pub async fn cat(
    State(e): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let container = required(&q, "container")?;
    let path = required(&q, "path")?;
    let data = blocking(move || e.bundle_cat(&id, &container, &path)).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response())
}

/// `GET /amber/v1/bundles/diff?a=&b=`, or `?a=&live=1`: bundle `a`
/// against the live containers.
pub async fn diff(State(e): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let a = required(&q, "a")?;
    let b = q.get("b").filter(|v| !v.is_empty()).map(String::from);
    let v = match (b, q.flag("live")) {
        (Some(b), false) => blocking(move || e.bundle_diff(&a, &b)).await?,
        (None, true) => blocking(move || e.bundle_diff_live(&a)).await?,
        (Some(_), true) => return Err(ApiError::bad_request("give b or live=1, not both")),
        (None, false) => return Err(ApiError::bad_request("missing query parameter b")),
    };
    Ok(Json(v).into_response())
}

fn required(q: &Query, key: &str) -> Result<String, ApiError> {
    q.get(key)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .ok_or_else(|| ApiError::bad_request(format!("missing query parameter {key}")))
}

/// `GET /amber/v1/bundles/{id}/export`: the bundle archive (a plain tar).
/// `images=0` leaves the images out.
pub async fn export(
    State(e): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let e2 = e.clone();
    let opts = crate::capture::archive::ExportOptions {
        no_images: q.get("images").is_some_and(|v| matches!(v, "0" | "false")),
    };
    let plan = blocking(move || e2.plan_bundle_export(&id, &opts)).await?;
    Ok(sized_stream(
        "application/x-tar",
        plan.size,
        "bundle export",
        move |out| e.write_bundle_export(&plan, out),
    ))
}

/// `GET /amber/v1/bundles/{id}/core?container=&pid=`: a stored core dump
/// (an ELF core file), streamed.
pub async fn core(
    State(e): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let container = required(&q, "container")?;
    let pid_text = required(&q, "pid")?;
    let pid: i32 = pid_text
        .parse()
        .map_err(|_| ApiError::bad_request(format!("bad pid {pid_text:?}: expected a number")))?;
    let e2 = e.clone();
    let dump = blocking(move || e2.bundle_core(&id, &container, pid)).await?;
    Ok(sized_stream(
        "application/octet-stream",
        dump.size,
        "core download",
        move |out| e.write_bundle_core(&dump, out),
    ))
}

/// `POST /amber/v1/bundles/{id}/restore` with a JSON [`RestoreOptions`] body.
pub async fn restore(
    State(e): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let opts: RestoreOptions = if body.is_empty() {
        RestoreOptions::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|err| ApiError::bad_request(format!("bad restore request: {err}")))?
    };
    Ok(Json(blocking(move || e.restore(&id, &opts)).await?).into_response())
}

/// `POST /amber/v1/baselines?name=` with a JSON [`CaptureOptions`] body.
pub async fn create_baseline(
    State(e): State<AppState>,
    uri: Uri,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let name = required(&Query::of(&uri), "name")?;
    let opts: CaptureOptions = if body.is_empty() {
        CaptureOptions::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|err| ApiError::bad_request(format!("bad baseline request: {err}")))?
    };
    let v = blocking(move || e.create_baseline(&name, &opts)).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `POST /amber/v1/baselines/{name}/rollback?prune=`.
pub async fn rollback(
    State(e): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let prune = Query::of(&uri).flag("prune");
    Ok(Json(blocking(move || e.rollback(&name, prune)).await?).into_response())
}
