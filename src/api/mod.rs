//! The HTTP API: a subset of the Docker Engine API (so the `docker` CLI and
//! SDKs work against amber) plus amber's own endpoints. One route table in
//! this file, one handler file per resource; handlers hold no business logic.

mod body;
mod build;
mod capture;
mod cluster;
mod containers;
mod error;
mod exec;
mod files;
mod images;
mod networks;
mod query;
mod registry;
pub mod remote;
pub mod server;
mod stream;
mod system;
mod transfer;
mod version;
mod volumes;

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
        .route("/commit", post(images::commit))
        .route("/build", post(build::build))
        .route("/images/prune", post(images::prune))
        .route("/images/get", get(images::get_many))
        .route("/images/load", post(images::load))
        .route("/images/search", get(registry::search))
        .route("/auth", post(registry::auth))
        .route(
            "/images/{*rest}",
            get(images::get_sub)
                .post(images::post_sub)
                .delete(images::delete),
        )
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/stats", get(containers::stats))
        .route("/containers/{id}/exec", post(exec::create))
        .route(
            "/containers/{id}/archive",
            get(files::get).head(files::head).put(files::put),
        )
        .route("/containers/{id}/changes", get(files::changes))
        .route("/containers/{id}/export", get(files::export))
        .route(
            "/containers/{id}",
            axum::routing::delete(containers::remove),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/amber/v1/capture", post(capture::capture))
        .route("/amber/v1/bundles", get(capture::list))
        .route("/amber/v1/bundles/prune", post(capture::prune))
        .route("/amber/v1/bundles/search", get(capture::search))
        .route("/amber/v1/bundles/diff", get(capture::diff))
        .route("/amber/v1/bundles/import", post(transfer::import))
        .route("/amber/v1/bundles/missing", post(transfer::missing))
        .route("/amber/v1/bundles/pull", post(transfer::pull))
        .route("/amber/v1/migrate", post(transfer::migrate))
        .route(
            "/amber/v1/bundles/{id}",
            get(capture::inspect).delete(capture::remove),
        )
        .route("/amber/v1/bundles/{id}/files", get(capture::files))
        .route("/amber/v1/bundles/{id}/cat", get(capture::cat))
        .route("/amber/v1/bundles/{id}/core", get(capture::core))
        .route(
            "/amber/v1/bundles/{id}/export",
            get(capture::export).post(transfer::thin_export),
        )
        .route("/amber/v1/bundles/{id}/index", get(transfer::index))
        .route("/amber/v1/bundles/{id}/push", post(transfer::push))
        .route("/amber/v1/bundles/{id}/restore", post(capture::restore))
        .route("/amber/v1/baselines", post(capture::create_baseline))
        .route(
            "/amber/v1/baselines/{name}/rollback",
            post(capture::rollback),
        )
        .route(
            "/amber/v1/cluster/hosts",
            get(cluster::list_hosts).post(cluster::add_host),
        )
        .route(
            "/amber/v1/cluster/hosts/{name}",
            axum::routing::delete(cluster::remove_host),
        )
        .route("/amber/v1/cluster/containers", get(cluster::containers))
        .route("/amber/v1/cluster/images", get(cluster::images))
        .route("/amber/v1/cluster/capture", post(cluster::capture))
        .route(
            "/amber/v1/cluster/baselines",
            post(cluster::create_baseline),
        )
        .route(
            "/amber/v1/cluster/baselines/{name}/rollback",
            post(cluster::rollback),
        )
        .route("/amber/v1/bundle-sets", get(cluster::list_sets))
        .route("/amber/v1/bundle-sets/diff", get(cluster::diff_sets))
        .route(
            "/amber/v1/bundle-sets/{id}",
            get(cluster::inspect_set).delete(cluster::remove_set),
        )
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
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
