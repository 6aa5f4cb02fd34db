//! `amber bundle export` and `amber bundle import`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use http_body_util::BodyExt;
use hyper::Method;
use tokio::io::AsyncWriteExt;

use crate::cli::client::{empty, enc_path, read_all, stream_body, Client};
use crate::cli::progress;

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
    let total = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let partial = partial_path(Path::new(&args.output));
    let file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = tokio::io::BufWriter::with_capacity(4 << 20, file);
    let bar = progress::wanted(args.quiet).then(|| progress::bytes_bar("Exporting", total));
    let mut body = resp.into_body();
    let copied = async {
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.context("the daemon ended the archive early")?;
            if let Some(data) = frame.data_ref() {
                out.write_all(data).await?;
                n += data.len() as u64;
                if let Some(b) = &bar {
                    b.inc(data.len() as u64);
                }
            }
        }
        if total.is_some_and(|t| t != n) {
            anyhow::bail!("the daemon ended the archive early");
        }
        out.flush().await?;
        out.get_ref().sync_all().await?;
        anyhow::Ok(())
    }
    .await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Err(e) = copied {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    tokio::fs::rename(&partial, &args.output)
        .await
        .with_context(|| format!("cannot rename {} to {}", partial.display(), args.output))?;
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

/// `dir/.name.partial`: the archive is renamed into place only when whole.
pub(super) fn partial_path(f: &Path) -> PathBuf {
    let name = f
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle.tar".into());
    f.with_file_name(format!(".{name}.partial"))
}
