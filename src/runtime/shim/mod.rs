//! The per-container shim: `amber shim run DIR` and `amber shim exec DIR ID`.
//!
//! The process started by the daemon calls `setsid`, forks and exits at once,
//! so the shim proper is nobody's child but init's and survives the daemon.
//! It reports "started" or the start error as one JSON line on the stdout
//! pipe the caller reads, then closes it and supervises the process.

pub mod io;
pub mod log;
pub mod protocol;
pub mod supervise;

mod container;
mod exec;

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde::{Deserialize, Serialize};

use super::config::write_json;
use super::error::{Result, RuntimeError};
use super::state::ExitRecord;

/// Longest socket path used directly (sun_path holds 108 bytes).
const MAX_SOCKET_PATH: usize = 100;

/// The line the shim writes to the caller once the process started or failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartReport {
    /// Host pid of the process on success.
    pub pid: Option<i32>,
    /// Pid of the shim.
    pub shim_pid: i32,
    /// The Docker-like error message on failure.
    pub error: Option<String>,
    /// 126/127 on failure.
    pub exit_code: Option<i32>,
}

/// Current time, RFC 3339 UTC with nanoseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Runs `op` on `path`, or on an equivalent short `/proc/self/fd/N/name`
/// when `path` is too long for a unix socket address.
pub fn short_path<T>(
    path: &Path,
    op: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    if path.as_os_str().len() <= MAX_SOCKET_PATH {
        return op(path);
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let dir = std::fs::File::open(parent)?;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    op(&PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name))
}

/// Closes every fd above 2 inherited from the caller: a daemon fd opened
/// without close-on-exec (say, a listening socket) must not live on in a
/// shim that outlives the daemon.
fn close_inherited_fds() {
    // SAFETY: called first thing in the shim sub-mode, when no code in this
    // process owns an fd above 2.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
}

/// Entry point of `amber shim ARGS...`.
pub fn shim_main(args: Vec<String>) -> i32 {
    close_inherited_fds();
    let res = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["run", dir] => container::run(Path::new(dir)),
        ["exec", dir, id] => exec::run(Path::new(dir), id),
        _ => {
            eprintln!("usage: amber shim run DIR | amber shim exec DIR EXEC_ID");
            return 2;
        }
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("amber shim: {e}");
            1
        }
    }
}

/// New session, then fork: the parent exits (the caller reaps it) and the
/// child goes on as the shim. Returns in the child only.
fn detach() -> Result<()> {
    nix::unistd::setsid().map_err(|e| RuntimeError::sys("setsid", e))?;
    // SAFETY: the shim is single-threaded here (no runtime, no threads were
    // started), so the child may run arbitrary code after fork.
    match unsafe { nix::unistd::fork() }.map_err(|e| RuntimeError::sys("fork shim", e))? {
        // SAFETY: _exit in the intermediate process skips destructors that
        // belong to the shim.
        nix::unistd::ForkResult::Parent { .. } => unsafe { libc::_exit(0) },
        nix::unistd::ForkResult::Child => Ok(()),
    }
}

/// Blocks SIGCHLD and returns it as a signalfd.
fn sigchld_fd() -> Result<SignalFd> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()
        .map_err(|e| RuntimeError::sys("block SIGCHLD", e))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| RuntimeError::sys("signalfd", e))
}

/// Writes the start report on stdout, then points stdout at /dev/null and
/// stderr at `shim_log` so the caller's pipe closes.
fn report(rep: &StartReport, shim_log: &Path) {
    // invariant: StartReport is plain data.
    let line = serde_json::to_string(rep).expect("serializable");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    drop(out);
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(shim_log);
    if let Ok(log) = log {
        let _ = nix::unistd::dup2(log.as_raw_fd(), 2);
    }
}

/// Reads a child's `CODE\nMESSAGE` failure report; `None` when the pipe
/// closed empty (the exec succeeded and closed it).
fn read_child_report(r: OwnedFd) -> Option<(i32, String)> {
    use std::io::Read;
    let mut s = String::new();
    let _ = std::fs::File::from(r).read_to_string(&mut s);
    if s.is_empty() {
        return None;
    }
    let (code, msg) = s.split_once('\n').unwrap_or(("126", s.as_str()));
    Some((code.parse().unwrap_or(126), msg.to_string()))
}

/// Creates the pipe pair used for a child's failure report.
fn report_pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RuntimeError::sys("pipe", e))
}

/// Binds the attach socket (removing a stale one).
fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener> {
    let _ = std::fs::remove_file(path);
    short_path(path, |p| std::os::unix::net::UnixListener::bind(p))
        .map_err(|e| RuntimeError::io("bind", path, e))
}

/// Splits an error into a Docker-like message and exit code.
pub(super) fn failure(e: RuntimeError) -> (String, i32) {
    match e {
        RuntimeError::StartFailed { message, exit_code } => (message, exit_code),
        other => (other.to_string(), 126),
    }
}

/// Records a start failure in `exit_file` and reports it to the caller.
fn fail_start(e: RuntimeError, exit_file: &Path, shim_log: &Path) -> Result<i32> {
    let (message, code) = failure(e);
    let rec = ExitRecord {
        exit_code: code,
        oom_killed: false,
        finished_at: now_rfc3339(),
        error: Some(message.clone()),
    };
    write_json(exit_file, &rec)?;
    let shim_pid = std::process::id() as i32;
    report(
        &StartReport {
            pid: None,
            shim_pid,
            error: Some(message),
            exit_code: Some(code),
        },
        shim_log,
    );
    Ok(code)
}

/// Reports a started process to the caller.
fn report_started(pid: nix::unistd::Pid, shim_log: &Path) {
    let shim_pid = std::process::id() as i32;
    report(
        &StartReport {
            pid: Some(pid.as_raw()),
            shim_pid,
            error: None,
            exit_code: None,
        },
        shim_log,
    );
}

/// Records the exit in `exit_file` and returns the exit frame for clients.
fn record_exit(exit_file: &Path, code: i32, oom_killed: bool) -> protocol::Frame {
    let rec = ExitRecord {
        exit_code: code,
        oom_killed,
        finished_at: now_rfc3339(),
        error: None,
    };
    if let Err(e) = write_json(exit_file, &rec) {
        eprintln!("amber shim: {e}");
    }
    protocol::Frame::Exit { code, oom_killed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_socket_paths_work() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("shim.sock");
        assert!(path.as_os_str().len() > 108);
        let _listener = bind(&path).unwrap();
        assert!(path.exists());
        protocol::AttachStream::connect(&path).unwrap();
    }
}
