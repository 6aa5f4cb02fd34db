//! Links, addresses, routes and network namespaces, through iproute2's `ip`
//! (`-batch` keeps it to one process per namespace) and util-linux's
//! `nsenter`; namespaces themselves are made in-process. Every function is
//! idempotent where it can be: a missing link on delete or an existing
//! address on add is not an error.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use super::ipnet::Ipv4Net;
use super::NetError;

/// Where the kernel lists links.
const SYS_CLASS_NET: &str = "/sys/class/net";
/// Linux's limit on interface names (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

fn run(cmd: &mut Command, stdin: Option<&str>) -> Result<String, NetError> {
    let shown = format!("{cmd:?}").replace('"', "");
    tracing::debug!(command = %shown, input = stdin.unwrap_or(""), "net command");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| NetError::Command {
        cmd: shown.clone(),
        message: e.to_string(),
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|e| NetError::Command {
                cmd: shown.clone(),
                message: e.to_string(),
            })?;
    }
    let out = child.wait_with_output().map_err(|e| NetError::Command {
        cmd: shown.clone(),
        message: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(NetError::Command {
            cmd: shown,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run `ip -batch -` with `lines`, in the namespace at `netns` if given.
pub fn ip_batch(netns: Option<&Path>, lines: &[String]) -> Result<(), NetError> {
    let input = lines.join("\n") + "\n";
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display()))
                .args(["ip", "-batch", "-"]);
            c
        }
        None => {
            let mut c = Command::new("ip");
            c.args(["-batch", "-"]);
            c
        }
    };
    run(&mut cmd, Some(&input)).map(|_| ())
}

/// Whether a link exists in the daemon's namespace.
pub fn exists(name: &str) -> bool {
    Path::new(SYS_CLASS_NET).join(name).exists()
}

/// Links of the daemon's namespace with the bridge they are enslaved to.
pub fn links_with_master() -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(SYS_CLASS_NET)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let master = std::fs::read_link(e.path().join("master"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        out.push((name, master));
    }
    out
}

/// Create a bridge (if missing) with `gateway` as its address, up.
pub fn ensure_bridge(name: &str, gateway: &Ipv4Net) -> Result<(), NetError> {
    let mut lines = Vec::new();
    if !exists(name) {
        lines.push(format!("link add name {name} type bridge"));
    }
    lines.push(format!(
        "addr replace {gateway} broadcast {} dev {name}",
        gateway.broadcast()
    ));
    lines.push(format!("link set {name} up"));
    ip_batch(None, &lines)
}

/// Delete a link; a missing one is fine.
pub fn delete(name: &str) -> Result<(), NetError> {
    if !exists(name) {
        return Ok(());
    }
    match ip_batch(None, &[format!("link del {name}")]) {
        Err(NetError::Command { message, .. }) if message.contains("Cannot find device") => Ok(()),
        other => other,
    }
}

/// Create a network namespace kept alive by a bind mount at `path`.
pub fn create_netns(path: &Path) -> Result<(), NetError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| NetError::io("create", dir, e))?;
    }
    remove_netns(path)?;
    std::fs::File::create(path).map_err(|e| NetError::io("create", path, e))?;
    // Namespaces are per thread: a short-lived thread leaves the daemon's
    // namespace, pins its new one with a bind mount, and ends. No fork.
    let target = path.to_path_buf();
    let made = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || -> Result<(), NetError> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetError::io("unshare a network namespace for", &target, e.into()))?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| NetError::io("bind the network namespace on", &target, e.into()))
        })
        .map_err(|e| NetError::io("start a thread for", path, e))?
        .join()
        .map_err(|_| NetError::Invalid("network namespace thread panicked".into()))?;
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Unmount and remove a namespace file; a missing one is fine.
pub fn remove_netns(path: &Path) -> Result<(), NetError> {
    match nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => {
            return Err(NetError::io(
                "unmount",
                path,
                std::io::Error::from_raw_os_error(e as i32),
            ))
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::io("remove", path, e)),
    }
}

/// One interface of a container on a bridge.
#[derive(Debug, Clone)]
pub struct VethOptions<'a> {
    /// Host-side name (enslaved to `bridge`).
    pub host: &'a str,
    /// Bridge to attach to.
    pub bridge: &'a str,
    /// The container's namespace.
    pub netns: &'a Path,
    /// Name inside the container (`eth0`).
    pub ifname: &'a str,
    /// MAC inside the container.
    pub mac: &'a str,
    /// Address and prefix inside the container.
    pub addr: Ipv4Net,
    /// Default route through this gateway (the first network's).
    pub default_gateway: Option<Ipv4Addr>,
}

/// Create a veth pair: one end on the bridge, the other in the container's
/// namespace, addressed and up; `lo` is brought up there too.
pub fn add_veth(o: &VethOptions<'_>) -> Result<(), NetError> {
    delete(o.host)?;
    ip_batch(
        None,
        &[
            format!(
                "link add name {} type veth peer name {} address {} netns {}",
                o.host,
                o.ifname,
                o.mac,
                o.netns.display()
            ),
            format!("link set {} master {} up", o.host, o.bridge),
        ],
    )?;
    let mut inside = vec![
        "link set lo up".to_string(),
        format!(
            "addr add {} broadcast {} dev {}",
            o.addr,
            o.addr.broadcast(),
            o.ifname
        ),
        format!("link set {} up", o.ifname),
    ];
    if let Some(gw) = o.default_gateway {
        inside.push(format!("route replace default via {gw} dev {}", o.ifname));
    }
    let done = ip_batch(Some(o.netns), &inside);
    if done.is_err() {
        let _ = delete(o.host);
    }
    done
}

/// The IPv4 destinations of the daemon's namespace's routes (all tables),
/// except `default` and those on `ignore` links.
pub fn host_routes(ignore: &[String]) -> Result<Vec<Ipv4Net>, NetError> {
    let out = run(
        Command::new("ip").args(["-4", "-o", "route", "show", "table", "all"]),
        None,
    )?;
    Ok(parse_routes(&out, ignore))
}

fn parse_routes(out: &str, ignore: &[String]) -> Vec<Ipv4Net> {
    let mut nets = Vec::new();
    for line in out.lines() {
        let mut words = line.split_whitespace().peekable();
        // `local`, `broadcast`, `unicast`... may come first.
        if matches!(
            words.peek(),
            Some(&("local" | "broadcast" | "unicast" | "multicast" | "anycast"))
        ) {
            // Host-local entries (the host's own addresses) do not claim a subnet.
            continue;
        }
        let Some(dst) = words.next() else { continue };
        let words: Vec<&str> = words.collect();
        let dev = words
            .iter()
            .position(|w| *w == "dev")
            .and_then(|i| words.get(i + 1));
        if dev.is_some_and(|d| ignore.iter().any(|i| i == d)) {
            continue;
        }
        if let Ok(n) = dst.parse::<Ipv4Net>() {
            nets.push(n.trunc());
        }
    }
    nets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let out = "default via 192.0.2.1 dev eth0 \n\
                   192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2 \n\
                   172.17.0.0/16 dev amber0 proto kernel scope link src 172.17.0.1 \n\
                   local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1 \n\
                   10.1.2.3 dev tun0 scope link \n";
        let r = parse_routes(out, &["amber0".to_string()]);
        let s: Vec<String> = r.iter().map(|n| n.to_string()).collect();
        assert_eq!(s, ["192.0.2.0/24", "10.1.2.3/32"]);
    }
}
