//! `amber bundle core`: list the core dumps `capture --core` kept of a
//! container, or write one back out as a file gdb loads.

use std::path::Path;

use hyper::Method;
use serde_json::Value;

use crate::cli::client::{empty, enc, enc_path, Client};
use crate::cli::download;
use crate::cli::output::{human_size, print_table};

/// List a container's core dumps, or write one (`capture --core`) to a
/// file: `bundle core ID CONTAINER PID -o FILE`, then
/// `gdb EXECUTABLE FILE`.
#[derive(Debug, clap::Args)]
pub struct CoreArgs {
    /// Bundle ID.
    pub bundle: String,
    /// Container name or ID.
    pub container: String,
    /// The process: its host pid, or its pid in the container. Lists the
    /// container's cores when omitted.
    pub pid: Option<i32>,
    /// Write the core to this file (standard output when omitted, unless
    /// it is a terminal).
    #[arg(short, long)]
    pub output: Option<String>,
    /// `json` for the list.
    #[arg(long)]
    pub format: Option<String>,
}

/// Run `bundle core`.
pub async fn run(c: &Client, a: CoreArgs) -> anyhow::Result<i32> {
    let Some(pid) = a.pid else {
        return list(c, &a).await;
    };
    let path = format!(
        "/amber/v1/bundles/{}/core?container={}&pid={pid}",
        enc_path(&a.bundle),
        enc(&a.container)
    );
    let resp = c.send(Method::GET, &path, None, empty()).await?;
    if a.output.is_none() {
        download::refuse_terminal("a core")?;
    }
    download::save_body(resp, a.output.as_deref().map(Path::new), None, "the core").await?;
    Ok(0)
}

/// The container's entry of the manifest: by name, ID or unique ID prefix.
fn find_container<'m>(m: &'m Value, name: &str) -> Option<&'m Value> {
    let name = name.trim_start_matches('/');
    let all = m["containers"].as_array()?;
    let s = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_string();
    if let Some(c) = all
        .iter()
        .find(|c| s(c, "name") == name || s(c, "id") == name)
    {
        return Some(c);
    }
    let mut by_prefix = all.iter().filter(|c| s(c, "id").starts_with(name));
    match (by_prefix.next(), by_prefix.next()) {
        (Some(c), None) if !name.is_empty() => Some(c),
        _ => None,
    }
}

async fn list(c: &Client, a: &CoreArgs) -> anyhow::Result<i32> {
    let m: Value = c
        .get(&format!("/amber/v1/bundles/{}", enc_path(&a.bundle)))
        .await?;
    let ct = find_container(&m, &a.container).ok_or_else(|| {
        anyhow::anyhow!(
            "bundle {} has no container {}",
            m["id"].as_str().unwrap_or_default(),
            a.container
        )
    })?;
    let cores = &ct["cores"];
    match a.format.as_deref() {
        None | Some("table") => {}
        Some("json") => {
            println!("{}", serde_json::to_string_pretty(cores)?);
            return Ok(0);
        }
        Some(other) => anyhow::bail!("unsupported --format {other:?}: use json"),
    }
    if cores.is_null() {
        anyhow::bail!(
            "bundle {} has no core dumps of {} (capture with --core)",
            m["id"].as_str().unwrap_or_default(),
            ct["name"].as_str().unwrap_or_default()
        );
    }
    if let Some(e) = cores["error"].as_str() {
        eprintln!("no cores: {e}");
    }
    let rows: Vec<Vec<String>> = cores["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let size = match d["error"].as_str() {
                Some(e) => format!("none: {e}"),
                None => human_size(d["size"].as_i64().unwrap_or(0)),
            };
            vec![
                d["pid"].to_string(),
                d["ns_pid"]
                    .as_i64()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                d["exe"].as_str().unwrap_or_default().to_string(),
                size,
            ]
        })
        .collect();
    print_table(&["PID", "NS PID", "EXE", "CORE"], &rows);
    Ok(0)
}
