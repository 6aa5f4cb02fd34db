//! `amber load` / `amber image load`.

use std::io::IsTerminal;

use anyhow::Context;
use hyper::Method;

use crate::cli::client::{stream_body, Client};
use crate::cli::progress;

/// Load images from a tar archive (docker-archive, podman's formats or an
/// OCI layout; plain, gzip or zstd); standard input when no `-i`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read from a file instead of standard input.
    #[arg(short, long)]
    pub input: Option<String>,
    /// Only print the loaded images, no progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let show = !args.quiet && std::io::stdout().is_terminal();
    let body = match &args.input {
        Some(f) => {
            let file = tokio::fs::File::open(f)
                .await
                .with_context(|| format!("cannot open {f}"))?;
            let len = file.metadata().await.ok().map(|m| m.len());
            match show.then(|| progress::bytes_bar("Loading", len)) {
                Some(bar) => stream_body(bar.wrap_async_read(file)),
                None => stream_body(file),
            }
        }
        None => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!(
                    "requested load from stdin, but stdin is empty: use -i FILE or redirect stdin"
                );
            }
            stream_body(tokio::io::stdin())
        }
    };
    let resp = c
        .send(
            Method::POST,
            "/images/load",
            Some("application/x-tar"),
            body,
        )
        .await?;
    crate::cli::progress::json_stream(resp, false).await?;
    Ok(0)
}
