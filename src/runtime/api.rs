//! The runtime's public operations, used by the engine: start, state, kill,
//! pause/resume, stats, exec, attach, delete. Synchronous; each call either
//! reads files of the container directory or talks to a shim process.

use std::io::BufRead;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::cgroups::{Cgroup, Stats};
use super::config::{read_json, write_atomic, write_json, CreateOptions, ExecOptions, Resources};
use super::error::{Result, RuntimeError};
use super::process::rootfs::{LOWER_LINKS_DIR, ROOTFS_DIR};
use super::shim::protocol::AttachStream;
use super::shim::StartReport;
use super::state::{
    self, alive, ExitRecord, StartedRecord, State, Status, CONFIG_FILE, EXEC_DIR, SHIM_LOG_FILE,
    SOCKET_FILE,
};

/// How long `start`/`exec` wait for the shim's report.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `delete` waits for a killed container to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// What [`start`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// Host pid of the container's first process.
    pub pid: i32,
    /// Pid of its shim.
    pub shim_pid: i32,
}

/// What [`exec`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecStarted {
    /// The exec id.
    pub id: String,
    /// Host pid of the exec'd process.
    pub pid: i32,
    /// Pid of its shim.
    pub shim_pid: i32,
}

/// State of an exec'd process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecState {
    /// Host pid while it runs.
    pub pid: Option<i32>,
    /// Whether it still runs.
    pub running: bool,
    /// Exit code once exited.
    pub exit_code: Option<i32>,
    /// Start error, if any.
    pub error: Option<String>,
}

/// Docker's fallback nameservers when the host has only local ones.
const FALLBACK_DNS: &str = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";

/// The host's resolv.conf without loopback nameservers, which cannot be
/// reached from the container's network namespace (Docker does the same).
pub fn container_resolv_conf(host: &str) -> String {
    let is_local = |l: &str| {
        let mut it = l.split_whitespace();
        it.next() == Some("nameserver")
            && it
                .next()
                .is_some_and(|a| a.starts_with("127.") || a == "::1")
    };
    let kept: Vec<&str> = host.lines().filter(|l| !is_local(l)).collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    if !kept
        .iter()
        .any(|l| l.trim_start().starts_with("nameserver"))
    {
        out.push_str(FALLBACK_DNS);
    }
    out
}

fn write_default_etc_files(opts: &CreateOptions) -> Result<()> {
    let dir = &opts.dir;
    let hostname = opts.hostname();
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    let resolv =
        container_resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
    for (name, data) in [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts),
        ("resolv.conf", resolv),
    ] {
        let p = dir.join(name);
        if !p.exists() {
            write_atomic(&p, data.as_bytes())?;
        }
    }
    Ok(())
}

fn shim_exe(explicit: &Option<PathBuf>) -> Result<PathBuf> {
    match explicit {
        Some(p) => Ok(p.clone()),
        None => {
            std::env::current_exe().map_err(|e| RuntimeError::io("find", "current executable", e))
        }
    }
}

/// Spawns `exe shim ARGS` and reads its start report.
fn spawn_shim(exe: &Path, args: &[&str], dir: &Path) -> Result<StartReport> {
    let log_path = dir.join(SHIM_LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| RuntimeError::io("open", &log_path, e))?;
    let mut child = Command::new(exe)
        .arg("shim")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| RuntimeError::io("spawn shim", exe, e))?;
    // invariant: stdout was configured as piped above.
    let out = child.stdout.take().expect("piped stdout");
    let mut pfd = libc::pollfd {
        fd: out.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, exclusively borrowed.
    let ready = unsafe { libc::poll(&mut pfd, 1, START_TIMEOUT.as_millis() as i32) };
    let mut line = String::new();
    if ready > 0 {
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| RuntimeError::io("read", "shim report", e))?;
    }
    // The launched process exits right after forking the shim proper.
    let _ = child.wait();
    if line.trim().is_empty() {
        let diag = std::fs::read_to_string(&log_path).unwrap_or_default();
        return Err(RuntimeError::Shim(format!(
            "no start report (see {}): {}",
            log_path.display(),
            diag.trim()
        )));
    }
    serde_json::from_str(line.trim())
        .map_err(|e| RuntimeError::Shim(format!("bad start report {line:?}: {e}")))
}

fn report_result(rep: StartReport) -> Result<(i32, i32)> {
    match (rep.pid, rep.error) {
        (Some(pid), None) => Ok((pid, rep.shim_pid)),
        (_, err) => Err(RuntimeError::StartFailed {
            message: err.unwrap_or_else(|| "unknown start error".into()),
            exit_code: rep.exit_code.unwrap_or(126),
        }),
    }
}

/// Creates and starts a container: writes its files into `opts.dir`,
/// spawns its shim and waits until the process runs or failed to start.
pub fn start(opts: &CreateOptions) -> Result<Started> {
    opts.validate()?;
    std::fs::create_dir_all(&opts.dir).map_err(|e| RuntimeError::io("create", &opts.dir, e))?;
    if opts.dir.join(CONFIG_FILE).exists() {
        let st = state(&opts.dir)?;
        if matches!(st.status, Status::Running | Status::Paused) {
            return Err(RuntimeError::WrongState {
                id: opts.id.clone(),
                state: "running".into(),
                what: "start".into(),
            });
        }
    }
    // A restart: the previous run's records go, its log stays (as Docker's).
    for f in [state::STARTED_FILE, state::EXIT_FILE] {
        let _ = std::fs::remove_file(opts.dir.join(f));
    }
    write_default_etc_files(opts)?;
    write_json(&opts.dir.join(CONFIG_FILE), opts)?;
    let dir = opts.dir.to_string_lossy().into_owned();
    let rep = spawn_shim(&shim_exe(&opts.shim_exe)?, &["run", &dir], &opts.dir)?;
    let (pid, shim_pid) = report_result(rep).inspect_err(|e| {
        tracing::info!(container_id = %opts.id, error = %e, "container failed to start");
    })?;
    tracing::info!(container_id = %opts.id, pid, shim_pid, "container started");
    Ok(Started { pid, shim_pid })
}

/// The container's state (works after a daemon restart).
pub fn state(dir: &Path) -> Result<State> {
    state::state(dir)
}

fn config(dir: &Path) -> Result<CreateOptions> {
    read_json(&dir.join(CONFIG_FILE))
}

fn running_pid(dir: &Path, what: &str) -> Result<i32> {
    let st = state(dir)?;
    match (st.status, st.pid) {
        (Status::Running | Status::Paused, Some(pid)) => Ok(pid),
        (s, _) => Err(RuntimeError::WrongState {
            id: config(dir)?.id,
            state: format!("{s:?}").to_lowercase(),
            what: what.into(),
        }),
    }
}

/// Sends `signal` to the container's first process.
pub fn kill(dir: &Path, signal: Signal) -> Result<()> {
    let pid = running_pid(dir, "kill")?;
    nix::sys::signal::kill(Pid::from_raw(pid), signal)
        .map_err(|e| RuntimeError::sys(format!("kill {pid}"), e))
}

/// Freezes every process of the container.
pub fn pause(dir: &Path) -> Result<()> {
    running_pid(dir, "pause")?;
    let c = config(dir)?;
    Cgroup::new(c.cgroup_parent(), &c.id).set_frozen(true)
}

/// Thaws a paused container.
pub fn resume(dir: &Path) -> Result<()> {
    running_pid(dir, "unpause")?;
    let c = config(dir)?;
    Cgroup::new(c.cgroup_parent(), &c.id).set_frozen(false)
}

/// Memory, CPU and pids numbers of a running container.
pub fn stats(dir: &Path) -> Result<Stats> {
    running_pid(dir, "read stats")?;
    let c = config(dir)?;
    Cgroup::new(c.cgroup_parent(), &c.id).stats()
}

/// Host pids of every process of a running container (for `top`).
pub fn processes(dir: &Path) -> Result<Vec<i32>> {
    running_pid(dir, "list processes")?;
    let c = config(dir)?;
    Cgroup::new(c.cgroup_parent(), &c.id).procs()
}

/// Changes the limits of a running container (`docker update`) and records
/// them in `config.json` for later restarts.
pub fn update(dir: &Path, res: &Resources) -> Result<()> {
    res.validate()?;
    running_pid(dir, "update")?;
    let mut c = config(dir)?;
    Cgroup::new(c.cgroup_parent(), &c.id).apply(res)?;
    c.resources = res.clone();
    write_json(&dir.join(CONFIG_FILE), &c)
}

/// Waits until the container exited (or `timeout` passed) and returns its state.
pub fn wait(dir: &Path, timeout: Duration) -> Result<State> {
    let start = Instant::now();
    loop {
        let st = state(dir)?;
        if st.status == Status::Exited
            || (st.status == Status::Created && st.exit_code.is_some())
            || start.elapsed() > timeout
        {
            return Ok(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connects to the container's shim (see [`super::shim::protocol`]).
pub fn attach(dir: &Path) -> Result<AttachStream> {
    AttachStream::connect(&dir.join(SOCKET_FILE))
}

/// Connects to an exec's shim. Its output is held until the first client attaches.
pub fn attach_exec(dir: &Path, id: &str) -> Result<AttachStream> {
    AttachStream::connect(&dir.join(EXEC_DIR).join(format!("{id}.sock")))
}

/// Runs another process in the running container, under its own shim.
pub fn exec(dir: &Path, x: &ExecOptions) -> Result<ExecStarted> {
    if x.id.is_empty()
        || !x
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
    {
        return Err(RuntimeError::InvalidConfig(format!(
            "invalid exec id {:?}",
            x.id
        )));
    }
    if x.process.args.is_empty() {
        return Err(RuntimeError::InvalidConfig("no command specified".into()));
    }
    running_pid(dir, "exec")?;
    if state(dir)?.status == Status::Paused {
        // The process would freeze on entering the cgroup.
        return Err(RuntimeError::WrongState {
            id: config(dir)?.id,
            state: "paused".into(),
            what: "exec (unpause it first)".into(),
        });
    }
    let xdir = dir.join(EXEC_DIR);
    std::fs::create_dir_all(&xdir).map_err(|e| RuntimeError::io("create", &xdir, e))?;
    write_json(&xdir.join(format!("{}.json", x.id)), x)?;
    let d = dir.to_string_lossy().into_owned();
    let rep = spawn_shim(&shim_exe(&x.shim_exe)?, &["exec", &d, &x.id], dir)?;
    let (pid, shim_pid) = report_result(rep)?;
    tracing::info!(path = %dir.display(), exec_id = %x.id, pid, "exec started");
    Ok(ExecStarted {
        id: x.id.clone(),
        pid,
        shim_pid,
    })
}

/// State of an exec'd process.
pub fn exec_state(dir: &Path, id: &str) -> Result<ExecState> {
    let xdir = dir.join(EXEC_DIR);
    let started: Option<StartedRecord> = read_json(&xdir.join(format!("{id}.started.json"))).ok();
    let exit: Option<ExitRecord> = read_json(&xdir.join(format!("{id}.exit.json"))).ok();
    let running = exit.is_none() && started.as_ref().is_some_and(|s| s.running());
    Ok(ExecState {
        pid: started
            .as_ref()
            .filter(|s| running && alive(s.pid, s.pid_start_ticks))
            .map(|s| s.pid),
        running,
        exit_code: exit.as_ref().map(|e| e.exit_code),
        error: exit.and_then(|e| e.error),
    })
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Host mount points at or under `dir` (from `/proc/self/mountinfo`).
pub fn host_mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// Removes the container's runtime resources: kills it when `force` (else a
/// running container is refused), waits for its shim, removes its cgroup,
/// any mount and the runtime's files (config, records and log stay for the
/// engine, which owns the directory).
pub fn delete(dir: &Path, force: bool) -> Result<()> {
    let c = config(dir)?;
    let st = state(dir)?;
    if let (Status::Running | Status::Paused, Some(pid)) = (st.status, st.pid) {
        if !force {
            return Err(RuntimeError::WrongState {
                id: c.id,
                state: "running".into(),
                what: "remove (stop it or force)".into(),
            });
        }
        let cg = Cgroup::new(c.cgroup_parent(), &c.id);
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        if st.status == Status::Paused {
            cg.set_frozen(false)?;
        }
        if !wait_until(KILL_WAIT, || {
            state(dir)
                .map(|s| s.status == Status::Exited)
                .unwrap_or(true)
        }) {
            return Err(RuntimeError::Shim(format!(
                "container {} did not exit after SIGKILL",
                c.id
            )));
        }
    }
    // A live shim removes socket and cgroup when it finishes; give it a moment.
    if let (Some(s), _) = state::records(dir)? {
        wait_until(Duration::from_secs(5), || {
            !alive(s.shim_pid, s.shim_start_ticks)
        });
    }
    let cg = Cgroup::new(c.cgroup_parent(), &c.id);
    cg.destroy()?;
    for m in host_mounts_under(dir).into_iter().rev() {
        nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH)
            .map_err(|e| RuntimeError::sys(format!("unmount {}", m.display()), e))?;
    }
    let links = dir.join(LOWER_LINKS_DIR);
    if links.exists() {
        // Only symlinks: remove_dir_all does not follow them.
        std::fs::remove_dir_all(&links).map_err(|e| RuntimeError::io("remove", &links, e))?;
    }
    // Never recursive: should the overlay be mounted, this fails instead of
    // deleting the container's files.
    let root = dir.join(ROOTFS_DIR);
    if root.exists() {
        std::fs::remove_dir(&root).map_err(|e| RuntimeError::io("remove", &root, e))?;
    }
    let _ = std::fs::remove_file(dir.join(SOCKET_FILE));
    tracing::info!(container_id = %c.id, "container deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_filtering() {
        assert_eq!(
            container_resolv_conf("nameserver 127.0.0.53\nsearch lan\n"),
            "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            container_resolv_conf("nameserver 10.0.0.1\n"),
            "nameserver 10.0.0.1\n"
        );
        assert_eq!(container_resolv_conf(""), FALLBACK_DNS);
    }
}
