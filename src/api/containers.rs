//! `/containers/...` handlers.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::query::Query;
use super::stream::{self, Wiring};
use super::{ApiError, AppState};
use crate::engine::{parse_time, Engine, ListOptions, LogOptions, WaitCondition};
use crate::runtime::Frame;
use crate::types::container::{CreateRequest, WaitResponse};

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::engine::EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// `POST /containers/create?name=`.
pub async fn create(
    State(e): State<AppState>,
    uri: Uri,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let name = q.get("name").filter(|n| !n.is_empty()).map(str::to_string);
    let req: CreateRequest = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_request(format!("invalid JSON body: {err}")))?;
    let resp = blocking(move || e.create_container(name.as_deref(), req)).await?;
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

/// `GET /containers/json`.
pub async fn list(State(e): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let mut opts = ListOptions {
        all: q.flag("all"),
        size: q.flag("size"),
        ..Default::default()
    };
    if let Some(n) = q
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|n| *n > 0)
    {
        opts.limit = Some(n as usize);
        opts.all = true;
    }
    if let Some(f) = q.get("filters").filter(|f| !f.is_empty()) {
        opts.filters = ListOptions::parse_filters(f)?;
    }
    Ok(Json(blocking(move || e.list_containers(&opts)).await?).into_response())
}

/// `GET /containers/{id}/json`.
pub async fn inspect(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || e.inspect_container(&id)).await?).into_response())
}

/// `POST /containers/{id}/start`.
pub async fn start(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || e.start_container(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/{id}/stop?t=&signal=`.
pub async fn stop(
    State(e): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let t = q.get("t").and_then(|t| t.parse().ok());
    let sig = q.get("signal").map(str::to_string);
    blocking(move || e.stop_container(&id, t, sig.as_deref())).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/{id}/restart?t=`.
pub async fn restart(
    State(e): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let t = Query::of(&uri).get("t").and_then(|t| t.parse().ok());
    blocking(move || e.restart_container(&id, t)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/{id}/kill?signal=`.
pub async fn kill(
    State(e): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let sig = Query::of(&uri)
        .get("signal")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    blocking(move || e.kill_container(&id, sig.as_deref())).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/{id}/pause`.
pub async fn pause(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || e.pause_container(&id, true)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/{id}/unpause`.
pub async fn unpause(
    State(e): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || e.pause_container(&id, false)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/{id}/rename?name=`.
pub async fn rename(
    State(e): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let name = Query::of(&uri).get("name").unwrap_or("").to_string();
    blocking(move || e.rename_container(&id, &name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /containers/{id}?force=&v=`.
pub async fn remove(
    State(e): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let (force, volumes) = (q.flag("force"), q.flag("v"));
    blocking(move || e.remove_container_and_volumes(&id, force, volumes)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/prune`.
pub async fn prune(State(e): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || e.prune_containers()).await?).into_response())
}

/// `POST /containers/{id}/wait?condition=`.
pub async fn wait(
    State(e): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let cond = match Query::of(&uri).get("condition").unwrap_or("not-running") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: {other:?}"
            )))
        }
    };
    let e2 = e.clone();
    let (id, running) = blocking(move || {
        let v = e2.container_view(&name)?;
        let running = matches!(
            v.state.status,
            crate::runtime::Status::Running | crate::runtime::Status::Paused
        );
        Ok((v.rec.id, running))
    })
    .await?;
    let mut rx = e.subscribe(&id);
    let start = *rx.borrow_and_update();
    // Headers go out at once (as Docker's daemon does): clients such as
    // `docker run` wait for them before starting the container.
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    tokio::spawn(async move {
        let code = if cond == WaitCondition::NotRunning && !running {
            let e3 = e.clone();
            tokio::task::spawn_blocking(move || e3.exit_code(&id))
                .await
                .unwrap_or(-1)
        } else {
            let waited = rx
                .wait_for(|ev| match cond {
                    WaitCondition::Removed => ev.removed,
                    _ => ev.exits > start.exits || ev.removed,
                })
                .await;
            match waited {
                Ok(ev) => ev.exit_code,
                Err(_) => return,
            }
        };
        let body = serde_json::to_vec(&WaitResponse {
            status_code: code,
            error: None,
        })
        .unwrap_or_default();
        let _ = tx.send(body).await;
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        stream::channel_body(body_rx),
    )
        .into_response())
}

/// `POST /containers/{id}/attach?stream=&stdin=&stdout=&stderr=&logs=` (hijacked).
pub async fn attach(
    State(e): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
    req: Request,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let e2 = e.clone();
    let (id, tty, running) = blocking(move || {
        let v = e2.container_view(&name)?;
        let running = matches!(
            v.state.status,
            crate::runtime::Status::Running | crate::runtime::Status::Paused
        );
        Ok((v.rec.id, v.spec.config.tty, running))
    })
    .await?;
    if !running {
        // Hold the output of the coming start until this client is there.
        e.expect_attach(&id);
    }
    // Subscribed before the 101 goes out, so the client's start cannot
    // come first.
    let events = e.subscribe(&id);
    let w = Wiring {
        stdin: q.flag("stdin"),
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        tty,
    };
    stream::hijack(req, tty, move |client| async move {
        if let Some(shim) = stream::connect_container(e, id, events).await {
            stream::bridge(client, shim, w).await;
        }
    })
}

/// `POST /containers/{id}/resize?h=&w=`.
pub async fn resize(
    State(e): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (rows, cols) = size_of(&uri)?;
    let e2 = e.clone();
    let id = blocking(move || Ok(e2.container_view(&name)?.rec.id)).await?;
    let sock = e.store().container_dir(&id).join("shim.sock");
    stream::send_frame(sock, Frame::Resize { rows, cols }).await?;
    Ok(StatusCode::OK.into_response())
}

/// `h` and `w` of a resize request.
pub fn size_of(uri: &Uri) -> Result<(u16, u16), ApiError> {
    let q = Query::of(uri);
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<u16>().ok());
    match (num("h"), num("w")) {
        (Some(h), Some(w)) => Ok((h, w)),
        _ => Err(ApiError::bad_request("resize needs numeric h and w")),
    }
}

/// `GET /containers/{id}/logs`.
pub async fn logs(
    State(e): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let opts = LogOptions {
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        since: parse_time(q.get("since").unwrap_or(""))?,
        until: parse_time(q.get("until").unwrap_or(""))?,
        tail: q
            .get("tail")
            .filter(|t| *t != "all")
            .and_then(|t| t.parse().ok()),
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let follow = q.flag("follow");
    let timestamps = q.flag("timestamps");
    let e2 = e.clone();
    let n2 = name.clone();
    let o2 = opts.clone();
    let (recs, mut cursor, tty) = blocking(move || e2.read_logs(&n2, &o2)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    tokio::spawn(async move {
        for r in &recs {
            if tx
                .send(stream::log_bytes(r, tty, timestamps))
                .await
                .is_err()
            {
                return;
            }
        }
        if !follow {
            return;
        }
        loop {
            let running = {
                let e3 = e.clone();
                let n3 = name.clone();
                tokio::task::spawn_blocking(move || e3.is_running(&n3))
                    .await
                    .unwrap_or(false)
            };
            let new = cursor.read_new().unwrap_or_default();
            for r in new.iter().filter(|r| opts.keep(r)) {
                if tx
                    .send(stream::log_bytes(r, tty, timestamps))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if !running && new.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, ct)],
        stream::channel_body(rx),
    )
        .into_response())
}

/// `GET /containers/{id}/top?ps_args=`.
pub async fn top(
    State(e): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let args = Query::of(&uri).get("ps_args").map(str::to_string);
    Ok(Json(blocking(move || e.top(&name, args.as_deref())).await?).into_response())
}

/// `GET /containers/{id}/stats?stream=&one-shot=`.
pub async fn stats(
    State(e): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let streaming = q
        .get("stream")
        .is_none_or(|s| matches!(s, "1" | "true" | "True"));
    let one_shot = q.flag("one-shot");
    let first = sample(&e, &name, None).await?;
    if !streaming {
        let v = if one_shot {
            first
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            sample(&e, &name, Some(first)).await?
        };
        return Ok(Json(v).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    tokio::spawn(async move {
        let mut prev = first;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Ok(next) = sample(&e, &name, Some(prev.clone())).await else {
                return;
            };
            let mut line = serde_json::to_vec(&next).unwrap_or_default();
            line.push(b'\n');
            if tx.send(line).await.is_err() {
                return;
            }
            prev = next;
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        stream::channel_body(rx),
    )
        .into_response())
}

async fn sample(
    e: &Arc<Engine>,
    name: &str,
    pre: Option<serde_json::Value>,
) -> Result<serde_json::Value, ApiError> {
    let e = e.clone();
    let name = name.to_string();
    blocking(move || e.stats_sample(&name, pre.as_ref())).await
}
