//! A pty allocated inside the container's own devpts instance (so `tty`
//! prints `/dev/pts/0` and the slave is valid in the container), whose
//! master is handed to the shim over a unix socket (SCM_RIGHTS).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;

use crate::runtime::error::{Result, RuntimeError};

fn sys(op: &'static str) -> impl FnOnce(nix::Error) -> RuntimeError {
    move |e| RuntimeError::sys(op, e)
}

/// Sets the window size of a pty.
pub fn resize(fd: &impl AsRawFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own from a valid fd.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(RuntimeError::sys("resize tty", nix::Error::last()));
    }
    Ok(())
}

/// Binds the pty slave `name` on /dev/console.
fn bind_console(name: &str) -> Result<()> {
    let c = Path::new("/dev/console");
    if c.symlink_metadata().is_err() {
        std::fs::write(c, b"").map_err(|e| RuntimeError::io("create", c, e))?;
    }
    mount(Some(name), c, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(sys("bind /dev/console"))
}

/// Opens a pty in the current `/dev/pts`, optionally binds its slave on
/// `/dev/console`, sends the master over `sock` and makes the slave the
/// caller's stdio and controlling terminal.
pub fn setup_in_container(sock: OwnedFd, size: Option<(u16, u16)>, console: bool) -> Result<()> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(sys("open /dev/ptmx"))?;
    nix::pty::grantpt(&master).map_err(sys("grantpt"))?;
    nix::pty::unlockpt(&master).map_err(sys("unlockpt"))?;
    let name = nix::pty::ptsname_r(&master).map_err(sys("ptsname"))?;
    let slave = nix::fcntl::open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open pty slave"))?;
    // SAFETY: open returned a fresh fd that nothing else owns.
    let slave = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(slave) };
    if let Some((rows, cols)) = size {
        resize(&master, rows, cols)?;
    }
    if console {
        bind_console(&name)?;
    }
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(b"m")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(sys("send pty master"))?;
    drop(master);
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target).map_err(sys("dup2 tty"))?;
    }
    nix::unistd::setsid().map_err(sys("setsid"))?;
    // SAFETY: TIOCSCTTY on fd 0 (the pty slave) takes an int argument.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(RuntimeError::sys(
            "set controlling terminal",
            nix::Error::last(),
        ));
    }
    Ok(())
}

/// Receives the pty master sent by [`setup_in_container`]; `None` when the
/// child closed the socket without sending (it failed).
pub fn receive_master(sock: &OwnedFd) -> Result<Option<OwnedFd>> {
    let mut buf = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(sys("receive pty master"))?;
    for c in msg.cmsgs().map_err(sys("read control message"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for us.
                return Ok(Some(unsafe {
                    <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(*fd)
                }));
            }
        }
    }
    Ok(None)
}
