//! The HTTP client of the daemon's API: over a unix socket, or over TCP
//! to a remote daemon with mutual TLS or a bearer token ([`ClientAuth`]).
//!
//! Usable outside the CLI (the engine talks to other daemons with it): it
//! never prints and never exits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use crate::types::api::{ErrorBody, API_VERSION};

/// The default address of the daemon.
pub const DEFAULT_HOST: &str = "unix:///run/amber/amber.sock";

/// Errors talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the address.
    #[error("Cannot connect to the amber daemon at {host}: {reason}. Is it running? Start it with `amber daemon` (or point -H / AMBER_HOST at it)")]
    NoDaemon {
        /// The address tried.
        host: String,
        /// The OS error.
        reason: String,
    },
    /// The daemon answered with an error.
    #[error("Error response from daemon: {message}")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// Docker's `message`.
        message: String,
    },
    /// The address is not understood.
    #[error("invalid host {0:?}: expected unix:///PATH or tcp://HOST:PORT")]
    BadHost(String),
    /// A CA, certificate, key or token file could not be used.
    #[error("invalid client credentials: {0}")]
    Credentials(String),
    /// The TLS handshake with the daemon failed (wrong CA, refused cert).
    #[error("TLS connection to {host} failed: {reason}")]
    Tls {
        /// The address tried.
        host: String,
        /// Why.
        reason: String,
    },
    /// Transport failure mid-request.
    #[error("request to the daemon failed: {0}")]
    Transport(String),
    /// The answer is not what the API promises.
    #[error("unexpected answer from the daemon: {0}")]
    Decode(String),
}

impl ClientError {
    /// Whether the daemon answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

/// A request body: empty, bytes, or a stream.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// An empty body.
pub fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body of bytes.
pub fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body streamed from an async reader (a file, stdin).
pub fn stream_body<R: tokio::io::AsyncRead + Send + 'static>(r: R) -> Body {
    // Large reads: tokio's file reads each cost a trip to the blocking pool.
    let s = tokio_util::io::ReaderStream::with_capacity(r, 1 << 20);
    let s = futures_util::StreamExt::map(s, |chunk| chunk.map(Frame::data));
    StreamBody::new(s).boxed_unsync()
}

/// Requested send buffer of a connection to the daemon (see `connect`).
const SEND_BUFFER: usize = 4 << 20;

/// Default port of `tcp://HOST` without one: Docker's, 2376 with TLS.
pub const DEFAULT_TLS_PORT: u16 = 2376;
/// Default port of `tcp://HOST` without TLS.
pub const DEFAULT_TCP_PORT: u16 = 2375;
/// How long a TCP connect plus TLS handshake may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a client proves itself to a daemon on `tcp://` (ignored on unix
/// sockets, whose file mode is the access control).
#[derive(Clone, Default)]
pub enum ClientAuth {
    /// Plain TCP (a loopback daemon without authentication).
    #[default]
    None,
    /// Mutual TLS: the daemon's certificate is checked against `ca`, and
    /// `cert`/`key` (PEM) are this client's identity.
    Tls {
        /// CA certificate(s) the daemon's certificate must chain to.
        ca: PathBuf,
        /// This client's certificate chain.
        cert: PathBuf,
        /// This client's private key.
        key: PathBuf,
    },
    /// `Authorization: Bearer TOKEN` on every request.
    Token(String),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::None => f.write_str("None"),
            ClientAuth::Tls { ca, cert, key } => f
                .debug_struct("Tls")
                .field("ca", ca)
                .field("cert", cert)
                .field("key", key)
                .finish(),
            ClientAuth::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// A bearer token that never shows in a `Debug` print.
#[derive(Clone)]
struct Secret(Arc<str>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the daemon is.
#[derive(Debug, Clone)]
enum Transport {
    Unix(PathBuf),
    Tcp {
        /// `HOST:PORT` as `TcpStream::connect` takes it.
        addr: String,
        tls: Option<Tls>,
    },
}

#[derive(Clone)]
struct Tls {
    connector: tokio_rustls::TlsConnector,
    name: tokio_rustls::rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("name", &self.name).finish()
    }
}

/// A client for one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    transport: Transport,
    token: Option<Secret>,
    connect_timeout: Duration,
}

impl Client {
    /// Address the daemon at `host` (`unix:///path`, or `tcp://HOST:PORT`
    /// without authentication, which a daemon allows on loopback only).
    pub fn new(host: &str) -> Result<Client, ClientError> {
        Client::with_auth(host, ClientAuth::None)
    }

    /// Address the daemon at `host` with credentials: `unix:///path`
    /// (credentials ignored) or `tcp://HOST[:PORT]` (default port 2376
    /// with TLS, 2375 without). TLS files are read now.
    pub fn with_auth(host: &str, auth: ClientAuth) -> Result<Client, ClientError> {
        let unix = match host.strip_prefix("unix://") {
            Some(p) if p.starts_with('/') => Some(PathBuf::from(p)),
            Some(_) => return Err(ClientError::BadHost(host.to_string())),
            None if host.starts_with('/') => Some(PathBuf::from(host)),
            None => None,
        };
        if let Some(socket) = unix {
            return Ok(Client {
                host: host.to_string(),
                transport: Transport::Unix(socket),
                token: None,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            });
        }
        let rest = host
            .strip_prefix("tcp://")
            .ok_or_else(|| ClientError::BadHost(host.to_string()))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let tls_port = matches!(auth, ClientAuth::Tls { .. });
        let (name, port) = split_host_port(rest, tls_port)
            .ok_or_else(|| ClientError::BadHost(host.to_string()))?;
        let addr = if name.contains(':') {
            format!("[{name}]:{port}")
        } else {
            format!("{name}:{port}")
        };
        let (tls, token) = match auth {
            ClientAuth::None => (None, None),
            ClientAuth::Token(t) => {
                let t = t.trim();
                if t.is_empty() || t.contains(['\r', '\n']) {
                    return Err(ClientError::Credentials(
                        "the token is empty or spans several lines".into(),
                    ));
                }
                (None, Some(Secret(Arc::from(t))))
            }
            ClientAuth::Tls { ca, cert, key } => {
                let config = tls_client_config(&ca, &cert, &key)?;
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from(name.to_string())
                    .map_err(|e| ClientError::BadHost(format!("{host}: {e}")))?;
                (
                    Some(Tls {
                        connector: tokio_rustls::TlsConnector::from(config),
                        name,
                    }),
                    None,
                )
            }
        };
        Ok(Client {
            host: host.to_string(),
            transport: Transport::Tcp { addr, tls },
            token,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        })
    }

    /// The same client with another limit on connecting (TCP connect plus
    /// TLS handshake; unix sockets connect at once or fail).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Client {
        self.connect_timeout = timeout;
        self
    }

    /// The address this client talks to, as given.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Send a request; the path is relative to the API version prefix.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Body,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let req = self.request(method, path, content_type, body, false)?;
        let resp = self.round_trip(req, false).await?;
        check(resp).await
    }

    /// Send with extra headers (`X-Registry-Auth`).
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let mut req = self.request(method, path, None, body, false)?;
        for (k, v) in headers {
            let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            let value = hyper::header::HeaderValue::from_str(v)
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            req.headers_mut().insert(name, value);
        }
        let resp = self.round_trip(req, false).await?;
        check(resp).await
    }

    /// `POST` a JSON body.
    pub async fn post_json<B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.send(Method::POST, path, Some("application/json"), full(bytes))
            .await
    }

    /// `POST` with `Connection: Upgrade` / `Upgrade: tcp` and take over the
    /// connection once the daemon answers 101 (attach, exec start).
    pub async fn hijack(
        &self,
        path: &str,
        json_body: Option<Vec<u8>>,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>, ClientError> {
        let (ct, body) = match json_body {
            Some(b) => (Some("application/json"), full(b)),
            None => (None, empty()),
        };
        let req = self.request(Method::POST, path, ct, body, true)?;
        let resp = self.round_trip(req, true).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let resp = check(resp).await?;
            return Err(ClientError::Decode(format!(
                "expected 101 Switching Protocols, got {}",
                resp.status()
            )));
        }
        let up = hyper::upgrade::on(resp)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(TokioIo::new(up))
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Body,
        upgrade: bool,
    ) -> Result<Request<Body>, ClientError> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/v{API_VERSION}{path}"))
            .header(hyper::header::HOST, "amber");
        if let Some(Secret(t)) = &self.token {
            let mut v =
                hyper::header::HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                    ClientError::Credentials("the token is not a valid header value".into())
                })?;
            v.set_sensitive(true);
            req = req.header(hyper::header::AUTHORIZATION, v);
        }
        if let Some(ct) = content_type {
            req = req.header(hyper::header::CONTENT_TYPE, ct);
        }
        if upgrade {
            req = req
                .header(hyper::header::CONNECTION, "Upgrade")
                .header(hyper::header::UPGRADE, "tcp");
        }
        req.body(body)
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// Connect, send `req`, and return the answer's head. A failure names
    /// the connection's own error when it has one (a TLS alert: the daemon
    /// refused this client's certificate), not just "canceled".
    async fn round_trip(
        &self,
        req: Request<Body>,
        upgrades: bool,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let (mut sender, conn_error) = self.connect(upgrades).await?;
        match sender.send_request(req).await {
            Ok(resp) => Ok(resp),
            Err(e) => {
                let why = tokio::time::timeout(Duration::from_millis(200), conn_error)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_else(|| chain(&e));
                let hint = match &self.transport {
                    Transport::Tcp { tls: Some(_), .. } if why.contains("alert") => {
                        " (the daemon refused this client's certificate: is it signed by the daemon's CA?)"
                    }
                    Transport::Tcp { tls: None, .. } if why.contains("invalid HTTP version") => {
                        " (does the daemon want TLS? add --tlsverify)"
                    }
                    _ => "",
                };
                Err(ClientError::Transport(format!("{why}{hint}")))
            }
        }
    }

    async fn connect(&self, upgrades: bool) -> Result<(Sender, ConnError), ClientError> {
        let no_daemon = |e: std::io::Error| ClientError::NoDaemon {
            host: self.host.clone(),
            reason: e.to_string(),
        };
        match &self.transport {
            Transport::Unix(socket) => {
                let stream = tokio::net::UnixStream::connect(socket)
                    .await
                    .map_err(no_daemon)?;
                // A larger send buffer lets a streamed body (load, import,
                // build context) go in 1 MiB writes instead of ~200 KiB
                // ones, each a wake-up of both ends; the kernel caps it at
                // net.core.wmem_max, and a refusal only keeps the default.
                let _ = nix::sys::socket::setsockopt(
                    &stream,
                    nix::sys::socket::sockopt::SndBuf,
                    &SEND_BUFFER,
                );
                handshake(stream, upgrades).await
            }
            Transport::Tcp { addr, tls } => {
                let timed_out = || ClientError::NoDaemon {
                    host: self.host.clone(),
                    reason: format!("no answer within {:?}", self.connect_timeout),
                };
                let stream = tokio::time::timeout(
                    self.connect_timeout,
                    tokio::net::TcpStream::connect(addr),
                )
                .await
                .map_err(|_| timed_out())?
                .map_err(no_daemon)?;
                let _ = stream.set_nodelay(true);
                match tls {
                    None => handshake(stream, upgrades).await,
                    Some(tls) => {
                        let connect = tls.connector.connect(tls.name.clone(), stream);
                        let stream = tokio::time::timeout(self.connect_timeout, connect)
                            .await
                            .map_err(|_| timed_out())?
                            .map_err(|e| ClientError::Tls {
                                host: self.host.clone(),
                                reason: e.to_string(),
                            })?;
                        handshake(stream, upgrades).await
                    }
                }
            }
        }
    }

    /// Send and decode a JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
    ) -> Result<T, ClientError> {
        let resp = self.send(method, path, None, empty()).await?;
        let bytes = read_all(resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `POST` without a body and ignore the answer's body.
    pub async fn post(&self, path: &str) -> Result<(), ClientError> {
        let resp = self.send(Method::POST, path, None, empty()).await?;
        read_all(resp).await?;
        Ok(())
    }

    /// `GET` and decode.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.json(Method::GET, path).await
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Body>;
/// The error the connection task ended with, if it failed.
type ConnError = tokio::sync::oneshot::Receiver<String>;

/// An error with its sources, one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !msg.contains(&m) {
            msg.push_str(": ");
            msg.push_str(&m);
        }
        cur = s.source();
    }
    msg
}

/// HTTP/1.1 over an open connection; the connection is driven by a task.
async fn handshake<I>(io: I, upgrades: bool) -> Result<(Sender, ConnError), ClientError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let r = if upgrades {
            conn.with_upgrades().await
        } else {
            conn.await
        };
        if let Err(e) = r {
            let _ = tx.send(chain(&e));
        }
    });
    Ok((sender, rx))
}

/// `HOST[:PORT]` (IPv6 in brackets) with the default port filled in.
fn split_host_port(s: &str, tls: bool) -> Option<(&str, u16)> {
    let default = if tls {
        DEFAULT_TLS_PORT
    } else {
        DEFAULT_TCP_PORT
    };
    let (name, port) = if let Some(rest) = s.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        match after.strip_prefix(':') {
            Some(p) => (name, p.parse().ok()?),
            None if after.is_empty() => (name, default),
            None => return None,
        }
    } else {
        match s.rsplit_once(':') {
            Some((name, p)) if !name.contains(':') => (name, p.parse().ok()?),
            Some(_) => return None,
            None => (s, default),
        }
    };
    if name.is_empty() || name.contains(['/', '@', ' ']) {
        return None;
    }
    Some((name, port))
}

/// Read PEM certificates (at least one) from `path`.
pub fn load_certs(
    path: &Path,
) -> Result<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>, String> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("certificates in {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no CERTIFICATE block in {}", path.display()));
    }
    Ok(certs)
}

/// Read a PEM private key from `path`.
pub fn load_key(
    path: &Path,
) -> Result<tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>, String> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    tokio_rustls::rustls::pki_types::PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("private key in {}: {e}", path.display()))
}

/// Client TLS: trust only `ca`, present `cert`/`key` (ring provider).
fn tls_client_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Arc<tokio_rustls::rustls::ClientConfig>, ClientError> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) =
        roots.add_parsable_certificates(load_certs(ca).map_err(ClientError::Credentials)?);
    if added == 0 {
        return Err(ClientError::Credentials(format!(
            "no usable CA certificate in {}",
            ca.display()
        )));
    }
    let chain = load_certs(cert).map_err(ClientError::Credentials)?;
    let key = load_key(key).map_err(ClientError::Credentials)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Credentials(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| ClientError::Credentials(format!("{}: {e}", cert.display())))?;
    Ok(Arc::new(config))
}

/// Turn a non-2xx answer into [`ClientError::Api`] with Docker's message.
async fn check(
    resp: hyper::Response<hyper::body::Incoming>,
) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let bytes = read_all(resp).await?;
    let message = serde_json::from_slice::<ErrorBody>(&bytes)
        .map(|e| e.message)
        .unwrap_or_else(|_| format!("{status}: {}", String::from_utf8_lossy(&bytes).trim()));
    Err(ClientError::Api { status, message })
}

/// Read a whole answer body.
pub async fn read_all(resp: hyper::Response<hyper::body::Incoming>) -> Result<Bytes, ClientError> {
    resp.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ClientError::Transport(e.to_string()))
}

/// `&repo=NAME&tag=TAG` for an optional `REPO[:TAG]` (validated here, so a
/// bad name fails before anything is sent), then `&changes=` for each
/// Dockerfile instruction: the query tail of import, commit and tag.
pub fn repo_tag_changes_query(
    reference: Option<&str>,
    changes: &[String],
) -> Result<String, crate::types::ReferenceError> {
    let mut q = String::new();
    if let Some(r) = reference {
        let r = crate::types::Reference::parse(r)?;
        q.push_str(&format!(
            "&repo={}&tag={}",
            enc(&r.familiar_name()),
            enc(r.tag().unwrap_or("latest"))
        ));
    }
    for ch in changes {
        q.push_str(&format!("&changes={}", enc(ch)));
    }
    Ok(q)
}

/// Percent-encode a query value or path segment.
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Percent-encode an image or container name for a URL path, keeping the
/// `/` and `:` that Docker leaves readable.
pub fn enc_path(s: &str) -> String {
    s.split('/')
        .map(|seg| enc(seg).replace("%3A", ":").replace('+', "%20"))
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse() {
        assert_eq!(
            split_host_port("10.0.0.1:99", false),
            Some(("10.0.0.1", 99))
        );
        assert_eq!(split_host_port("h", true), Some(("h", 2376)));
        assert_eq!(split_host_port("h", false), Some(("h", 2375)));
        assert_eq!(split_host_port("[::1]:5", false), Some(("::1", 5)));
        assert_eq!(split_host_port("[::1]", true), Some(("::1", 2376)));
        assert_eq!(split_host_port("::1", true), None);
        assert_eq!(split_host_port(":5", true), None);
        assert_eq!(split_host_port("h:x", true), None);
        assert!(Client::new("tcp://127.0.0.1:1").is_ok());
        assert!(Client::new("unix://rel").is_err());
        assert!(Client::new("http://x").is_err());
    }

    #[test]
    fn token_is_never_printed() {
        let auth = ClientAuth::Token("s3cr3t-tok".into());
        assert!(!format!("{auth:?}").contains("s3cr3t"));
        let c = Client::with_auth("tcp://127.0.0.1:1", auth).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
