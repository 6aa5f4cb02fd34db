//! v1 memory controller: `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes`.

use std::path::Path;

use super::super::{parse_flat_keyed, read, write, CgroupController, Stats};
use crate::runtime::config::Resources;
use crate::runtime::error::{Result, RuntimeError};

/// Values at or above this mean "unlimited" in v1 (PAGE_COUNTER_MAX rounded).
const UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// The v1 memory controller.
pub struct Memory;

impl CgroupController for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn apply(&self, dir: &Path, res: &Resources) -> Result<()> {
        let Some(mem) = res.memory else { return Ok(()) };
        write(&dir.join("memory.limit_in_bytes"), &mem.to_string())?;
        // Docker: no --memory-swap means swap of the same size as the limit.
        let swap = res.memory_swap.unwrap_or(mem * 2);
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        if !memsw.exists() {
            if res.memory_swap.is_some_and(|s| s > 0 && s != mem) {
                return Err(RuntimeError::InvalidConfig(
                    "your kernel does not support swap limit capabilities or the cgroup is not mounted".into(),
                ));
            }
            return Ok(());
        }
        let value = if swap < 0 {
            "-1".to_string()
        } else {
            swap.to_string()
        };
        write(&memsw, &value)
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        stats.memory_usage = read(&dir.join("memory.usage_in_bytes"))?
            .parse()
            .unwrap_or(0);
        let limit: u64 = read(&dir.join("memory.limit_in_bytes"))?
            .parse()
            .unwrap_or(u64::MAX);
        stats.memory_limit = (limit < UNLIMITED).then_some(limit);
        Ok(())
    }
}

/// Number of OOM kills recorded in `memory.oom_control` (0 when unreadable).
pub fn oom_kills(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("memory.oom_control"))
        .ok()
        .and_then(|t| parse_flat_keyed(&t, "oom_kill"))
        .unwrap_or(0)
}
