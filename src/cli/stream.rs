//! The client side of container streams: Docker's 8-byte multiplexed
//! framing, copying a hijacked attach/exec session to our stdio, the
//! terminal in raw mode, resizes on SIGWINCH and the signal proxy.
//!
//! Framing: <https://docs.docker.com/engine/api/v1.45/#tag/Container/operation/ContainerAttach>
//! (`[stream, 0, 0, 0, size u32 BE]` then `size` bytes).

use std::io::IsTerminal;
use std::os::fd::AsFd;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;

use super::client::Client;

/// Stream type of stdout in a frame header.
pub const STDOUT: u8 = 1;
/// Stream type of stderr in a frame header.
pub const STDERR: u8 = 2;

/// Incremental decoder of Docker's multiplexed frames.
#[derive(Debug, Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    /// Append bytes read from the connection.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame: (stream type, payload).
    pub fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        if self.buf.len() < 8 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return None;
        }
        let kind = self.buf[0];
        let data = self.buf[8..8 + len].to_vec();
        self.buf.drain(..8 + len);
        Some((kind, data))
    }
}

/// Copy a stream to our stdout/stderr: raw for a tty, de-multiplexed
/// otherwise. Returns at end of stream.
pub async fn copy_output<R: AsyncRead + Unpin>(mut r: R, tty: bool) -> std::io::Result<()> {
    let mut out = tokio::io::stdout();
    let mut err = tokio::io::stderr();
    let mut demux = Demux::default();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if tty {
            out.write_all(&buf[..n]).await?;
            out.flush().await?;
            continue;
        }
        demux.push(&buf[..n]);
        while let Some((kind, data)) = demux.next_frame() {
            if kind == STDERR {
                err.write_all(&data).await?;
                err.flush().await?;
            } else {
                out.write_all(&data).await?;
                out.flush().await?;
            }
        }
    }
    Ok(())
}

/// An HTTP answer's body as an `AsyncRead` (logs, archives).
pub fn body_reader(resp: hyper::Response<hyper::body::Incoming>) -> impl AsyncRead + Send + Unpin {
    let s = resp
        .into_body()
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other));
    tokio_util::io::StreamReader::new(s)
}

/// Docker's default detach keys: ctrl-p, ctrl-q.
const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Watches keystrokes for the detach sequence, holding back a pending
/// ctrl-p until the next byte shows whether it starts the sequence.
#[derive(Debug, Default)]
pub struct DetachFilter {
    pending: bool,
}

impl DetachFilter {
    /// The bytes to forward, and whether the sequence was typed (the bytes
    /// before it are still forwarded).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len() + 1);
        for &b in input {
            if self.pending {
                self.pending = false;
                if b == DETACH_KEYS[1] {
                    return (out, true);
                }
                out.push(DETACH_KEYS[0]);
            }
            if b == DETACH_KEYS[0] {
                self.pending = true;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// Forward our stdin to `w`; at end of input, half-close so the daemon
/// closes the process's stdin. Returns (`true`) only when the user typed
/// the detach keys on a tty.
async fn forward_stdin<W: AsyncWrite + Unpin>(mut w: W, tty: bool) -> bool {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    let mut keys = DetachFilter::default();
    loop {
        let n = match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (data, detach) = if tty {
            keys.feed(&buf[..n])
        } else {
            (buf[..n].to_vec(), false)
        };
        if w.write_all(&data).await.is_err() || w.flush().await.is_err() {
            break;
        }
        if detach {
            return true;
        }
    }
    let _ = w.shutdown().await;
    // End of input (or a closed connection) is no detach: the output
    // keeps coming until the daemon ends it.
    std::future::pending::<bool>().await
}

/// How an attached session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The daemon closed the output (the process exited).
    Closed,
    /// The user typed the detach keys; the container keeps running.
    Detached,
}

/// Run an attached session until the daemon ends the output or the user
/// detaches.
pub async fn pump<S>(io: S, tty: bool, stdin: bool) -> std::io::Result<Ended>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(io);
    if !stdin {
        drop(w);
        return copy_output(r, tty).await.map(|()| Ended::Closed);
    }
    let mut input = tokio::spawn(forward_stdin(w, tty));
    let ended = tokio::select! {
        res = copy_output(r, tty) => res.map(|()| Ended::Closed),
        detached = &mut input => match detached {
            Ok(_) => Ok(Ended::Detached),
            Err(e) => Err(std::io::Error::other(e)),
        },
    };
    input.abort();
    ended
}

/// The terminal in raw mode; restored on drop (every exit path).
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Put stdin's terminal in raw mode; `None` when stdin is no terminal.
    pub fn enable() -> anyhow::Result<Option<RawTerminal>> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let saved = termios::tcgetattr(stdin.as_fd())
            .map_err(|e| anyhow::anyhow!("failed to read the terminal settings: {e}"))?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
            .map_err(|e| anyhow::anyhow!("failed to put the terminal in raw mode: {e}"))?;
        Ok(Some(RawTerminal { saved }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, nix::pty::Winsize);

/// The terminal's size as `(rows, cols)`, from stdout or else stdin.
pub fn terminal_size() -> Option<(u16, u16)> {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        let mut ws = nix::pty::Winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own.
        if unsafe { tiocgwinsz(fd, &mut ws) }.is_ok() && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Send the terminal size now and on every SIGWINCH to `resize_path`
/// (`/containers/ID/resize` or `/exec/ID/resize`).
pub fn spawn_resizer(c: Client, resize_path: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut winch =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) {
                Ok(s) => s,
                Err(_) => return,
            };
        loop {
            if let Some((h, w)) = terminal_size() {
                let _ = c.post(&format!("{resize_path}?h={h}&w={w}")).await;
            }
            if winch.recv().await.is_none() {
                return;
            }
        }
    })
}

/// Forward the signals a user sends us to the container (`docker run
/// --sig-proxy`, on by default without a tty).
pub fn spawn_sig_proxy(c: Client, id: String) -> JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ];
    // Handlers are installed here, before the caller starts the container,
    // so no signal can arrive unhandled (and kill us instead).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<&'static str>(8);
    for (kind, name) in kinds {
        let Ok(mut s) = signal(kind) else { continue };
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(name).await.is_err() {
                    return;
                }
            }
        });
    }
    tokio::spawn(async move {
        drop(tx);
        while let Some(name) = rx.recv().await {
            let path = format!("/containers/{}/kill?signal={name}", super::client::enc(&id));
            let _ = c.post(&path).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_splits_frames_across_reads() {
        let mut d = Demux::default();
        let mut wire = vec![1, 0, 0, 0, 0, 0, 0, 3];
        wire.extend_from_slice(b"abc");
        wire.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2]);
        wire.extend_from_slice(b"de");
        d.push(&wire[..5]);
        assert_eq!(d.next_frame(), None);
        d.push(&wire[5..12]);
        assert_eq!(d.next_frame(), Some((STDOUT, b"abc".to_vec())));
        assert_eq!(d.next_frame(), None);
        d.push(&wire[12..]);
        assert_eq!(d.next_frame(), Some((STDERR, b"de".to_vec())));
        assert_eq!(d.next_frame(), None);
    }

    #[test]
    fn detach_keys() {
        let mut f = DetachFilter::default();
        assert_eq!(f.feed(b"ab"), (b"ab".to_vec(), false));
        assert_eq!(f.feed(&[b'x', 0x10]), (b"x".to_vec(), false));
        assert_eq!(f.feed(b"y"), (vec![0x10, b'y'], false));
        assert_eq!(f.feed(&[b'z', 0x10, 0x11, b'w']), (b"z".to_vec(), true));
        let mut f = DetachFilter::default();
        assert_eq!(f.feed(&[0x10]), (vec![], false));
        assert_eq!(f.feed(&[0x11]), (vec![], true));
    }

    #[test]
    fn demux_empty_frame() {
        let mut d = Demux::default();
        d.push(&[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Some((STDOUT, Vec::new())));
    }
}
