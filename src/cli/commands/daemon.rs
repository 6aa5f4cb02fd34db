//! `amber daemon`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::api::remote::{RemoteAuth, ServerTls};
use crate::api::server::{self, DaemonOptions, DEFAULT_DATA_ROOT, DEFAULT_SOCKET};
use crate::net::{Ipv4Net, NetOptions};

/// The configuration file read at start (flags override it).
pub const DEFAULT_CONFIG_FILE: &str = "/etc/amber/daemon.json";

/// Run the engine: serve the API on unix sockets until SIGTERM/SIGINT.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Root of persistent state (images, layers, containers, database).
    #[arg(long, default_value = DEFAULT_DATA_ROOT)]
    pub data_root: PathBuf,
    /// Cgroup parent of all containers.
    #[arg(long, default_value = crate::runtime::DEFAULT_CGROUP_PARENT)]
    pub cgroup_parent: String,
    /// Name of the default bridge (created if missing; default amber0).
    #[arg(short = 'b', long)]
    pub bridge: Option<String>,
    /// Address and prefix of the default bridge, e.g. 172.30.0.1/16
    /// (default: a private subnet no host route uses).
    #[arg(long)]
    pub bip: Option<String>,
    /// Require `Authorization: Bearer TOKEN` on tcp:// hosts, TOKEN being
    /// the first line of FILE (mode 0600: other users must not read it).
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// Daemon configuration file (JSON: "bridge", "bip").
    #[arg(long, default_value = DEFAULT_CONFIG_FILE)]
    pub config_file: PathBuf,
}

/// The keys of daemon.json amber reads (others are ignored).
#[derive(Debug, Default, serde::Deserialize)]
struct ConfigFile {
    bridge: Option<String>,
    bip: Option<String>,
    /// `registry-mirrors`, `insecure-registries`, `registry-certs-dir`.
    #[serde(flatten)]
    registry: crate::registry::client::RegistryConfig,
}

fn read_config(path: &Path) -> anyhow::Result<ConfigFile> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .with_context(|| format!("invalid configuration file {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Flags over the configuration file over the defaults.
fn net_options(args: &Args, file: &ConfigFile) -> anyhow::Result<NetOptions> {
    let mut opts = NetOptions::default();
    if let Some(b) = args.bridge.clone().or(file.bridge.clone()) {
        if b.is_empty() || b.len() > crate::net::link::MAX_IFNAME || b.contains(['/', ' ']) {
            anyhow::bail!("invalid bridge name {b:?}: 1 to 15 characters, no '/' or space");
        }
        opts.bridge = b;
    }
    if let Some(bip) = args.bip.clone().or(file.bip.clone()) {
        let net: Ipv4Net = bip.parse().map_err(|e: String| anyhow::anyhow!(e))?;
        if net.prefix > 30 || net.addr == net.network() || net.addr == net.broadcast() {
            anyhow::bail!("invalid bip {bip}: need a host address and a prefix of at most /30");
        }
        opts.bip = Some(net);
    }
    Ok(opts)
}

/// Run the daemon on the `-H` addresses (default `unix:///run/amber/amber.sock`).
/// `tcp://` hosts need `remote`'s `--tlsverify ...` or `--auth-token-file`
/// unless they are loopback addresses.
pub async fn run(
    args: Args,
    hosts: Vec<String>,
    remote: crate::cli::remote::RemoteFlags,
) -> anyhow::Result<i32> {
    let hosts = if hosts.is_empty() {
        vec![format!("unix://{DEFAULT_SOCKET}")]
    } else {
        hosts
    };
    let file = read_config(&args.config_file)?;
    let net = net_options(&args, &file)?;
    server::run(DaemonOptions {
        data_root: args.data_root,
        hosts,
        remote: RemoteAuth {
            tls: remote.wants_tls().then(|| {
                let f = remote.tls_files();
                ServerTls {
                    ca: f.ca,
                    cert: f.cert,
                    key: f.key,
                }
            }),
            token_file: args.auth_token_file,
        },
        cgroup_parent: args.cgroup_parent,
        registry: file.registry,
        net,
    })
    .await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str], config: &Path) -> Args {
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: Args,
        }
        let mut argv = vec!["daemon", "--config-file", config.to_str().unwrap()];
        argv.extend(extra);
        <P as clap::Parser>::parse_from(argv).a
    }

    /// The network options of a command line, its config file read.
    fn net_of(a: &Args) -> anyhow::Result<NetOptions> {
        net_options(a, &read_config(&a.config_file)?)
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("daemon.json");
        std::fs::write(
            &cfg,
            r#"{"bip": "10.66.0.1/24", "bridge": "br9", "debug": true}"#,
        )
        .unwrap();
        let o = net_of(&args(&[], &cfg)).unwrap();
        assert_eq!(
            (o.bridge.as_str(), o.bip.unwrap().to_string()),
            ("br9", "10.66.0.1/24".into())
        );
        let o = net_of(&args(&["--bip", "10.67.0.1/16"], &cfg)).unwrap();
        assert_eq!(o.bip.unwrap().to_string(), "10.67.0.1/16");
        let missing = dir.path().join("none.json");
        assert_eq!(net_of(&args(&[], &missing)).unwrap(), NetOptions::default());
        assert!(net_of(&args(&["--bip", "10.0.0.0/24"], &missing)).is_err());
        assert!(net_of(&args(&["--bip", "nonsense"], &missing)).is_err());
    }
}
