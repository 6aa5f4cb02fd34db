//! The route table: `/v2/...` paths parsed by hand, because repository
//! names contain slashes (`/v2/a/b/c/manifests/latest`), then dispatched to
//! one handler per resource. Paths are matched raw (no percent-decoding), so
//! `%2e%2e` is just an invalid name.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use super::error::RegistryError;
use super::{blobs, listing, manifests, uploads, AppState};
use crate::registry::distribution::{valid_name, ErrorCode, API_VERSION, API_VERSION_HEADER};

/// A parsed registry path.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags(String),
    /// `/v2/<name>/manifests/<reference>`
    Manifest(String, String),
    /// `/v2/<name>/blobs/<digest>`
    Blob(String, String),
    /// `/v2/<name>/blobs/uploads/`
    Uploads(String),
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload(String, String),
    /// `/v2/<name>/referrers/<digest>`
    Referrers(String, String),
    /// `/token` (bearer token endpoint)
    Token,
}

/// Why a path is not a route.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteError {
    /// Not a registry path at all.
    NotFound,
    /// A registry path with an invalid repository name.
    BadName(String),
}

/// Parse a request path.
pub fn parse(path: &str) -> Result<Route, RouteError> {
    if path == "/token" {
        return Ok(Route::Token);
    }
    let rest = match path.strip_prefix("/v2") {
        Some("" | "/") => return Ok(Route::Base),
        Some(r) => r.strip_prefix('/').ok_or(RouteError::NotFound)?,
        None => return Err(RouteError::NotFound),
    };
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    let named = |name: &str| -> Result<String, RouteError> {
        if valid_name(name) {
            Ok(name.to_string())
        } else {
            Err(RouteError::BadName(name.to_string()))
        }
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Ok(Route::Tags(named(name)?));
    }
    // The last marker wins, and what follows it must be one segment: a
    // repository may itself be called `x/blobs` or `x/manifests`.
    let split = |marker: &str| {
        rest.rsplit_once(marker)
            .filter(|(_, tail)| !tail.contains('/'))
            .map(|(n, t)| (n.to_string(), t.to_string()))
    };
    if let Some((name, reference)) = split("/manifests/") {
        return Ok(Route::Manifest(named(&name)?, reference));
    }
    if let Some((name, id)) = split("/blobs/uploads/") {
        let name = named(&name)?;
        return Ok(if id.is_empty() {
            Route::Uploads(name)
        } else {
            Route::Upload(name, id)
        });
    }
    if let Some((name, digest)) = split("/blobs/") {
        return Ok(Route::Blob(named(&name)?, digest));
    }
    if let Some((name, digest)) = split("/referrers/") {
        return Ok(Route::Referrers(named(&name)?, digest));
    }
    Err(RouteError::NotFound)
}

/// The only handler: authenticate, parse, dispatch; every answer carries
/// `Docker-Distribution-API-Version`.
pub async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = match dispatch(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    resp.headers_mut()
        .insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION));
    resp
}

async fn dispatch(state: &Arc<AppState>, req: Request) -> Result<Response, RegistryError> {
    let route = parse(req.uri().path());
    let route = match route {
        Ok(Route::Token) if state.auth.has_tokens() => {
            let token = state.auth.issue_token(req.headers())?;
            return Ok(axum::Json(token).into_response());
        }
        Ok(Route::Token) => Err(RouteError::NotFound),
        other => other,
    };
    state
        .auth
        .check(req.headers(), &state.token_realm(req.headers()))
        .await?;
    let route = match route {
        Ok(r) => r,
        Err(RouteError::NotFound) => {
            return Err(RegistryError::new(ErrorCode::Unsupported)
                .status(StatusCode::NOT_FOUND)
                .message("no such registry endpoint"))
        }
        Err(RouteError::BadName(name)) => {
            return Err(RegistryError::new(ErrorCode::NameInvalid).detail(name))
        }
    };
    let method = req.method().clone();
    let writes = matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if writes && state.read_only {
        return Err(RegistryError::new(ErrorCode::Unsupported).message("the registry is read-only"));
    }
    let (parts, body) = req.into_parts();
    let q = Query::parse(parts.uri.query());
    let h = &parts.headers;
    use Route::*;
    match (route, method) {
        (Base, Method::GET | Method::HEAD) => Ok(json_ok("{}")),
        (Catalog, Method::GET) => listing::catalog(state, &q).await,
        (Tags(name), Method::GET) => listing::tags(state, &name, &q).await,
        (Referrers(name, d), Method::GET) => manifests::referrers(state, &name, &d, &q).await,
        (Manifest(name, r), Method::GET) => manifests::get(state, &name, &r, false).await,
        (Manifest(name, r), Method::HEAD) => manifests::get(state, &name, &r, true).await,
        (Manifest(name, r), Method::PUT) => manifests::put(state, &name, &r, &q, h, body).await,
        (Manifest(name, r), Method::DELETE) => manifests::delete(state, &name, &r).await,
        (Blob(name, d), Method::GET) => blobs::get(state, &name, &d, h, false).await,
        (Blob(name, d), Method::HEAD) => blobs::get(state, &name, &d, h, true).await,
        (Blob(name, d), Method::DELETE) => blobs::delete(state, &name, &d).await,
        (Uploads(name), Method::POST) => uploads::start(state, &name, &q, h, body).await,
        (Upload(name, id), Method::GET) => uploads::status(state, &name, &id).await,
        (Upload(name, id), Method::PATCH) => uploads::patch(state, &name, &id, h, body).await,
        (Upload(name, id), Method::PUT) => uploads::finish(state, &name, &id, &q, h, body).await,
        (Upload(name, id), Method::DELETE) => uploads::cancel(state, &name, &id).await,
        _ => Err(RegistryError::new(ErrorCode::Unsupported)
            .message("method not allowed on this endpoint")),
    }
}

fn json_ok(body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
}

/// Query parameters, decoded.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Every value of `key`.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        use Route::*;
        let ok = |p: &str| parse(p).unwrap();
        assert_eq!(ok("/v2/"), Base);
        assert_eq!(ok("/v2"), Base);
        assert_eq!(ok("/v2/_catalog"), Catalog);
        assert_eq!(ok("/v2/a/b/tags/list"), Tags("a/b".into()));
        assert_eq!(
            ok("/v2/a/manifests/latest"),
            Manifest("a".into(), "latest".into())
        );
        assert_eq!(
            ok("/v2/x/blobs/manifests/v1"),
            Manifest("x/blobs".into(), "v1".into())
        );
        assert_eq!(
            ok("/v2/x/manifests/blobs/sha256:0"),
            Blob("x/manifests".into(), "sha256:0".into())
        );
        assert_eq!(ok("/v2/a/blobs/uploads/"), Uploads("a".into()));
        assert_eq!(
            ok("/v2/a/blobs/uploads/abc"),
            Upload("a".into(), "abc".into())
        );
        assert_eq!(
            ok("/v2/a/referrers/sha256:0"),
            Referrers("a".into(), "sha256:0".into())
        );
        assert_eq!(ok("/token"), Token);
        assert_eq!(parse("/v3/"), Err(RouteError::NotFound));
        assert_eq!(parse("/v2/a/other"), Err(RouteError::NotFound));
        for bad in [
            "/v2/../x/tags/list",
            "/v2/a/../b/manifests/x",
            "/v2/A/blobs/uploads/",
            "/v2/%2e%2e/blobs/x",
        ] {
            assert!(matches!(parse(bad), Err(RouteError::BadName(_))), "{bad}");
        }
    }
}
