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

/// Pull `image` through the daemon, showing progress unless `quiet`
/// (then the final status goes to standard error, as `run` shows it).
pub async fn pull_image(c: &Client, image: &str, quiet: bool) -> anyhow::Result<()> {
    let r = Reference::parse(image)?;
    let tag = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, t) => t.unwrap_or("latest").to_string(),
    };
    let auth = credentials::header_for_image(image);
    let resp = c
        .send_with(
            Method::POST,
            &format!(
                "/images/create?fromImage={}&tag={}",
                enc(&r.familiar_name()),
                enc(&tag)
            ),
            &[("x-registry-auth", auth)],
            empty(),
        )
        .await?;
    let msgs = progress::json_stream(resp, quiet).await?;
    if quiet {
        for m in msgs.iter().filter_map(|m| m.status.as_deref()) {
            if m.starts_with("Status:") || m.starts_with("Digest:") {
                eprintln!("{m}");
            }
        }
    }
    Ok(())
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let bare = Reference::parse_name_only(&args.image)?;
    if bare.tag().is_none() && bare.digest().is_none() && !args.quiet {
        println!("Using default tag: latest");
    }
    pull_image(c, &args.image, args.quiet).await?;
    println!("{}", Reference::parse(&args.image)?);
    Ok(0)
}
