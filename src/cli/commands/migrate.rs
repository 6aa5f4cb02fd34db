//! `amber migrate CONTAINER... --to HOST [--from HOST] [--keep] [--all]`
//! (docs/transfer.md).

use serde_json::{json, Value};

use crate::cli::client::{read_all, Client};
use crate::cli::output::human_size;

/// Move containers to another host: capture with volumes, transfer only
/// the missing blobs, restore there with the same names and config (started
/// if they were running), then remove them here unless `--keep`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Containers by name or ID.
    pub containers: Vec<String>,
    /// Target host.
    #[arg(long)]
    pub to: String,
    /// Source host (default: the daemon this CLI talks to).
    #[arg(long)]
    pub from: Option<String>,
    /// Keep the containers on the source (and running).
    #[arg(long)]
    pub keep: bool,
    /// Every container of the source.
    #[arg(long, conflicts_with = "containers")]
    pub all: bool,
    /// `json` prints the migration report.
    #[arg(long)]
    pub format: Option<String>,
}

/// Run it: one line per container.
pub async fn run(c: &Client, a: Args) -> anyhow::Result<i32> {
    if a.containers.is_empty() && !a.all {
        anyhow::bail!("migrate needs container names or --all");
    }
    let body = json!({
        "containers": a.containers, "all": a.all, "to": a.to, "from": a.from, "keep": a.keep,
    });
    let resp = c.post_json("/amber/v1/migrate", &body).await?;
    let v: Value = serde_json::from_slice(&read_all(resp).await?)?;
    if a.format.as_deref() == Some("json") {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    for ct in v["containers"].as_array().into_iter().flatten() {
        let s = |k: &str| ct[k].as_str().unwrap_or_default().to_string();
        println!(
            "{}: migrated to {} ({}), {} on the source",
            s("name"),
            a.to,
            if ct["running"] == true {
                "running"
            } else {
                "not running"
            },
            s("source")
        );
    }
    let t = &v["transfer"];
    eprintln!(
        "bundle {}: {}/{} blobs, {} sent in {} ms",
        v["bundle"].as_str().unwrap_or_default(),
        t["blobs_sent"],
        t["blobs"],
        human_size(t["bytes_sent"].as_i64().unwrap_or(0)),
        v["ms"]
    );
    Ok(0)
}
