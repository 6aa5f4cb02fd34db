//! `amber baseline create` and `amber rollback`.

use serde_json::{json, Value};

use crate::cli::client::{enc, enc_path, read_all, Client};

/// `amber baseline ...`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Capture containers as a named baseline and prepare fast rollback.
    Create(CreateArgs),
}

/// Capture containers as a named baseline.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The baseline's name.
    pub name: String,
    /// The containers (all with --all).
    pub containers: Vec<String>,
    /// Every container.
    #[arg(short, long)]
    pub all: bool,
    /// Do not freeze running containers while reading their files.
    #[arg(long)]
    pub no_pause: bool,
    /// Keep volume content too: rollback then resets the volumes as well.
    #[arg(long)]
    pub volumes: bool,
    /// `json` prints the summary.
    #[arg(long)]
    pub format: Option<String>,
}

/// Put every container of a baseline back to its captured state: existing
/// ones are reset by swapping in their prepared writable layer, removed ones
/// are restored; containers created since are removed only with --prune.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The baseline's name.
    pub name: String,
    /// Also remove containers created after the baseline.
    #[arg(long)]
    pub prune: bool,
    /// `json` prints what was done, with timings.
    #[arg(long)]
    pub format: Option<String>,
}

/// Run a `baseline` subcommand.
pub async fn run(c: &Client, cmd: Command) -> anyhow::Result<i32> {
    let Command::Create(a) = cmd;
    let body = json!({"containers": a.containers, "all": a.all, "no_pause": a.no_pause, "volumes": a.volumes, "label": format!("baseline {}", a.name)});
    let resp = c
        .post_json(&format!("/amber/v1/baselines?name={}", enc(&a.name)), &body)
        .await?;
    let v: Value = serde_json::from_slice(&read_all(resp).await?)?;
    if a.format.as_deref() == Some("json") {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", v["Id"].as_str().unwrap_or_default());
    }
    Ok(0)
}

/// Run `rollback`.
pub async fn rollback(c: &Client, a: RollbackArgs) -> anyhow::Result<i32> {
    let path = format!(
        "/amber/v1/baselines/{}/rollback?prune={}",
        enc_path(&a.name),
        a.prune
    );
    let resp = c.post_json(&path, &json!({})).await?;
    let v: Value = serde_json::from_slice(&read_all(resp).await?)?;
    if a.format.as_deref() == Some("json") {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    for (what, key) in [
        ("reset", "Reset"),
        ("restored", "Restored"),
        ("removed", "Removed"),
    ] {
        for n in v[key].as_array().into_iter().flatten() {
            println!("{what} {}", n.as_str().unwrap_or_default());
        }
    }
    eprintln!("rolled back in {} ms", v["RollbackMs"]);
    Ok(0)
}
