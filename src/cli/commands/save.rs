//! `amber save` / `amber image save`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use http_body_util::BodyExt;
use hyper::Method;
use tokio::io::AsyncWriteExt;

use crate::cli::client::{empty, enc, Client};
use crate::cli::progress;

/// Save images to a tar archive (loadable by `amber load`, `docker load`
/// and `podman load`); standard output when no `-o`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images (NAME[:TAG] or ID); a name without a tag saves all its tags.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to a file instead of standard output.
    #[arg(short, long)]
    pub output: Option<String>,
    /// Archive layout: docker (docker-archive, Docker 25+ style) or oci.
    #[arg(long, default_value = "docker")]
    pub format: String,
    /// Compression of the layers inside: none, gzip or zstd.
    #[arg(long, default_value = "none")]
    pub compress: String,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let mut query = String::new();
    for name in &args.images {
        query.push_str(&format!("names={}&", enc(name)));
    }
    query.push_str(&format!(
        "format={}&compress={}",
        enc(&args.format),
        enc(&args.compress)
    ));
    let resp = c
        .send(Method::GET, &format!("/images/get?{query}"), None, empty())
        .await?;
    let total = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (mut out, partial): (Box<dyn tokio::io::AsyncWrite + Unpin>, Option<PathBuf>) =
        match &args.output {
            Some(f) => {
                let partial = partial_path(Path::new(f));
                let file = tokio::fs::File::create(&partial)
                    .await
                    .with_context(|| format!("cannot create {}", partial.display()))?;
                let file = tokio::io::BufWriter::with_capacity(4 << 20, file);
                (Box::new(file), Some(partial))
            }
            None => {
                if std::io::stdout().is_terminal() {
                    anyhow::bail!(
                        "refusing to write a tar to a terminal: use -o FILE or redirect stdout"
                    );
                }
                let out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::io::stdout());
                (Box::new(out), None)
            }
        };
    let bar = (!args.quiet && args.output.is_some() && std::io::stdout().is_terminal())
        .then(|| progress::bytes_bar("Saving", total));
    let mut body = resp.into_body();
    let copied = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.context("the daemon ended the archive early")?;
            if let Some(data) = frame.data_ref() {
                out.write_all(data).await?;
                if let Some(b) = &bar {
                    b.inc(data.len() as u64);
                }
            }
        }
        out.flush().await?;
        anyhow::Ok(())
    }
    .await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    match (copied, &partial, &args.output) {
        (Ok(()), Some(p), Some(f)) => {
            drop(out);
            let file = tokio::fs::File::open(p).await?;
            file.sync_all().await?;
            tokio::fs::rename(p, f)
                .await
                .with_context(|| format!("cannot rename {} to {f}", p.display()))?;
            Ok(0)
        }
        (Ok(()), _, _) => Ok(0),
        (Err(e), p, _) => {
            if let Some(p) = p {
                let _ = tokio::fs::remove_file(p).await;
            }
            Err(e)
        }
    }
}

/// `dir/.name.partial`: the archive is renamed into place only when whole.
fn partial_path(f: &Path) -> PathBuf {
    let name = f
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    f.with_file_name(format!(".{name}.partial"))
}
