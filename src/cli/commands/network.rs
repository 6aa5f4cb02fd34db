//! `amber network create|ls|inspect|rm|prune|connect|disconnect`.

use std::collections::BTreeMap;

use hyper::Method;
use serde_json::{json, Value};

use crate::cli::client::{enc, enc_path, read_all, Client};
use crate::cli::output::{print_table, Format};

/// `amber network ...`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
}

/// Create a network.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Driver to manage the network (bridge).
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format.
    #[arg(long)]
    pub subnet: Option<String>,
    /// IPv4 gateway for the subnet.
    #[arg(long)]
    pub gateway: Option<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    pub internal: bool,
    /// Set metadata on a network (KEY=VALUE).
    #[arg(long)]
    pub label: Vec<String>,
    /// The network's name.
    pub name: String,
}

/// List networks.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only display network IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a Go template, or json.
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output.
    #[arg(long)]
    pub no_trunc: bool,
}

/// Display detailed information on one or more networks.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template, or json.
    #[arg(short, long)]
    pub format: Option<String>,
    /// The networks.
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// Remove one or more networks.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// The networks.
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// Remove all unused networks.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Connect a container to a network.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Add a network-scoped alias for the container.
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address.
    #[arg(long)]
    pub ip: Option<String>,
    /// The network.
    pub network: String,
    /// The container.
    pub container: String,
}

/// Disconnect a container from a network.
#[derive(Debug, clap::Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    pub force: bool,
    /// The network.
    pub network: String,
    /// The container.
    pub container: String,
}

/// Run it.
pub async fn run(c: &Client, cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Create(a) => create(c, a).await,
        Command::Ls(a) => ls(c, a).await,
        Command::Inspect(a) => inspect(c, a).await,
        Command::Rm(a) => rm(c, a).await,
        Command::Prune(a) => prune(c, a).await,
        Command::Connect(a) => {
            let mut ep = json!({"Aliases": a.alias});
            if let Some(ip) = &a.ip {
                ep["IPAMConfig"] = json!({"IPv4Address": ip});
            }
            let body = json!({"Container": a.container, "EndpointConfig": ep});
            let path = format!("/networks/{}/connect", enc_path(&a.network));
            read_all(c.post_json(&path, &body).await?).await?;
            Ok(0)
        }
        Command::Disconnect(a) => {
            let body = json!({"Container": a.container, "Force": a.force});
            let path = format!("/networks/{}/disconnect", enc_path(&a.network));
            read_all(c.post_json(&path, &body).await?).await?;
            Ok(0)
        }
    }
}

async fn create(c: &Client, a: CreateArgs) -> anyhow::Result<i32> {
    let labels: BTreeMap<String, String> = a
        .label
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();
    let mut ipam = json!({"Driver": "default", "Config": []});
    if a.subnet.is_some() || a.gateway.is_some() {
        ipam["Config"] = json!([{
            "Subnet": a.subnet.unwrap_or_default(),
            "Gateway": a.gateway.unwrap_or_default(),
        }]);
    }
    let body = json!({
        "Name": a.name, "Driver": a.driver, "Internal": a.internal,
        "IPAM": ipam, "Labels": labels,
    });
    let bytes = read_all(c.post_json("/networks/create", &body).await?).await?;
    let v: Value = serde_json::from_slice(&bytes)?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

/// A network row with the fields `docker network ls` templates use.
fn row(v: &Value, no_trunc: bool) -> Value {
    let id = v["Id"].as_str().unwrap_or("");
    let short = if no_trunc {
        id
    } else {
        &id[..id.len().min(12)]
    };
    json!({
        "ID": short, "Name": v["Name"], "Driver": v["Driver"], "Scope": v["Scope"],
        "Internal": v["Internal"], "CreatedAt": v["Created"], "Labels": v["Labels"],
    })
}

async fn ls(c: &Client, a: LsArgs) -> anyhow::Result<i32> {
    let nets: Vec<Value> = c.get("/networks").await?;
    let rows: Vec<Value> = nets.iter().map(|n| row(n, a.no_trunc)).collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    match Format::parse(a.format.as_deref())? {
        Format::Template(t) => {
            for r in &rows {
                println!("{}", Format::render(&t, r)?);
            }
        }
        Format::Json => {
            for r in &rows {
                println!("{}", serde_json::to_string(r)?);
            }
        }
        Format::Default => {
            let s = |r: &Value, k: &str| r[k].as_str().unwrap_or("").to_string();
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| vec![s(r, "ID"), s(r, "Name"), s(r, "Driver"), s(r, "Scope")])
                .collect();
            print_table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &table);
        }
    }
    Ok(0)
}

async fn inspect(c: &Client, a: InspectArgs) -> anyhow::Result<i32> {
    let format = Format::parse(a.format.as_deref())?;
    let mut found = Vec::new();
    let mut code = 0;
    for n in &a.networks {
        match c.get::<Value>(&format!("/networks/{}", enc_path(n))).await {
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

async fn rm(c: &Client, a: RmArgs) -> anyhow::Result<i32> {
    let mut code = 0;
    for n in &a.networks {
        let path = format!("/networks/{}", enc_path(n));
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

async fn prune(c: &Client, a: PruneArgs) -> anyhow::Result<i32> {
    if !a.force
        && !super::volume::confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )?
    {
        return Ok(0);
    }
    let v: Value = c
        .json(
            Method::POST,
            &format!("/networks/prune?filters={}", enc("{}")),
        )
        .await?;
    let deleted: Vec<&str> = v["NetworksDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        for n in deleted {
            println!("{n}");
        }
    }
    Ok(0)
}
