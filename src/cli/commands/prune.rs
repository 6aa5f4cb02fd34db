//! `amber container prune`.

use std::io::{BufRead, Write};

use hyper::Method;
use serde_json::Value;

use crate::cli::client::Client;
use crate::cli::output::human_size;

/// Remove all stopped containers.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    if !args.force && !confirm()? {
        return Ok(0);
    }
    let v: Value = c.json(Method::POST, "/containers/prune").await?;
    let deleted: Vec<&str> = v["ContainersDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for id in &deleted {
            println!("{id}");
        }
        println!();
    }
    let space = v["SpaceReclaimed"].as_i64().unwrap_or(0);
    println!("Total reclaimed space: {}", human_size(space));
    Ok(0)
}

fn confirm() -> anyhow::Result<bool> {
    print!("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
