//! The files of a container directory and the state derived from them.
//!
//! State survives the daemon: it is read back from these files plus
//! liveness checks of the recorded pids (guarded against pid reuse by the
//! process start time from `/proc/PID/stat`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cgroups::Cgroup;
use super::config::{read_json, CreateOptions};
use super::error::Result;

/// The container's configuration, written by [`super::start`].
pub const CONFIG_FILE: &str = "config.json";
/// Pid of the shim.
pub const SHIM_PID_FILE: &str = "shim.pid";
/// The shim's attach socket.
pub const SOCKET_FILE: &str = "shim.sock";
/// Written by the shim once the process runs: [`StartedRecord`].
pub const STARTED_FILE: &str = "started.json";
/// Written by the shim when the process exited or failed to start: [`ExitRecord`].
pub const EXIT_FILE: &str = "exit.json";
/// The container's output, JSON lines (see [`super::shim::log`]).
pub const LOG_FILE: &str = "container.log";
/// The shim's own diagnostics (its stderr).
pub const SHIM_LOG_FILE: &str = "shim.log";
/// Directory of exec'd processes: `ID.json`, `ID.sock`, `ID.started.json`, `ID.exit.json`.
pub const EXEC_DIR: &str = "exec";

/// Written when the process started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedRecord {
    /// Host pid of the process.
    pub pid: i32,
    /// Pid of its shim.
    pub shim_pid: i32,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Start time of `pid` in clock ticks since boot (guards against pid reuse).
    pub pid_start_ticks: u64,
    /// Start time of the shim, likewise.
    #[serde(default)]
    pub shim_start_ticks: u64,
}

impl StartedRecord {
    /// Whether the process or, while it drains output and records the
    /// exit, its shim is still alive.
    pub fn running(&self) -> bool {
        alive(self.pid, self.pid_start_ticks) || alive(self.shim_pid, self.shim_start_ticks)
    }
}

/// Written when the process is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit code; 128+N when killed by signal N; 126/127 when it could not start.
    pub exit_code: i32,
    /// Killed by the kernel's OOM killer.
    pub oom_killed: bool,
    /// RFC 3339 time of exit.
    pub finished_at: String,
    /// Why the start failed, if it did.
    pub error: Option<String>,
}

/// Lifecycle status, as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Configured, never started (or start in progress).
    Created,
    /// The process runs.
    Running,
    /// The process is frozen.
    Paused,
    /// The process is gone.
    Exited,
}

/// A container's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Status.
    pub status: Status,
    /// Host pid of the process while it runs.
    pub pid: Option<i32>,
    /// Pid of the shim.
    pub shim_pid: Option<i32>,
    /// Exit code once exited (`None` if the shim died without recording it).
    pub exit_code: Option<i32>,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
    /// RFC 3339 start time.
    pub started_at: Option<String>,
    /// RFC 3339 exit time.
    pub finished_at: Option<String>,
    /// Start error message, if any.
    pub error: Option<String>,
}

/// Start time (field 22 of `/proc/PID/stat`) of a process.
pub fn pid_start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is alive and still the process started at `ticks`.
pub fn alive(pid: i32, ticks: u64) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true);
    !zombie && pid_start_ticks(pid) == Some(ticks)
}

fn read_opt<T: serde::de::DeserializeOwned>(p: PathBuf) -> Result<Option<T>> {
    if p.exists() {
        read_json(&p).map(Some)
    } else {
        Ok(None)
    }
}

/// Reads the container's started and exit records.
pub fn records(dir: &Path) -> Result<(Option<StartedRecord>, Option<ExitRecord>)> {
    Ok((
        read_opt(dir.join(STARTED_FILE))?,
        read_opt(dir.join(EXIT_FILE))?,
    ))
}

/// The state of the container in `dir`.
pub fn state(dir: &Path) -> Result<State> {
    let opts: CreateOptions = read_json(&dir.join(CONFIG_FILE))?;
    let (started, exit) = records(dir)?;
    let mut st = State {
        status: Status::Created,
        pid: None,
        shim_pid: started.as_ref().map(|s| s.shim_pid),
        exit_code: None,
        oom_killed: false,
        started_at: started.as_ref().map(|s| s.started_at.clone()),
        finished_at: None,
        error: None,
    };
    if let Some(e) = exit {
        st.status = if started.is_some() {
            Status::Exited
        } else {
            Status::Created
        };
        st.exit_code = Some(e.exit_code);
        st.oom_killed = e.oom_killed;
        st.finished_at = Some(e.finished_at);
        st.error = e.error;
    } else if let Some(s) = started {
        if s.running() {
            st.pid = alive(s.pid, s.pid_start_ticks).then_some(s.pid);
            let paused = Cgroup::new(opts.cgroup_parent(), &opts.id).is_frozen();
            st.status = if paused {
                Status::Paused
            } else {
                Status::Running
            };
        } else {
            st.status = Status::Exited;
            // The shim may have recorded the exit and gone between our read
            // of the records and the liveness check: read it again.
            if let Some(e) = read_opt::<ExitRecord>(dir.join(EXIT_FILE))? {
                st.exit_code = Some(e.exit_code);
                st.oom_killed = e.oom_killed;
                st.finished_at = Some(e.finished_at);
                st.error = e.error;
            }
            // Otherwise the shim died without recording the exit.
        }
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_ticks() {
        let me = std::process::id() as i32;
        let t = pid_start_ticks(me).unwrap();
        assert!(alive(me, t));
        assert!(!alive(me, t + 1));
    }
}
