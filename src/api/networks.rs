//! `/networks/...` handlers.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::query::Query;
use super::{ApiError, AppState};
use crate::engine::{parse_filter_map, NetworkCreateOptions};

/// Run engine work on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::engine::EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// The `filters` query parameter (either of Docker's JSON forms).
pub(super) fn filters(uri: &Uri) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    match Query::of(uri).get("filters").filter(|f| !f.is_empty()) {
        Some(f) => Ok(parse_filter_map(f)?),
        None => Ok(BTreeMap::new()),
    }
}

/// A JSON body; an empty one is the default value.
pub(super) fn body<T: for<'de> Deserialize<'de> + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|err| ApiError::bad_request(format!("invalid JSON body: {err}")))
}

/// `POST /networks/create` body (the fields amber uses).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct NetworkCreate {
    name: String,
    driver: String,
    internal: bool,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Ipam {
    config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: String,
    gateway: String,
}

/// `GET /networks`.
pub async fn list(State(e): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let f = filters(&uri)?;
    Ok(Json(blocking(move || e.list_networks(&f)).await?).into_response())
}

/// `POST /networks/create`.
pub async fn create(
    State(e): State<AppState>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: NetworkCreate = body(&bytes)?;
    let cfg = req
        .ipam
        .and_then(|i| i.config)
        .and_then(|c| c.into_iter().next())
        .unwrap_or_default();
    let opts = NetworkCreateOptions {
        name: req.name,
        driver: req.driver,
        subnet: Some(cfg.subnet).filter(|s| !s.is_empty()),
        gateway: Some(cfg.gateway).filter(|s| !s.is_empty()),
        internal: req.internal,
        labels: req.labels.unwrap_or_default(),
    };
    let v = blocking(move || e.create_network(&opts)).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `GET /networks/{id}`.
pub async fn inspect(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || e.inspect_network(&id)).await?).into_response())
}

/// `DELETE /networks/{id}`.
pub async fn remove(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || e.remove_network(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /networks/prune`.
pub async fn prune(State(e): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || e.prune_networks()).await?).into_response())
}

/// `POST /networks/{id}/connect` and `/disconnect` body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Connect {
    container: String,
    endpoint_config: Option<Value>,
}

/// `POST /networks/{id}/connect`.
pub async fn connect(
    State(e): State<AppState>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: Connect = body(&bytes)?;
    let aliases: Vec<String> = req
        .endpoint_config
        .as_ref()
        .and_then(|c| c.get("Aliases"))
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default();
    let ip = match req
        .endpoint_config
        .as_ref()
        .and_then(|c| c.get("IPAMConfig"))
        .and_then(|c| c.get("IPv4Address"))
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        Some(a) => Some(
            a.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid IPv4 address: {a}")))?,
        ),
        None => None,
    };
    blocking(move || e.connect_network(&id, &req.container, &aliases, ip)).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect(
    State(e): State<AppState>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: Connect = body(&bytes)?;
    blocking(move || e.disconnect_network(&id, &req.container)).await?;
    Ok(StatusCode::OK.into_response())
}
