//! `/volumes/...` handlers.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::networks::{blocking, body, filters};
use super::query::Query;
use super::{ApiError, AppState};

/// `POST /volumes/create` body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct VolumeCreate {
    name: String,
    driver: String,
    labels: Option<BTreeMap<String, String>>,
}

/// `GET /volumes`.
pub async fn list(State(e): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let f = filters(&uri)?;
    let dangling = f
        .get("dangling")
        .and_then(|v| v.first())
        .map(|d| d == "true" || d == "1");
    Ok(Json(blocking(move || e.list_volumes(dangling)).await?).into_response())
}

/// `POST /volumes/create`.
pub async fn create(
    State(e): State<AppState>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: VolumeCreate = body(&bytes)?;
    if !matches!(req.driver.as_str(), "" | "local") {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("plugin \"{}\" not found", req.driver),
        ));
    }
    let labels = req.labels.unwrap_or_default();
    let v = blocking(move || e.create_volume(Some(&req.name), labels)).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `GET /volumes/{name}`.
pub async fn inspect(
    State(e): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || e.inspect_volume(&name)).await?).into_response())
}

/// `DELETE /volumes/{name}?force=`.
pub async fn remove(
    State(e): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let force = Query::of(&uri).flag("force");
    blocking(move || e.remove_volume(&name, force)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /volumes/prune?filters={"all":["true"]}`.
pub async fn prune(State(e): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let all = filters(&uri)?
        .get("all")
        .and_then(|v| v.first())
        .is_some_and(|a| a == "true" || a == "1");
    Ok(Json(blocking(move || e.prune_volumes(all)).await?).into_response())
}
