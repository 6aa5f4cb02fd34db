//! Listings with `?n=&last=` pagination and a `Link: <...>; rel="next"`
//! header when more remain: `GET /v2/_catalog` (Docker's registry API, not
//! in the OCI spec) and `GET /v2/<name>/tags/list`.

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::RegistryError;
use super::routes::Query;
use super::AppState;
use crate::registry::distribution::ErrorCode;

/// Catalog page size without `n` (Docker's registry default).
pub const CATALOG_DEFAULT_PAGE: usize = 100;
/// Largest catalog page (Docker's cap against runaway allocations).
pub const CATALOG_MAX_PAGE: usize = 1000;

/// `GET /v2/_catalog`.
pub async fn catalog(state: &Arc<AppState>, q: &Query) -> Result<Response, RegistryError> {
    let n = page_size(q)?
        .unwrap_or(CATALOG_DEFAULT_PAGE)
        .min(CATALOG_MAX_PAGE);
    let s = state.storage.clone();
    let all = tokio::task::spawn_blocking(move || s.repositories()).await??;
    let (page, more) = paginate(all, q.get("last"), Some(n));
    let mut resp = axum::Json(serde_json::json!({ "repositories": page })).into_response();
    if let (true, Some(last)) = (more, page.last()) {
        link(&mut resp, &format!("/v2/_catalog?last={last}&n={n}"));
    }
    Ok(resp)
}

/// `GET /v2/<name>/tags/list`.
pub async fn tags(state: &Arc<AppState>, name: &str, q: &Query) -> Result<Response, RegistryError> {
    let n = page_size(q)?;
    let (s, nm) = (state.storage.clone(), name.to_string());
    let all = tokio::task::spawn_blocking(move || s.tags(&nm))
        .await??
        .ok_or_else(|| RegistryError::new(ErrorCode::NameUnknown).detail(name))?;
    let (page, more) = paginate(all, q.get("last"), n);
    let mut resp = axum::Json(serde_json::json!({ "name": name, "tags": page })).into_response();
    if let (true, Some(last), Some(n)) = (more, page.last(), n) {
        link(
            &mut resp,
            &format!("/v2/{name}/tags/list?last={last}&n={n}"),
        );
    }
    Ok(resp)
}

fn page_size(q: &Query) -> Result<Option<usize>, RegistryError> {
    q.get("n")
        .map(|n| {
            n.parse::<usize>()
                .map_err(|_| RegistryError::new(ErrorCode::PaginationNumberInvalid).detail(n))
        })
        .transpose()
}

/// The sorted `all` after `last`, at most `n` of them; and whether more remain.
fn paginate(all: Vec<String>, last: Option<&str>, n: Option<usize>) -> (Vec<String>, bool) {
    let mut rest: Vec<String> = match last {
        Some(l) => all.into_iter().filter(|x| x.as_str() > l).collect(),
        None => all,
    };
    match n {
        Some(n) if rest.len() > n => {
            rest.truncate(n);
            (rest, true)
        }
        _ => (rest, false),
    }
}

fn link(resp: &mut Response, url: &str) {
    if let Ok(v) = format!("<{url}>; rel=\"next\"").parse() {
        resp.headers_mut().insert(header::LINK, v);
    }
}

#[cfg(test)]
mod tests {
    use super::paginate;

    #[test]
    fn pages() {
        let all: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(
            paginate(all.clone(), None, Some(2)),
            (vec!["a".into(), "b".into()], true)
        );
        assert_eq!(
            paginate(all.clone(), Some("b"), Some(2)),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(paginate(all.clone(), Some("d"), Some(2)), (vec![], false));
        assert_eq!(paginate(all.clone(), None, None).0.len(), 4);
        assert_eq!(paginate(all, None, Some(0)), (vec![], true));
    }
}
