//! v1 devices controller: Docker's default device allow-list, so that
//! `CAP_MKNOD` inside the container cannot be used to reach host disks.

use std::path::Path;

use super::super::{write, CgroupController, Stats};
use crate::runtime::config::Resources;
use crate::runtime::error::Result;

/// Docker's default rules (moby `oci/devices_linux.go` + the default spec).
const ALLOW: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// The v1 devices controller.
pub struct Devices;

impl CgroupController for Devices {
    fn name(&self) -> &'static str {
        "devices"
    }

    fn apply(&self, _dir: &Path, _res: &Resources) -> Result<()> {
        // Privileged containers skip `apply_device_rules` entirely (inherit "a").
        Ok(())
    }

    fn stats(&self, _dir: &Path, _stats: &mut Stats) -> Result<()> {
        Ok(())
    }
}

/// Denies all devices, then allows the defaults.
pub fn apply_default_rules(dir: &Path) -> Result<()> {
    write(&dir.join("devices.deny"), "a")?;
    for rule in ALLOW {
        write(&dir.join("devices.allow"), rule)?;
    }
    Ok(())
}
