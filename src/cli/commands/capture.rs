//! `amber capture`: keep containers' whole scene as a bundle.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::cli::client::{read_all, Client};
use crate::cli::output::human_size;

/// Capture containers (configuration, writable layer, log, processes,
/// sockets, cgroup and network state) into a new bundle and print its ID.
/// Running containers are frozen only while their writable layer is read.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The containers (names or IDs).
    pub containers: Vec<String>,
    /// Capture every container.
    #[arg(short, long)]
    pub all: bool,
    /// A free-form label.
    #[arg(short, long, default_value = "")]
    pub label: String,
    /// Add an annotation (KEY=VALUE); repeatable.
    #[arg(long = "annotate")]
    pub annotate: Vec<String>,
    /// Do not freeze running containers while reading their files.
    #[arg(long)]
    pub no_pause: bool,
    /// Keep the content of the containers' volumes and bind mounts too.
    #[arg(long)]
    pub volumes: bool,
    /// With --volumes: a mount holding more than this (e.g. 512m, 2g) is
    /// recorded but its content is not kept (default 1g).
    #[arg(long, value_name = "SIZE")]
    pub volumes_max_size: Option<String>,
    /// `json` prints the summary (ID, sizes, new bytes, per container).
    #[arg(long)]
    pub format: Option<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let mut annotations = BTreeMap::new();
    for a in &args.annotate {
        let (k, v) = a
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| anyhow::anyhow!("invalid annotation {a:?}: expected KEY=VALUE"))?;
        annotations.insert(k.to_string(), v.to_string());
    }
    let max = match &args.volumes_max_size {
        Some(s) => Some(super::container_opts::parse_bytes(s)?),
        None => None,
    };
    let body = json!({
        "containers": args.containers, "all": args.all, "label": args.label,
        "annotations": annotations, "no_pause": args.no_pause,
        "volumes": args.volumes, "volumes_max_size": max,
    });
    let resp = c.post_json("/amber/v1/capture", &body).await?;
    let v: Value = serde_json::from_slice(&read_all(resp).await?)?;
    match args.format.as_deref() {
        Some("json") => println!("{}", serde_json::to_string_pretty(&v)?),
        Some(other) => anyhow::bail!("unsupported --format {other:?}: use json"),
        None => {
            println!("{}", v["Id"].as_str().unwrap_or_default());
            for c in v["Containers"].as_array().into_iter().flatten() {
                for m in c["Volumes"].as_array().into_iter().flatten() {
                    if let Some(why) = m["Skipped"].as_str() {
                        eprintln!(
                            "warning: {}:{} not kept: {why}",
                            c["Name"].as_str().unwrap_or_default(),
                            m["Destination"].as_str().unwrap_or_default()
                        );
                    }
                }
            }
            eprintln!(
                "captured {} container(s) in {} ms: {} referenced, {} new",
                v["Containers"].as_array().map_or(0, Vec::len),
                v["DurationMs"],
                human_size(v["Size"].as_i64().unwrap_or(0)),
                human_size(v["NewBytes"].as_i64().unwrap_or(0)),
            );
        }
    }
    Ok(0)
}
