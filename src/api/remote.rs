//! The API over TCP (`amber daemon -H tcp://ADDR:PORT`): the same router as
//! the unix sockets, behind authentication — mutual TLS (Docker's
//! `--tlsverify --tlscacert --tlscert --tlskey`) or a bearer token
//! (`--auth-token-file`). Without either, only loopback addresses are
//! served.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_rustls::rustls::{self, server::WebPkiClientVerifier, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::cli::client::{load_certs, load_key, DEFAULT_TCP_PORT, DEFAULT_TLS_PORT};
use crate::registry::server::tls::TlsListener;

/// The daemon's side of a mutual TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// CA that client certificates must chain to.
    pub ca: PathBuf,
    /// The daemon's certificate chain.
    pub cert: PathBuf,
    /// The daemon's private key.
    pub key: PathBuf,
}

/// How TCP clients must authenticate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteAuth {
    /// Mutual TLS.
    pub tls: Option<ServerTls>,
    /// A file holding the bearer token (first line).
    pub token_file: Option<PathBuf>,
}

/// Why the TCP API cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Not `tcp://HOST:PORT`.
    #[error("invalid host {0:?}: expected tcp://ADDR:PORT")]
    BadHost(String),
    /// The name did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The `-H` value.
        host: String,
        /// Why.
        reason: String,
    },
    /// No authentication on an address others can reach.
    #[error("refusing to listen on {host} without authentication: {addr} is not a loopback address, so anyone who reaches it could run anything as root here; add --tlsverify --tlscacert CA --tlscert CERT --tlskey KEY (mutual TLS; `amber cluster certs` makes them) or --auth-token-file FILE, or listen on 127.0.0.1")]
    Unauthenticated {
        /// The `-H` value.
        host: String,
        /// The offending address.
        addr: SocketAddr,
    },
    /// Both kinds of authentication were given.
    #[error("--auth-token-file and --tlsverify are alternatives: give one")]
    Both,
    /// The token file cannot be used.
    #[error("token file {}: {reason}", path.display())]
    Token {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A CA, certificate or key cannot be used.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The address cannot be bound.
    #[error("failed to listen on {host}: {source}")]
    Bind {
        /// The `-H` value.
        host: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A token's digest: compared in constant time, and never the token itself
/// in memory longer than the start takes.
#[derive(Clone)]
pub struct TokenDigest([u8; 32]);

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(<redacted>)")
    }
}

impl TokenDigest {
    fn of(token: &[u8]) -> TokenDigest {
        TokenDigest(Sha256::digest(token).into())
    }

    /// Whether `token` is the one (constant time: digests of equal length).
    fn matches(&self, token: &[u8]) -> bool {
        let other = TokenDigest::of(token);
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Authentication ready to serve: the TLS acceptor and/or the token.
#[derive(Clone)]
pub struct Prepared {
    acceptor: Option<TlsAcceptor>,
    token: Option<TokenDigest>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl Prepared {
    /// "mtls", "token" or "none", for the log.
    pub fn kind(&self) -> &'static str {
        match (&self.acceptor, &self.token) {
            (Some(_), _) => "mtls",
            (None, Some(_)) => "token",
            (None, None) => "none",
        }
    }

    /// The token check, if any, to wrap the TCP router in.
    pub fn token(&self) -> Option<TokenDigest> {
        self.token.clone()
    }
}

/// Load the TLS files and the token file (checking its mode).
pub fn prepare(auth: &RemoteAuth) -> Result<Prepared, RemoteError> {
    if auth.tls.is_some() && auth.token_file.is_some() {
        return Err(RemoteError::Both);
    }
    let acceptor = auth.tls.as_ref().map(acceptor).transpose()?;
    let token = auth.token_file.as_deref().map(read_token).transpose()?;
    Ok(Prepared { acceptor, token })
}

fn read_token(path: &Path) -> Result<TokenDigest, RemoteError> {
    let bad = |reason: String| RemoteError::Token {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(bad(format!(
            "other users may read it (mode {mode:04o}): run `chmod 600 {}`",
            path.display()
        )));
    }
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let line = text.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let token = line.trim_ascii();
    if token.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if token.len() < 16 {
        return Err(bad("the token is shorter than 16 characters".into()));
    }
    Ok(TokenDigest::of(token))
}

fn acceptor(tls: &ServerTls) -> Result<TlsAcceptor, RemoteError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let (added, _) =
        roots.add_parsable_certificates(load_certs(&tls.ca).map_err(RemoteError::Tls)?);
    if added == 0 {
        return Err(RemoteError::Tls(format!(
            "no usable CA certificate in {}",
            tls.ca.display()
        )));
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| RemoteError::Tls(format!("client verifier: {e}")))?;
    let chain = load_certs(&tls.cert).map_err(RemoteError::Tls)?;
    let key = load_key(&tls.key).map_err(RemoteError::Tls)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RemoteError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| RemoteError::Tls(format!("{}: {e}", tls.cert.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A bound TCP listener, with TLS or without.
pub enum RemoteListener {
    /// Plain TCP (token or loopback without authentication).
    Plain(TcpListener),
    /// Mutual TLS.
    Tls(TlsListener),
}

/// Whether `host` is a `tcp://` address.
pub fn is_tcp(host: &str) -> bool {
    host.starts_with("tcp://")
}

/// Resolve `tcp://HOST[:PORT]` (default port 2376 with TLS, else 2375).
pub async fn resolve(host: &str, tls: bool) -> Result<Vec<SocketAddr>, RemoteError> {
    let rest = host
        .strip_prefix("tcp://")
        .ok_or_else(|| RemoteError::BadHost(host.to_string()))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let default = if tls {
        DEFAULT_TLS_PORT
    } else {
        DEFAULT_TCP_PORT
    };
    let with_port = if rest.starts_with('[') {
        if rest.ends_with(']') {
            format!("{rest}:{default}")
        } else {
            rest.to_string()
        }
    } else {
        match rest.matches(':').count() {
            0 => format!("{rest}:{default}"),
            1 => rest.to_string(),
            _ => return Err(RemoteError::BadHost(host.to_string())),
        }
    };
    if rest.is_empty() || rest.starts_with(':') || rest.contains(['/', '@', ' ']) {
        return Err(RemoteError::BadHost(host.to_string()));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| RemoteError::Resolve {
            host: host.to_string(),
            reason: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(RemoteError::Resolve {
            host: host.to_string(),
            reason: "no address".into(),
        });
    }
    Ok(addrs)
}

/// Resolve and bind `host`; without authentication only loopback
/// addresses are allowed (and a warning is logged).
pub async fn bind(host: &str, auth: &Prepared) -> Result<RemoteListener, RemoteError> {
    let addrs = resolve(host, auth.acceptor.is_some()).await?;
    if auth.kind() == "none" {
        if let Some(addr) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(RemoteError::Unauthenticated {
                host: host.to_string(),
                addr: *addr,
            });
        }
        tracing::warn!(
            host,
            "serving the API on TCP without authentication: every local user can control amber; use --tlsverify or --auth-token-file"
        );
    }
    let tcp = TcpListener::bind(&addrs[..])
        .await
        .map_err(|source| RemoteError::Bind {
            host: host.to_string(),
            source,
        })?;
    Ok(match &auth.acceptor {
        Some(a) => RemoteListener::Tls(TlsListener::new(tcp, a.clone())),
        None => RemoteListener::Plain(tcp),
    })
}

/// The middleware of token mode: `Authorization: Bearer TOKEN` or 401.
/// The header is removed before the request goes on, so no handler can
/// see (or log) it.
pub async fn require_token(
    State(token): State<TokenDigest>,
    mut req: Request,
    next: Next,
) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
        .is_some_and(|(_, t)| token.matches(t.trim().as_bytes()));
    req.headers_mut().remove(header::AUTHORIZATION);
    if ok {
        return next.run(req).await;
    }
    tracing::debug!(path = %req.uri().path(), "request without a valid bearer token refused");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"amber\"")],
        axum::Json(crate::types::api::ErrorBody {
            message: "authentication required: this daemon needs a bearer token (amber --token-file FILE)".into(),
        }),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_digest_compares() {
        let t = TokenDigest::of(b"0123456789abcdef");
        assert!(t.matches(b"0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcdeF"));
        assert!(!t.matches(b""));
        assert!(!format!("{t:?}").contains("0123"));
    }

    #[test]
    fn token_file_mode_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token(&f).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_token(&f).unwrap().matches(b"0123456789abcdef0123"));
        std::fs::write(&f, "short").unwrap();
        assert!(read_token(&f).is_err());
    }

    #[tokio::test]
    async fn loopback_only_without_auth() {
        let none = prepare(&RemoteAuth::default()).unwrap();
        let e = bind("tcp://0.0.0.0:0", &none)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("without authentication"), "{e}");
        assert!(bind("tcp://127.0.0.1:0", &none).await.is_ok());
        assert!(resolve("tcp://a:b:c", false).await.is_err());
        assert_eq!(
            resolve("tcp://127.0.0.1", true).await.unwrap()[0].port(),
            2376
        );
    }
}
