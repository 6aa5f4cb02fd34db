//! `amber bundle export` and `amber bundle import`.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use hyper::Method;

use crate::cli::client::{empty, enc_path, read_all, stream_body, Client};
use crate::cli::{download, progress};

/// Write a bundle as one self-describing tar (manifest plus blobs by digest).
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Bundle ID.
    pub bundle: String,
    /// Output file (written as a hidden partial file, renamed when whole).
    #[arg(short, long)]
    pub output: String,
    /// Leave the containers' images out (the importing host must have them).
    #[arg(long)]
    pub no_images: bool,
    /// No progress bar (there is one only when standard output and
    /// standard error are terminals).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Import a bundle archive; every digest is verified before the bundle
/// becomes visible.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The archive (standard input when omitted).
    pub file: Option<String>,
    /// No progress bar (there is one only when reading a FILE and standard
    /// output and standard error are terminals).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Run `bundle export`.
pub async fn export(c: &Client, args: ExportArgs) -> anyhow::Result<i32> {
    let mut path = format!("/amber/v1/bundles/{}/export", enc_path(&args.bundle));
    if args.no_images {
        path.push_str("?images=0");
    }
    let resp = c.send(Method::GET, &path, None, empty()).await?;
    let total = download::content_length(&resp);
    let bar = progress::wanted(args.quiet).then(|| progress::bytes_bar("Exporting", total));
    let saved = download::save_body(
        resp,
        Some(Path::new(&args.output)),
        bar.as_ref(),
        "the archive",
    )
    .await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    saved?;
    Ok(0)
}

/// Run `bundle import`: prints the bundle ID.
pub async fn import(c: &Client, args: ImportArgs) -> anyhow::Result<i32> {
    let body = match &args.file {
        Some(f) => {
            let file = tokio::fs::File::open(f)
                .await
                .with_context(|| format!("cannot open {f}"))?;
            let len = file.metadata().await.ok().map(|m| m.len());
            match progress::wanted(args.quiet).then(|| progress::bytes_bar("Importing", len)) {
                Some(bar) => stream_body(bar.wrap_async_read(file)),
                None => stream_body(file),
            }
        }
        None => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!("bundle import needs a FILE or an archive on standard input");
            }
            stream_body(tokio::io::stdin())
        }
    };
    let resp = c
        .send(
            Method::POST,
            "/amber/v1/bundles/import",
            Some("application/x-tar"),
            body,
        )
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&read_all(resp).await?)?;
    println!("{}", v["id"].as_str().unwrap_or_default());
    Ok(0)
}
