//! Core dumps of a container's processes (`capture --core`): `gcore` from
//! gdb attaches to each process with ptrace and writes an ELF core file
//! into a scratch directory of the store's `tmp/`; the file is stored in
//! chunks like a captured file, then removed.
//!
//! The caller must not hold the container frozen: a ptrace attach to a task
//! stopped by the cgroup freezer waits until it is thawed. A missing or
//! failing gcore is recorded as the reason there is no core; only store
//! errors fail the capture.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::manifest::{CoreDump, CoreDumps, FILE_CHUNK};
use super::sink::{put_chunked, BlobSink};
use super::CaptureError;

/// The gcore program to run (a path, or a name looked up in `PATH`) when
/// set in the daemon's environment; `gcore` otherwise.
pub const GCORE_ENV: &str = "AMBER_GCORE";
/// Longest one gcore may take before it is killed (with its gdb). gdb
/// stops the process while it dumps it, so a gcore that hangs would leave
/// the process stopped; killing gdb detaches it.
pub const GCORE_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a running gcore is checked for exit or timeout.
const POLL: Duration = Duration::from_millis(20);
/// The reason recorded when there is no gcore.
pub const NO_GCORE: &str = "gcore not found; install gdb";

/// The gcore program, or why there is none.
pub fn gcore_program() -> Result<PathBuf, String> {
    let name = std::env::var_os(GCORE_ENV).unwrap_or_else(|| "gcore".into());
    find_program(Path::new(&name), std::env::var_os("PATH").as_deref()).ok_or_else(|| {
        if name == "gcore" {
            NO_GCORE.to_string()
        } else {
            format!(
                "{NO_GCORE} ({GCORE_ENV}={} is not executable)",
                name.to_string_lossy()
            )
        }
    })
}

/// `name` itself when it is a path, else the first executable `name` in
/// the `PATH` directories.
fn find_program(name: &Path, path: Option<&OsStr>) -> Option<PathBuf> {
    if name.components().count() > 1 {
        return is_executable(name).then(|| name.to_path_buf());
    }
    std::env::split_paths(path?)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Dump every process of `processes` (entries of the manifest's
/// `processes`: `pid`, `ns_pid`, `exe`) into `sink`, using `scratch` (a
/// path in the store's `tmp/`, created and removed here).
pub fn capture_cores(
    sink: &mut BlobSink<'_>,
    scratch: &Path,
    processes: &[Value],
) -> Result<CoreDumps, CaptureError> {
    let gcore = match gcore_program() {
        Ok(g) => g,
        Err(reason) => {
            return Ok(CoreDumps {
                error: Some(reason),
                processes: Vec::new(),
            })
        }
    };
    let name = scratch.display().to_string();
    fs::create_dir_all(scratch).map_err(|e| CaptureError::io("create", &name, e))?;
    let result = (|| {
        let mut out = CoreDumps::default();
        for p in processes {
            let Some(pid) = p["pid"].as_i64().and_then(|v| i32::try_from(v).ok()) else {
                continue;
            };
            let mut dump = CoreDump {
                pid,
                ns_pid: p["ns_pid"].as_i64().and_then(|v| i32::try_from(v).ok()),
                exe: p["exe"].as_str().unwrap_or_default().to_string(),
                ..CoreDump::default()
            };
            match run_gcore(&gcore, pid, scratch, GCORE_TIMEOUT) {
                Ok(core) => {
                    let stored = store_core(sink, &core, &mut dump);
                    let _ = fs::remove_file(&core);
                    stored?;
                }
                Err(reason) => dump.error = Some(reason),
            }
            out.processes.push(dump);
        }
        Ok(out)
    })();
    let _ = fs::remove_dir_all(scratch);
    result
}

fn store_core(
    sink: &mut BlobSink<'_>,
    core: &Path,
    dump: &mut CoreDump,
) -> Result<(), CaptureError> {
    let f = File::open(core)
        .map_err(|e| CaptureError::io("open core", &core.display().to_string(), e))?;
    let (chunks, digest, size) = put_chunked(sink, f, FILE_CHUNK)?;
    dump.chunks = chunks;
    dump.digest = Some(digest);
    dump.size = size;
    Ok(())
}

/// Run `gcore -o DIR/core PID`; returns the core file (`DIR/core.PID`) or
/// why there is none (gcore's last line of output, or the timeout).
pub fn run_gcore(gcore: &Path, pid: i32, dir: &Path, timeout: Duration) -> Result<PathBuf, String> {
    let log_path = dir.join(format!("gcore-{pid}.log"));
    let log = File::create(&log_path)
        .and_then(|f| Ok((f.try_clone()?, f)))
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let mut child = Command::new(gcore)
        .arg("-o")
        .arg(dir.join("core"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(log.0)
        .stderr(log.1)
        // Its own process group, so a timeout kills gdb with the script.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", gcore.display()))?;
    tracing::debug!(pid, gcore = %gcore.display(), "dumping core");
    let status = wait_with_timeout(&mut child, timeout);
    if status.is_err() {
        // A gdb killed between its PTRACE_ATTACH and the stop it waits for
        // leaves the attach's SIGSTOP pending without a tracer: the process
        // would stop for good. SIGCONT undoes that (and nothing else).
        let target = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGCONT);
    }
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    let _ = fs::remove_file(&log_path);
    let status = status?;
    let core = dir.join(format!("core.{pid}"));
    if status.success() && core.is_file() {
        return Ok(core);
    }
    let _ = fs::remove_file(&core);
    let last = output
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output");
    Err(format!("gcore failed ({status}): {last}"))
}

/// Wait for `child`; past `timeout`, kill its process group.
fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Ok(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => {
                let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return Err(format!("gcore timed out after {} s", timeout.as_secs()));
            }
            Err(e) => return Err(format!("cannot wait for gcore: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_in_path_or_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("gcore");
        fs::write(&exe, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("plain");
        fs::write(&plain, "").unwrap();
        let path = std::env::join_paths(["/nonexistent", dir.path().to_str().unwrap()]).unwrap();
        for (name, path, want) in [
            ("gcore", Some(path.as_os_str()), Some(exe.clone())),
            ("gcore", None, None),
            ("plain", Some(path.as_os_str()), None),
            ("nothere", Some(path.as_os_str()), None),
            (exe.to_str().unwrap(), None, Some(exe.clone())),
            (plain.to_str().unwrap(), None, None),
        ] {
            assert_eq!(find_program(Path::new(name), path), want, "{name}");
        }
    }

    #[test]
    fn a_failing_gcore_gives_its_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake-gcore");
        fs::write(
            &fake,
            "#!/bin/sh\necho 'warning: x'\necho 'cannot attach' >&2\nexit 3\n",
        )
        .unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let err = run_gcore(&fake, 1, dir.path(), GCORE_TIMEOUT).unwrap_err();
        assert!(err.contains("cannot attach") && err.contains('3'), "{err}");
        // Nothing is left in the scratch directory but the script.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_hanging_gcore_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("slow-gcore");
        fs::write(&fake, "#!/bin/sh\nsleep 30 &\nwait\n").unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        // The target: a child of this test, stopped as a killed gdb can
        // leave it, and continued after the timeout.
        let mut target = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = target.id() as i32;
        let stopped = nix::sys::signal::Signal::SIGSTOP;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), stopped).unwrap();
        let t = Instant::now();
        let err = run_gcore(&fake, pid, dir.path(), Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(10));
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let state = stat[stat.rfind(')').unwrap() + 2..].chars().next();
        target.kill().unwrap();
        target.wait().unwrap();
        assert_ne!(state, Some('T'), "{stat}");
    }
}
