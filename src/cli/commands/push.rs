//! `amber push` / `amber image push`.

use hyper::Method;

use crate::cli::client::{empty, enc, enc_path, Client};
use crate::cli::{credentials, progress};
use crate::types::Reference;

/// Upload an image to a registry.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// NAME[:TAG] (the name carries the registry: `127.0.0.1:5000/app:v1`).
    pub image: String,
    /// Layer compression: gzip (default, read everywhere) or zstd.
    #[arg(long, default_value = "gzip")]
    pub compress: String,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let r = Reference::parse(&args.image)?;
    let auth = credentials::header_for_image(&args.image);
    let resp = c
        .send_with(
            Method::POST,
            &format!(
                "/images/{}/push?tag={}&compress={}",
                enc_path(&r.familiar_name()),
                enc(r.tag().unwrap_or("latest")),
                enc(&args.compress)
            ),
            &[("x-registry-auth", auth)],
            empty(),
        )
        .await?;
    let msgs = progress::json_stream(resp, args.quiet).await?;
    if args.quiet {
        if let Some(d) = msgs
            .iter()
            .rev()
            .find_map(|m| m.aux.as_ref()?.get("Digest")?.as_str().map(str::to_string))
        {
            println!("{d}");
        }
    }
    Ok(0)
}
