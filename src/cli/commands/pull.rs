//! `amber pull` / `amber image pull`.

use hyper::Method;

use crate::cli::client::{empty, enc, Client};
use crate::cli::{credentials, progress};
use crate::types::Reference;

/// Download an image from a registry.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// NAME[:TAG|@DIGEST].
    pub image: String,
    /// Print only the image reference.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let r = Reference::parse(&args.image)?;
    let (image, tag) = match (r.digest(), r.tag()) {
        (Some(d), _) => (r.familiar_name(), d.to_string()),
        (None, t) => (r.familiar_name(), t.unwrap_or("latest").to_string()),
    };
    if r.tag().is_none() && r.digest().is_none() && !args.quiet {
        println!("Using default tag: latest");
    }
    let auth = credentials::header_for_image(&args.image);
    let resp = c
        .send_with(
            Method::POST,
            &format!("/images/create?fromImage={}&tag={}", enc(&image), enc(&tag)),
            &[("x-registry-auth", auth)],
            empty(),
        )
        .await?;
    progress::json_stream(resp, args.quiet).await?;
    let shown = if r.digest().is_some() {
        format!("{}@{tag}", r)
    } else {
        r.to_string()
    };
    println!("{shown}");
    Ok(0)
}
