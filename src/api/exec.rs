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

/// Pause between sending the 101 head and starting the exec'd process.
const HEAD_GRACE: std::time::Duration = std::time::Duration::from_millis(20);

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
    if cfg.detach {
        tokio::task::spawn_blocking(move || e.start_exec(&id, true)).await??;
        return Ok(StatusCode::OK.into_response());
    }
    let rec = e.exec_record(&id)?;
    if rec.started {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Error: Exec command {id} has already run"),
        ));
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
    // As Docker's daemon: the 101 goes out first and the process starts
    // after, so no output can share a packet with the response head (the
    // docker Python SDK drops bytes that arrive with the headers).
    stream::hijack(req, c.tty, move |mut client| async move {
        // A client under load may not have read the head yet: give it the
        // moment dockerd's exec start (through containerd) naturally takes.
        tokio::time::sleep(HEAD_GRACE).await;
        let started = tokio::task::spawn_blocking(move || e.start_exec(&id, false)).await;
        let err = match started {
            Ok(Ok(_)) => match stream::connect_shim(&sock) {
                Ok(shim) => return stream::bridge(client, shim, w).await,
                Err(err) => err.to_string(),
            },
            Ok(Err(err)) => super::error_chain(&err),
            Err(err) => err.to_string(),
        };
        let msg = format!("{err}\n");
        let bytes = if w.tty {
            msg.into_bytes()
        } else {
            stream::mux(stream::STDERR, msg.as_bytes())
        };
        let _ = tokio::io::AsyncWriteExt::write_all(&mut client, &bytes).await;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut client).await;
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
