//! `amber ps` / `amber container ls`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::cli::client::{enc, Client};
use crate::cli::output::{human_since, human_size, print_table, Format};

/// List containers.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Filter output based on conditions provided (status=, name=, label=, ancestor=, id=, exited=).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output: table, json or a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long)]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    pub latest: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    pub size: bool,
}

/// One row, with the field names of Docker's `ps --format`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Row {
    command: String,
    created_at: String,
    #[serde(rename = "ID")]
    id: String,
    image: String,
    labels: String,
    local_volumes: String,
    mounts: String,
    names: String,
    networks: String,
    ports: String,
    running_for: String,
    size: String,
    state: String,
    status: String,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let mut filters: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for f in &args.filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
        filters.entry(k.into()).or_default().insert(v.into(), true);
    }
    let limit = if args.latest { Some(1) } else { args.last };
    let mut path = format!(
        "/containers/json?all={}&size={}&filters={}",
        args.all as u8,
        args.size as u8,
        enc(&serde_json::to_string(&filters)?)
    );
    if let Some(n) = limit {
        path.push_str(&format!("&limit={n}"));
    }
    let list: Vec<Value> = c.get(&path).await?;
    let rows: Vec<Row> = list.iter().map(|v| row(v, args.no_trunc)).collect();
    if args.quiet {
        for r in &rows {
            println!("{}", r.id);
        }
        return Ok(0);
    }
    // Docker's formatter turns a literal `\t` / `\n` into the character.
    let fmt = args
        .format
        .as_deref()
        .map(|f| f.replace("\\t", "\t").replace("\\n", "\n"));
    match Format::parse(fmt.as_deref())? {
        Format::Json => {
            for r in &rows {
                println!("{}", serde_json::to_string(r)?);
            }
        }
        Format::Template(t) if is_table(args.format.as_deref()) => {
            let header = Format::render(&t, &headers())?;
            let header: Vec<&str> = header.split('\t').collect();
            let cells = rows
                .iter()
                .map(|r| {
                    Ok(Format::render(&t, r)?
                        .split('\t')
                        .map(str::to_string)
                        .collect())
                })
                .collect::<anyhow::Result<Vec<Vec<String>>>>()?;
            print_table(&header, &cells);
        }
        Format::Template(t) => {
            for r in &rows {
                println!("{}", Format::render(&t, r)?);
            }
        }
        Format::Default => table(rows, args.size),
    }
    Ok(0)
}

fn is_table(format: Option<&str>) -> bool {
    format.is_some_and(|f| f.starts_with("table "))
}

/// The column titles Docker prints for `--format 'table ...'`.
fn headers() -> Value {
    serde_json::json!({
        "Command": "COMMAND", "CreatedAt": "CREATED AT", "ID": "CONTAINER ID",
        "Image": "IMAGE", "Labels": "LABELS", "LocalVolumes": "LOCAL VOLUMES",
        "Mounts": "MOUNTS", "Names": "NAMES", "Networks": "NETWORKS", "Ports": "PORTS",
        "RunningFor": "CREATED", "Size": "SIZE", "State": "STATE", "Status": "STATUS",
    })
}

fn table(rows: Vec<Row>, size: bool) {
    let mut header = vec![
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    if size {
        header.push("SIZE");
    }
    let cells: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            let size_cell = r.size.clone();
            let mut v = r.cells();
            if size {
                v.push(size_cell);
            }
            v
        })
        .collect();
    print_table(&header, &cells);
}

/// The row of one `/containers/json` item.
pub(super) fn row(v: &Value, no_trunc: bool) -> Row {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let id = s("Id");
    let command = s("Command");
    let created = v["Created"].as_i64().unwrap_or(0);
    Row {
        command: if no_trunc {
            format!("\"{command}\"")
        } else {
            format!("\"{}\"", ellipsis(&command, 20))
        },
        created_at: chrono::DateTime::from_timestamp(created, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
            .unwrap_or_default(),
        id: if no_trunc {
            id
        } else {
            id.chars().take(12).collect()
        },
        image: s("Image"),
        labels: labels(v),
        local_volumes: "0".into(),
        mounts: String::new(),
        names: names(v),
        networks: v["HostConfig"]["NetworkMode"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        ports: ports(v),
        running_for: human_since(created),
        size: size(v),
        state: s("State"),
        status: s("Status"),
    }
}

impl Row {
    /// The short ID.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// The default table's cells: CONTAINER ID, IMAGE, COMMAND, CREATED,
    /// STATUS, PORTS, NAMES.
    pub(super) fn cells(self) -> Vec<String> {
        vec![
            self.id,
            self.image,
            self.command,
            self.running_for,
            self.status,
            self.ports,
            self.names,
        ]
    }
}

/// Docker's PORTS column: `0.0.0.0:8080->80/tcp, 127.0.0.1:53->53/udp`.
fn ports(v: &Value) -> String {
    v["Ports"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    let kind = p["Type"].as_str().unwrap_or("tcp");
                    let private = p["PrivatePort"].as_u64().unwrap_or(0);
                    match p["PublicPort"].as_u64() {
                        Some(public) => format!(
                            "{}:{public}->{private}/{kind}",
                            p["IP"].as_str().unwrap_or("")
                        ),
                        None => format!("{private}/{kind}"),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Names without Docker's leading `/`, comma-separated.
fn names(v: &Value) -> String {
    v["Names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|n| n.trim_start_matches('/'))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// `k=v,k2=v2`.
fn labels(v: &Value) -> String {
    v["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// `12kB (virtual 4.2MB)`, as Docker's `Size` column.
fn size(v: &Value) -> String {
    let size_rw = v["SizeRw"].as_i64().unwrap_or(0);
    let size_root = v["SizeRootFs"].as_i64().unwrap_or(0);
    if size_root > 0 {
        format!(
            "{} (virtual {})",
            human_size(size_rw),
            human_size(size_root)
        )
    } else {
        human_size(size_rw)
    }
}

/// Docker's `formatter.Ellipsis`: at most `max` characters, the last one `…`.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_truncated_like_docker() {
        assert_eq!(ellipsis("sleep 100", 20), "sleep 100");
        assert_eq!(
            ellipsis("sh -c 'while true; do sleep 1; done'", 20),
            "sh -c 'while true; …"
        );
    }

    #[test]
    fn row_fields() {
        let v = serde_json::json!({
            "Id": "0123456789abcdef0123", "Names": ["/web"], "Image": "busybox",
            "Command": "sleep 100", "Created": 0, "Labels": {"a": "b"},
            "State": "running", "Status": "Up 2 seconds",
        });
        let r = row(&v, false);
        assert_eq!(r.id, "0123456789ab");
        assert_eq!(r.names, "web");
        assert_eq!(r.command, "\"sleep 100\"");
        assert_eq!(r.labels, "a=b");
        assert_eq!(r.created_at, "1970-01-01 00:00:00 +0000 UTC");
    }
}
