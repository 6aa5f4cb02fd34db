//! `amber kill` / `amber container kill`.

use crate::cli::client::{enc, enc_path, Client};

/// Kill one or more running containers.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Signal to send to the container.
    #[arg(short, long)]
    pub signal: Option<String>,
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let q = args
        .signal
        .as_deref()
        .map(|s| format!("?signal={}", enc(s)))
        .unwrap_or_default();
    super::each(&args.containers, |name| {
        let path = format!("/containers/{}/kill{q}", enc_path(name));
        async move { c.post(&path).await }
    })
    .await
}
