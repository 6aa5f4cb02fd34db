//! v1 cpu controller: CFS quota (`--cpus`) and `cpu.shares`.

use std::path::Path;

use super::super::{write, CgroupController, Stats};
use crate::runtime::config::Resources;
use crate::runtime::error::Result;

/// CFS period in microseconds (Docker's default).
pub const CFS_PERIOD_US: u64 = 100_000;

/// The v1 cpu controller.
pub struct Cpu;

impl CgroupController for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn apply(&self, dir: &Path, res: &Resources) -> Result<()> {
        if let Some(cpus) = res.cpus {
            write(&dir.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
            let quota = (cpus * CFS_PERIOD_US as f64).round() as u64;
            write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
        }
        if let Some(shares) = res.cpu_shares {
            write(&dir.join("cpu.shares"), &shares.to_string())?;
        }
        Ok(())
    }

    fn stats(&self, _dir: &Path, _stats: &mut Stats) -> Result<()> {
        Ok(())
    }
}
