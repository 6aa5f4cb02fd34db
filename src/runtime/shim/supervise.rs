//! The shim's event loop: reaps the process, copies its output to the log
//! and to attached clients, and serves client frames (stdin, resize, signal).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::log::{LogWriter, Stream};
use super::protocol::Frame;

/// How long output is still drained after the process exited.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);
/// How long an exec shim waits for a first client after its process exited.
const ATTACH_WAIT: Duration = Duration::from_secs(30);
/// A client that does not read for this long is dropped.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const READ_CHUNK: usize = 64 * 1024;

struct Client {
    sock: UnixStream,
    buf: Vec<u8>,
}

/// What the shim supervises.
pub struct Supervisor {
    /// Host pid of the process.
    pub pid: Pid,
    /// Output fds.
    pub outputs: Vec<(File, Stream)>,
    /// Stdin of the process, when open.
    pub stdin: Option<File>,
    /// Pty master, when a tty.
    pub master: Option<OwnedFd>,
    /// The attach socket.
    pub listener: UnixListener,
    /// The log, for containers.
    pub log: Option<LogWriter>,
    /// Keep output in memory until the first client attaches (exec).
    pub buffer_until_attach: bool,
    /// SIGCHLD (blocked) as an fd.
    pub sigfd: SignalFd,
}

struct LoopState {
    clients: Vec<Client>,
    backlog: Vec<u8>,
    attached: bool,
    exit: Option<(i32, Instant)>,
}

fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

impl Supervisor {
    /// Runs until the process exited and its output is drained; `on_exit`
    /// records the exit and returns the frame sent to every client.
    pub fn run(mut self, on_exit: impl FnOnce(i32) -> Frame) {
        let _ = self.listener.set_nonblocking(true);
        let mut st = LoopState {
            clients: Vec::new(),
            backlog: Vec::new(),
            attached: false,
            exit: None,
        };
        loop {
            if let Some((_, t)) = st.exit {
                let drained = self.outputs.is_empty() || t.elapsed() > DRAIN_AFTER_EXIT;
                let delivered =
                    !self.buffer_until_attach || st.attached || t.elapsed() > ATTACH_WAIT;
                if drained && delivered {
                    break;
                }
            }
            self.poll_once(&mut st);
        }
        if let Some(log) = self.log.as_mut() {
            if let Err(e) = log.flush() {
                tracing::error!(error = %e, "failed to flush container log");
            }
        }
        // invariant: the loop only breaks once `exit` is set.
        let (code, _) = st.exit.expect("exit recorded");
        let frame = on_exit(code).encode();
        for c in st.clients.iter_mut() {
            let _ = c.sock.write_all(&frame);
        }
    }

    fn poll_once(&mut self, st: &mut LoopState) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut push = |fd: RawFd| {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
        };
        push(self.sigfd.as_raw_fd());
        push(self.listener.as_raw_fd());
        self.outputs.iter().for_each(|(f, _)| push(f.as_raw_fd()));
        st.clients.iter().for_each(|c| push(c.sock.as_raw_fd()));
        let timeout = if st.exit.is_some() { 50 } else { -1 };
        // SAFETY: fds is a valid, exclusively borrowed array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n <= 0 {
            return;
        }
        let ready = |i: usize| fds[i].revents != 0;
        // Indexes are taken before anything changes the lists.
        let base = 2;
        let outs: Vec<usize> = (0..self.outputs.len())
            .filter(|i| ready(base + i))
            .collect();
        let cbase = base + self.outputs.len();
        let cls: Vec<usize> = (0..st.clients.len()).filter(|i| ready(cbase + i)).collect();
        if ready(0) {
            self.reap(st);
        }
        for i in outs.into_iter().rev() {
            self.read_output(i, st);
        }
        for i in cls.into_iter().rev() {
            self.read_client(i, st);
        }
        if ready(1) {
            self.accept(st);
        }
    }

    fn reap(&mut self, st: &mut LoopState) {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(s) => {
                    if s.pid() == Some(self.pid) {
                        if let Some(code) = exit_code(s) {
                            st.exit = Some((code, Instant::now()));
                        }
                    }
                }
            }
        }
    }

    fn accept(&mut self, st: &mut LoopState) {
        while let Ok((sock, _)) = self.listener.accept() {
            let _ = sock.set_nonblocking(false);
            let _ = sock.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT));
            let mut c = Client {
                sock,
                buf: Vec::new(),
            };
            if self.buffer_until_attach && !st.attached {
                let _ = c.sock.write_all(&std::mem::take(&mut st.backlog));
            }
            st.attached = true;
            st.clients.push(c);
        }
    }

    fn read_output(&mut self, i: usize, st: &mut LoopState) {
        let mut buf = vec![0u8; READ_CHUNK];
        let (file, stream) = &mut self.outputs[i];
        let stream = *stream;
        let n = match file.read(&mut buf) {
            Ok(0) | Err(_) => {
                // EOF, or EIO on a pty master once every slave is closed.
                self.outputs.remove(i);
                return;
            }
            Ok(n) => n,
        };
        let data = &buf[..n];
        if let Some(log) = self.log.as_mut() {
            if let Err(e) = log.write(stream, data) {
                tracing::error!(error = %e, "failed to write container log");
            }
        }
        let frame = match stream {
            Stream::Stdout => Frame::Stdout(data.to_vec()),
            Stream::Stderr => Frame::Stderr(data.to_vec()),
        }
        .encode();
        if self.buffer_until_attach && !st.attached {
            st.backlog.extend_from_slice(&frame);
            return;
        }
        st.clients.retain_mut(|c| c.sock.write_all(&frame).is_ok());
    }

    fn read_client(&mut self, i: usize, st: &mut LoopState) {
        let mut buf = vec![0u8; READ_CHUNK];
        let n = match st.clients[i].sock.read(&mut buf) {
            Ok(0) | Err(_) => {
                st.clients.remove(i);
                return;
            }
            Ok(n) => n,
        };
        st.clients[i].buf.extend_from_slice(&buf[..n]);
        loop {
            match Frame::decode(&st.clients[i].buf) {
                Ok(Some((frame, used))) => {
                    st.clients[i].buf.drain(..used);
                    self.handle(frame);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "bad frame from attach client");
                    st.clients.remove(i);
                    break;
                }
            }
        }
    }

    fn handle(&mut self, frame: Frame) {
        match frame {
            Frame::Stdin(data) => {
                if let Some(s) = self.stdin.as_mut() {
                    if s.write_all(&data).is_err() {
                        self.stdin = None;
                    }
                }
            }
            Frame::CloseStdin => {
                if self.master.is_some() {
                    // On a tty, end of input is the EOT character.
                    if let Some(s) = self.stdin.as_mut() {
                        let _ = s.write_all(&[4]);
                    }
                } else {
                    self.stdin = None;
                }
            }
            Frame::Resize { rows, cols } => {
                if let Some(m) = &self.master {
                    let _ = super::io::resize(m, rows, cols);
                }
            }
            Frame::Signal(sig) => {
                if let Ok(sig) = Signal::try_from(sig) {
                    let _ = nix::sys::signal::kill(self.pid, sig);
                }
            }
            Frame::Stdout(_) | Frame::Stderr(_) | Frame::Exit { .. } => {}
        }
    }
}
