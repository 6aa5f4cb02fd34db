//! `POST /build`: Docker's classic builder endpoint. The body is the
//! context tar; the answer is a JSON message stream (`{"stream": ...}`,
//! `{"aux": {"ID": ...}}`, `{"errorDetail": ...}`).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::body::{drain_on_error, BodyReader};
use super::query::Query;
use super::{stream, ApiError, AppState};
use crate::build::BuildOptions;

/// Lines of output buffered towards a slow client.
const STREAM_BUFFER: usize = 256;

/// `POST /build?t=&dockerfile=&buildargs=&target=&nocache=&q=&labels=&networkmode=&rm=&forcerm=`.
/// The context is read to its end (see [`BodyReader`]) before the build
/// runs, and before the answer when the request is refused.
pub async fn build(
    State(engine): State<AppState>,
    uri: Uri,
    mut body: Body,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let opts = drain_on_error(build_options(&q), &mut body).await?;
    let quiet = q.flag("q");
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(STREAM_BUFFER);
    // A client that goes away (its answer body dropped) cancels the build.
    let cancel = opts.cancel.clone();
    let watch_tx = tx.clone();
    let watcher = tokio::spawn(async move {
        watch_tx.closed().await;
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    tokio::task::spawn_blocking(move || {
        let send = |v: serde_json::Value| {
            let mut line = v.to_string().into_bytes();
            line.extend_from_slice(b"\r\n");
            // A client that went away: the watcher cancels the build.
            let _ = tx.blocking_send(line);
        };
        let mut out = |text: &str| {
            if !quiet {
                send(json!({ "stream": text }));
            }
        };
        match engine.build(BodyReader::new(body), opts, &mut out) {
            Ok(id) => {
                send(json!({"aux": {"ID": id}}));
                if quiet {
                    send(json!({ "stream": format!("{id}\n") }));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                send(json!({"errorDetail": {"message": msg}, "error": msg}));
            }
        }
        // Drops the watcher's sender, so the answer can end.
        watcher.abort();
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        stream::channel_body(rx),
    )
        .into_response())
}

/// The options of a build, from its query.
fn build_options(q: &Query) -> Result<BuildOptions, ApiError> {
    if q.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "remote build contexts are not supported: send the context as a tar body",
        ));
    }
    for t in q.all("t") {
        crate::types::Reference::parse(&t)
            .map_err(|e| ApiError::bad_request(format!("invalid tag {t:?}: {e}")))?;
    }
    Ok(BuildOptions {
        dockerfile: q.get("dockerfile").unwrap_or("Dockerfile").to_string(),
        tags: q.all("t"),
        build_args: json_map(q.get("buildargs"), "buildargs")?,
        target: q.get("target").map(str::to_string),
        no_cache: q.flag("nocache"),
        labels: json_map(q.get("labels"), "labels")?,
        work_dir: Default::default(),
        cancel: Default::default(),
        network: q.get("networkmode").unwrap_or("").to_string(),
    })
}

/// `{"K": "V"}` (values may be null: skipped, the client had no value).
fn json_map(raw: Option<&str>, what: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let m: BTreeMap<String, Option<String>> = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))?;
    Ok(m.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}
