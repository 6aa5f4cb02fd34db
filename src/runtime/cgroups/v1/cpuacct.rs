//! v1 cpuacct controller: CPU usage in nanoseconds.

use std::path::Path;

use super::super::{read, CgroupController, Stats};
use crate::runtime::config::Resources;
use crate::runtime::error::Result;

/// The v1 cpuacct controller.
pub struct CpuAcct;

impl CgroupController for CpuAcct {
    fn name(&self) -> &'static str {
        "cpuacct"
    }

    fn apply(&self, _dir: &Path, _res: &Resources) -> Result<()> {
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        stats.cpu_usage_ns = read(&dir.join("cpuacct.usage"))?.parse().unwrap_or(0);
        Ok(())
    }
}
