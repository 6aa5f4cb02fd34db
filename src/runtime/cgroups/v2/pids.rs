//! v2 pids controller: `pids.max`, `pids.current`.

use std::path::Path;

use super::super::{parse_limit, read, write, CgroupController, Stats};
use crate::runtime::config::Resources;
use crate::runtime::error::Result;

/// The v2 pids controller.
pub struct Pids;

impl CgroupController for Pids {
    fn name(&self) -> &'static str {
        "pids"
    }

    fn apply(&self, dir: &Path, res: &Resources) -> Result<()> {
        match res.pids_limit {
            Some(n) if n > 0 => write(&dir.join("pids.max"), &n.to_string()),
            Some(_) => write(&dir.join("pids.max"), "max"),
            None => Ok(()),
        }
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        stats.pids_current = read(&dir.join("pids.current"))?.parse().unwrap_or(0);
        stats.pids_limit = parse_limit(&read(&dir.join("pids.max"))?);
        Ok(())
    }
}
