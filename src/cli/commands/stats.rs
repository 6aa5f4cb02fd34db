//! `amber stats` / `amber container stats`.

use serde_json::Value;

use crate::cli::client::{enc, enc_path, Client};
use crate::cli::output::{human_size, print_table};

/// Display a live stream of container(s) resource usage statistics.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// The containers (default: all running).
    pub containers: Vec<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    loop {
        let names = if args.containers.is_empty() {
            running(c, args.all).await?
        } else {
            args.containers.clone()
        };
        let mut rows = Vec::new();
        for name in &names {
            let path = format!("/containers/{}/stats?stream=0", enc_path(name));
            let v: Value = c.get(&path).await?;
            rows.push(row(&v, args.no_trunc));
        }
        if !args.no_stream {
            // Docker redraws in place: clear the screen, cursor home.
            print!("\x1b[2J\x1b[H");
        }
        print_table(
            &[
                "CONTAINER ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "NET I/O",
                "BLOCK I/O",
                "PIDS",
            ],
            &rows,
        );
        if args.no_stream {
            return Ok(0);
        }
        // The daemon's one-shot sample already spans half a second.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

async fn running(c: &Client, all: bool) -> anyhow::Result<Vec<String>> {
    let list: Vec<Value> = c
        .get(&format!(
            "/containers/json?all={}&filters={}",
            all as u8,
            enc("{}")
        ))
        .await?;
    Ok(list
        .iter()
        .filter_map(|v| v["Id"].as_str().map(str::to_string))
        .collect())
}

fn row(v: &Value, no_trunc: bool) -> Vec<String> {
    let id = v["id"].as_str().unwrap_or_default();
    let id = if no_trunc {
        id.to_string()
    } else {
        id.chars().take(12).collect()
    };
    let name = v["name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/');
    let mem = mem_usage(&v["memory_stats"]);
    let limit = v["memory_stats"]["limit"].as_f64().unwrap_or(0.0);
    let mem_pct = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (rx, tx) = net_io(&v["networks"]);
    let (read, write) = block_io(&v["blkio_stats"]);
    vec![
        id,
        name.to_string(),
        format!("{:.2}%", cpu_percent(v)),
        format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        format!("{mem_pct:.2}%"),
        format!("{} / {}", human_size(rx), human_size(tx)),
        format!("{} / {}", human_size(read), human_size(write)),
        v["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    ]
}

/// Docker's `calculateCPUPercentUnix`.
pub fn cpu_percent(v: &Value) -> f64 {
    let f = |p: &str| v.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    let cpu_delta =
        f("/cpu_stats/cpu_usage/total_usage") - f("/precpu_stats/cpu_usage/total_usage");
    let sys_delta = f("/cpu_stats/system_cpu_usage") - f("/precpu_stats/system_cpu_usage");
    let mut online = f("/cpu_stats/online_cpus");
    if online == 0.0 {
        online = v
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(Value::as_array)
            .map(|a| a.len() as f64)
            .unwrap_or(0.0);
    }
    if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    }
}

/// Usage minus the page cache (`inactive_file` on cgroup v2,
/// `total_inactive_file` on v1), as Docker's `calculateMemUsageUnixNoCache`.
fn mem_usage(m: &Value) -> f64 {
    let usage = m["usage"].as_f64().unwrap_or(0.0);
    let stats = &m["stats"];
    for key in ["total_inactive_file", "inactive_file"] {
        if let Some(cache) = stats[key].as_f64() {
            if cache < usage {
                return usage - cache;
            }
        }
    }
    usage
}

fn net_io(n: &Value) -> (i64, i64) {
    n.as_object()
        .map(|m| {
            m.values().fold((0, 0), |(r, t), i| {
                (
                    r + i["rx_bytes"].as_i64().unwrap_or(0),
                    t + i["tx_bytes"].as_i64().unwrap_or(0),
                )
            })
        })
        .unwrap_or((0, 0))
}

fn block_io(b: &Value) -> (i64, i64) {
    let mut out = (0, 0);
    for e in b["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let n = e["value"].as_i64().unwrap_or(0);
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => out.0 += n,
            Some("write") => out.1 += n,
            _ => {}
        }
    }
    out
}

/// Docker's `units.BytesSize`: binary units, `%.4g`.
pub fn bytes_size(v: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = v.max(0.0);
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    let digits = if v >= 1.0 {
        v.log10().floor() as i32 + 1
    } else {
        1
    };
    let decimals = (4 - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sizes() {
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(4096.0), "4KiB");
        assert_eq!(bytes_size(1_536_000.0), "1.465MiB");
        assert_eq!(bytes_size(8_233_000_000.0), "7.668GiB");
    }

    #[test]
    fn cpu_like_docker() {
        let v = serde_json::json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
        });
        assert!((cpu_percent(&v) - 40.0).abs() < 1e-9);
    }
}
