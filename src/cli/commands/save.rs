//! `amber save` / `amber image save`.

use std::io::IsTerminal;
use std::path::Path;

use hyper::Method;

use crate::cli::client::{empty, enc, Client};
use crate::cli::{download, progress};

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
    let total = download::content_length(&resp);
    if args.output.is_none() {
        download::refuse_terminal("a tar")?;
    }
    let bar = (!args.quiet && args.output.is_some() && std::io::stdout().is_terminal())
        .then(|| progress::bytes_bar("Saving", total));
    let saved = download::save_body(
        resp,
        args.output.as_deref().map(Path::new),
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
