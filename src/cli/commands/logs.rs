//! `amber logs` / `amber container logs`.

use hyper::Method;

use crate::cli::client::{empty, enc, enc_path, Client};
use crate::cli::stream;

/// Fetch the logs of a container.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for all).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since a timestamp or relative time (e.g. 42m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time.
    #[arg(long)]
    pub until: Option<String>,
    /// Show extra details (accepted for compatibility).
    #[arg(long)]
    pub details: bool,
    /// The container.
    pub container: String,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let mut path = format!(
        "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}&tail={}",
        enc_path(&args.container),
        args.follow as u8,
        args.timestamps as u8,
        enc(&args.tail)
    );
    for (k, v) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = v {
            path.push_str(&format!("&{k}={}", enc(v)));
        }
    }
    let resp = c.send(Method::GET, &path, None, empty()).await?;
    let tty = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("raw-stream"));
    stream::copy_output(stream::body_reader(resp), tty)
        .await
        .map_err(|e| anyhow::anyhow!("error reading the logs: {e}"))?;
    Ok(0)
}
