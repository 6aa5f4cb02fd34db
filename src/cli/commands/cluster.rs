//! `amber cluster add|ls|rm|ps|images|capture|baseline|rollback`: the host
//! inventory and the whole-cluster commands (docs/cluster.md). The local
//! daemon is the coordinator: it keeps the inventory and talks to the
//! hosts.

use std::collections::BTreeMap;
use std::path::Path;

use hyper::Method;
use serde_json::{json, Value};

use crate::cli::client::{empty, enc, enc_path, read_all, Client};
use crate::cli::output::{human_size, print_table};
use crate::types::api::ImageSummary;

/// `amber cluster ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Add a host to the inventory: `cluster add NAME tcp://ADDR:PORT`.
    Add(AddArgs),
    /// List the inventory: reachability, version, containers.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove hosts from the inventory.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// List the containers of every host (a HOST column first).
    Ps(PsArgs),
    /// List the images of every host (a HOST column first).
    Images(ImagesArgs),
    /// Capture every host's containers in parallel into one bundle set
    /// gathered here; prints the set ID.
    Capture(CaptureArgs),
    /// Manage cluster baselines (every host's own baseline NAME).
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Roll every host of a cluster baseline back to it, in parallel.
    Rollback(RollbackArgs),
    /// Move containers between hosts (`cluster migrate --all --from A --to B`).
    Migrate(super::migrate::Args),
    /// Generate a CA, a server certificate per host and a client certificate.
    Certs(super::cluster_certs::Args),
}

/// `amber cluster baseline ...`.
#[derive(Debug, clap::Subcommand)]
pub enum BaselineCommand {
    /// Every host creates its baseline NAME of all its containers.
    Create(BaselineArgs),
}

/// Add a host.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Inventory name.
    pub name: String,
    /// `tcp://ADDR:PORT` (or `unix:///PATH`).
    pub url: String,
    /// Directory of the TLS files to reach the host with: `ca.pem` (the CA
    /// its certificate must chain to), `cert.pem` and `key.pem` (this
    /// side's client certificate), as `amber cluster certs` writes them in
    /// `client/`. (The global --tlscacert/--tlscert/--tlskey are for the
    /// daemon this command talks to.)
    #[arg(long, value_name = "DIR")]
    pub cert_path: Option<String>,
    /// A file holding the host's bearer token (the token is never stored).
    #[arg(long, value_name = "FILE", conflicts_with = "cert_path")]
    pub auth_token_file: Option<String>,
}

/// List hosts.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only print names.
    #[arg(short, long)]
    pub quiet: bool,
    /// `json` for tools.
    #[arg(long)]
    pub format: Option<String>,
}

/// Remove hosts.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Inventory names.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Containers of every host.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only these hosts (comma-separated inventory names).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only print HOST and container ID.
    #[arg(short, long)]
    pub quiet: bool,
    /// `json` for tools.
    #[arg(long)]
    pub format: Option<String>,
}

/// Images of every host.
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Only these hosts (comma-separated inventory names).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// `json` for tools.
    #[arg(long)]
    pub format: Option<String>,
}

/// Capture the whole cluster.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// A free-form label.
    #[arg(short, long, default_value = "")]
    pub label: String,
    /// Add an annotation (KEY=VALUE); repeatable.
    #[arg(long = "annotate")]
    pub annotate: Vec<String>,
    /// Only these hosts (comma-separated inventory names; repeatable).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Keep the content of volumes and bind mounts too.
    #[arg(long)]
    pub volumes: bool,
    /// Seconds each host has for its capture, and again for its transfer
    /// (default 600); one that takes longer is recorded as failed (timed out).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// `json` prints the set.
    #[arg(long)]
    pub format: Option<String>,
    /// No per-host summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Create a cluster baseline.
#[derive(Debug, clap::Args)]
pub struct BaselineArgs {
    /// The baseline's name (each host's own baseline gets it).
    pub name: String,
    /// Only these hosts (comma-separated inventory names).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Keep volume content too (rollback then resets volumes as well).
    #[arg(long)]
    pub volumes: bool,
    /// Seconds each host has (default 600).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// `json` for tools.
    #[arg(long)]
    pub format: Option<String>,
}

/// Roll back a cluster baseline.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The cluster baseline's name.
    pub name: String,
    /// Only these hosts of the baseline (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Also remove containers created after the baseline.
    #[arg(long)]
    pub prune: bool,
    /// Seconds each host has (default 600).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// `json` for tools.
    #[arg(long)]
    pub format: Option<String>,
}

/// Run a `cluster` subcommand.
pub async fn run(c: &Client, cmd: ClusterCommand) -> anyhow::Result<i32> {
    match cmd {
        ClusterCommand::Add(a) => add(c, a).await,
        ClusterCommand::Ls(a) => ls(c, a).await,
        ClusterCommand::Rm(a) => {
            let mut code = 0;
            for n in &a.names {
                let path = format!("/amber/v1/cluster/hosts/{}", enc_path(n));
                match c.send(Method::DELETE, &path, None, empty()).await {
                    Ok(resp) => {
                        read_all(resp).await?;
                        println!("{n}");
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        ClusterCommand::Ps(a) => ps(c, a).await,
        ClusterCommand::Images(a) => images(c, a).await,
        ClusterCommand::Capture(a) => capture(c, a).await,
        ClusterCommand::Baseline(BaselineCommand::Create(a)) => baseline(c, a).await,
        ClusterCommand::Rollback(a) => rollback(c, a).await,
        ClusterCommand::Migrate(a) => super::migrate::run(c, a).await,
        ClusterCommand::Certs(a) => super::cluster_certs::run(a),
    }
}

fn json_only(format: Option<&str>) -> anyhow::Result<bool> {
    match format {
        None | Some("table") => Ok(false),
        Some("json") => Ok(true),
        Some(other) => anyhow::bail!("unsupported --format {other:?}: use json"),
    }
}

/// A credential path as the daemon must read it: absolute, existing.
fn abs_file(p: &Option<String>) -> anyhow::Result<Option<String>> {
    let Some(p) = p else { return Ok(None) };
    let path = std::fs::canonicalize(Path::new(p)).map_err(|e| anyhow::anyhow!("{p}: {e}"))?;
    if !path.is_file() {
        anyhow::bail!("{p}: not a file");
    }
    Ok(Some(path.display().to_string()))
}

async fn add(c: &Client, a: AddArgs) -> anyhow::Result<i32> {
    let tls = |f: &str| a.cert_path.as_ref().map(|d| format!("{d}/{f}"));
    let body = json!({
        "name": a.name, "url": a.url,
        "tlscacert": abs_file(&tls("ca.pem"))?, "tlscert": abs_file(&tls("cert.pem"))?,
        "tlskey": abs_file(&tls("key.pem"))?, "token_file": abs_file(&a.auth_token_file)?,
    });
    let resp = c.post_json("/amber/v1/cluster/hosts", &body).await?;
    read_all(resp).await?;
    println!("{}", a.name);
    Ok(0)
}

async fn ls(c: &Client, a: LsArgs) -> anyhow::Result<i32> {
    let json = json_only(a.format.as_deref())?;
    let v: Vec<Value> = c.get("/amber/v1/cluster/hosts").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    if a.quiet {
        for h in &v {
            println!("{}", h["Name"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|h| {
            let s = |k: &str| h[k].as_str().unwrap_or_default().to_string();
            let reachable = if h["Reachable"].as_bool() == Some(true) {
                "yes".to_string()
            } else {
                format!("no: {}", s("Error"))
            };
            vec![
                s("Name"),
                s("Url"),
                reachable,
                s("Version"),
                h["Containers"]
                    .as_u64()
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        &["NAME", "URL", "REACHABLE", "VERSION", "CONTAINERS"],
        &rows,
    );
    Ok(0)
}

/// Print the hosts that did not answer; the exit code is 1 only when
/// none did.
fn report_errors(v: &Value) -> i32 {
    let errors = v["Errors"].as_array().cloned().unwrap_or_default();
    for e in &errors {
        eprintln!(
            "host {}: {}",
            e["Host"].as_str().unwrap_or_default(),
            e["Error"].as_str().unwrap_or_default()
        );
    }
    let hosts = v["Hosts"].as_u64().unwrap_or(0) as usize;
    if hosts > 0 && errors.len() == hosts {
        1
    } else {
        0
    }
}

async fn ps(c: &Client, a: PsArgs) -> anyhow::Result<i32> {
    let json = json_only(a.format.as_deref())?;
    let path = format!(
        "/amber/v1/cluster/containers?all={}&hosts={}",
        if a.all { 1 } else { 0 },
        enc(&a.hosts.join(","))
    );
    let v: Value = c.get(&path).await?;
    let code = report_errors(&v);
    let items = v["Items"].as_array().cloned().unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(code);
    }
    let host = |it: &Value| it["Host"].as_str().unwrap_or_default().to_string();
    if a.quiet {
        for it in &items {
            println!("{} {}", host(it), super::ps::row(it, a.no_trunc).id());
        }
        return Ok(code);
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|it| {
            let mut cells = vec![host(it)];
            cells.extend(super::ps::row(it, a.no_trunc).cells());
            cells
        })
        .collect();
    print_table(
        &[
            "HOST",
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        &rows,
    );
    Ok(code)
}

async fn images(c: &Client, a: ImagesArgs) -> anyhow::Result<i32> {
    let json = json_only(a.format.as_deref())?;
    let v: Value = c
        .get(&format!(
            "/amber/v1/cluster/images?hosts={}",
            enc(&a.hosts.join(","))
        ))
        .await?;
    let code = report_errors(&v);
    let items = v["Items"].as_array().cloned().unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(code);
    }
    let mut rows = Vec::new();
    for it in &items {
        let host = it["Host"].as_str().unwrap_or_default().to_string();
        let image: ImageSummary = serde_json::from_value(it.clone())
            .map_err(|e| anyhow::anyhow!("unexpected image list item from host {host}: {e}"))?;
        for r in super::images::rows_of(&image, a.no_trunc) {
            rows.push(vec![
                host.clone(),
                r.repository,
                r.tag,
                r.id,
                r.created_since,
                r.size,
            ]);
        }
    }
    print_table(
        &["HOST", "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        &rows,
    );
    Ok(code)
}

async fn capture(c: &Client, a: CaptureArgs) -> anyhow::Result<i32> {
    let json = json_only(a.format.as_deref())?;
    let mut annotations = BTreeMap::new();
    for an in &a.annotate {
        let (k, v) = an
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| anyhow::anyhow!("invalid annotation {an:?}: expected KEY=VALUE"))?;
        annotations.insert(k.to_string(), v.to_string());
    }
    let body = json!({
        "label": a.label, "annotations": annotations, "hosts": a.hosts,
        "volumes": a.volumes, "timeout": a.timeout,
    });
    let resp = c.post_json("/amber/v1/cluster/capture", &body).await?;
    let v: Value = serde_json::from_slice(&read_all(resp).await?)?;
    let hosts = v["hosts"].as_array().cloned().unwrap_or_default();
    let ok = hosts.iter().filter(|h| h["status"] == "ok").count();
    for h in hosts.iter().filter(|h| h["status"] != "ok") {
        eprintln!(
            "host {}: {}: {}",
            h["host"].as_str().unwrap_or_default(),
            h["status"].as_str().unwrap_or_default(),
            h["error"].as_str().unwrap_or_default()
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", v["id"].as_str().unwrap_or_default());
        if !a.quiet {
            let bytes: u64 = hosts.iter().filter_map(|h| h["bytes"].as_u64()).sum();
            eprintln!(
                "captured {ok} of {} host(s) in {} ms, {} moved",
                hosts.len(),
                v["duration_ms"],
                human_size(bytes as i64)
            );
        }
    }
    Ok(if ok == 0 { 1 } else { 0 })
}

/// Print per-host results (HOST, STATUS, `count`, MS, ERROR); exit 1 when
/// any host failed.
fn host_results(v: &[Value], count: &str, json: bool) -> anyhow::Result<i32> {
    let failed = v.iter().filter(|r| r["Status"] != "ok").count();
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        let rows: Vec<Vec<String>> = v
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                vec![
                    s("Host"),
                    s("Status"),
                    r["Count"]
                        .as_u64()
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    r["Ms"].to_string(),
                    s("Error"),
                ]
            })
            .collect();
        print_table(&["HOST", "STATUS", count, "MS", "ERROR"], &rows);
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

async fn baseline(c: &Client, a: BaselineArgs) -> anyhow::Result<i32> {
    let json = json_only(a.format.as_deref())?;
    let body =
        json!({"name": a.name, "hosts": a.hosts, "volumes": a.volumes, "timeout": a.timeout});
    let resp = c.post_json("/amber/v1/cluster/baselines", &body).await?;
    let v: Vec<Value> = serde_json::from_slice(&read_all(resp).await?)?;
    host_results(&v, "CONTAINERS", json)
}

async fn rollback(c: &Client, a: RollbackArgs) -> anyhow::Result<i32> {
    let json = json_only(a.format.as_deref())?;
    let body = json!({"hosts": a.hosts, "prune": a.prune, "timeout": a.timeout});
    let path = format!("/amber/v1/cluster/baselines/{}/rollback", enc_path(&a.name));
    let resp = c.post_json(&path, &body).await?;
    let v: Vec<Value> = serde_json::from_slice(&read_all(resp).await?)?;
    host_results(&v, "RESET", json)
}
