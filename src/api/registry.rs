//! Registry endpoints: pull (`POST /images/create?fromImage=`), push
//! (`POST /images/{name}/push`), `POST /auth`, `GET /images/search`.
//! Pull and push answer a stream of Docker's JSON progress messages; a
//! failure after the stream started is its last message (`errorDetail`),
//! as dockerd does.

use std::future::Future;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::query::Query;
use super::stream::channel_body;
use super::{ApiError, AppState};
use crate::engine::EngineError;
use crate::registry::client::{Credentials, Progress};
use crate::store::BlobCompression;
use crate::types::api::{ErrorBody, JsonMessage};

/// Credentials from `X-Registry-Auth`.
pub fn registry_auth(headers: &HeaderMap) -> Option<Credentials> {
    headers
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .and_then(Credentials::from_header)
}

/// Run `work` with a progress channel and answer its messages as they come.
fn progress_stream<F, Fut>(work: F) -> Response
where
    F: FnOnce(Progress) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), EngineError>> + Send + 'static,
{
    let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<JsonMessage>();
    let (btx, brx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    tokio::spawn(async move {
        let done = tokio::spawn(work(Progress(Some(ptx))));
        while let Some(m) = prx.recv().await {
            let mut line = serde_json::to_vec(&m).unwrap_or_default();
            line.extend_from_slice(b"\r\n");
            if btx.send(line).await.is_err() {
                break;
            }
        }
        let result = match done.await {
            Ok(r) => r,
            Err(e) => Err(EngineError::InvalidArgument(format!("internal error: {e}"))),
        };
        if let Err(e) = result {
            let message = e.to_string();
            let m = JsonMessage {
                error: Some(message.clone()),
                error_detail: Some(ErrorBody { message }),
                ..Default::default()
            };
            let mut line = serde_json::to_vec(&m).unwrap_or_default();
            line.extend_from_slice(b"\r\n");
            let _ = btx.send(line).await;
        }
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        channel_body(brx),
    )
        .into_response()
}

/// `POST /images/create?fromImage=NAME&tag=TAG`.
pub fn pull(engine: AppState, q: &Query, headers: &HeaderMap) -> Result<Response, ApiError> {
    let image = q.get("fromImage").unwrap_or("").to_string();
    if image.is_empty() {
        return Err(ApiError::bad_request("fromImage must not be empty"));
    }
    let name = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
        Some(t) => format!("{image}:{t}"),
        None => image,
    };
    crate::types::Reference::parse(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let creds = registry_auth(headers);
    Ok(progress_stream(move |p| async move {
        engine.pull_image(&name, creds, &p).await.map(|_| ())
    }))
}

/// `POST /images/{name}/push?tag=` (amber also takes `compress=gzip|zstd`).
pub fn push(
    engine: AppState,
    name: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let q = Query::of(uri);
    let name = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name.to_string(),
    };
    crate::types::Reference::parse(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let compression = match q.get("compress").unwrap_or("gzip") {
        "" => BlobCompression::Gzip,
        c => BlobCompression::parse(c)?,
    };
    let creds = registry_auth(headers);
    Ok(progress_stream(move |p| async move {
        engine
            .push_image(&name, compression, creds, &p)
            .await
            .map(|_| ())
    }))
}

/// `POST /auth`.
pub async fn auth(
    State(engine): State<AppState>,
    Json(creds): Json<Credentials>,
) -> Result<Response, ApiError> {
    engine.check_login(creds).await?;
    Ok(Json(serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""})).into_response())
}

/// `GET /images/search?term=&limit=`.
pub async fn search(
    State(engine): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let term = q.get("term").unwrap_or("").to_string();
    if term.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "term is required"));
    }
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(25);
    let results = engine.search(&term, limit, registry_auth(&headers)).await?;
    Ok(Json(results).into_response())
}
