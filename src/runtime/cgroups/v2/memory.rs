//! v2 memory controller: `memory.max`, `memory.swap.max`, `memory.events`.

use std::path::Path;

use super::super::{parse_flat_keyed, parse_limit, read, write, CgroupController, Stats};
use crate::runtime::config::Resources;
use crate::runtime::error::{Result, RuntimeError};

/// The v2 memory controller.
pub struct Memory;

/// `memory.swap.max` for Docker's `--memory` and `--memory-swap` (which counts
/// memory + swap, while v2 counts swap alone).
pub fn swap_max(memory: i64, memory_swap: Option<i64>) -> String {
    match memory_swap {
        None => memory.to_string(),
        Some(s) if s < 0 => "max".to_string(),
        Some(s) => (s - memory).max(0).to_string(),
    }
}

impl CgroupController for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn apply(&self, dir: &Path, res: &Resources) -> Result<()> {
        let Some(mem) = res.memory else { return Ok(()) };
        write(&dir.join("memory.max"), &mem.to_string())?;
        let swap = dir.join("memory.swap.max");
        if swap.exists() {
            write(&swap, &swap_max(mem, res.memory_swap))
        } else if res.memory_swap.is_some_and(|s| s > 0 && s != mem) {
            Err(RuntimeError::InvalidConfig(
                "your kernel does not support swap limit capabilities".into(),
            ))
        } else {
            Ok(())
        }
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        stats.memory_usage = read(&dir.join("memory.current"))?.parse().unwrap_or(0);
        stats.memory_limit = parse_limit(&read(&dir.join("memory.max"))?);
        Ok(())
    }
}

/// `oom_kill` count from a `memory.events` text.
pub fn parse_oom_kills(events: &str) -> u64 {
    parse_flat_keyed(events, "oom_kill").unwrap_or(0)
}

/// Number of OOM kills in the cgroup (0 when unreadable).
pub fn oom_kills(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("memory.events"))
        .map(|t| parse_oom_kills(&t))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_swap() {
        let ev = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_oom_kills(ev), 1);
        assert_eq!(parse_oom_kills("oom 0\n"), 0);
        assert_eq!(swap_max(100, Some(300)), "200");
        assert_eq!(swap_max(100, Some(-1)), "max");
        assert_eq!(swap_max(100, None), "100");
        assert_eq!(swap_max(100, Some(100)), "0");
    }
}
