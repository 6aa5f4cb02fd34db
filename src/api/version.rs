//! API version prefixes and negotiation headers, as the Docker daemon does
//! them (moby `api/server/middleware/version.go`): every answer carries
//! `Api-Version`, `Server` and `Ostype`; `/v1.NN/...` is checked against the
//! supported range and stripped before routing.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::types::api::{API_VERSION, MIN_API_VERSION};

/// The API version a request asked for (un-versioned paths get the newest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    /// Parse `1.45`.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
}

/// Split `/v1.45/images/json` into the version and the rest.
fn split_version(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (ver, tail) = rest.split_at(end);
    ApiVersion::parse(ver)?;
    Some((ver, if tail.is_empty() { "/" } else { tail }))
}

/// Middleware run before routing.
pub async fn negotiate(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    tracing::debug!(method = %req.method(), uri = %req.uri(), "request");
    let mut version = ApiVersion::parse(API_VERSION);
    if let Some((ver, tail)) = split_version(&path) {
        let v = ApiVersion::parse(ver);
        if v < ApiVersion::parse(MIN_API_VERSION) {
            let msg = format!("client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version");
            return with_headers(ApiError::new(StatusCode::BAD_REQUEST, msg).into_response());
        }
        if v > ApiVersion::parse(API_VERSION) {
            let msg = format!(
                "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
            );
            return with_headers(ApiError::new(StatusCode::BAD_REQUEST, msg).into_response());
        }
        version = v;
        let new_uri = match req.uri().query() {
            Some(q) => format!("{tail}?{q}"),
            None => tail.to_string(),
        };
        if let Ok(uri) = new_uri.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    if let Some(v) = version {
        req.extensions_mut().insert(v);
    }
    with_headers(next.run(req).await)
}

fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    if let Ok(v) = HeaderValue::from_str(&format!("Amber/{} (linux)", crate::VERSION)) {
        h.insert("Server", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_version_prefixes() {
        assert_eq!(
            split_version("/v1.45/images/json"),
            Some(("1.45", "/images/json"))
        );
        assert_eq!(split_version("/v1.24/_ping"), Some(("1.24", "/_ping")));
        assert_eq!(split_version("/images/json"), None);
        assert_eq!(split_version("/volumes"), None);
        assert!(ApiVersion::parse("1.9") < ApiVersion::parse("1.24"));
    }
}
