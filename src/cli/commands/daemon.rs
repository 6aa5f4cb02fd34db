//! `amber daemon`.

use std::path::PathBuf;

use crate::api::server::{self, DaemonOptions, DEFAULT_DATA_ROOT, DEFAULT_SOCKET};

/// Run the engine: serve the API on unix sockets until SIGTERM/SIGINT.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Root of persistent state (images, layers, containers, database).
    #[arg(long, default_value = DEFAULT_DATA_ROOT)]
    pub data_root: PathBuf,
    /// Cgroup parent of all containers.
    #[arg(long, default_value = crate::runtime::DEFAULT_CGROUP_PARENT)]
    pub cgroup_parent: String,
    /// Daemon configuration file (`registry-mirrors`, `insecure-registries`).
    #[arg(long, default_value = crate::api::server::DEFAULT_CONFIG_FILE)]
    pub config_file: PathBuf,
}

/// Run the daemon on the `-H` addresses (default `unix:///run/amber/amber.sock`).
pub async fn run(args: Args, hosts: Vec<String>) -> anyhow::Result<i32> {
    let hosts = if hosts.is_empty() {
        vec![format!("unix://{DEFAULT_SOCKET}")]
    } else {
        hosts
    };
    server::run(DaemonOptions {
        data_root: args.data_root,
        hosts,
        cgroup_parent: args.cgroup_parent,
        config_file: args.config_file,
    })
    .await?;
    Ok(0)
}
