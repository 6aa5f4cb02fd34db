//! `amber shim run DIR`: creates the container's process and supervises it.

use std::io::Write;
use std::path::Path;

use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Pid};

use super::io::make_io;
use super::log::LogWriter;
use super::supervise::Supervisor;
use super::{
    bind, detach, fail_start, now_rfc3339, read_child_report, record_exit, report_pipe,
    report_started, sigchld_fd,
};
use crate::runtime::cgroups::Cgroup;
use crate::runtime::config::{read_json, write_json, CreateOptions};
use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::process::{self, rootfs};
use crate::runtime::state::{
    pid_start_ticks, StartedRecord, CONFIG_FILE, EXIT_FILE, LOG_FILE, SHIM_LOG_FILE, SHIM_PID_FILE,
    SOCKET_FILE, STARTED_FILE,
};

/// Runs the container shim; returns the shim's exit code.
pub fn run(dir: &Path) -> Result<i32> {
    let opts: CreateOptions = read_json(&dir.join(CONFIG_FILE))?;
    detach()?;
    let pid_file = dir.join(SHIM_PID_FILE);
    std::fs::write(&pid_file, std::process::id().to_string())
        .map_err(|e| RuntimeError::io("write", &pid_file, e))?;
    let cgroup = Cgroup::new(opts.cgroup_parent(), &opts.id);
    let shim_log = dir.join(SHIM_LOG_FILE);
    let sup = match launch(&opts, &cgroup) {
        Ok(sup) => sup,
        Err(e) => {
            tracing::info!(container_id = %opts.id, error = %e, "container failed to start");
            let _ = std::fs::remove_file(dir.join(SOCKET_FILE));
            // When the cleanup fails too, both are reported.
            let e = match cgroup.destroy() {
                Ok(()) => e,
                Err(cleanup) => {
                    let (message, exit_code) = super::failure(e);
                    RuntimeError::StartFailed {
                        message: format!("{message} (cleanup also failed: {cleanup})"),
                        exit_code,
                    }
                }
            };
            return fail_start(e, &dir.join(EXIT_FILE), &shim_log);
        }
    };
    report_started(sup.pid, &shim_log);
    sup.run(|code| record_exit(&dir.join(EXIT_FILE), code, cgroup.oom_killed()));
    let _ = std::fs::remove_file(dir.join(SOCKET_FILE));
    if let Err(e) = cgroup.destroy() {
        eprintln!("amber shim: {e}");
    }
    Ok(0)
}

fn prepare_host_side(opts: &CreateOptions, cgroup: &Cgroup) -> Result<()> {
    cgroup.create()?;
    cgroup
        .apply(&opts.resources)
        .map_err(|e| RuntimeError::StartFailed {
            message: e.to_string(),
            exit_code: 126,
        })?;
    if !opts.privileged {
        cgroup.restrict_devices()?;
    }
    rootfs::link_lower_dirs(&opts.dir, &opts.lower_dirs)?;
    let root = opts.dir.join(rootfs::ROOTFS_DIR);
    std::fs::create_dir_all(&root).map_err(|e| RuntimeError::io("create", &root, e))
}

fn launch(opts: &CreateOptions, cgroup: &Cgroup) -> Result<Supervisor> {
    prepare_host_side(opts, cgroup)?;
    let p = &opts.process;
    let mut io = make_io(p.tty, p.open_stdin, p.console_size)?;
    let listener = bind(&opts.dir.join(SOCKET_FILE))?;
    let log = LogWriter::open(&opts.dir.join(LOG_FILE))?;
    let sigfd = sigchld_fd()?;
    let (go_r, go_w) = report_pipe()?;
    let (rep_r, rep_w) = report_pipe()?;
    nix::sched::unshare(CloneFlags::CLONE_NEWPID)
        .map_err(|e| RuntimeError::sys("unshare pid namespace", e))?;
    // SAFETY: the shim is single-threaded, so the child may run any code.
    let child = match unsafe { nix::unistd::fork() }
        .map_err(|e| RuntimeError::sys("fork container process", e))?
    {
        ForkResult::Child => {
            drop((go_w, rep_r, listener));
            process::container_init(opts, io.child, go_r, rep_w)
        }
        ForkResult::Parent { child } => child,
    };
    drop((go_r, rep_w));
    if let Err(e) = cgroup.add_pid(child.as_raw()) {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child, None);
        return Err(e);
    }
    let mut go = std::fs::File::from(go_w);
    go.write_all(b"1")
        .map_err(|e| RuntimeError::io("write", "sync pipe", e))?;
    drop(go);
    let io_ok = io.after_fork();
    if let Some((exit_code, message)) = read_child_report(rep_r) {
        let _ = nix::sys::wait::waitpid(child, None);
        return Err(RuntimeError::StartFailed { message, exit_code });
    }
    check_io(io_ok, child)?;
    record_started(&opts.dir.join(STARTED_FILE), child)?;
    tracing::info!(container_id = %opts.id, pid = child.as_raw(), "container started");
    Ok(Supervisor {
        pid: child,
        outputs: io.outputs,
        stdin: io.stdin,
        master: io.master,
        listener,
        log: Some(log),
        buffer_until_attach: opts.hold_output_until_attach,
        sigfd,
    })
}

/// Fails (killing `child`) when the child's stdio could not be set up.
pub(super) fn check_io(io_ok: Result<bool>, child: Pid) -> Result<()> {
    let err = match io_ok {
        Ok(true) => return Ok(()),
        Ok(false) => RuntimeError::Shim("the process did not send its pty".into()),
        Err(e) => e,
    };
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(child, None);
    Err(err)
}

/// Writes the started record of `pid`.
pub(super) fn record_started(path: &Path, pid: Pid) -> Result<()> {
    let rec = StartedRecord {
        pid: pid.as_raw(),
        shim_pid: std::process::id() as i32,
        started_at: now_rfc3339(),
        pid_start_ticks: pid_start_ticks(pid.as_raw()).unwrap_or(0),
        shim_start_ticks: pid_start_ticks(std::process::id() as i32).unwrap_or(0),
    };
    write_json(path, &rec)
}
