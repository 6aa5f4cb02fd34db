//! `amber stop` / `amber container stop`.

use crate::cli::client::{enc, enc_path, Client};

/// Stop one or more running containers.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", visible_alias = "timeout")]
    pub time: Option<i64>,
    /// Signal to send to the container.
    #[arg(short, long)]
    pub signal: Option<String>,
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let mut q = Vec::new();
    if let Some(t) = args.time {
        q.push(format!("t={t}"));
    }
    if let Some(s) = &args.signal {
        q.push(format!("signal={}", enc(s)));
    }
    super::each(&args.containers, |name| {
        let path = format!("/containers/{}/stop?{}", enc_path(name), q.join("&"));
        async move { c.post(&path).await }
    })
    .await
}
