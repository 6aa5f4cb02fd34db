//! `amber bundle ls|inspect|rm|prune|search|files|cat|diff|core|push|pull`.

use std::io::Write;

use hyper::Method;
use serde_json::Value;

use crate::cli::client::{empty, enc, enc_path, read_all, Client};
use crate::cli::output::{human_size, print_table};

/// `amber bundle ...`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List bundles and bundle sets (ID, label, time, containers, size,
    /// new bytes); a set's bundles only with --all.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Print a bundle's manifest (JSON), or a bundle set's (`s-…`).
    Inspect(IdArgs),
    /// Remove bundles (blobs no other bundle or image uses are freed); a
    /// bundle set (`s-…`) goes with its bundles.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove every bundle that is not a baseline.
    Prune(PruneArgs),
    /// Full-text search over captured log lines and file paths.
    Search(SearchArgs),
    /// List the captured files of a container (its writable layer).
    Files(FilesArgs),
    /// Print a captured file: `bundle cat ID CONTAINER:PATH`.
    Cat(CatArgs),
    /// Compare two bundles (or two bundle sets, per host), or a bundle with
    /// the live containers: files, config, env, processes, ports, new log
    /// lines.
    Diff(DiffArgs),
    /// List a container's core dumps (`capture --core`), or write one out.
    Core(super::bundle_core::CoreArgs),
    /// Write a bundle as one self-describing tar.
    Export(super::bundle_archive::ExportArgs),
    /// Import a bundle archive (verified before it becomes visible).
    Import(super::bundle_archive::ImportArgs),
    /// Send a bundle to another daemon (only the blobs it lacks).
    Push(super::bundle_transfer::TransferArgs),
    /// Fetch a bundle from another daemon (only the blobs this one lacks).
    Pull(super::bundle_transfer::TransferArgs),
}

/// List bundles.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Also list the bundles that belong to bundle sets (SET and HOST).
    #[arg(short, long)]
    pub all: bool,
    /// Only print IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// `json` for tools.
    #[arg(long)]
    pub format: Option<String>,
}

/// One bundle.
#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// Bundle ID (or unique prefix), or bundle set ID (`s-…`).
    pub bundle: String,
}

/// Remove bundles.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Bundle IDs.
    #[arg(required = true)]
    pub bundles: Vec<String>,
}

/// Remove bundles that are not baselines.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not prompt (accepted for Docker habits; prune never prompts).
    #[arg(short, long)]
    pub force: bool,
}

/// Search bundles.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Words to find (as a phrase).
    pub text: String,
    /// Only in this bundle, or in the bundles of this bundle set (`s-…`).
    #[arg(long)]
    pub bundle: Option<String>,
    /// Only in this container (name).
    #[arg(long)]
    pub container: Option<String>,
    /// `json` for tools.
    #[arg(long)]
    pub format: Option<String>,
}

/// List captured files.
#[derive(Debug, clap::Args)]
pub struct FilesArgs {
    /// Bundle ID.
    pub bundle: String,
    /// Container name or ID.
    pub container: String,
    /// Only this path and what is under it.
    pub path: Option<String>,
    /// `json` for tools.
    #[arg(long)]
    pub format: Option<String>,
}

/// Print a captured file.
#[derive(Debug, clap::Args)]
pub struct CatArgs {
    /// Bundle ID.
    pub bundle: String,
    /// CONTAINER:PATH.
    pub target: String,
}

/// Compare two bundles; with one, compare it with the current state of
/// its containers (the same ID, else the same name), like `git diff REV`.
/// Nothing is stored and nothing is frozen.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The older bundle.
    pub a: String,
    /// The newer bundle (the live containers when omitted).
    pub b: Option<String>,
    /// `json` for tools.
    #[arg(long)]
    pub format: Option<String>,
}

/// Run a `bundle` subcommand.
pub async fn run(c: &Client, cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Ls(a) => ls(c, a).await,
        Command::Inspect(a) => {
            let v: Value = c
                .get(&format!("{}/{}", base_of(&a.bundle), enc_path(&a.bundle)))
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        Command::Rm(a) => {
            let mut code = 0;
            for b in &a.bundles {
                let path = format!("{}/{}", base_of(b), enc_path(b));
                match c.send(Method::DELETE, &path, None, empty()).await {
                    Ok(resp) => {
                        read_all(resp).await?;
                        println!("{b}");
                    }
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        Command::Prune(_) => {
            let v: Value = c.json(Method::POST, "/amber/v1/bundles/prune").await?;
            for id in v["BundlesDeleted"].as_array().into_iter().flatten() {
                println!("Deleted: {}", id.as_str().unwrap_or_default());
            }
            println!(
                "Total reclaimed space: {}",
                human_size(v["SpaceReclaimed"].as_i64().unwrap_or(0))
            );
            Ok(0)
        }
        Command::Search(a) => search(c, a).await,
        Command::Files(a) => files(c, a).await,
        Command::Cat(a) => cat(c, a).await,
        Command::Diff(a) => diff(c, a).await,
        Command::Core(a) => super::bundle_core::run(c, a).await,
        Command::Export(a) => super::bundle_archive::export(c, a).await,
        Command::Import(a) => super::bundle_archive::import(c, a).await,
        Command::Push(a) => super::bundle_transfer::run(c, a, true).await,
        Command::Pull(a) => super::bundle_transfer::run(c, a, false).await,
    }
}

/// The endpoint of a bundle (`b-…`) or of a bundle set (`s-…`).
fn base_of(id: &str) -> &'static str {
    if id.starts_with("s-") {
        "/amber/v1/bundle-sets"
    } else {
        "/amber/v1/bundles"
    }
}

fn json_only(format: Option<&str>) -> anyhow::Result<bool> {
    match format {
        None | Some("table") => Ok(false),
        Some("json") => Ok(true),
        Some(other) => anyhow::bail!("unsupported --format {other:?}: use json"),
    }
}

async fn ls(c: &Client, a: LsArgs) -> anyhow::Result<i32> {
    let json = json_only(a.format.as_deref())?;
    let bundles: Vec<Value> = c.get("/amber/v1/bundles").await?;
    let sets: Vec<Value> = c.get("/amber/v1/bundle-sets").await?;
    // Member bundles: by bundle ID, the set and host.
    let mut member = std::collections::HashMap::new();
    for s in &sets {
        for m in s["members"].as_array().into_iter().flatten() {
            if let (Some(b), "ok") = (m["bundle"].as_str(), m["status"].as_str().unwrap_or("")) {
                member.insert(b.to_string(), (s["id"].clone(), m["host"].clone()));
            }
        }
    }
    // Sets and bundles, newest first; members only with --all.
    let mut rows: Vec<Value> = Vec::new();
    for s in &sets {
        let mut s = s.clone();
        s["kind"] = "set".into();
        rows.push(s);
    }
    for b in &bundles {
        let mut b = b.clone();
        b["kind"] = "bundle".into();
        let id = b["id"].as_str().unwrap_or_default().to_string();
        if let Some((set, host)) = member.get(&id) {
            if !a.all && !json {
                continue;
            }
            b["set"] = set.clone();
            b["host"] = host.clone();
        }
        rows.push(b);
    }
    rows.sort_by(|x, y| {
        let t = |v: &Value| v["created"].as_str().unwrap_or_default().to_string();
        t(y).cmp(&t(x))
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if a.quiet {
        for b in &rows {
            println!("{}", b["id"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|b| {
            let text = |k: &str| b[k].as_str().unwrap_or_default().to_string();
            let mut label = text("label");
            if let Some(n) = b["baseline"].as_str() {
                label = format!("{label} [baseline {n}]");
            }
            if b["kind"] == "set" {
                let (n, ok) = (
                    b["hosts"].as_u64().unwrap_or(0),
                    b["hosts_ok"].as_u64().unwrap_or(0),
                );
                let failed = if ok < n {
                    format!(", {} failed", n - ok)
                } else {
                    String::new()
                };
                label = format!("{label} [set: {n} hosts{failed}]")
                    .trim_start()
                    .to_string();
            }
            let mut row = vec![
                text("id"),
                label,
                text("created").chars().take(19).collect(),
                b["containers"].to_string(),
                human_size(b["size"].as_i64().unwrap_or(0)),
                human_size(b["new_bytes"].as_i64().unwrap_or(0)),
            ];
            if a.all {
                row.push(text("set"));
                row.push(text("host"));
            }
            row
        })
        .collect();
    let mut header = vec!["BUNDLE ID", "LABEL", "CREATED", "CONTAINERS", "SIZE", "NEW"];
    if a.all {
        header.extend(["SET", "HOST"]);
    }
    print_table(&header, &table);
    Ok(0)
}

async fn search(c: &Client, a: SearchArgs) -> anyhow::Result<i32> {
    let mut q = format!("text={}", enc(&a.text));
    if let Some(b) = &a.bundle {
        q.push_str(&format!("&bundle={}", enc(b)));
    }
    if let Some(n) = &a.container {
        q.push_str(&format!("&container={}", enc(n)));
    }
    let v: Vec<Value> = c.get(&format!("/amber/v1/bundles/search?{q}")).await?;
    if json_only(a.format.as_deref())? {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    // Hits in a bundle set's bundles name their host (a HOST column).
    let hosts = v.iter().any(|r| r["host"].is_string());
    for r in &v {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        let time = if s("time").is_empty() {
            s("captured")
        } else {
            s("time")
        };
        let host = match (hosts, r["host"].as_str()) {
            (false, _) => String::new(),
            (true, Some(h)) => format!("{h} "),
            (true, None) => "- ".to_string(),
        };
        println!(
            "{} {host}{} {} {}: {}",
            s("bundle"),
            s("container"),
            time,
            s("kind"),
            s("text")
        );
    }
    Ok(if v.is_empty() { 1 } else { 0 })
}

async fn files(c: &Client, a: FilesArgs) -> anyhow::Result<i32> {
    let path = format!(
        "/amber/v1/bundles/{}/files?container={}&path={}",
        enc_path(&a.bundle),
        enc(&a.container),
        enc(a.path.as_deref().unwrap_or(""))
    );
    let v: Vec<Value> = c.get(&path).await?;
    if json_only(a.format.as_deref())? {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = v
        .iter()
        .map(|f| {
            let mut name = f["path"].as_str().unwrap_or_default().to_string();
            if let Some(t) = f["target"].as_str() {
                name.push_str(&format!(" -> {t}"));
            }
            vec![
                f["kind"].as_str().unwrap_or_default().to_string(),
                f["mode"].as_str().unwrap_or_default().to_string(),
                format!("{}:{}", f["uid"], f["gid"]),
                f["size"].to_string(),
                name,
            ]
        })
        .collect();
    print_table(&["KIND", "MODE", "OWNER", "SIZE", "PATH"], &rows);
    Ok(0)
}

async fn cat(c: &Client, a: CatArgs) -> anyhow::Result<i32> {
    let (container, file) = a
        .target
        .split_once(':')
        .filter(|(c, p)| !c.is_empty() && !p.is_empty())
        .ok_or_else(|| anyhow::anyhow!("expected CONTAINER:PATH, got {:?}", a.target))?;
    let path = format!(
        "/amber/v1/bundles/{}/cat?container={}&path={}",
        enc_path(&a.bundle),
        enc(container),
        enc(file)
    );
    let resp = c.send(Method::GET, &path, None, empty()).await?;
    let data = read_all(resp).await?;
    std::io::stdout().write_all(&data)?;
    Ok(0)
}

async fn diff(c: &Client, a: DiffArgs) -> anyhow::Result<i32> {
    let json = json_only(a.format.as_deref())?;
    let other = match &a.b {
        Some(b) => format!("b={}", enc(b)),
        None => "live=1".to_string(),
    };
    if a.a.starts_with("s-") || a.b.as_deref().is_some_and(|b| b.starts_with("s-")) {
        return diff_sets(c, &a, json).await;
    }
    let v: Value = c
        .get(&format!("/amber/v1/bundles/diff?a={}&{other}", enc(&a.a)))
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let live = a.b.is_none();
    for ct in v["containers"].as_array().into_iter().flatten() {
        print_container_diff(ct, live);
    }
    Ok(0)
}

/// `bundle diff s-A s-B`: per host, the diff of its two bundles.
async fn diff_sets(c: &Client, a: &DiffArgs, json: bool) -> anyhow::Result<i32> {
    let b = match &a.b {
        Some(b) if b.starts_with("s-") && a.a.starts_with("s-") => b,
        _ => anyhow::bail!("compare a bundle set with another bundle set (s-… s-…)"),
    };
    let v: Value = c
        .get(&format!(
            "/amber/v1/bundle-sets/diff?a={}&b={}",
            enc(&a.a),
            enc(b)
        ))
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    for h in v["hosts"].as_array().into_iter().flatten() {
        let host = h["host"].as_str().unwrap_or_default();
        if let Some(e) = h["error"].as_str() {
            println!("host {host}: {e}");
            continue;
        }
        println!(
            "host {host} ({} -> {}):",
            h["a"].as_str().unwrap_or_default(),
            h["b"].as_str().unwrap_or_default()
        );
        for ct in h["diff"]["containers"].as_array().into_iter().flatten() {
            print_container_diff(ct, false);
        }
    }
    Ok(0)
}

fn print_container_diff(ct: &Value, live: bool) {
    let name = ct["name"].as_str().unwrap_or_default();
    match (ct["change"].as_str(), live) {
        (Some("added"), _) => return println!("container {name}: only in B"),
        (Some("removed"), false) => return println!("container {name}: only in A"),
        (Some("removed"), true) => return println!("container {name}: no longer exists"),
        _ => println!("container {name}:"),
    }
    if let Some(id) = ct["recreated"]["b"].as_str() {
        println!("  recreated: now container {id}");
    }
    if ct["status"]["a"] != ct["status"]["b"] {
        let s = |k: &str| ct["status"][k].as_str().unwrap_or_default().to_string();
        println!("  status: {} -> {}", s("a"), s("b"));
    }
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    for f in list(&ct["files"]["added"]) {
        println!(
            "  A {} ({} bytes)",
            f["path"].as_str().unwrap_or_default(),
            f["size"]
        );
    }
    for f in list(&ct["files"]["removed"]) {
        println!(
            "  D {} ({} bytes)",
            f["path"].as_str().unwrap_or_default(),
            f["size"]
        );
    }
    for f in list(&ct["files"]["changed"]) {
        let p = f["path"].as_str().unwrap_or_default();
        println!("  C {p} ({} -> {} bytes)", f["size_a"], f["size_b"]);
    }
    for ch in list(&ct["config"]) {
        println!(
            "  config {}: {} -> {}",
            ch["key"].as_str().unwrap_or_default(),
            ch["a"],
            ch["b"]
        );
    }
    for e in list(&ct["env"]["added"]) {
        println!("  env + {}", e.as_str().unwrap_or_default());
    }
    for e in list(&ct["env"]["removed"]) {
        println!("  env - {}", e.as_str().unwrap_or_default());
    }
    for p in list(&ct["processes"]["appeared"]) {
        println!("  process + {}", p.as_str().unwrap_or_default());
    }
    for p in list(&ct["processes"]["vanished"]) {
        println!("  process - {}", p.as_str().unwrap_or_default());
    }
    if ct["ports"]["a"] != ct["ports"]["b"] {
        println!("  ports: {} -> {}", ct["ports"]["a"], ct["ports"]["b"]);
    }
    for l in list(&ct["new_log_lines"]) {
        println!(
            "  log + {} {}",
            l["time"].as_str().unwrap_or_default(),
            l["line"].as_str().unwrap_or_default()
        );
    }
}
