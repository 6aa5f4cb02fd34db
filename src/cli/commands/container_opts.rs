//! The flags `create` and `run` share, and their translation into Docker's
//! `POST /containers/create` body.

use std::collections::BTreeMap;

use crate::types::api::ContainerConfig;
use crate::types::container::{CreateRequest, HostConfig, RestartPolicy, Ulimit};

/// Flags of `amber create` / `amber run` (Docker's names).
#[derive(Debug, Clone, clap::Args)]
pub struct CreateOpts {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short, long)]
    pub attach: Vec<String>,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables (KEY=VALUE, or KEY to take it from here).
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Set meta data on a container (KEY=VALUE).
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// When the container exits non-zero or is OOM-killed, capture it into
    /// a bundle labelled with the reason (label `amber.capture-on-failure`).
    #[arg(long)]
    pub capture_on_failure: bool,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Memory limit (e.g. 512m, 1g).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy: no, on-failure[:max-retries], always, unless-stopped.
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long)]
    pub stop_timeout: Option<i64>,
    /// Ulimit options (name=soft[:hard]).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Network mode: bridge, host, none, container:NAME or a network name.
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Add a network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address on the (user-defined) network.
    #[arg(long)]
    pub ip: Option<String>,
    /// Publish a container's port(s) to the host ([ip:][hostPort:]containerPort[/proto]).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports.
    #[arg(long)]
    pub expose: Vec<String>,
    /// Bind mount a volume (SRC:DST[:ro], NAME:DST, or DST for an anonymous volume).
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=...,target=...[,readonly]).
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (PATH[:OPTIONS]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s) (NAME[:ro|rw]).
    #[arg(long)]
    pub volumes_from: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip, or host:host-gateway).
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// The image to run.
    pub image: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl CreateOpts {
    /// Docker's conflicting-flag checks (the caller exits 125).
    pub fn validate(&self, detach: bool) -> anyhow::Result<()> {
        if detach && !self.attach.is_empty() {
            anyhow::bail!("Conflicting options: -a and -d");
        }
        if self.rm && !matches!(self.restart.as_str(), "" | "no") {
            anyhow::bail!("Conflicting options: --restart and --rm");
        }
        for a in &self.attach {
            if !matches!(
                a.to_ascii_lowercase().as_str(),
                "stdin" | "stdout" | "stderr"
            ) {
                anyhow::bail!("invalid argument {a:?} for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR");
            }
        }
        Ok(())
    }

    /// Whether `-a` names a stream (all of stdout/stderr when `-a` is absent).
    pub fn attaches(&self, stream: &str) -> bool {
        if self.attach.is_empty() {
            return stream != "stdin" || self.interactive;
        }
        self.attach.iter().any(|a| a.eq_ignore_ascii_case(stream))
    }

    /// The create body, given whether the client attaches.
    pub fn request(
        &self,
        detach: bool,
        console: Option<(u16, u16)>,
    ) -> anyhow::Result<CreateRequest> {
        let mut config = self.config(detach)?;
        let (exposed, bindings) = self.ports()?;
        if !exposed.is_empty() {
            config.exposed_ports = Some(exposed);
        }
        let host_config = HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            publish_all_ports: self.publish_all,
            binds: non_empty(&self.binds()?),
            mounts: if self.mount.is_empty() {
                None
            } else {
                Some(
                    self.mount
                        .iter()
                        .map(|m| parse_mount(m))
                        .collect::<Result<_, _>>()?,
                )
            },
            tmpfs: (!self.tmpfs.is_empty()).then(|| {
                self.tmpfs
                    .iter()
                    .map(|t| match t.split_once(':') {
                        Some((p, o)) => (p.to_string(), o.to_string()),
                        None => (t.clone(), String::new()),
                    })
                    .collect()
            }),
            volumes_from: non_empty(&self.volumes_from),
            extra_hosts: non_empty(&self.add_host),
            dns: non_empty(&self.dns),
            dns_search: non_empty(&self.dns_search),
            dns_options: non_empty(&self.dns_option),
            auto_remove: self.rm,
            privileged: self.privileged,
            cap_add: non_empty(&self.cap_add),
            cap_drop: non_empty(&self.cap_drop),
            memory: opt_bytes(self.memory.as_deref())?,
            memory_swap: match self.memory_swap.as_deref() {
                Some("-1") => -1,
                other => opt_bytes(other)?,
            },
            nano_cpus: self.cpus.map(|c| (c * 1e9).round() as i64).unwrap_or(0),
            cpu_shares: self.cpu_shares.unwrap_or(0),
            pids_limit: self.pids_limit,
            restart_policy: parse_restart(&self.restart)?,
            ulimits: if self.ulimit.is_empty() {
                None
            } else {
                Some(
                    self.ulimit
                        .iter()
                        .map(|u| parse_ulimit(u))
                        .collect::<Result<_, _>>()?,
                )
            },
            network_mode: self.network.clone().unwrap_or_default(),
            console_size: console.map(|(h, w)| vec![h, w]),
            ..Default::default()
        };
        Ok(CreateRequest {
            config,
            host_config,
            stop_timeout: self.stop_timeout,
            networking_config: self.networking_config(),
        })
    }

    /// `--expose` and `-p` as `ExposedPorts` and `PortBindings`.
    fn ports(
        &self,
    ) -> anyhow::Result<(
        BTreeMap<String, serde_json::Value>,
        crate::types::ports::PortMap,
    )> {
        use crate::types::ports::{parse_publish, parse_range};
        let mut exposed = BTreeMap::new();
        let mut bindings = crate::types::ports::PortMap::new();
        for e in &self.expose {
            let (range, proto) = e.split_once('/').unwrap_or((e, "tcp"));
            let (a, b) = parse_range(range)
                .map_err(|_| anyhow::anyhow!("invalid range format for --expose: {e}"))?;
            for p in a..=b {
                exposed.insert(format!("{p}/{proto}"), serde_json::json!({}));
            }
        }
        for p in &self.publish {
            for (key, b) in parse_publish(p).map_err(|e| anyhow::anyhow!(e))? {
                exposed.insert(key.clone(), serde_json::json!({}));
                bindings
                    .entry(key)
                    .or_insert_with(|| Some(Vec::new()))
                    .get_or_insert_with(Vec::new)
                    .push(b);
            }
        }
        Ok((exposed, bindings))
    }

    /// `-v` values; a host path starting with `.` is made absolute here,
    /// as the docker CLI does.
    fn binds(&self) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for v in &self.volume {
            match v.split_once(':') {
                Some((src, rest))
                    if src == "." || src.starts_with("./") || src.starts_with("../") =>
                {
                    let abs = std::env::current_dir()?.join(src);
                    let abs = abs.canonicalize().unwrap_or(abs);
                    out.push(format!("{}:{rest}", abs.display()));
                }
                _ => out.push(v.clone()),
            }
        }
        Ok(out)
    }

    /// Aliases on the `--network` network.
    fn networking_config(&self) -> Option<serde_json::Value> {
        if self.network_alias.is_empty() && self.ip.is_none() {
            return None;
        }
        let net = self.network.as_deref().unwrap_or("bridge");
        let mut ep = serde_json::json!({"Aliases": self.network_alias});
        if let Some(ip) = &self.ip {
            ep["IPAMConfig"] = serde_json::json!({"IPv4Address": ip});
        }
        Some(serde_json::json!({"EndpointsConfig": {net: ep}}))
    }

    fn config(&self, detach: bool) -> anyhow::Result<ContainerConfig> {
        let stdin = !detach && self.attaches("stdin");
        Ok(ContainerConfig {
            hostname: self.hostname.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            attach_stdin: stdin,
            attach_stdout: !detach && self.attaches("stdout"),
            attach_stderr: !detach && self.attaches("stderr"),
            tty: self.tty,
            open_stdin: self.interactive,
            stdin_once: self.interactive && stdin,
            env: non_empty(&self.environment()?),
            cmd: non_empty(&self.command),
            image: self.image.clone(),
            working_dir: self.workdir.clone().unwrap_or_default(),
            entrypoint: self.entrypoint.as_ref().map(|e| vec![e.clone()]),
            labels: Some({
                let mut l = parse_labels(&self.label);
                if self.capture_on_failure {
                    l.insert(CAPTURE_ON_FAILURE.into(), "true".into());
                }
                l
            }),
            stop_signal: self.stop_signal.clone(),
            ..Default::default()
        })
    }

    /// `--env-file` lines, then `-e`, as Docker orders them.
    fn environment(&self) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for f in &self.env_file {
            let text = std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("open {f}: {e}"))?;
            out.extend(
                text.lines()
                    .map(str::trim_start)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .filter_map(env_entry),
            );
        }
        out.extend(self.env.iter().filter_map(|e| env_entry(e)));
        Ok(out)
    }
}

/// `--mount type=bind,source=/a,target=/b,readonly` (Docker's CSV keys).
pub fn parse_mount(s: &str) -> anyhow::Result<crate::types::container::Mount> {
    use crate::types::container::{Mount, TmpfsOptions, VolumeOptions};
    let mut m = Mount {
        kind: "volume".into(),
        ..Default::default()
    };
    let truth = |v: Option<&str>, k: &str| -> anyhow::Result<bool> {
        match v.unwrap_or("true") {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => anyhow::bail!("invalid value for {k}: {other}"),
        }
    };
    for field in s.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need =
            || v.ok_or_else(|| anyhow::anyhow!("invalid field '{field}' must be a key=value pair"));
        match k.as_str() {
            "type" => m.kind = need()?.to_string(),
            "source" | "src" => m.source = need()?.to_string(),
            "target" | "destination" | "dst" => m.target = need()?.to_string(),
            "readonly" | "ro" => m.read_only = truth(v, &k)?,
            "volume-nocopy" => {
                m.volume_options
                    .get_or_insert_with(VolumeOptions::default)
                    .no_copy = truth(v, &k)?
            }
            "tmpfs-size" => {
                m.tmpfs_options
                    .get_or_insert_with(TmpfsOptions::default)
                    .size_bytes = parse_bytes(need()?)?
            }
            "tmpfs-mode" => {
                m.tmpfs_options
                    .get_or_insert_with(TmpfsOptions::default)
                    .mode = u32::from_str_radix(need()?, 8)
                    .map_err(|_| anyhow::anyhow!("invalid value for tmpfs-mode: {field}"))?
            }
            "bind-propagation" | "consistency" | "bind-recursive" | "volume-driver" => {}
            _ => anyhow::bail!("unexpected key '{k}' in '{field}'"),
        }
    }
    if !matches!(m.kind.as_str(), "bind" | "volume" | "tmpfs") {
        anyhow::bail!(
            "invalid mount type {:?}: must be bind, volume or tmpfs",
            m.kind
        );
    }
    if m.target.is_empty() {
        anyhow::bail!("target is required");
    }
    Ok(m)
}

/// `KEY=V` as is; a bare `KEY` takes our value, or is dropped when unset.
fn env_entry(e: &str) -> Option<String> {
    if e.contains('=') {
        return Some(e.to_string());
    }
    std::env::var(e).ok().map(|v| format!("{e}={v}"))
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// The container label that asks for a capture when it fails.
pub const CAPTURE_ON_FAILURE: &str = "amber.capture-on-failure";

fn parse_labels(labels: &[String]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

fn opt_bytes(v: Option<&str>) -> anyhow::Result<i64> {
    v.map(parse_bytes).transpose().map(|b| b.unwrap_or(0))
}

/// Docker's `RAMInBytes`: `512m`, `1g`, `100k`, `1024` (binary units).
pub fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let bad = || anyhow::anyhow!("invalid size: '{s}'");
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('p') => (&t[..t.len() - 1], 1 << 50),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    if n < 0.0 {
        return Err(bad());
    }
    Ok((n * mult as f64) as i64)
}

/// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn parse_restart(s: &str) -> anyhow::Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let maximum_retry_count = match (name, count) {
        ("on-failure", Some(c)) => c.parse().map_err(|_| {
            anyhow::anyhow!("invalid restart policy format: maximum retry count must be an integer")
        })?,
        (_, Some(_)) => anyhow::bail!(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure'"
        ),
        _ => 0,
    };
    if !matches!(name, "" | "no" | "always" | "unless-stopped" | "on-failure") {
        anyhow::bail!("invalid restart policy format: unknown policy {name:?}");
    }
    Ok(RestartPolicy {
        name: if name.is_empty() {
            "no".into()
        } else {
            name.into()
        },
        maximum_retry_count,
    })
}

/// `nofile=1024[:2048]`.
pub fn parse_ulimit(s: &str) -> anyhow::Result<Ulimit> {
    let bad = || anyhow::anyhow!("invalid ulimit argument: {s}");
    let (name, limits) = s.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = match limits.split_once(':') {
        Some((a, b)) => (a, b),
        None => (limits, limits),
    };
    Ok(Ulimit {
        name: name.to_string(),
        soft: soft.parse().map_err(|_| bad())?,
        hard: hard.parse().map_err(|_| bad())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (s, n) in [
            ("512m", 512 << 20),
            ("1g", 1 << 30),
            ("1G", 1 << 30),
            ("100k", 100 << 10),
            ("64mb", 64 << 20),
            ("1024", 1024),
            ("1.5g", 3 << 29),
        ] {
            assert_eq!(parse_bytes(s).unwrap(), n, "{s}");
        }
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("no").unwrap().name, "no");
        let p = parse_restart("on-failure:3").unwrap();
        assert_eq!((p.name.as_str(), p.maximum_retry_count), ("on-failure", 3));
        assert!(parse_restart("always:3").is_err());
        assert!(parse_restart("sometimes").is_err());
    }

    fn opts(args: &[&str]) -> CreateOpts {
        #[derive(clap::Parser)]
        #[command(disable_help_flag = true)]
        struct P {
            #[command(flatten)]
            o: CreateOpts,
        }
        let mut argv = vec!["run"];
        argv.extend(args);
        <P as clap::Parser>::parse_from(argv).o
    }

    #[test]
    fn conflicts_and_streams() {
        assert!(opts(&["-a", "stdout", "busybox"]).validate(true).is_err());
        assert!(opts(&["--rm", "--restart", "always", "busybox"])
            .validate(false)
            .is_err());
        assert!(opts(&["-a", "bogus", "busybox"]).validate(false).is_err());
        let o = opts(&["-i", "busybox", "sh", "-c", "x"]);
        assert!(o.attaches("stdin") && o.attaches("stdout"));
        assert_eq!(o.command, ["sh", "-c", "x"]);
        let o = opts(&["-a", "STDERR", "busybox"]);
        assert!(!o.attaches("stdout") && o.attaches("stderr"));
        let r = opts(&["--cpus", "1.5", "-m", "1g", "-e", "A=1", "busybox"])
            .request(false, Some((24, 80)))
            .unwrap();
        assert_eq!(r.host_config.nano_cpus, 1_500_000_000);
        assert_eq!(r.host_config.memory, 1 << 30);
        assert_eq!(r.host_config.console_size, Some(vec![24, 80]));
        assert_eq!(r.config.env, Some(vec!["A=1".to_string()]));
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=bind,source=/a,target=/b,readonly").unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.source.as_str(),
                m.target.as_str(),
                m.read_only
            ),
            ("bind", "/a", "/b", true)
        );
        let t = parse_mount("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        let o = t.tmpfs_options.unwrap();
        assert_eq!((o.size_bytes, o.mode), (64 << 20, 0o1770));
        assert!(parse_mount("type=nfs,target=/x").is_err());
        assert!(parse_mount("type=bind,source=/x").is_err());
        assert!(parse_mount("bogus=1,target=/x").is_err());
        let r = opts(&[
            "-v",
            "data:/d",
            "--tmpfs",
            "/run:size=1m",
            "--volumes-from",
            "x:ro",
            "busybox",
        ])
        .request(true, None)
        .unwrap();
        assert_eq!(r.host_config.binds.unwrap(), ["data:/d"]);
        assert_eq!(r.host_config.tmpfs.unwrap()["/run"], "size=1m");
        assert_eq!(r.host_config.volumes_from.unwrap(), ["x:ro"]);
    }

    #[test]
    fn published_ports() {
        let r = opts(&[
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1::53/udp",
            "--expose",
            "90-91",
            "-P",
            "busybox",
        ])
        .request(true, None)
        .unwrap();
        let b = r.host_config.port_bindings.unwrap();
        assert_eq!(b["80/tcp"].as_ref().unwrap()[0].host_port, "8080");
        assert_eq!(b["53/udp"].as_ref().unwrap()[0].host_ip, "127.0.0.1");
        let e = r.config.exposed_ports.unwrap();
        assert!(e.contains_key("91/tcp") && e.contains_key("80/tcp"));
        assert!(r.host_config.publish_all_ports);
        assert!(opts(&["-p", "x:80", "busybox"])
            .request(true, None)
            .is_err());
    }

    #[test]
    fn ulimits() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        let u = parse_ulimit("nproc=10").unwrap();
        assert_eq!((u.soft, u.hard), (10, 10));
        assert!(parse_ulimit("nofile").is_err());
    }
}
