//! `amber bundle core`: list the core dumps `capture --core` kept of a
//! container, or write one back out as a file gdb loads.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::cli::client::{empty, enc, enc_path, Client};
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
    let total = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = resp.into_body();
    let Some(output) = &a.output else {
        if std::io::stdout().is_terminal() {
            anyhow::bail!("refusing to write a core to a terminal: use -o FILE or redirect stdout");
        }
        let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
        copy(body, &mut out, total).await?;
        return Ok(0);
    };
    let partial = super::bundle_archive::partial_path(Path::new(output));
    let file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let copied = async {
        copy(body, &mut out, total).await?;
        out.get_ref().sync_all().await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = copied {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    tokio::fs::rename(&partial, output)
        .await
        .with_context(|| format!("cannot rename {} to {output}", partial.display()))?;
    Ok(0)
}

/// Copy the body to `out`, refusing one shorter than announced.
async fn copy(
    mut body: hyper::body::Incoming,
    out: &mut (impl AsyncWrite + Unpin),
    total: Option<u64>,
) -> anyhow::Result<()> {
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.context("the daemon ended the core early")?;
        if let Some(data) = frame.data_ref() {
            out.write_all(data).await?;
            n += data.len() as u64;
        }
    }
    if total.is_some_and(|t| t != n) {
        anyhow::bail!("the daemon ended the core early");
    }
    out.flush().await?;
    Ok(())
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
