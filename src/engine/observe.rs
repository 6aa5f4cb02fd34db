//! `top` and `stats`.

use serde_json::{json, Value};

use super::{Engine, EngineError};
use crate::runtime::{self, Cgroup, Status};

impl Engine {
    /// `GET /containers/{id}/top`: the host's `ps` output for the container's
    /// processes (as Docker does), default `-ef`.
    pub fn top(&self, name: &str, ps_args: Option<&str>) -> Result<Value, EngineError> {
        let v = self.container_view(name)?;
        if !matches!(v.state.status, Status::Running | Status::Paused) {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                v.rec.id
            )));
        }
        let pids = self.container_pids(&v.rec.id);
        let args = ps_args.filter(|a| !a.is_empty()).unwrap_or("-ef");
        let out = std::process::Command::new("ps")
            .args(args.split_whitespace())
            .output()
            .map_err(|e| EngineError::InvalidArgument(format!("failed to run ps: {e}")))?;
        if !out.status.success() {
            return Err(EngineError::InvalidArgument(format!(
                "ps {args} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let titles: Vec<&str> = header.split_whitespace().collect();
        let pid_col = titles.iter().position(|t| *t == "PID").ok_or_else(|| {
            EngineError::InvalidArgument("couldn't find PID field in ps output".into())
        })?;
        let mut procs = Vec::new();
        for line in lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            if !pids.contains(&pid) {
                continue;
            }
            // The last column (the command) keeps its spaces.
            let mut row: Vec<String> = fields
                .iter()
                .take(titles.len() - 1)
                .map(|s| s.to_string())
                .collect();
            row.push(
                fields
                    .iter()
                    .skip(titles.len() - 1)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            procs.push(row);
        }
        Ok(json!({"Titles": titles, "Processes": procs}))
    }

    /// Host pids of every process of a container (from its cgroup).
    pub fn container_pids(&self, id: &str) -> Vec<i32> {
        let cg = Cgroup::new(&self.cgroup_parent, id);
        cg.paths()
            .iter()
            .find_map(|p| std::fs::read_to_string(p.join("cgroup.procs")).ok())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// One sample of `GET /containers/{id}/stats` in Docker's shape;
    /// `pre` is the previous sample (for the CPU percentage).
    pub fn stats_sample(&self, name: &str, pre: Option<&Value>) -> Result<Value, EngineError> {
        let v = self.container_view(name)?;
        let running = matches!(v.state.status, Status::Running | Status::Paused);
        let s = if running {
            runtime::stats(&self.store.container_dir(&v.rec.id)).ok()
        } else {
            None
        };
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let cpu = json!({
            "cpu_usage": {"total_usage": s.as_ref().map(|s| s.cpu_usage_ns).unwrap_or(0)},
            "system_cpu_usage": system_cpu_ns(),
            "online_cpus": ncpu,
        });
        let empty_pre =
            json!({"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": ncpu});
        Ok(json!({
            "read": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "preread": pre.and_then(|p| p.get("read").cloned()).unwrap_or(json!("0001-01-01T00:00:00Z")),
            "id": v.rec.id,
            "name": format!("/{}", v.rec.name),
            "pids_stats": {
                "current": s.as_ref().map(|s| s.pids_current).unwrap_or(0),
                "limit": s.as_ref().and_then(|s| s.pids_limit),
            },
            "memory_stats": if let Some(s) = &s {
                json!({"usage": s.memory_usage, "limit": s.memory_limit.unwrap_or_else(host_memory), "stats": {}})
            } else { json!({}) },
            "cpu_stats": cpu,
            "precpu_stats": pre.and_then(|p| p.get("cpu_stats").cloned()).unwrap_or(empty_pre),
            "blkio_stats": {},
            "networks": {},
        }))
    }
}

fn host_memory() -> u64 {
    nix::sys::sysinfo::sysinfo()
        .map(|s| s.ram_total())
        .unwrap_or(0)
}

/// Total CPU time of the host in nanoseconds (from `/proc/stat`), as
/// Docker's `system_cpu_usage`.
fn system_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000_000 / hz
}
