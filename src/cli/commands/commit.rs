//! `amber commit` / `amber container commit`.

use crate::cli::client::{enc, repo_tag_changes_query, Client};

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
    q.push_str(&repo_tag_changes_query(
        args.reference.as_deref(),
        &args.change,
    )?);
    let v: serde_json::Value = c.json(hyper::Method::POST, &format!("/commit?{q}")).await?;
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}
