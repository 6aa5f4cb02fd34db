//! Published ports served by one small process per port (`amber proxy`,
//! a hidden sub-mode of the binary, like the shim): it binds the host
//! socket, reports, and forwards until SIGTERM. Being its own process in
//! its own session, it keeps serving while the daemon restarts or is down.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::proxy::{self, Proto};
use super::NetError;

/// How long a stopped proxy may take to exit before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A running proxy process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyProcess {
    /// Its pid.
    pub pid: i32,
    /// The host port it bound (filled in when 0 was asked).
    pub host_port: u16,
}

/// Start `exe proxy ...` for one port; returns once it bound the port, or
/// with its error. `tag` (the container directory) marks the process as
/// this container's, so a pid is never mistaken for a reused one.
pub fn spawn(
    exe: &Path,
    tag: &Path,
    proto: Proto,
    host: SocketAddr,
    target: SocketAddr,
) -> Result<ProxyProcess, NetError> {
    let mut child = Command::new(exe)
        .args(["proxy", "--proto", proto.as_str()])
        .arg("--host")
        .arg(host.to_string())
        .arg("--target")
        .arg(target.to_string())
        .arg("--tag")
        .arg(tag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| NetError::io("start the port proxy", exe, e))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let pid = child.id() as i32;
    // Reap it whenever it ends (after a daemon restart, init does).
    let _ = std::thread::Builder::new()
        .name("proxy-reaper".into())
        .spawn(move || child.wait());
    match line.trim().split_once(' ') {
        Some(("ok", port)) => Ok(ProxyProcess {
            pid,
            host_port: port.parse().unwrap_or(host.port()),
        }),
        Some(("in-use", msg)) => Err(NetError::PortInUse {
            addr: host.to_string(),
            source: std::io::Error::other(msg.to_string()),
        }),
        Some((_, msg)) => Err(NetError::Invalid(msg.to_string())),
        None => Err(NetError::Invalid(format!(
            "the port proxy for {host} exited without binding it"
        ))),
    }
}

/// Whether `pid` is still the proxy marked with `tag`.
pub fn alive(pid: i32, tag: &Path) -> bool {
    let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
    args.contains(&&b"proxy"[..]) && args.contains(&tag.as_os_str().as_encoded_bytes())
}

/// Every running proxy whose tag lies under `dir`: `(pid, tag)`.
pub fn find_under(dir: &Path) -> Vec<(i32, std::path::PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        if args.get(1) != Some(&&b"proxy"[..]) {
            continue;
        }
        let tag = args
            .iter()
            .position(|a| *a == b"--tag")
            .and_then(|i| args.get(i + 1))
            .map(|t| std::path::PathBuf::from(String::from_utf8_lossy(t).into_owned()));
        if let Some(tag) = tag.filter(|t| t.starts_with(dir)) {
            out.push((pid, tag));
        }
    }
    out
}

/// Stop the proxy (SIGTERM, then SIGKILL after a grace period) and wait
/// until it is gone, so its port is free when this returns.
pub fn stop(pid: i32, tag: &Path) {
    if !alive(pid, tag) {
        return;
    }
    // SAFETY: signalling a process we checked is our proxy.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let start = Instant::now();
    while alive(pid, tag) {
        if start.elapsed() > STOP_GRACE {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
        if start.elapsed() > STOP_GRACE * 2 {
            tracing::error!(pid, "port proxy does not exit");
            return;
        }
    }
}

/// Parsed `amber proxy` arguments.
fn parse_args(args: &[String]) -> Result<(Proto, SocketAddr, SocketAddr), String> {
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .ok_or_else(|| format!("missing {k}"))
    };
    let proto = match get("--proto")?.as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        p => return Err(format!("bad --proto {p}")),
    };
    let host = get("--host")?
        .parse()
        .map_err(|e| format!("bad --host: {e}"))?;
    let target = get("--target")?
        .parse()
        .map_err(|e| format!("bad --target: {e}"))?;
    Ok((proto, host, target))
}

/// Body of `amber proxy --proto P --host ADDR --target ADDR --tag DIR`:
/// prints `ok PORT`, `in-use MSG` or `error MSG` on stdout, then forwards
/// until SIGTERM/SIGINT.
pub fn proxy_main(args: Vec<String>) -> i32 {
    use nix::sys::signal::{SigSet, Signal};
    // SAFETY: close_range on fds above stdio, before anything is opened:
    // none of the daemon's descriptors may outlive it here.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    let _ = nix::unistd::setsid();
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    // Blocked before any thread starts, so every thread inherits the mask
    // and only `wait` below takes the signal.
    let _ = set.thread_block();
    let (proto, host, target) = match parse_args(&args) {
        Ok(x) => x,
        Err(e) => {
            println!("error {e}");
            return 2;
        }
    };
    let fwd = match proxy::start(proto, host, target) {
        Ok(f) => f,
        Err(e @ NetError::PortInUse { .. }) => {
            println!("in-use {e}");
            return 1;
        }
        Err(e) => {
            println!("error {e}");
            return 1;
        }
    };
    println!("ok {}", fwd.host.port());
    // The daemon read its line: stdout goes nowhere from now on.
    if let Ok(null) = std::fs::File::options().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
    let _ = set.wait();
    drop(fwd);
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args() {
        let a: Vec<String> = [
            "--proto",
            "udp",
            "--host",
            "0.0.0.0:53",
            "--target",
            "10.0.0.2:53",
            "--tag",
            "/x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (p, h, t) = parse_args(&a).unwrap();
        assert_eq!(
            (p, h.port(), t.to_string()),
            (Proto::Udp, 53, "10.0.0.2:53".into())
        );
        assert!(parse_args(&a[..4]).is_err());
    }
}
