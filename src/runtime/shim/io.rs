//! The process's stdio as the shim holds it: a pty pair, or pipes.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;

use super::log::Stream;
use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::process::ChildIo;

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
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| RuntimeError::sys("pipe", e))
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd> {
    fd.try_clone()
        .map_err(|e| RuntimeError::io("dup", "stdio", e))
}

fn set_cloexec(fd: &OwnedFd) -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map_err(|e| RuntimeError::sys("set FD_CLOEXEC", e))?;
    Ok(())
}

/// Sets the window size of a pty.
pub fn resize(master: &OwnedFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own from a valid fd.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(RuntimeError::sys("resize tty", nix::Error::last()));
    }
    Ok(())
}

fn pty(open_stdin: bool, size: Option<(u16, u16)>) -> Result<ShimIo> {
    let pair = nix::pty::openpty(None, None).map_err(|e| RuntimeError::sys("openpty", e))?;
    set_cloexec(&pair.master)?;
    set_cloexec(&pair.slave)?;
    if let Some((rows, cols)) = size {
        resize(&pair.master, rows, cols)?;
    }
    let link = format!("/proc/self/fd/{}", pair.slave.as_raw_fd());
    let slave_path: PathBuf =
        std::fs::read_link(&link).map_err(|e| RuntimeError::io("read", link, e))?;
    let child = ChildIo {
        stdin: dup(&pair.slave)?,
        stdout: dup(&pair.slave)?,
        stderr: pair.slave,
        tty: Some(slave_path),
    };
    // The shim always keeps a write end on a tty so that a later attach can
    // type; stdin frames are only accepted when stdin is open.
    let stdin = if open_stdin {
        Some(File::from(dup(&pair.master)?))
    } else {
        None
    };
    Ok(ShimIo {
        child,
        outputs: vec![(File::from(dup(&pair.master)?), Stream::Stdout)],
        stdin,
        master: Some(pair.master),
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
    let child = ChildIo {
        stdin: child_in,
        stdout: out_w,
        stderr: err_w,
        tty: None,
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
