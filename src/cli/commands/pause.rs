//! `amber pause` and `amber unpause` (mirror images of each other).

use crate::cli::client::{enc_path, Client};

/// Pause all processes within one or more containers.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Unpause all processes within one or more containers.
#[derive(Debug, clap::Args)]
pub struct UnpauseArgs {
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Run `pause`.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    freeze(c, &args.containers, "pause").await
}

/// Run `unpause`.
pub async fn unpause(c: &Client, args: UnpauseArgs) -> anyhow::Result<i32> {
    freeze(c, &args.containers, "unpause").await
}

async fn freeze(c: &Client, names: &[String], op: &str) -> anyhow::Result<i32> {
    super::each(names, |name| {
        let path = format!("/containers/{}/{op}", enc_path(name));
        async move { c.post(&path).await }
    })
    .await
}
