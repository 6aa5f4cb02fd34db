//! `amber registry serve`: an OCI distribution-spec registry over HTTP or
//! HTTPS, storing into its own data directory (see [`storage`]); and
//! `amber registry gc` (see [`gc`]).
//!
//! Must not touch the daemon's data root or engine: it is a standalone
//! server, run in the foreground until SIGINT/SIGTERM.

mod auth;
mod blobs;
mod error;
pub mod gc;
mod listing;
mod manifests;
mod routes;
pub mod storage;
pub(crate) mod tls;
mod uploads;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderMap};
use sha2::Sha256;

pub use auth::{Auth, AuthError};
pub use error::RegistryError;
pub use manifests::MAX_MANIFEST_SIZE;
pub use storage::{Access, Storage, StorageError};

/// Default listen address (Docker's `registry:2` port, loopback only).
pub const DEFAULT_ADDR: &str = "127.0.0.1:5000";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/amber/registry";
/// How long open connections may finish after a stop signal.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// What `amber registry serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Data directory.
    pub data: PathBuf,
    /// htpasswd file (bcrypt entries) for Basic auth.
    pub htpasswd: Option<PathBuf>,
    /// File of static bearer tokens, one per line.
    pub token_file: Option<PathBuf>,
    /// PEM certificate chain and key for HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Refuse every write.
    pub read_only: bool,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Credentials could not be loaded.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Binding, serving or signal handling failed.
    #[error("failed to {op} on {addr}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The listen address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The running digest of an upload: valid while `offset` equals the size of
/// its data file.
pub(crate) struct RunningHash {
    /// Bytes hashed so far.
    pub offset: u64,
    /// The hash state over them.
    pub hasher: Sha256,
}

/// What every handler shares.
pub(crate) struct AppState {
    /// The data directory.
    pub storage: Arc<Storage>,
    /// How requests authenticate.
    pub auth: Arc<Auth>,
    /// Refuse writes.
    pub read_only: bool,
    /// Served over HTTPS (for the token realm URL).
    tls: bool,
    /// One lock per upload id (serializes chunks), holding its running hash.
    uploads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<RunningHash>>>>>,
}

impl AppState {
    /// The lock of upload `id`.
    pub fn upload_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<Option<RunningHash>>> {
        let mut map = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string()).or_default().clone()
    }

    /// Drop the lock of a finished or cancelled upload.
    pub fn forget_upload(&self, id: &str) {
        let mut map = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }

    /// Size of blob `digest` if repository `name` holds it.
    pub async fn blob_in_repo(
        &self,
        name: &str,
        digest: &crate::types::Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let (s, n, d) = (self.storage.clone(), name.to_string(), digest.clone());
        Ok(tokio::task::spawn_blocking(move || s.blob_in_repo(&n, &d)).await??)
    }

    /// The URL of the bearer token endpoint, as the client reached us.
    pub fn token_realm(&self, headers: &HeaderMap) -> String {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{host}/token")
    }
}

/// Build the HTTP service over an opened data directory.
pub fn router(storage: Storage, auth: Auth, read_only: bool, tls: bool) -> axum::Router {
    let state = Arc::new(AppState {
        storage: Arc::new(storage),
        auth: Arc::new(auth),
        read_only,
        tls,
        uploads: Mutex::new(HashMap::new()),
    });
    axum::Router::new()
        .fallback(routes::handle)
        .with_state(state)
}

/// Serve until SIGINT or SIGTERM.
pub async fn run(opts: ServeOptions) -> Result<(), ServeError> {
    // Credentials and certificates first: a typo fails before anything is
    // created or bound.
    let auth = match (&opts.htpasswd, &opts.token_file) {
        (Some(p), _) => Auth::htpasswd(p)?,
        (None, Some(p)) => Auth::tokens(p)?,
        (None, None) => Auth::None,
    };
    let tls = match &opts.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    let data = opts.data.clone();
    let access = if opts.read_only {
        Access::Shared
    } else {
        Access::Write
    };
    let storage = tokio::task::spawn_blocking(move || Storage::open(&data, access))
        .await
        .map_err(|e| io_error("open the data directory", opts.addr, e))??;
    let io = |op| {
        move |source| ServeError::Io {
            op,
            addr: opts.addr,
            source,
        }
    };
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(io("listen"))?;
    let local = listener.local_addr().map_err(io("listen"))?;
    let app = router(storage, auth, opts.read_only, tls.is_some());
    // Handlers before the "listening" line: whoever waits for that line
    // may signal at once.
    let stop = shutdown_signal().map_err(io("install signal handlers"))?;
    tracing::info!(
        addr = %local,
        path = %opts.data.display(),
        tls = tls.is_some(),
        read_only = opts.read_only,
        auth = auth_kind(&opts),
        "registry listening"
    );
    serve_until(listener, tls, app, stop)
        .await
        .map_err(io("serve"))
}

/// Serve on `listener` (through TLS when given) until `stop`, then give
/// open requests [`SHUTDOWN_GRACE`] to finish.
async fn serve_until(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    use std::future::IntoFuture;
    let (stopped_tx, mut stopped_rx) = tokio::sync::watch::channel(false);
    let graceful = async move {
        let _ = stopped_rx.wait_for(|s| *s).await;
    };
    let served = match tls {
        Some(acceptor) => {
            let listener = tls::TlsListener::new(listener, acceptor);
            tokio::spawn(
                axum::serve(listener, app)
                    .with_graceful_shutdown(graceful)
                    .into_future(),
            )
        }
        None => {
            // Small answers (HEAD, 201) must not wait for Nagle.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            tokio::spawn(
                axum::serve(listener, app)
                    .with_graceful_shutdown(graceful)
                    .into_future(),
            )
        }
    };
    stop.await;
    tracing::info!("shutting down");
    let _ = stopped_tx.send(true);
    match tokio::time::timeout(SHUTDOWN_GRACE, served).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(std::io::Error::other(e)),
        Err(_) => {
            tracing::info!("open connections remain after the grace period; exiting anyway");
            Ok(())
        }
    }
}

fn io_error(op: &'static str, addr: SocketAddr, e: impl std::fmt::Display) -> ServeError {
    ServeError::Io {
        op,
        addr,
        source: std::io::Error::other(e.to_string()),
    }
}

fn auth_kind(opts: &ServeOptions) -> &'static str {
    match (&opts.htpasswd, &opts.token_file) {
        (Some(_), _) => "htpasswd",
        (None, Some(_)) => "token",
        (None, None) => "none",
    }
}

/// A future that completes on SIGINT or SIGTERM (handlers installed now,
/// so a signal right after start is not lost).
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
