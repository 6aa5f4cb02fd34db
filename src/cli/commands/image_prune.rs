//! `amber image prune`.

use std::io::{BufRead, IsTerminal, Write};

use hyper::Method;
use serde_json::Value;

use crate::cli::client::{enc, Client};
use crate::cli::output::human_size;

/// Remove unused images: dangling ones (untagged, unused), or with `-a`
/// every image no container uses.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove all images no container uses, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    if !args.force && std::io::stdin().is_terminal() {
        let what = if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        print!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let filters = if args.all {
        r#"{"dangling":["false"]}"#
    } else {
        r#"{"dangling":["true"]}"#
    };
    let v: Value = c
        .json(
            Method::POST,
            &format!("/images/prune?filters={}", enc(filters)),
        )
        .await?;
    let items = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Images:");
    }
    for i in items {
        if let Some(u) = i["Untagged"].as_str() {
            println!("untagged: {u}");
        }
        if let Some(d) = i["Deleted"].as_str() {
            println!("deleted: {d}");
        }
    }
    println!(
        "\nTotal reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(0)
}
