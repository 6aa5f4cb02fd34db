//! `/_ping`, `/version`, `/info`, `/system/check`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

use super::{ApiError, AppState};

const NO_CACHE: &str = "no-cache, no-store, must-revalidate";

/// `GET /_ping`.
pub async fn ping() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, NO_CACHE),
            (header::PRAGMA, "no-cache"),
            (header::HeaderName::from_static("builder-version"), "1"),
            (header::HeaderName::from_static("swarm"), "inactive"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        "OK",
    )
}

/// `HEAD /_ping`.
pub async fn ping_head() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, NO_CACHE),
            (header::PRAGMA, "no-cache"),
            (header::HeaderName::from_static("builder-version"), "1"),
            (header::HeaderName::from_static("swarm"), "inactive"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CONTENT_LENGTH, "0"),
        ],
        (),
    )
}

/// `GET /version`.
pub async fn version(State(engine): State<AppState>) -> impl IntoResponse {
    Json(engine.version())
}

/// `GET /info`.
pub async fn info(State(engine): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let info = tokio::task::spawn_blocking(move || engine.info()).await??;
    Ok(Json(info))
}

/// `POST /system/check` (amber's own): verify the store.
pub async fn check(State(engine): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let report = tokio::task::spawn_blocking(move || engine.check()).await??;
    Ok(Json(report))
}
