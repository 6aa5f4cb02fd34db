//! `amber capture`: keep containers' whole scene as a bundle.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::cli::client::{read_all, Client};
use crate::cli::output::human_size;
use crate::cli::progress;

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
    /// Also keep a core dump of each process of running containers (with
    /// gcore from gdb; a warning says why when there is none).
    #[arg(long)]
    pub core: bool,
    /// `json` prints the summary (ID, sizes, new bytes, per container).
    #[arg(long)]
    pub format: Option<String>,
    /// No progress spinner and no summary line on standard error (the ID,
    /// or the JSON summary, is still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    // Checked before anything is captured.
    let json_out = match args.format.as_deref() {
        None => false,
        Some("json") => true,
        Some(other) => anyhow::bail!("unsupported --format {other:?}: use json"),
    };
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
        "core": args.core,
    });
    let what = match (args.all, args.containers.len()) {
        (true, _) => "all containers".to_string(),
        (false, 1) => args.containers[0].clone(),
        (false, n) => format!("{n} containers"),
    };
    let bar = progress::wanted(args.quiet).then(|| progress::spinner(&format!("Capturing {what}")));
    let answer = async {
        let resp = c.post_json("/amber/v1/capture", &body).await?;
        anyhow::Ok(serde_json::from_slice::<Value>(&read_all(resp).await?)?)
    }
    .await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let v = answer?;
    for w in core_warnings(&v) {
        eprintln!("warning: --core: {w}");
    }
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
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", v["Id"].as_str().unwrap_or_default());
        if !args.quiet {
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

/// Why cores are missing, from the summary: one line per distinct
/// container-wide reason, one per process that has none.
fn core_warnings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in v["Containers"].as_array().into_iter().flatten() {
        let cores = &c["Cores"];
        if let Some(e) = cores["Error"].as_str() {
            if !out.iter().any(|w| w == e) {
                out.push(e.to_string());
            }
        }
        for f in cores["Failed"].as_array().into_iter().flatten() {
            out.push(format!(
                "no core of pid {} in {}: {}",
                f["Pid"],
                c["Name"].as_str().unwrap_or_default(),
                f["Error"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_warnings_say_each_reason_once() {
        let v = json!({"Containers": [
            {"Name": "a", "Cores": {"Error": "gcore not found; install gdb", "Failed": []}},
            {"Name": "b", "Cores": {"Error": "gcore not found; install gdb", "Failed": []}},
            {"Name": "c", "Cores": {"Error": null, "Failed": [{"Pid": 7, "Error": "gcore failed"}]}},
            {"Name": "d"},
        ]});
        assert_eq!(
            core_warnings(&v),
            [
                "gcore not found; install gdb",
                "no core of pid 7 in c: gcore failed"
            ]
        );
    }
}
