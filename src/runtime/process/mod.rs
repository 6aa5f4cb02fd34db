//! The container side: what a freshly forked child does, inside its new (or
//! joined) namespaces, up to `execve`. Every function here runs in a
//! single-threaded child of the shim and reports failure through a pipe.

pub mod caps;
pub mod exec;
pub mod mounts;
pub mod rootfs;
pub mod seccomp;
pub mod tty;
pub mod user;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sched::CloneFlags;

use super::cgroups::Cgroup;
use super::config::{CreateOptions, ExecOptions, ProcessConfig};
use super::error::{Result, RuntimeError};

/// The child's side of its stdio.
pub enum ChildIo {
    /// Three fds that become 0, 1 and 2.
    Pipes {
        /// Becomes fd 0.
        stdin: OwnedFd,
        /// Becomes fd 1.
        stdout: OwnedFd,
        /// Becomes fd 2.
        stderr: OwnedFd,
    },
    /// Open a pty inside the container and send its master on `sock`.
    Tty {
        /// Unix socket to the shim.
        sock: OwnedFd,
        /// Initial window size.
        size: Option<(u16, u16)>,
    },
    /// Already handed over (the shim's placeholder after fork).
    Gone,
}

/// Exit code a child uses when it fails before `execve`, with its message
/// written to the report pipe as `CODE\nMESSAGE`.
fn report_and_exit(report: OwnedFd, err: RuntimeError) -> ! {
    let (code, msg) = match err {
        RuntimeError::StartFailed { message, exit_code } => (exit_code, message),
        other => (126, other.to_string()),
    };
    let mut f = std::fs::File::from(report);
    // Nothing more can be done if the shim is gone.
    let _ = write!(f, "{code}\n{msg}");
    drop(f);
    // SAFETY: _exit skips atexit handlers and stdio flushing of the forked
    // copy of the shim, which must not run twice.
    unsafe { libc::_exit(code) }
}

/// Installs the stdio; `console` binds a tty on /dev/console.
fn setup_io(io: ChildIo, console: bool) -> Result<()> {
    match io {
        ChildIo::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            for (fd, target) in [(&stdin, 0), (&stdout, 1), (&stderr, 2)] {
                nix::unistd::dup2(fd.as_raw_fd(), target)
                    .map_err(|e| RuntimeError::sys("dup2 stdio", e))?;
            }
            nix::unistd::setsid().map_err(|e| RuntimeError::sys("setsid", e))?;
            Ok(())
        }
        ChildIo::Tty { sock, size } => tty::setup_in_container(sock, size, console),
        ChildIo::Gone => Err(RuntimeError::Shim("stdio already handed over".into())),
    }
}

/// Brings `lo` up in the current network namespace.
fn loopback_up() -> Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| RuntimeError::sys("socket for loopback", e))?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return Err(RuntimeError::sys("get lo flags", nix::Error::last()));
        }
        ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(RuntimeError::sys("bring lo up", nix::Error::last()));
        }
    }
    Ok(())
}

fn join_netns(path: &std::path::Path) -> Result<()> {
    let f = std::fs::File::open(path).map_err(|e| RuntimeError::io("open netns", path, e))?;
    nix::sched::setns(f, CloneFlags::CLONE_NEWNET)
        .map_err(|e| RuntimeError::sys(format!("join netns {}", path.display()), e))
}

fn init_steps(opts: &CreateOptions, io: ChildIo, go: OwnedFd) -> Result<std::convert::Infallible> {
    no_dump()?;
    let mut byte = [0u8; 1];
    let mut go = std::fs::File::from(go);
    if go
        .read(&mut byte)
        .map_err(|e| RuntimeError::io("read", "sync pipe", e))?
        != 1
    {
        return Err(RuntimeError::Shim("shim went away before start".into()));
    }
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    if opts.netns.is_none() {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    nix::sched::unshare(flags).map_err(|e| RuntimeError::sys("unshare namespaces", e))?;
    match &opts.netns {
        Some(p) => join_netns(p)?,
        None => loopback_up()?,
    }
    nix::unistd::sethostname(opts.hostname()).map_err(|e| RuntimeError::sys("sethostname", e))?;
    rootfs::prepare_rootfs(opts)?;
    // After pivot_root: a tty is opened in the container's own devpts.
    setup_io(io, true)?;
    let p = &opts.process;
    let set = caps::effective_set(&p.cap_add, &p.cap_drop, opts.privileged)?;
    let prepared = exec::prepare(p, &opts.hostname(), set, opts.privileged)?;
    exec::finish_and_exec(prepared)
}

/// Body of the container's first process (pid 1 of its pid namespace):
/// waits on `go` until the shim placed it in its cgroup, then builds the
/// container and execs. Never returns.
pub fn container_init(opts: &CreateOptions, io: ChildIo, go: OwnedFd, report: OwnedFd) -> ! {
    match init_steps(opts, io, go) {
        Ok(never) => match never {},
        Err(e) => report_and_exit(report, e),
    }
}

/// Namespaces an exec'd process joins, in order (mount last: it changes the root).
pub const EXEC_NAMESPACES: &[(&str, CloneFlags)] = &[
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// An exec'd process: the container's env plus its own; user, cwd, caps
/// and rlimits default to the container's.
fn exec_process(c: &ProcessConfig, x: &ProcessConfig) -> ProcessConfig {
    let mut p = x.clone();
    p.env = c.env.iter().chain(x.env.iter()).cloned().collect();
    p.user = p.user.or_else(|| c.user.clone());
    p.cwd = p.cwd.or_else(|| c.cwd.clone());
    if p.cap_add.is_empty() && p.cap_drop.is_empty() {
        p.cap_add = c.cap_add.clone();
        p.cap_drop = c.cap_drop.clone();
    }
    if p.rlimits.is_empty() {
        p.rlimits = c.rlimits.clone();
    }
    p
}

/// Makes this process non-dumpable until `execve`, so that container
/// processes cannot open its `/proc/PID/exe` (the amber binary, CVE-2019-5736)
/// or its fds while it enters the container.
fn no_dump() -> Result<()> {
    nix::sys::prctl::set_dumpable(false).map_err(|e| RuntimeError::sys("clear dumpable", e))
}

fn exec_steps(
    c: &CreateOptions,
    x: &ExecOptions,
    io: ChildIo,
    ns: Vec<(OwnedFd, CloneFlags)>,
    cgroup: &Cgroup,
) -> Result<std::convert::Infallible> {
    no_dump()?;
    // "0" moves the writer itself; done before the mount namespace hides cgroupfs.
    for dir in cgroup.paths() {
        super::cgroups::write(&dir.join("cgroup.procs"), "0")?;
    }
    for (fd, flag) in ns {
        nix::sched::setns(fd, flag).map_err(|e| RuntimeError::sys(format!("setns {flag:?}"), e))?;
    }
    setup_io(io, false)?;
    let p = exec_process(&c.process, &x.process);
    let privileged = c.privileged || x.privileged;
    let set = caps::effective_set(&p.cap_add, &p.cap_drop, privileged)?;
    let prepared = exec::prepare(&p, &c.hostname(), set, privileged)?;
    exec::finish_and_exec(prepared)
}

/// Body of an exec'd process, forked after the shim joined the container's
/// pid namespace: joins the cgroup and the other namespaces, then execs.
pub fn exec_child(
    c: &CreateOptions,
    x: &ExecOptions,
    io: ChildIo,
    ns: Vec<(OwnedFd, CloneFlags)>,
    cgroup: &Cgroup,
    report: OwnedFd,
) -> ! {
    match exec_steps(c, x, io, ns, cgroup) {
        Ok(never) => match never {},
        Err(e) => report_and_exit(report, e),
    }
}
