//! `amber commit` / `amber container commit`.

use crate::cli::client::{enc, Client};
use crate::types::Reference;

/// Create a new image from a container's changes. A stopped container's
/// writable layer moves into the image without a copy; a running one is
/// paused while its changes are captured (unless `--pause=false`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container.
    pub container: String,
    /// Name for the new image (REPO[:TAG]).
    pub reference: Option<String>,
    /// Commit message.
    #[arg(short, long, default_value = "")]
    pub message: String,
    /// Author (e.g. "Jane <jane@example.com>").
    #[arg(short, long, default_value = "")]
    pub author: String,
    /// Apply a Dockerfile instruction to the image (CMD, ENV, EXPOSE...).
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Pause a running container during the commit.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pause: bool,
}

/// Run it: prints the new image ID.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let mut q = format!(
        "container={}&comment={}&author={}&pause={}",
        enc(&args.container),
        enc(&args.message),
        enc(&args.author),
        args.pause
    );
    if let Some(r) = &args.reference {
        let r = Reference::parse(r)?;
        q.push_str(&format!(
            "&repo={}&tag={}",
            enc(&r.familiar_name()),
            enc(r.tag().unwrap_or("latest"))
        ));
    }
    for ch in &args.change {
        q.push_str(&format!("&changes={}", enc(ch)));
    }
    let v: serde_json::Value = c.json(hyper::Method::POST, &format!("/commit?{q}")).await?;
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}
