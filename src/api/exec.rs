//! `/containers/{id}/exec` and `/exec/{id}/...` handlers.

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::containers::size_of;
use super::stream::{self, Wiring};
use super::{ApiError, AppState};
use crate::runtime::Frame;
use crate::types::container::{ExecConfig, ExecStartConfig};

/// `POST /containers/{id}/exec`.
pub async fn create(
    State(e): State<AppState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let cfg: ExecConfig = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_request(format!("invalid JSON body: {err}")))?;
    let id = tokio::task::spawn_blocking(move || e.create_exec(&name, cfg)).await??;
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}

/// `POST /exec/{id}/start` (hijacked unless detached).
pub async fn start(
    State(e): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
    let cfg: ExecStartConfig = if bytes.is_empty() {
        ExecStartConfig::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|err| ApiError::bad_request(format!("invalid JSON body: {err}")))?
    };
    let e2 = e.clone();
    let i2 = id.clone();
    let detach = cfg.detach;
    let rec = tokio::task::spawn_blocking(move || e2.start_exec(&i2, detach)).await??;
    if detach {
        return Ok(StatusCode::OK.into_response());
    }
    let c = &rec.config;
    let w = Wiring {
        stdin: c.attach_stdin,
        stdout: c.attach_stdout,
        stderr: c.attach_stderr,
        tty: c.tty,
    };
    let sock = e
        .store()
        .container_dir(&rec.container_id)
        .join("exec")
        .join(format!("{id}.sock"));
    let req = Request::from_parts(parts, axum::body::Body::empty());
    stream::hijack(req, c.tty, move |client| async move {
        match stream::connect_shim(&sock) {
            Ok(shim) => stream::bridge(client, shim, w).await,
            Err(err) => tracing::warn!(error = %err, "exec shim unreachable"),
        }
    })
}

/// `POST /exec/{id}/resize?h=&w=`.
pub async fn resize(
    State(e): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (rows, cols) = size_of(&uri)?;
    let rec = e.exec_record(&id)?;
    let sock = e
        .store()
        .container_dir(&rec.container_id)
        .join("exec")
        .join(format!("{id}.sock"));
    stream::send_frame(sock, Frame::Resize { rows, cols }).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /exec/{id}/json`.
pub async fn inspect(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let v = tokio::task::spawn_blocking(move || e.inspect_exec(&id)).await??;
    Ok(Json(v).into_response())
}
