//! v2 freezer: `cgroup.freeze` and the `frozen` key of `cgroup.events`.

use std::path::Path;
use std::time::{Duration, Instant};

use super::super::{parse_flat_keyed, write};
use crate::runtime::error::{Result, RuntimeError};

/// How long to wait for the kernel to finish freezing.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a `cgroup.events` text says frozen.
pub fn parse_frozen(events: &str) -> bool {
    parse_flat_keyed(events, "frozen") == Some(1)
}

/// Whether the cgroup is frozen.
pub fn is_frozen(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .map(|t| parse_frozen(&t))
        .unwrap_or(false)
}

/// Freezes or thaws, waiting until `cgroup.events` agrees.
pub fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
    let start = Instant::now();
    while is_frozen(dir) != frozen {
        if start.elapsed() > FREEZE_TIMEOUT {
            return Err(RuntimeError::Shim(format!(
                "{} did not reach frozen={frozen}",
                dir.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events() {
        assert!(parse_frozen("populated 1\nfrozen 1\n"));
        assert!(!parse_frozen("populated 1\nfrozen 0\n"));
        assert!(!parse_frozen(""));
    }
}
