//! The shim's attach protocol on its unix socket.
//!
//! Every message is a frame: one byte of kind, a big-endian `u32` payload
//! length, then the payload (at most [`MAX_PAYLOAD`] bytes).
//!
//! | kind | name        | direction      | payload                               |
//! |------|-------------|----------------|---------------------------------------|
//! | 1    | stdin       | client → shim  | raw bytes for the process's stdin     |
//! | 2    | close-stdin | client → shim  | empty; closes stdin (EOT on a tty)    |
//! | 3    | resize      | client → shim  | rows `u16` BE, cols `u16` BE          |
//! | 4    | signal      | client → shim  | signal number `i32` BE                |
//! | 11   | stdout      | shim → client  | raw bytes (all output when a tty)     |
//! | 12   | stderr      | shim → client  | raw bytes                             |
//! | 13   | exit        | shim → client  | exit code `i32` BE, OOM-killed `u8`   |

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::runtime::error::{Result, RuntimeError};

/// Largest payload accepted in one frame.
pub const MAX_PAYLOAD: usize = 1 << 20;
const HEADER: usize = 5;

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Bytes for the process's stdin.
    Stdin(Vec<u8>),
    /// Close the process's stdin.
    CloseStdin,
    /// New terminal size.
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// Send a signal to the process.
    Signal(i32),
    /// Output on stdout (or the tty).
    Stdout(Vec<u8>),
    /// Output on stderr.
    Stderr(Vec<u8>),
    /// The process exited.
    Exit {
        /// Exit code (128 + signal when killed).
        code: i32,
        /// Killed by the OOM killer.
        oom_killed: bool,
    },
}

impl Frame {
    /// Serializes the frame.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload): (u8, Vec<u8>) = match self {
            Frame::Stdin(b) => (1, b.clone()),
            Frame::CloseStdin => (2, vec![]),
            Frame::Resize { rows, cols } => (3, [rows.to_be_bytes(), cols.to_be_bytes()].concat()),
            Frame::Signal(s) => (4, s.to_be_bytes().to_vec()),
            Frame::Stdout(b) => (11, b.clone()),
            Frame::Stderr(b) => (12, b.clone()),
            Frame::Exit { code, oom_killed } => {
                (13, [&code.to_be_bytes()[..], &[*oom_killed as u8]].concat())
            }
        };
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.push(kind);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// Decodes one frame from the start of `buf`: `Ok(None)` when more bytes
    /// are needed, else the frame and the number of bytes used.
    pub fn decode(buf: &[u8]) -> std::result::Result<Option<(Frame, usize)>, String> {
        if buf.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(format!("frame of {len} bytes exceeds {MAX_PAYLOAD}"));
        }
        if buf.len() < HEADER + len {
            return Ok(None);
        }
        let p = &buf[HEADER..HEADER + len];
        let need = |n: usize| {
            if p.len() == n {
                Ok(())
            } else {
                Err(format!("kind {} needs {n} bytes, got {}", buf[0], p.len()))
            }
        };
        let frame = match buf[0] {
            1 => Frame::Stdin(p.to_vec()),
            2 => Frame::CloseStdin,
            3 => {
                need(4)?;
                Frame::Resize {
                    rows: u16::from_be_bytes([p[0], p[1]]),
                    cols: u16::from_be_bytes([p[2], p[3]]),
                }
            }
            4 => {
                need(4)?;
                Frame::Signal(i32::from_be_bytes([p[0], p[1], p[2], p[3]]))
            }
            11 => Frame::Stdout(p.to_vec()),
            12 => Frame::Stderr(p.to_vec()),
            13 => {
                need(5)?;
                Frame::Exit {
                    code: i32::from_be_bytes([p[0], p[1], p[2], p[3]]),
                    oom_killed: p[4] != 0,
                }
            }
            k => return Err(format!("unknown frame kind {k}")),
        };
        Ok(Some((frame, HEADER + len)))
    }

    /// Reads one frame (blocking); `Ok(None)` at a clean end of stream.
    pub fn read_from(r: &mut impl Read) -> io::Result<Option<Frame>> {
        let mut header = [0u8; HEADER];
        match r.read_exact(&mut header[..1]) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            other => other?,
        }
        r.read_exact(&mut header[1..])?;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "frame too large",
            ));
        }
        let mut buf = header.to_vec();
        buf.resize(HEADER + len, 0);
        r.read_exact(&mut buf[HEADER..])?;
        Frame::decode(&buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            .map(|(f, _)| Some(f))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short frame"))
    }
}

/// A client connection to a shim (container or exec).
#[derive(Debug)]
pub struct AttachStream {
    sock: UnixStream,
}

impl AttachStream {
    /// Connects to the shim socket at `path`.
    pub fn connect(path: &Path) -> Result<AttachStream> {
        let sock = super::short_path(path, |p| UnixStream::connect(p))
            .map_err(|e| RuntimeError::io("connect to", path, e))?;
        Ok(AttachStream { sock })
    }

    /// Sends one frame.
    pub fn send(&mut self, frame: &Frame) -> Result<()> {
        self.sock
            .write_all(&frame.encode())
            .map_err(|e| RuntimeError::io("write to", "shim socket", e))
    }

    /// Receives the next frame; `None` when the shim closed the connection.
    pub fn recv(&mut self) -> Result<Option<Frame>> {
        Frame::read_from(&mut self.sock)
            .map_err(|e| RuntimeError::io("read from", "shim socket", e))
    }

    /// Sets a read timeout for [`AttachStream::recv`].
    pub fn set_read_timeout(&self, t: Option<Duration>) -> Result<()> {
        self.sock
            .set_read_timeout(t)
            .map_err(|e| RuntimeError::io("configure", "shim socket", e))
    }

    /// A second handle on the same connection (e.g. one thread writes stdin
    /// while another reads output).
    pub fn try_clone(&self) -> Result<AttachStream> {
        let sock = self
            .sock
            .try_clone()
            .map_err(|e| RuntimeError::io("clone", "shim socket", e))?;
        Ok(AttachStream { sock })
    }

    /// Reads frames until the exit frame or end of stream, collecting output.
    pub fn collect(&mut self) -> Result<Collected> {
        let mut c = Collected::default();
        while let Some(f) = self.recv()? {
            match f {
                Frame::Stdout(b) => c.stdout.extend(b),
                Frame::Stderr(b) => c.stderr.extend(b),
                Frame::Exit { code, oom_killed } => {
                    c.exit = Some((code, oom_killed));
                    break;
                }
                _ => {}
            }
        }
        Ok(c)
    }
}

/// Output gathered by [`AttachStream::collect`].
#[derive(Debug, Default, Clone)]
pub struct Collected {
    /// Bytes of stdout frames.
    pub stdout: Vec<u8>,
    /// Bytes of stderr frames.
    pub stderr: Vec<u8>,
    /// Exit code and OOM flag, when the exit frame arrived.
    pub exit: Option<(i32, bool)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let frames = [
            Frame::Stdin(b"ls\n".to_vec()),
            Frame::CloseStdin,
            Frame::Resize { rows: 24, cols: 80 },
            Frame::Signal(15),
            Frame::Stdout(vec![0, 255]),
            Frame::Stderr(vec![]),
            Frame::Exit {
                code: 137,
                oom_killed: true,
            },
        ];
        let mut all = Vec::new();
        for f in &frames {
            all.extend(f.encode());
        }
        let mut off = 0;
        for f in &frames {
            let (g, n) = Frame::decode(&all[off..]).unwrap().unwrap();
            assert_eq!(&g, f);
            off += n;
        }
        assert_eq!(Frame::decode(&all[..3]).unwrap(), None);
        assert!(Frame::decode(&[99, 0, 0, 0, 0]).is_err());
        let mut r = &all[..];
        assert_eq!(Frame::read_from(&mut r).unwrap(), Some(frames[0].clone()));
    }
}
