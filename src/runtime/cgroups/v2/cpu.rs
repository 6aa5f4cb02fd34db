//! v2 cpu controller: `cpu.max`, `cpu.weight`, usage from `cpu.stat`.

use std::path::Path;

use super::super::{parse_flat_keyed, read, write, CgroupController, Stats};
use crate::runtime::config::Resources;
use crate::runtime::error::Result;

/// CFS period in microseconds (Docker's default).
pub const PERIOD_US: u64 = 100_000;

/// The v2 cpu controller.
pub struct Cpu;

/// `cpu.max` content for a fraction of CPUs.
pub fn cpu_max(cpus: f64) -> String {
    format!("{} {PERIOD_US}", (cpus * PERIOD_US as f64).round() as u64)
}

/// Converts v1 `cpu.shares` (2..262144) to v2 `cpu.weight` (1..10000), as
/// the OCI runtimes do.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// CPU usage in nanoseconds from a `cpu.stat` text.
pub fn parse_usage_ns(stat: &str) -> u64 {
    parse_flat_keyed(stat, "usage_usec").unwrap_or(0) * 1000
}

impl CgroupController for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn apply(&self, dir: &Path, res: &Resources) -> Result<()> {
        if let Some(cpus) = res.cpus {
            write(&dir.join("cpu.max"), &cpu_max(cpus))?;
        }
        if let Some(shares) = res.cpu_shares {
            write(
                &dir.join("cpu.weight"),
                &shares_to_weight(shares).to_string(),
            )?;
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        stats.cpu_usage_ns = parse_usage_ns(&read(&dir.join("cpu.stat"))?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(cpu_max(1.5), "150000 100000");
        assert_eq!(cpu_max(0.01), "1000 100000");
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(parse_usage_ns("usage_usec 42\nuser_usec 40\n"), 42_000);
    }
}
