//! `amber restart` / `amber container restart`.

use crate::cli::client::{enc_path, Client};

/// Restart one or more containers.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", visible_alias = "timeout")]
    pub time: Option<i64>,
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let q = args.time.map(|t| format!("?t={t}")).unwrap_or_default();
    super::each(&args.containers, |name| {
        let path = format!("/containers/{}/restart{q}", enc_path(name));
        async move { c.post(&path).await }
    })
    .await
}
