//! `amber tag`.

use hyper::Method;

use crate::cli::client::{empty, enc, enc_path, Client};
use crate::types::Reference;

/// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// SOURCE_IMAGE[:TAG] or ID.
    pub source: String,
    /// TARGET_IMAGE[:TAG].
    pub target: String,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let target = Reference::parse(&args.target)?;
    let path = format!(
        "/images/{}/tag?repo={}&tag={}",
        enc_path(&args.source),
        enc(&target.familiar_name()),
        enc(target.tag().unwrap_or("latest"))
    );
    c.send(Method::POST, &path, None, empty()).await?;
    Ok(0)
}
