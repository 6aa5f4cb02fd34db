//! v1 freezer controller: `freezer.state` FROZEN/THAWED for pause/unpause.

use std::path::Path;
use std::time::{Duration, Instant};

use super::super::{read, write, CgroupController, Stats};
use crate::runtime::config::Resources;
use crate::runtime::error::{Result, RuntimeError};

/// How long to wait for the kernel to finish freezing.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// The v1 freezer controller (no limits, no stats).
pub struct Freezer;

impl CgroupController for Freezer {
    fn name(&self) -> &'static str {
        "freezer"
    }

    fn apply(&self, _dir: &Path, _res: &Resources) -> Result<()> {
        Ok(())
    }

    fn stats(&self, _dir: &Path, _stats: &mut Stats) -> Result<()> {
        Ok(())
    }
}

/// Freezes or thaws, waiting until the state is reached.
pub fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let file = dir.join("freezer.state");
    let start = Instant::now();
    loop {
        write(&file, want)?;
        if read(&file)? == want {
            return Ok(());
        }
        if start.elapsed() > FREEZE_TIMEOUT {
            return Err(RuntimeError::Shim(format!(
                "{} did not reach {want}",
                file.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the cgroup is frozen (or freezing).
pub fn is_frozen(dir: &Path) -> bool {
    read(&dir.join("freezer.state"))
        .map(|s| s != "THAWED")
        .unwrap_or(false)
}
