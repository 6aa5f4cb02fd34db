//! `/images/...` handlers.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use axum::http::header;

use super::body::{drain_on_error, BodyReader};
use super::query::Query;
use super::stream::sized_stream;
use super::{ApiError, AppState};
use crate::engine::ImageFilters;
use crate::store::{BlobCompression, ImportOptions, SaveFormat, SaveOptions};
use crate::types::api::JsonMessage;
use crate::types::Reference;

/// `GET /images/json`.
pub async fn list(State(engine): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let mut filters = match q.get("filters") {
        Some(f) if !f.is_empty() => ImageFilters::parse(f)?,
        _ => ImageFilters::default(),
    };
    // Old clients send `filter=NAME`.
    if let Some(name) = q.get("filter") {
        filters.reference.push(name.to_string());
    }
    let all = q.flag("all");
    let images = tokio::task::spawn_blocking(move || engine.list_images(all, &filters)).await??;
    Ok(Json(images).into_response())
}

/// `POST /images/create`: `fromSrc=-` imports the request body (read to
/// its end before the answer, see [`BodyReader`]), `fromImage=` pulls.
pub async fn create(
    State(engine): State<AppState>,
    uri: Uri,
    headers: axum::http::HeaderMap,
    mut body: Body,
) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    if q.get("fromImage").is_some() {
        return super::registry::pull(engine, &q, &headers);
    }
    let opts = drain_on_error(import_options(&q), &mut body).await?;
    let id = tokio::task::spawn_blocking(move || engine.import_image(BodyReader::new(body), &opts))
        .await??;
    let msg = JsonMessage {
        status: Some(id.to_string()),
        ..Default::default()
    };
    let mut line = serde_json::to_string(&msg).unwrap_or_default();
    line.push_str("\r\n");
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        line,
    )
        .into_response())
}

/// The options of an import (`fromSrc=-`), from its query.
fn import_options(q: &Query) -> Result<ImportOptions, ApiError> {
    match q.get("fromSrc") {
        Some("-") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "importing from {other:?} is not supported: send the archive as the request body (fromSrc=-)"
            )))
        }
        None => return Err(ApiError::bad_request("missing fromImage or fromSrc")),
    }
    Ok(ImportOptions {
        tag: import_tag(q.get("repo").unwrap_or(""), q.get("tag").unwrap_or(""))?,
        message: q.get("message").unwrap_or("").to_string(),
        changes: q.all("changes"),
        allow_devices: false,
    })
}

/// `repo` may carry the tag itself (`repo=app:v1`), or `tag` gives it.
fn import_tag(repo: &str, tag: &str) -> Result<Option<Reference>, ApiError> {
    if repo.is_empty() {
        return Ok(None);
    }
    let r = Reference::parse_name_only(repo).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let r = if !tag.is_empty() {
        r.with_tag(tag)
    } else if r.tag().is_none() {
        r.with_tag(crate::types::DEFAULT_TAG)
    } else {
        Ok(r)
    };
    r.map(Some)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `GET /images/{name}/json`.
pub async fn get_sub(
    State(engine): State<AppState>,
    Path(rest): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/history") {
        let name = name.to_string();
        let h = tokio::task::spawn_blocking(move || engine.image_history(&name)).await??;
        return Ok(Json(h).into_response());
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save(engine, vec![name.to_string()], Query::of(&uri)).await;
    }
    if let Some(name) = rest.strip_suffix("/json") {
        let name = name.to_string();
        let inspect = tokio::task::spawn_blocking(move || engine.inspect_image(&name)).await??;
        return Ok(Json(inspect).into_response());
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!("page not found: /images/{rest}"),
    ))
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub async fn post_sub(
    State(engine): State<AppState>,
    Path(rest): Path<String>,
    uri: Uri,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/push") {
        return super::registry::push(engine, name, &uri, &headers);
    }
    let Some(name) = rest.strip_suffix("/tag") else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("page not found: /images/{rest}"),
        ));
    };
    let q = Query::of(&uri);
    let target = import_tag(q.get("repo").unwrap_or(""), q.get("tag").unwrap_or(""))?
        .ok_or_else(|| ApiError::bad_request("repository name must have at least one component"))?;
    let name = name.to_string();
    tokio::task::spawn_blocking(move || engine.tag_image(&name, &target)).await??;
    Ok(StatusCode::CREATED.into_response())
}

/// `DELETE /images/{name}?force=`.
pub async fn delete(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let force = Query::of(&uri).flag("force");
    let items = tokio::task::spawn_blocking(move || engine.remove_image(&name, force)).await??;
    Ok(Json(items).into_response())
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`.
pub async fn commit(State(engine): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let container = q
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("container is required"))?
        .to_string();
    let opts = crate::engine::CommitOptions {
        tag: import_tag(q.get("repo").unwrap_or(""), q.get("tag").unwrap_or(""))?,
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        pause: q
            .get("pause")
            .is_none_or(|p| matches!(p, "1" | "true" | "True")),
        changes: q
            .all("changes")
            .into_iter()
            .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|c| !c.trim().is_empty())
            .collect(),
    };
    let id = tokio::task::spawn_blocking(move || engine.commit(&container, &opts)).await??;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"Id": id.to_string()})),
    )
        .into_response())
}

/// `POST /images/prune?filters=` (`dangling=false` prunes every unused image).
pub async fn prune(State(engine): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let all = match q.get("filters").filter(|f| !f.is_empty()) {
        Some(f) => ImageFilters::parse(f)?.dangling == Some(false),
        None => false,
    };
    let v = tokio::task::spawn_blocking(move || engine.prune_images(all)).await??;
    Ok(Json(v).into_response())
}

/// `GET /images/get?names=A&names=B` (amber also takes `format=oci` and
/// `compress=gzip|zstd`).
pub async fn get_many(State(engine): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let q = Query::of(&uri);
    let names = q.all("names");
    save(engine, names, q).await
}

async fn save(engine: AppState, names: Vec<String>, q: Query) -> Result<Response, ApiError> {
    let opts = SaveOptions {
        format: SaveFormat::parse(q.get("format").unwrap_or(""))?,
        compression: BlobCompression::parse(q.get("compress").unwrap_or(""))?,
    };
    let e2 = engine.clone();
    let plan = tokio::task::spawn_blocking(move || e2.plan_save(&names, &opts)).await??;
    Ok(sized_stream(
        "application/x-tar",
        plan.size,
        "save stream",
        move |out| engine.write_save(&plan, out),
    ))
}

/// `POST /images/load`: the body is the archive (read to its end before
/// the answer, see [`BodyReader`]). The answer is the same with `quiet` or
/// not: one `Loaded image` line per name.
pub async fn load(State(engine): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let report =
        tokio::task::spawn_blocking(move || engine.load_images(BodyReader::new(body))).await??;
    let mut out = String::new();
    for l in &report.layers_present {
        let msg = JsonMessage {
            status: Some("Already exists".into()),
            id: Some(l.short().to_string()),
            ..Default::default()
        };
        out.push_str(&serde_json::to_string(&msg).unwrap_or_default());
        out.push_str("\r\n");
    }
    for img in report.images {
        let lines: Vec<String> = if img.tags.is_empty() {
            vec![format!("Loaded image ID: {}", img.id)]
        } else {
            img.tags
                .iter()
                .map(|t| format!("Loaded image: {}", t.familiar()))
                .collect()
        };
        for l in lines {
            let msg = JsonMessage {
                stream: Some(format!("{l}\n")),
                ..Default::default()
            };
            out.push_str(&serde_json::to_string(&msg).unwrap_or_default());
            out.push_str("\r\n");
        }
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}
