//! The HTTP client of the daemon's API, over a unix socket.

use std::path::PathBuf;

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
    #[error("invalid host {0:?}: expected unix:///PATH")]
    BadHost(String),
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

/// A client for one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    socket: PathBuf,
}

impl Client {
    /// Address the daemon at `host` (`unix:///path`).
    pub fn new(host: &str) -> Result<Client, ClientError> {
        let socket = match host.strip_prefix("unix://") {
            Some(p) if p.starts_with('/') => PathBuf::from(p),
            _ if host.starts_with('/') => PathBuf::from(host),
            _ => return Err(ClientError::BadHost(host.to_string())),
        };
        Ok(Client {
            host: host.to_string(),
            socket,
        })
    }

    /// The address this client was made for.
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
        let mut sender = self.connect(false).await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
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
        let mut sender = self.connect(false).await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
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
        let mut sender = self.connect(true).await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
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

    async fn connect(
        &self,
        upgrades: bool,
    ) -> Result<hyper::client::conn::http1::SendRequest<Body>, ClientError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| ClientError::NoDaemon {
                host: self.host.clone(),
                reason: e.to_string(),
            })?;
        // A larger send buffer lets a streamed body (load, import, build
        // context) go in 1 MiB writes instead of ~200 KiB ones, each a
        // wake-up of both ends; the kernel caps it at net.core.wmem_max, and
        // a refusal only keeps the default.
        let _ =
            nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::SndBuf, &SEND_BUFFER);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if upgrades {
            tokio::spawn(async move {
                let _ = conn.with_upgrades().await;
            });
        } else {
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
        Ok(sender)
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
