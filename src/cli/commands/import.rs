//! `amber import`.

use anyhow::Context;
use hyper::Method;

use crate::cli::client::{enc, repo_tag_changes_query, stream_body, Client};

/// Import a root filesystem tar (plain, gzip or zstd) as a one-layer image.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The tar file, or `-` for standard input.
    pub file: String,
    /// Name for the new image (REPO[:TAG]).
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL).
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Commit message for the imported image.
    #[arg(short, long, default_value = "")]
    pub message: String,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let mut query = format!("fromSrc=-&message={}", enc(&args.message));
    query.push_str(&repo_tag_changes_query(
        args.reference.as_deref(),
        &args.change,
    )?);
    let body = if args.file == "-" {
        stream_body(tokio::io::stdin())
    } else {
        let f = tokio::fs::File::open(&args.file)
            .await
            .with_context(|| format!("cannot open {}", args.file))?;
        stream_body(f)
    };
    let resp = c
        .send(
            Method::POST,
            &format!("/images/create?{query}"),
            Some("application/x-tar"),
            body,
        )
        .await?;
    crate::cli::progress::json_stream(resp, false).await?;
    Ok(0)
}
