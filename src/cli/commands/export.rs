//! `amber export` / `amber container export`.

use anyhow::Context;
use http_body_util::BodyExt;
use hyper::Method;
use tokio::io::AsyncWriteExt;

use crate::cli::client::{empty, enc_path, Client};

/// Export a container's filesystem as a tar archive (stdout or `-o`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container.
    pub container: String,
    /// Write to a file instead of standard output.
    #[arg(short, long)]
    pub output: Option<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let resp = c
        .send(
            Method::GET,
            &format!("/containers/{}/export", enc_path(&args.container)),
            None,
            empty(),
        )
        .await?;
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin> = match &args.output {
        Some(f) => Box::new(
            tokio::fs::File::create(f)
                .await
                .with_context(|| format!("cannot create {f}"))?,
        ),
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                anyhow::bail!(
                    "refusing to write a tar to a terminal: use -o FILE or redirect stdout"
                );
            }
            Box::new(tokio::io::stdout())
        }
    };
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("export stream failed")?;
        if let Some(data) = frame.data_ref() {
            out.write_all(data).await?;
        }
    }
    out.flush().await?;
    Ok(0)
}
