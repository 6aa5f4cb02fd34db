//! The HTTP API: a subset of the Docker Engine API (so the `docker` CLI and
//! SDKs work against amber) plus amber's own endpoints. One route table in
//! this file, one handler file per resource; handlers hold no business logic.

mod error;
mod images;
mod query;
pub mod server;
mod system;
mod version;

pub use error::{error_chain, ApiError};

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

use crate::engine::Engine;

/// Shared handler state.
pub type AppState = Arc<Engine>;

/// Build the route table.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/system/check", post(system::check))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route(
            "/images/{*rest}",
            get(images::get_sub)
                .post(images::post_sub)
                .delete(images::delete),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(engine)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("page not found: {}", uri.path()),
    )
}
