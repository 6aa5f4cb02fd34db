//! The daemon's registry client: pull, push and catalog search over the
//! OCI distribution API, with Docker's auth flows and progress messages.
//!
//! HTTPS always comes first (system CAs plus `certs.d/<host>/*.crt`); plain
//! HTTP is a fallback only for loopback registries and those listed in
//! `insecure-registries`, as Docker does. Pulls of Docker Hub images try
//! `registry-mirrors` first.

pub mod auth;
mod pull;
mod push;
mod tls;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

pub use auth::Credentials;
use auth::{parse_challenge, Challenge};

use crate::types::api::JsonMessage;
use crate::types::Reference;

/// The request body type.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Manifests and small JSON documents larger than this are refused.
const MAX_DOCUMENT: usize = 4 << 20;
/// How long one request may wait for response headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(60);

pub use crate::registry::distribution::MANIFEST_TYPES;

/// Errors of registry operations.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry wants credentials we do not have, or refused ours.
    #[error("{0}")]
    Unauthorized(String),
    /// The repository, tag or blob does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Bad input or configuration.
    #[error("{0}")]
    Invalid(String),
    /// The registry answered with an error or could not be reached.
    #[error("{0}")]
    Remote(String),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Registry settings of the daemon (`/etc/amber/daemon.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RegistryConfig {
    /// Mirrors of Docker Hub, tried first for its images (`http://host:port`).
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    /// Registries that may be used over plain HTTP (`host:port`).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Per-registry CA certificates: `<dir>/<host:port>/*.crt`.
    #[serde(default = "default_certs_dir")]
    pub registry_certs_dir: std::path::PathBuf,
}

fn default_certs_dir() -> std::path::PathBuf {
    tls::DEFAULT_CERTS_DIR.into()
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            registry_mirrors: Vec::new(),
            insecure_registries: Vec::new(),
            registry_certs_dir: default_certs_dir(),
        }
    }
}

impl RegistryConfig {
    /// Whether `host` may be spoken to over plain HTTP (after HTTPS fails).
    pub fn is_insecure(&self, host: &str) -> bool {
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        name == "localhost"
            || name.starts_with("127.")
            || name == "[::1]"
            || self.insecure_registries.iter().any(|r| {
                let r = r.trim_start_matches("http://").trim_end_matches('/');
                r == host || r == name
            })
    }
}

/// Where an image lives: a registry endpoint and a repository in it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `https://127.0.0.1:5000` (no trailing slash): tried first.
    pub base: String,
    /// `host:port` as written in image names (for messages and credentials).
    pub host: String,
    /// The repository (`library/busybox`).
    pub repo: String,
    /// Plain HTTP allowed when HTTPS fails.
    pub insecure: bool,
}

impl Endpoint {
    /// The endpoint of `api_host` (`host:port`), HTTPS first.
    pub fn new(host: &str, api_host: &str, repo: &str, cfg: &RegistryConfig) -> Endpoint {
        Endpoint {
            base: format!("https://{api_host}"),
            host: host.to_string(),
            repo: repo.to_string(),
            insecure: cfg.is_insecure(api_host),
        }
    }

    /// A mirror given as a URL (`http://host:port` or `https://...`).
    pub fn mirror(url: &str, repo: &str) -> Endpoint {
        let url = url.trim_end_matches('/');
        let host = url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .to_string();
        let base = if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("https://{url}")
        };
        Endpoint {
            insecure: base.starts_with("http://"),
            base,
            host,
            repo: repo.to_string(),
        }
    }
}

/// The origin endpoint of a reference (`docker.io` → Docker Hub's API host).
pub fn origin(r: &Reference, cfg: &RegistryConfig) -> Endpoint {
    let host = r.domain().to_string();
    let api_host = if host == crate::types::DEFAULT_DOMAIN {
        "registry-1.docker.io".to_string()
    } else {
        host.clone()
    };
    Endpoint::new(&host, &api_host, r.path(), cfg)
}

/// A session with one registry endpoint and repository (auth cached).
pub struct Session {
    http: Client<HttpsConnector<HttpConnector>, Body>,
    ep: Endpoint,
    /// The scheme and host that answered (`https://` unless it fell back).
    base: Mutex<String>,
    creds: Option<Credentials>,
    /// `Authorization` value, once known.
    authz: Mutex<Option<String>>,
    scope: String,
}

/// The error body of the distribution API.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Debug, Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The empty body.
pub fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// A body of bytes.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

impl Session {
    /// Open a session for `scope` (`pull` or `pull,push`) on `ep`.
    pub fn new(
        ep: Endpoint,
        creds: Option<Credentials>,
        actions: &str,
        cfg: &RegistryConfig,
    ) -> Result<Session, RegistryError> {
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(Duration::from_secs(10)));
        conn.set_nodelay(true);
        conn.enforce_http(false);
        let tls = tls::client_config(&cfg.registry_certs_dir, &ep.host)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(conn);
        let scope = format!("repository:{}:{actions}", ep.repo);
        Ok(Session {
            http: Client::builder(TokioExecutor::new()).build(https),
            base: Mutex::new(ep.base.clone()),
            ep,
            creds,
            authz: Mutex::new(None),
            scope,
        })
    }

    fn base(&self) -> String {
        self.base.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// `/v2/<repo>/<rest>` as a URL.
    pub fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base(), self.ep.repo)
    }

    /// `/v2/<rest>` (catalog) as a URL.
    pub fn root_url(&self, rest: &str) -> String {
        format!("{}/v2/{rest}", self.base())
    }

    /// A URL the registry gave (`Location`), made absolute.
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base())
        }
    }

    /// Check `/v2/` and settle authentication for this session's scope.
    pub async fn authenticate(&self) -> Result<(), RegistryError> {
        let mut url = self.root_url("");
        let resp = match self.raw(Method::GET, &url, &[], empty(), None).await {
            Err(RegistryError::Remote(e)) if self.ep.insecure && url.starts_with("https://") => {
                tracing::debug!(host = %self.ep.host, error = %e, "HTTPS failed, trying plain HTTP");
                let http = self.base().replacen("https://", "http://", 1);
                *self.base.lock().unwrap_or_else(|p| p.into_inner()) = http;
                url = self.root_url("");
                self.raw(Method::GET, &url, &[], empty(), None).await?
            }
            r => r?,
        };
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => {
                let challenge = resp
                    .headers()
                    .get(hyper::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                let value = match challenge {
                    Some(Challenge::Basic) => match &self.creds {
                        Some(c) => c.basic(),
                        None => return Err(self.need_login()),
                    },
                    Some(Challenge::Bearer { realm, service }) => {
                        self.token(&realm, service.as_deref()).await?
                    }
                    None => {
                        return Err(RegistryError::Remote(format!(
                            "{} asks for an authentication scheme amber does not know",
                            self.ep.host
                        )))
                    }
                };
                *self.authz.lock().unwrap_or_else(|p| p.into_inner()) = Some(value.clone());
                // Credentials are checked now, not at the first upload.
                let resp = self
                    .raw(Method::GET, &url, &[], empty(), Some(value))
                    .await?;
                if resp.status() == StatusCode::UNAUTHORIZED {
                    return Err(RegistryError::Unauthorized(format!(
                        "{}: unauthorized: wrong user name or password",
                        self.ep.host
                    )));
                }
                Ok(())
            }
            s => Err(RegistryError::Remote(format!(
                "{} does not answer as a registry ({s} on /v2/)",
                self.ep.host
            ))),
        }
    }

    fn need_login(&self) -> RegistryError {
        RegistryError::Unauthorized(format!(
            "{}: unauthorized: authentication required (run `amber login {}`)",
            self.ep.host, self.ep.host
        ))
    }

    async fn token(&self, realm: &str, service: Option<&str>) -> Result<String, RegistryError> {
        let mut url = format!("{realm}?scope={}", urlencode(&self.scope));
        if let Some(s) = service {
            url.push_str(&format!("&service={}", urlencode(s)));
        }
        let auth = self.creds.as_ref().map(|c| c.basic());
        let headers: Vec<(&str, String)> = auth.into_iter().map(|a| ("authorization", a)).collect();
        let resp = self.raw(Method::GET, &url, &headers, empty(), None).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(if self.creds.is_some() {
                RegistryError::Unauthorized(format!(
                    "{}: unauthorized: wrong user name or password",
                    self.ep.host
                ))
            } else {
                self.need_login()
            });
        }
        let body = read_document(resp).await?;
        #[derive(Deserialize)]
        struct Token {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Remote(format!("bad token answer from {realm}: {e}")))?;
        let t = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        Ok(format!("Bearer {t}"))
    }

    /// Send a request with this session's authorization.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Response<hyper::body::Incoming>, RegistryError> {
        let authz = self.authz.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let resp = self.raw(method, url, headers, body, authz).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(self.need_login());
        }
        Ok(resp)
    }

    async fn raw(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Body,
        authz: Option<String>,
    ) -> Result<Response<hyper::body::Incoming>, RegistryError> {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(a) = authz {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            {
                req = req.header("authorization", a);
            }
        }
        req = req.header("user-agent", format!("amber/{}", crate::VERSION));
        let req = req
            .body(body)
            .map_err(|e| RegistryError::Invalid(format!("bad request to {url}: {e}")))?;
        match tokio::time::timeout(HEADER_TIMEOUT, self.http.request(req)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(RegistryError::Remote(format!(
                "cannot reach {}: {}",
                self.ep.host,
                error_chain(&e)
            ))),
            Err(_) => Err(RegistryError::Remote(format!(
                "{} did not answer within {}s",
                self.ep.host,
                HEADER_TIMEOUT.as_secs()
            ))),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Read a small body (manifest, token, catalog), refusing oversized ones.
pub async fn read_document(resp: Response<hyper::body::Incoming>) -> Result<Bytes, RegistryError> {
    Limited::new(resp.into_body(), MAX_DOCUMENT)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| RegistryError::Remote(format!("cannot read the registry's answer: {e}")))
}

/// Turn a non-success answer into an error with the registry's message.
pub async fn error_of(what: &str, resp: Response<hyper::body::Incoming>) -> RegistryError {
    let status = resp.status();
    let body = read_document(resp).await.unwrap_or_default();
    let detail = serde_json::from_slice::<ErrorBody>(&body)
        .ok()
        .and_then(|b| {
            b.errors
                .first()
                .map(|e| format!("{}: {}", e.code.to_lowercase(), e.message))
        })
        .unwrap_or_else(|| format!("{status}"));
    let msg = format!("{what}: {detail}");
    if status == StatusCode::NOT_FOUND {
        RegistryError::NotFound(msg)
    } else {
        RegistryError::Remote(msg)
    }
}

pub(crate) fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Send progress messages (a closed receiver is ignored).
#[derive(Clone)]
pub struct Progress(pub Option<tokio::sync::mpsc::UnboundedSender<JsonMessage>>);

impl Progress {
    /// A status line, optionally about one layer.
    pub fn status(&self, id: Option<&str>, status: impl Into<String>) {
        self.send(JsonMessage {
            status: Some(status.into()),
            id: id.map(str::to_string),
            ..Default::default()
        });
    }

    /// A transfer's progress.
    pub fn bytes(&self, id: &str, status: &str, current: u64, total: u64) {
        self.send(JsonMessage {
            status: Some(status.into()),
            id: Some(id.to_string()),
            progress_detail: Some(crate::types::api::ProgressDetail { current, total }),
            ..Default::default()
        });
    }

    /// Any message.
    pub fn send(&self, m: JsonMessage) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(m);
        }
    }
}

/// The repositories of a registry whose names contain `term`
/// (`/v2/_catalog`, every page).
pub async fn search_catalog(
    host: &str,
    term: &str,
    limit: usize,
    creds: Option<Credentials>,
    cfg: &RegistryConfig,
) -> Result<Vec<String>, RegistryError> {
    let ep = Endpoint::new(host, host, "", cfg);
    let s = Session::new(ep, creds, "", cfg)?;
    let s = Session {
        scope: "registry:catalog:*".into(),
        ..s
    };
    s.authenticate().await?;
    let mut out = Vec::new();
    let mut url = s.root_url("_catalog?n=1000");
    let mut pages = 0;
    loop {
        let resp = s.send(Method::GET, &url, &[], empty()).await?;
        if !resp.status().is_success() {
            return Err(error_of(&format!("catalog of {host}"), resp).await);
        }
        let next = resp
            .headers()
            .get(hyper::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.split_once('<'))
            .and_then(|(_, r)| r.split_once('>'))
            .map(|(u, _)| s.absolute(u));
        #[derive(Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Vec<String>,
        }
        let body = read_document(resp).await?;
        let c: Catalog = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Remote(format!("bad catalog from {host}: {e}")))?;
        out.extend(c.repositories.into_iter().filter(|r| r.contains(term)));
        pages += 1;
        match next {
            Some(n) if out.len() < limit && pages < 100 => url = n,
            _ => break,
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// Where this daemon has seen blobs (registry host → repositories, by
/// digest), from its pulls and pushes: a push to another repository of the
/// same registry mounts them instead of uploading.
#[derive(Debug, Clone, Default)]
pub struct Seen(std::sync::Arc<Mutex<SeenMap>>);

/// Blob digest → (registry host, repository) pairs.
type SeenMap = HashMap<crate::types::Digest, Vec<(String, String)>>;

/// What a pull or push works with.
pub struct Ctx<'a> {
    /// The image store.
    pub store: std::sync::Arc<crate::store::Store>,
    /// Credentials for the registry (none: anonymous).
    pub creds: Option<Credentials>,
    /// Mirrors and insecure registries.
    pub cfg: &'a RegistryConfig,
    /// Where blobs were seen (cross-repository mounts).
    pub seen: &'a Seen,
    /// Where progress messages go.
    pub progress: &'a Progress,
}

impl Seen {
    /// Remember that `host`/`repo` has blob `d`.
    pub fn record(&self, d: &crate::types::Digest, host: &str, repo: &str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let v = m.entry(d.clone()).or_default();
        if !v.iter().any(|(h, r)| h == host && r == repo) {
            v.push((host.to_string(), repo.to_string()));
        }
    }

    /// Other repositories of `host` known to have `d`.
    pub fn sources(&self, d: &crate::types::Digest, host: &str, not: &str) -> Vec<String> {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.get(d)
            .map(|v| {
                v.iter()
                    .filter(|(h, r)| h == host && r != not)
                    .map(|(_, r)| r.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Known registries' credentials a daemon was given, by host (for mirrors:
/// the origin's are not sent to a mirror).
pub type CredentialMap = HashMap<String, Credentials>;

pub use pull::pull;
pub use push::push;
