//! amber's cluster endpoints under `/amber/v1` (docs/cluster.md): the host
//! inventory, whole-cluster listings, capture into bundle sets, cluster
//! baselines, and the bundle-set views.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::networks::blocking;
use super::query::{json_body, Query};
use super::{ApiError, AppState};
use crate::engine::{ClusterBaselineOptions, ClusterCaptureOptions, HostRecord};

/// `hosts=a,b` as a list.
fn hosts_of(q: &Query) -> Vec<String> {
    q.get("hosts")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `GET /amber/v1/cluster/hosts`: the inventory, each host probed.
pub async fn list_hosts(State(e): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(e.cluster_ls().await?).into_response())
}

/// `POST /amber/v1/cluster/hosts` with a JSON [`HostRecord`].
pub async fn add_host(
    State(e): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let h: HostRecord = json_body(&body, "host")?;
    let v = blocking(move || e.add_host(h)).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `DELETE /amber/v1/cluster/hosts/{name}`.
pub async fn remove_host(
    State(e): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || e.remove_host(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /amber/v1/cluster/containers?all=&hosts=`.
pub async fn containers(State(e): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let v = e
        .cluster_list("containers", q.flag("all"), &hosts_of(&q))
        .await?;
    Ok(Json(v).into_response())
}

/// `GET /amber/v1/cluster/images?hosts=`.
pub async fn images(State(e): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    Ok(Json(e.cluster_list("images", false, &hosts_of(&q)).await?).into_response())
}

/// `POST /amber/v1/cluster/capture` with a JSON [`ClusterCaptureOptions`].
pub async fn capture(
    State(e): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let opts: ClusterCaptureOptions = json_body(&body, "cluster capture request")?;
    let set = e.cluster_capture(&opts).await?;
    Ok((StatusCode::CREATED, Json(set)).into_response())
}

/// `POST /amber/v1/cluster/baselines` with a JSON [`ClusterBaselineOptions`].
pub async fn create_baseline(
    State(e): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let opts: ClusterBaselineOptions = json_body(&body, "cluster baseline request")?;
    let rows = e.cluster_baseline_create(&opts).await?;
    Ok((StatusCode::CREATED, Json(rows)).into_response())
}

/// `POST /amber/v1/cluster/baselines/{name}/rollback` with a JSON
/// [`ClusterBaselineOptions`] (hosts, prune, timeout).
pub async fn rollback(
    State(e): State<AppState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let opts: ClusterBaselineOptions = json_body(&body, "cluster rollback request")?;
    Ok(Json(e.cluster_rollback(&name, &opts).await?).into_response())
}

/// `GET /amber/v1/bundle-sets`: summaries, newest first.
pub async fn list_sets(State(e): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || e.list_set_summaries()).await?).into_response())
}

/// `GET /amber/v1/bundle-sets/{id}`: the set manifest.
pub async fn inspect_set(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || e.bundle_set_manifest(&id)).await?).into_response())
}

/// `DELETE /amber/v1/bundle-sets/{id}`: the set and its member bundles.
pub async fn remove_set(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let freed = blocking(move || e.remove_set(&id)).await?;
    Ok(Json(serde_json::json!({"SpaceReclaimed": freed})).into_response())
}

/// `GET /amber/v1/bundle-sets/diff?a=&b=`: per host.
pub async fn diff_sets(State(e): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let get = |k: &str| {
        q.get(k)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .ok_or_else(|| ApiError::bad_request(format!("missing query parameter {k}")))
    };
    let (a, b) = (get("a")?, get("b")?);
    Ok(Json(blocking(move || e.bundle_set_diff(&a, &b)).await?).into_response())
}
