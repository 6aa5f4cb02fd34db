//! Streams to clients: the attach/exec hijack (`Upgrade: tcp`) bridged to a
//! shim socket, Docker's 8-byte multiplexed framing, and follow-mode logs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use super::ApiError;
use crate::engine::Engine;
use crate::runtime::{Frame, LogRecord};

/// Docker's stream types in the multiplexed framing.
pub const STDOUT: u8 = 1;
/// stderr.
pub const STDERR: u8 = 2;

/// One multiplexed frame: `[type, 0, 0, 0, len u32 BE] + data`.
pub fn mux(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.len());
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// A log record as the client receives it (raw for tty, framed otherwise).
pub fn log_bytes(r: &LogRecord, tty: bool, timestamps: bool) -> Vec<u8> {
    let mut data = Vec::new();
    if timestamps {
        data.extend_from_slice(r.time.as_bytes());
        data.push(b' ');
    }
    data.extend_from_slice(r.log.as_bytes());
    if tty {
        data
    } else {
        mux(if r.stream == "stderr" { STDERR } else { STDOUT }, &data)
    }
}

/// Which streams a hijacked session carries.
#[derive(Debug, Clone, Copy)]
pub struct Wiring {
    /// Forward the client's bytes to the process's stdin.
    pub stdin: bool,
    /// Send stdout.
    pub stdout: bool,
    /// Send stderr.
    pub stderr: bool,
    /// Raw tty bytes instead of framing.
    pub tty: bool,
}

/// The 101 answer of a hijacked endpoint; the session runs in `session`.
pub fn hijack<F, Fut>(req: Request, tty: bool, session: F) -> Result<Response, ApiError>
where
    F: FnOnce(TokioIo<hyper::upgrade::Upgraded>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    if !req.headers().contains_key(header::UPGRADE) {
        return Err(ApiError::bad_request(
            "this endpoint needs a hijacked connection (Connection: Upgrade, Upgrade: tcp)",
        ));
    }
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => session(TokioIo::new(up)).await,
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    Ok(resp)
}

/// Connect to a shim socket, however long its path (unix socket addresses
/// hold 108 bytes; deep data roots go through `/proc/self/fd/N/NAME`).
pub fn connect_shim(path: &std::path::Path) -> std::io::Result<UnixStream> {
    let s = crate::runtime::shim::short_path(path, |p| std::os::unix::net::UnixStream::connect(p))?;
    s.set_nonblocking(true)?;
    UnixStream::from_std(s)
}

/// Wait for a container's shim socket: the container may not be running
/// yet (`docker run` and `docker start -a` attach before they start it).
/// Gives up when the container is removed, or when the run we waited for
/// is over (its exit, or a failed start, is counted in the exit events).
/// `events` must be subscribed before the client can start the container.
pub async fn connect_container(
    engine: Arc<Engine>,
    id: String,
    mut events: tokio::sync::watch::Receiver<crate::engine::ExitEvents>,
) -> Option<UnixStream> {
    let sock: PathBuf = engine.store().container_dir(&id).join("shim.sock");
    let start = *events.borrow_and_update();
    loop {
        if let Ok(s) = connect_shim(&sock) {
            return Some(s);
        }
        let now = *events.borrow();
        if now.removed || now.exits > start.exits {
            return connect_shim(&sock).ok();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Bridge a hijacked client and a shim socket until the process exits or
/// the client goes away.
pub async fn bridge<C>(client: C, shim: UnixStream, w: Wiring)
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim.into_split();
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) if w.stdin => {
                    if sw
                        .write_all(&Frame::Stdin(buf[..n].to_vec()).encode())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
            }
        }
        // The client's end of input closes a pipe stdin (`echo x | run -i`);
        // a tty's stays open, as Docker leaves it on detach.
        if w.stdin && !w.tty {
            let _ = sw.write_all(&Frame::CloseStdin.encode()).await;
        }
        // Keep the write half open: closing it could look like a detach.
        std::future::pending::<()>().await;
    });
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    'outer: loop {
        let n = match sr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Ok(Some((frame, used))) = Frame::decode(&pending) {
            pending.drain(..used);
            let out: Option<Vec<u8>> = match frame {
                Frame::Stdout(d) if w.stdout => Some(if w.tty { d } else { mux(STDOUT, &d) }),
                Frame::Stderr(d) if w.stderr => Some(if w.tty { d } else { mux(STDERR, &d) }),
                Frame::Exit { .. } => break 'outer,
                _ => None,
            };
            if let Some(bytes) = out {
                if cw.write_all(&bytes).await.is_err() {
                    break 'outer;
                }
            }
        }
    }
    let _ = cw.flush().await;
    let _ = cw.shutdown().await;
    input.abort();
}

/// Send one control frame (resize, signal) to a shim socket.
pub async fn send_frame(sock: PathBuf, frame: Frame) -> Result<(), ApiError> {
    let mut s = connect_shim(&sock).map_err(|e| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("cannot reach the container's process: {e}"),
        )
    })?;
    s.write_all(&frame.encode())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(())
}

/// A streamed body fed by a channel.
pub fn channel_body(rx: tokio::sync::mpsc::Receiver<Vec<u8>>) -> Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::io::Error>(Bytes::from(b)), rx))
    });
    Body::from_stream(stream)
}

/// A response of known length whose body `write` produces on a blocking
/// thread (in 1 MiB chunks); an error after the headers went out ends the
/// body early (the client sees a short read) and is logged as `what`.
pub fn sized_stream<E: std::fmt::Display>(
    content_type: &'static str,
    size: u64,
    what: &'static str,
    write: impl FnOnce(ChunkWriter) -> Result<(), E> + Send + 'static,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    tokio::task::spawn_blocking(move || {
        let out = ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        if let Err(err) = write(out) {
            tracing::warn!(error = %err, "{what} ended early");
        }
    });
    (
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_string()),
            (axum::http::header::CONTENT_LENGTH, size.to_string()),
        ],
        channel_body(rx),
    )
        .into_response()
}

/// Bytes of a [`ChunkWriter`] chunk.
const CHUNK: usize = 1 << 20;

/// A buffered `Write` that feeds an HTTP body from a blocking thread: its
/// buffer itself becomes the body's next chunk (one copy of the data, where
/// a `BufWriter` over a [`ChannelWriter`] makes two). What is left is sent
/// on `flush` or drop.
pub struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self, chunk: Vec<u8>) -> std::io::Result<()> {
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.is_empty() && data.len() >= CHUNK {
            self.send(data.to_vec())?;
            return Ok(data.len());
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.send(full)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            self.send(rest)?;
        }
        Ok(())
    }
}

impl Drop for ChunkWriter {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

/// A `Write` that feeds an HTTP body from a blocking thread.
pub struct ChannelWriter(pub tokio::sync::mpsc::Sender<Vec<u8>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(buf.to_vec())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
