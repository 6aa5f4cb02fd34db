//! `docker cp`, `docker diff`, `docker export`: the archive, changes and
//! export endpoints.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::body::{drain_on_error, BodyReader};
use super::query::Query;
use super::stream::{channel_body, ChannelWriter};
use super::{ApiError, AppState};
use crate::archive::copy::CopyOptions;

const STAT_HEADER: &str = "x-docker-container-path-stat";

fn path_param(uri: &Uri) -> Result<String, ApiError> {
    match Query::of(uri).get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request("path is required")),
    }
}

async fn stat_header(e: &AppState, name: &str, path: &str) -> Result<HeaderValue, ApiError> {
    let (e, n, p) = (e.clone(), name.to_string(), path.to_string());
    let stat = tokio::task::spawn_blocking(move || e.stat_in_container(&n, &p)).await??;
    HeaderValue::from_str(&stat.header_value())
        .map_err(|err| ApiError::bad_request(err.to_string()))
}

/// `HEAD /containers/{id}/archive?path=`.
pub async fn head(
    State(e): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let path = path_param(&uri)?;
    let v = stat_header(&e, &name, &path).await?;
    Ok(([(HeaderName::from_static(STAT_HEADER), v)], ()).into_response())
}

/// `GET /containers/{id}/archive?path=`: a tar of the path.
pub async fn get(
    State(e): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let path = path_param(&uri)?;
    let stat = stat_header(&e, &name, &path).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    tokio::task::spawn_blocking(move || {
        if let Err(err) = e.archive_from_container(&name, &path, ChannelWriter(tx)) {
            tracing::warn!(error = %err, "archive stream ended early");
        }
    });
    Ok((
        [
            (HeaderName::from_static(STAT_HEADER), stat),
            (
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-tar"),
            ),
        ],
        channel_body(rx),
    )
        .into_response())
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`.
/// The body is read to its end before the answer (see [`BodyReader`]).
pub async fn put(
    State(e): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
    mut body: Body,
) -> Result<Response, ApiError> {
    let path = drain_on_error(path_param(&uri), &mut body).await?;
    let q = Query::of(&uri);
    let opts = CopyOptions {
        no_overwrite_dir_non_dir: q.flag("noOverwriteDirNonDir"),
        copy_uid_gid: q.flag("copyUIDGID"),
    };
    tokio::task::spawn_blocking(move || {
        e.extract_to_container(&name, &path, BodyReader::new(body), &opts)
    })
    .await??;
    Ok(StatusCode::OK.into_response())
}

/// `GET /containers/{id}/changes`.
pub async fn changes(
    State(e): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let list = tokio::task::spawn_blocking(move || e.container_changes(&name)).await??;
    Ok(Json(list).into_response())
}

/// `GET /containers/{id}/export`.
pub async fn export(
    State(e): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (e2, n2) = (e.clone(), name.clone());
    tokio::task::spawn_blocking(move || e2.container_view(&n2).map(|_| ())).await??;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    tokio::task::spawn_blocking(move || {
        if let Err(err) = e.export_container(&name, ChannelWriter(tx)) {
            tracing::warn!(error = %err, "export stream ended early");
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-tar")],
        channel_body(rx),
    )
        .into_response())
}
