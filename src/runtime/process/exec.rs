//! The last steps before `execve`, shared by a container's first process and
//! by exec'd processes: user, environment, executable lookup, rlimits, cwd,
//! capabilities, `no_new_privs`, seccomp, fd hygiene.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use caps::CapsHashSet;
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::{Gid, Uid};

use super::{caps as pcaps, seccomp, user};
use crate::runtime::config::{ProcessConfig, Rlimit};
use crate::runtime::error::{Result, RuntimeError};

/// Docker's default `PATH`.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn start_failed(message: String, exit_code: i32) -> RuntimeError {
    RuntimeError::StartFailed { message, exit_code }
}

/// Builds the environment: the given pairs plus Docker's defaults.
pub fn build_env(env: &[String], hostname: &str, home: &str, tty: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let has = |out: &Vec<String>, k: &str| out.iter().any(|e| e.split('=').next() == Some(k));
    for e in env {
        let key = e.split('=').next().unwrap_or("");
        out.retain(|o| o.split('=').next() != Some(key));
        out.push(e.clone());
    }
    for (k, v) in [
        ("PATH", DEFAULT_PATH),
        ("HOSTNAME", hostname),
        ("HOME", home),
    ] {
        if !has(&out, k) {
            out.push(format!("{k}={v}"));
        }
    }
    if tty && !has(&out, "TERM") {
        out.push("TERM=xterm".into());
    }
    out
}

/// Finds `cmd` like Go's `exec.LookPath`, with Docker's messages and codes.
pub fn lookup(cmd: &str, env: &[String]) -> Result<PathBuf> {
    let is_exec = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if cmd.contains('/') {
        let p = Path::new(cmd);
        return match p.metadata() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(start_failed(
                format!("exec: \"{cmd}\": stat {cmd}: no such file or directory"),
                127,
            )),
            _ if is_exec(p) => Ok(p.to_path_buf()),
            _ => Err(start_failed(
                format!("exec: \"{cmd}\": permission denied"),
                126,
            )),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(cmd))
        .find(|p| is_exec(p))
        .ok_or_else(|| {
            start_failed(
                format!("exec: \"{cmd}\": executable file not found in $PATH"),
                127,
            )
        })
}

fn rlimit_resource(name: &str) -> Result<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    let n = name.to_ascii_lowercase();
    let n = n.strip_prefix("rlimit_").unwrap_or(&n);
    Ok(match n {
        "nofile" => R::RLIMIT_NOFILE,
        "nproc" => R::RLIMIT_NPROC,
        "core" => R::RLIMIT_CORE,
        "cpu" => R::RLIMIT_CPU,
        "data" => R::RLIMIT_DATA,
        "fsize" => R::RLIMIT_FSIZE,
        "memlock" => R::RLIMIT_MEMLOCK,
        "stack" => R::RLIMIT_STACK,
        "as" => R::RLIMIT_AS,
        "msgqueue" => R::RLIMIT_MSGQUEUE,
        "nice" => R::RLIMIT_NICE,
        "rtprio" => R::RLIMIT_RTPRIO,
        "sigpending" => R::RLIMIT_SIGPENDING,
        _ => {
            return Err(RuntimeError::InvalidConfig(format!(
                "unknown rlimit {name:?}"
            )))
        }
    })
}

/// Applies the rlimits.
pub fn set_rlimits(limits: &[Rlimit]) -> Result<()> {
    for l in limits {
        nix::sys::resource::setrlimit(rlimit_resource(&l.name)?, l.soft, l.hard)
            .map_err(|e| start_failed(format!("error setting rlimit {}: {e}", l.name), 126))?;
    }
    Ok(())
}

fn change_user(u: &user::User) -> Result<()> {
    let err = |op: &str, e: nix::Error| start_failed(format!("failed to {op}: {e}"), 126);
    nix::sys::prctl::set_keepcaps(true).map_err(|e| err("keep capabilities", e))?;
    let groups: Vec<Gid> = u.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(|e| err("setgroups", e))?;
    let gid = Gid::from_raw(u.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| err("setgid", e))?;
    let uid = Uid::from_raw(u.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| err("setuid", e))?;
    nix::sys::prctl::set_keepcaps(false).map_err(|e| err("reset keep capabilities", e))
}

/// Everything about the process that is decided before the last steps.
pub struct Prepared {
    /// Resolved executable.
    pub path: CString,
    /// argv.
    pub argv: Vec<CString>,
    /// envp.
    pub envp: Vec<CString>,
    /// Capabilities the process keeps.
    pub caps: CapsHashSet,
    /// Whether security defaults are off.
    pub privileged: bool,
    user: user::User,
    cwd: String,
    rlimits: Vec<Rlimit>,
}

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| RuntimeError::InvalidConfig(format!("NUL byte in {s:?}")))
}

/// Resolves user, env and executable in the current root (the container's).
pub fn prepare(
    p: &ProcessConfig,
    hostname: &str,
    caps: CapsHashSet,
    privileged: bool,
) -> Result<Prepared> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let user = user::resolve(p.user.as_deref(), &passwd, &group)?;
    let env = build_env(&p.env, hostname, &user.home, p.tty);
    let path = lookup(&p.args[0], &env)?;
    Ok(Prepared {
        path: cstr(&path.to_string_lossy())?,
        argv: p.args.iter().map(|a| cstr(a)).collect::<Result<_>>()?,
        envp: env.iter().map(|e| cstr(e)).collect::<Result<_>>()?,
        caps,
        privileged,
        user,
        cwd: p
            .cwd
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "/".into()),
        rlimits: p.rlimits.clone(),
    })
}

/// Marks every fd above 2 close-on-exec, so nothing of the shim leaks.
fn cloexec_all() -> Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes fd flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(RuntimeError::sys("close_range", nix::Error::last()));
    }
    Ok(())
}

/// Drops privileges and executes the process. Returns only on failure.
pub fn finish_and_exec(p: Prepared) -> Result<std::convert::Infallible> {
    set_rlimits(&p.rlimits)?;
    pcaps::limit_bounding(&p.caps)?;
    change_user(&p.user)?;
    nix::unistd::chdir(p.cwd.as_str()).map_err(|e| {
        start_failed(
            format!(
                "chdir to cwd (\"{}\") set in config.json failed: {}",
                p.cwd,
                e.desc().to_lowercase()
            ),
            126,
        )
    })?;
    pcaps::apply_process_sets(&p.caps)?;
    // Rust's runtime ignores SIGPIPE and the shim blocks SIGCHLD: both would be
    // inherited through execve.
    // SAFETY: restoring the default disposition installs no Rust handler.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }
        .map_err(|e| RuntimeError::sys("reset SIGPIPE", e))?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| RuntimeError::sys("sigprocmask", e))?;
    if !p.privileged {
        nix::sys::prctl::set_no_new_privs()
            .map_err(|e| RuntimeError::sys("set no_new_privs", e))?;
        seccomp::install(&seccomp::default_filters(&p.caps)?)?;
    }
    cloexec_all()?;
    let e = match nix::unistd::execve(&p.path, &p.argv, &p.envp) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let code = if e == nix::Error::ENOENT { 127 } else { 126 };
    Err(start_failed(
        format!("exec: {:?}: {}", p.argv[0], e.desc().to_lowercase()),
        code,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_defaults() {
        let e = build_env(
            &["A=1".into(), "PATH=/x".into(), "A=2".into()],
            "h",
            "/root",
            true,
        );
        assert_eq!(
            e,
            vec!["PATH=/x", "A=2", "HOSTNAME=h", "HOME=/root", "TERM=xterm"]
        );
    }

    #[test]
    fn lookup_messages() {
        let env = vec!["PATH=/nonexistent".to_string()];
        let e = lookup("foo", &env).unwrap_err().to_string();
        assert_eq!(e, "exec: \"foo\": executable file not found in $PATH");
        let f = tempfile::NamedTempFile::new().unwrap();
        assert!(matches!(
            lookup(f.path().to_str().unwrap(), &env),
            Err(RuntimeError::StartFailed { exit_code: 126, .. })
        ));
        assert!(matches!(
            lookup("/nope/x", &env),
            Err(RuntimeError::StartFailed { exit_code: 127, .. })
        ));
    }
}
