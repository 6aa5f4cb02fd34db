//! `amber daemon`: open the engine, listen on unix sockets (and on TCP with
//! authentication, see [`super::remote`]), serve the API until
//! SIGTERM/SIGINT, then remove the sockets.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tower::Layer;

use super::remote;

use crate::engine::{Engine, EngineOptions};

/// The default API socket.
pub const DEFAULT_SOCKET: &str = "/run/amber/amber.sock";
/// The default data root.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/amber";
/// How long a shutdown waits for open requests.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);
/// Socket file mode: owner and group may connect.
const SOCKET_MODE: u32 = 0o660;

/// Options of `amber daemon`.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Data root directory.
    pub data_root: PathBuf,
    /// Listen addresses (`unix:///path`, `tcp://ADDR:PORT`).
    pub hosts: Vec<String>,
    /// How TCP clients authenticate.
    pub remote: super::remote::RemoteAuth,
    /// Cgroup parent of every container.
    pub cgroup_parent: String,
    /// Registry settings from daemon.json.
    pub registry: crate::registry::client::RegistryConfig,
    /// The default bridge network.
    pub net: crate::net::NetOptions,
}

/// Parse `unix:///path` (or a bare absolute path) into a socket path.
pub fn unix_path(host: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = host.strip_prefix("unix://") {
        if p.starts_with('/') {
            return Ok(PathBuf::from(p));
        }
    } else if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    bail!("invalid host {host:?}: expected unix:///PATH or tcp://ADDR:PORT")
}

/// Run the daemon until a termination signal.
pub async fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    // Credentials first: a bad token file or certificate is refused before
    // anything is bound.
    let has_tcp = opts.hosts.iter().any(|h| remote::is_tcp(h));
    let auth = if has_tcp {
        Some(remote::prepare(&opts.remote)?)
    } else {
        None
    };
    // Bind first: a socket in use is refused before the data root is touched.
    let mut listeners = Vec::new();
    let mut tcp_listeners = Vec::new();
    for host in &opts.hosts {
        if let (true, Some(auth)) = (remote::is_tcp(host), &auth) {
            match remote::bind(host, auth).await {
                Ok(l) => tcp_listeners.push((l, host.clone())),
                Err(e) => {
                    remove_sockets(&listeners);
                    return Err(e.into());
                }
            }
            continue;
        }
        let bound = unix_path(host).and_then(|path| Ok((bind(&path)?, path)));
        match bound {
            Ok(l) => listeners.push(l),
            Err(e) => {
                remove_sockets(&listeners);
                return Err(e);
            }
        }
    }
    let registry = opts.registry.clone();
    let engine_opts = EngineOptions {
        data_root: opts.data_root.clone(),
        cgroup_parent: opts.cgroup_parent.clone(),
        registry,
        net: opts.net.clone(),
    };
    let opened = tokio::task::spawn_blocking(move || Engine::open(&engine_opts)).await?;
    let engine = match opened {
        Ok(e) => e,
        Err(e) => {
            remove_sockets(&listeners);
            return Err(anyhow!(super::error_chain(&e)));
        }
    };
    let socket_paths: Vec<PathBuf> = listeners.iter().map(|(_, p)| p.clone()).collect();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for (listener, path) in listeners {
        tracing::info!(path = %path.display(), data_root = %opts.data_root.display(), "API listening");
        let served = serve(listener, app(&engine, None), stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            let served = served.await;
            let _ = std::fs::remove_file(&path);
            served
        }));
    }
    for (listener, host) in tcp_listeners {
        let token = auth.as_ref().and_then(|a| a.token());
        let kind = auth.as_ref().map_or("none", |a| a.kind());
        tracing::info!(%host, auth = kind, data_root = %opts.data_root.display(), "API listening");
        let app = app(&engine, token);
        tasks.push(match listener {
            remote::RemoteListener::Plain(tcp) => {
                use axum::serve::ListenerExt;
                // Small answers must not wait for Nagle.
                let tcp = tcp.tap_io(|s| {
                    let _ = s.set_nodelay(true);
                });
                tokio::spawn(serve(tcp, app, stop_rx.clone()))
            }
            remote::RemoteListener::Tls(tls) => tokio::spawn(serve(tls, app, stop_rx.clone())),
        });
    }
    wait_for_signal().await?;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    // Long requests (wait, logs -f, attach) would hold a graceful shutdown
    // forever: give them a moment, then go. Containers keep running under
    // their shims either way.
    let all = futures_util::future::join_all(tasks);
    match tokio::time::timeout(SHUTDOWN_GRACE, all).await {
        Ok(results) => {
            for r in results {
                r??;
            }
        }
        Err(_) => tracing::info!("open connections remain after the grace period; exiting anyway"),
    }
    remove_paths(&socket_paths);
    let _ = tokio::task::spawn_blocking(move || engine.shutdown_network()).await;
    Ok(())
}

/// The API service: version negotiation around the routes, and the token
/// check around both when the listener needs one.
fn app(engine: &std::sync::Arc<Engine>, token: Option<remote::TokenDigest>) -> axum::Router {
    let api =
        axum::middleware::from_fn(super::version::negotiate).layer(super::router(engine.clone()));
    match token {
        Some(t) => axum::Router::new().fallback_service(
            axum::middleware::from_fn_with_state(t, remote::require_token).layer(api),
        ),
        None => axum::Router::new().fallback_service(api),
    }
}

/// Serve `app` on `listener` until `stop` turns true.
fn serve<L>(
    listener: L,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> impl std::future::Future<Output = std::io::Result<()>> + Send
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    use std::future::IntoFuture;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stop| *stop).await;
        })
        .into_future()
}

fn remove_sockets(listeners: &[(UnixListener, PathBuf)]) {
    for (_, path) in listeners {
        let _ = std::fs::remove_file(path);
    }
}

fn remove_paths(paths: &[PathBuf]) {
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Bind a unix socket, replacing a stale one but never a live one.
fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create socket directory {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!(
                    "socket {} is in use by another process (is another amber daemon running?)",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("failed to remove stale socket {}", path.display()))?;
        }
        Ok(_) => bail!(
            "{} exists and is not a socket; remove it or choose another -H",
            path.display()
        ),
        Err(_) => {}
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("failed to listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .with_context(|| format!("failed to set the mode of {}", path.display()))?;
    Ok(listener)
}
