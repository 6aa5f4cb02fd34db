//! `amber volume create|ls|inspect|rm|prune`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use hyper::Method;
use serde_json::{json, Value};

use crate::cli::client::{enc, enc_path, read_all, Client};
use crate::cli::output::{human_size, print_table, Format};

/// `amber volume ...`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes.
    Inspect(InspectArgs),
    /// Remove one or more volumes.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused anonymous volumes (all unused ones with -a).
    Prune(PruneArgs),
}

/// Create a volume.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Volume driver name (local).
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume (KEY=VALUE).
    #[arg(long)]
    pub label: Vec<String>,
    /// The volume's name (random when omitted).
    pub name: Option<String>,
}

/// List volumes.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only display volume names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a Go template, or json.
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output (dangling=true|false).
    #[arg(short, long)]
    pub filter: Vec<String>,
}

/// Display detailed information on one or more volumes.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template, or json.
    #[arg(short, long)]
    pub format: Option<String>,
    /// The volumes.
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

/// Remove one or more volumes.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes.
    #[arg(short, long)]
    pub force: bool,
    /// The volumes.
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

/// Remove unused volumes.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Run it.
pub async fn run(c: &Client, cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Create(a) => {
            let labels: BTreeMap<String, String> = a
                .label
                .iter()
                .map(|l| match l.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (l.clone(), String::new()),
                })
                .collect();
            let body =
                json!({"Name": a.name.unwrap_or_default(), "Driver": a.driver, "Labels": labels});
            let bytes = read_all(c.post_json("/volumes/create", &body).await?).await?;
            let v: Value = serde_json::from_slice(&bytes)?;
            println!("{}", v["Name"].as_str().unwrap_or(""));
            Ok(0)
        }
        Command::Ls(a) => ls(c, a).await,
        Command::Inspect(a) => inspect(c, a).await,
        Command::Rm(a) => {
            let mut code = 0;
            for n in &a.volumes {
                let path = format!("/volumes/{}?force={}", enc_path(n), a.force);
                let done = async {
                    let resp = c
                        .send(Method::DELETE, &path, None, crate::cli::client::empty())
                        .await?;
                    read_all(resp).await
                };
                match done.await {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        Command::Prune(a) => prune(c, a).await,
    }
}

async fn ls(c: &Client, a: LsArgs) -> anyhow::Result<i32> {
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &a.filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
        filters.entry(k.into()).or_default().push(v.into());
    }
    let path = format!(
        "/volumes?filters={}",
        enc(&serde_json::to_string(&filters)?)
    );
    let v: Value = c.get(&path).await?;
    let vols = v["Volumes"].as_array().cloned().unwrap_or_default();
    if a.quiet {
        for v in &vols {
            println!("{}", v["Name"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    match Format::parse(a.format.as_deref())? {
        Format::Template(t) => {
            for v in &vols {
                println!("{}", Format::render(&t, v)?);
            }
        }
        Format::Json => {
            for v in &vols {
                println!("{}", serde_json::to_string(v)?);
            }
        }
        Format::Default => {
            let rows: Vec<Vec<String>> = vols
                .iter()
                .map(|v| {
                    vec![
                        v["Driver"].as_str().unwrap_or("").to_string(),
                        v["Name"].as_str().unwrap_or("").to_string(),
                    ]
                })
                .collect();
            print_table(&["DRIVER", "VOLUME NAME"], &rows);
        }
    }
    Ok(0)
}

async fn inspect(c: &Client, a: InspectArgs) -> anyhow::Result<i32> {
    let format = Format::parse(a.format.as_deref())?;
    let mut found = Vec::new();
    let mut code = 0;
    for n in &a.volumes {
        match c.get::<Value>(&format!("/volumes/{}", enc_path(n))).await {
            Ok(v) => found.push(v),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    match format {
        Format::Template(t) => {
            for v in &found {
                println!("{}", Format::render(&t, v)?);
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(&found)?),
    }
    Ok(code)
}

async fn prune(c: &Client, a: PruneArgs) -> anyhow::Result<i32> {
    let what = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !confirm(what)? {
        return Ok(0);
    }
    let filters = if a.all { r#"{"all":["true"]}"# } else { "{}" };
    let v: Value = c
        .json(
            Method::POST,
            &format!("/volumes/prune?filters={}", enc(filters)),
        )
        .await?;
    let deleted: Vec<&str> = v["VolumesDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for n in deleted {
            println!("{n}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
    );
    Ok(0)
}

/// Ask before a prune; true on `y`/`yes`.
pub fn confirm(warning: &str) -> anyhow::Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
