//! `amber shim exec DIR ID`: runs one more process in a running container.
//!
//! The shim joins the container's pid namespace (which only affects its
//! children), forks, and the child joins the cgroup and the other
//! namespaces before taking the container's security settings.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sched::CloneFlags;
use nix::unistd::ForkResult;

use super::container::{check_io, record_started};
use super::io::make_io;
use super::supervise::Supervisor;
use super::{
    bind, detach, fail_start, read_child_report, record_exit, report_pipe, report_started,
    sigchld_fd,
};
use crate::runtime::cgroups::Cgroup;
use crate::runtime::config::{read_json, CreateOptions, ExecOptions};
use crate::runtime::error::{Result, RuntimeError};
use crate::runtime::process::{self, EXEC_NAMESPACES};
use crate::runtime::state::{alive, records, CONFIG_FILE, EXEC_DIR, SHIM_LOG_FILE};

/// Runs an exec shim; returns the shim's exit code.
pub fn run(dir: &Path, id: &str) -> Result<i32> {
    let c: CreateOptions = read_json(&dir.join(CONFIG_FILE))?;
    let xdir = dir.join(EXEC_DIR);
    let x: ExecOptions = read_json(&xdir.join(format!("{id}.json")))?;
    detach()?;
    let exit_file = xdir.join(format!("{id}.exit.json"));
    let shim_log = dir.join(SHIM_LOG_FILE);
    let sup = match launch(dir, &c, &x) {
        Ok(sup) => sup,
        Err(e) => {
            let _ = std::fs::remove_file(xdir.join(format!("{id}.sock")));
            return fail_start(e, &exit_file, &shim_log);
        }
    };
    report_started(sup.pid, &shim_log);
    sup.run(|code| record_exit(&exit_file, code, false));
    let _ = std::fs::remove_file(xdir.join(format!("{id}.sock")));
    Ok(0)
}

fn open_ns(pid: i32, name: &str) -> Result<OwnedFd> {
    let p = format!("/proc/{pid}/ns/{name}");
    std::fs::File::open(&p)
        .map(OwnedFd::from)
        .map_err(|e| RuntimeError::io("open", p, e))
}

/// Opens the namespaces of the running container and joins its pid namespace.
fn open_target(dir: &Path, c: &CreateOptions) -> Result<Vec<(OwnedFd, CloneFlags)>> {
    let not_running = |state: &str| RuntimeError::WrongState {
        id: c.id.clone(),
        state: state.into(),
        what: "exec".into(),
    };
    let started = match records(dir)? {
        (Some(s), None) if alive(s.pid, s.pid_start_ticks) => s,
        _ => return Err(not_running("not running")),
    };
    let ns = EXEC_NAMESPACES
        .iter()
        .map(|(name, flag)| Ok((open_ns(started.pid, name)?, *flag)))
        .collect::<Result<Vec<_>>>()?;
    let pidns = open_ns(started.pid, "pid")?;
    // The fds could belong to a recycled pid: check again now that they are open.
    if !alive(started.pid, started.pid_start_ticks) {
        return Err(not_running("exited"));
    }
    nix::sched::setns(pidns, CloneFlags::CLONE_NEWPID)
        .map_err(|e| RuntimeError::sys("join pid namespace", e))?;
    Ok(ns)
}

fn launch(dir: &Path, c: &CreateOptions, x: &ExecOptions) -> Result<Supervisor> {
    let xdir = dir.join(EXEC_DIR);
    let p = &x.process;
    let mut io = make_io(p.tty, p.open_stdin, p.console_size)?;
    let listener = bind(&xdir.join(format!("{}.sock", x.id)))?;
    let ns = open_target(dir, c)?;
    let sigfd = sigchld_fd()?;
    let (rep_r, rep_w) = report_pipe()?;
    let cgroup = Cgroup::new(c.cgroup_parent(), &c.id);
    // SAFETY: the shim is single-threaded, so the child may run any code.
    let child = match unsafe { nix::unistd::fork() }
        .map_err(|e| RuntimeError::sys("fork exec process", e))?
    {
        ForkResult::Child => {
            drop((rep_r, listener));
            process::exec_child(c, x, io.child, ns, &cgroup, rep_w)
        }
        ForkResult::Parent { child } => child,
    };
    drop((rep_w, ns));
    let io_ok = io.after_fork();
    if let Some((exit_code, message)) = read_child_report(rep_r) {
        let _ = nix::sys::wait::waitpid(child, None);
        return Err(RuntimeError::StartFailed { message, exit_code });
    }
    check_io(io_ok, child)?;
    record_started(&xdir.join(format!("{}.started.json", x.id)), child)?;
    Ok(Supervisor {
        pid: child,
        outputs: io.outputs,
        stdin: io.stdin,
        master: io.master,
        listener,
        log: None,
        buffer_until_attach: !x.detach,
        sigfd,
    })
}
