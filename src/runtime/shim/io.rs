//! The process's stdio as the shim holds it: pipes, or a pty whose master
//! arrives from the child over a socket once it opened it in the container.

use std::fs::File;
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use super::log::Stream;
use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::process::{tty, ChildIo};

/// The shim's ends of the process's stdio.
pub struct ShimIo {
    /// The child's ends (moved into the child at fork).
    pub child: ChildIo,
    /// Output fds to read, with their stream.
    pub outputs: Vec<(File, Stream)>,
    /// Where stdin frames go (when stdin is open).
    pub stdin: Option<File>,
    /// The pty master, for resizes.
    pub master: Option<OwnedFd>,
    /// The shim's end of the pty-passing socket, until the master arrived.
    tty_sock: Option<OwnedFd>,
    open_stdin: bool,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| RuntimeError::sys("pipe", e))
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd> {
    fd.try_clone()
        .map_err(|e| RuntimeError::io("dup", "stdio", e))
}

/// Sets the window size of a pty.
pub fn resize(master: &OwnedFd, rows: u16, cols: u16) -> Result<()> {
    tty::resize(master, rows, cols)
}

fn pty(open_stdin: bool, size: Option<(u16, u16)>) -> Result<ShimIo> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| RuntimeError::sys("socketpair", e))?;
    Ok(ShimIo {
        child: ChildIo::Tty { sock: theirs, size },
        outputs: vec![],
        stdin: None,
        master: None,
        tty_sock: Some(ours),
        open_stdin,
    })
}

fn pipes(open_stdin: bool) -> Result<ShimIo> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (child_in, stdin) = if open_stdin {
        let (r, w) = pipe()?;
        (r, Some(File::from(w)))
    } else {
        let null = File::open("/dev/null").map_err(|e| RuntimeError::io("open", "/dev/null", e))?;
        (OwnedFd::from(null), None)
    };
    let child = ChildIo::Pipes {
        stdin: child_in,
        stdout: out_w,
        stderr: err_w,
    };
    let outputs = vec![
        (File::from(out_r), Stream::Stdout),
        (File::from(err_r), Stream::Stderr),
    ];
    Ok(ShimIo {
        child,
        outputs,
        stdin,
        master: None,
        tty_sock: None,
        open_stdin,
    })
}

/// Creates the stdio for a process.
pub fn make_io(tty: bool, open_stdin: bool, size: Option<(u16, u16)>) -> Result<ShimIo> {
    if tty {
        pty(open_stdin, size)
    } else {
        pipes(open_stdin)
    }
}

impl ShimIo {
    /// After the fork: drops the child's ends and, for a tty, waits for the
    /// pty master. `Ok(false)` when the child went away without sending it.
    pub fn after_fork(&mut self) -> Result<bool> {
        // Replacing drops the child's ends held by the shim.
        self.child = ChildIo::Gone;
        let Some(sock) = self.tty_sock.take() else {
            return Ok(true);
        };
        let Some(master) = tty::receive_master(&sock)? else {
            return Ok(false);
        };
        // The shim always keeps a write end on a tty so that a later attach
        // can type; stdin frames are only accepted when stdin is open.
        self.outputs = vec![(File::from(dup(&master)?), Stream::Stdout)];
        self.stdin = if self.open_stdin {
            Some(File::from(dup(&master)?))
        } else {
            None
        };
        self.master = Some(master);
        Ok(true)
    }
}
