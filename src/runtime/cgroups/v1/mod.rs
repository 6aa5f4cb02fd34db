//! cgroup v1: one hierarchy per controller (or co-mounted ones).

pub mod cpu;
pub mod cpuacct;
pub mod devices;
pub mod freezer;
pub mod memory;
pub mod pids;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::CgroupController;

/// The v1 controllers a container joins.
const USED: &[&str] = &["memory", "cpu", "cpuacct", "pids", "freezer", "devices"];

/// Maps v1 controller names to their mount points from `/proc/self/mountinfo` text.
pub fn parse_mountinfo(text: &str) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split_whitespace();
        if post.next() != Some("cgroup") {
            continue;
        }
        let Some(mount_point) = pre.split_whitespace().nth(4) else {
            continue;
        };
        let super_opts = post.nth(1).unwrap_or("");
        for opt in super_opts.split(',') {
            if USED.contains(&opt) {
                out.entry(opt.to_string())
                    .or_insert_with(|| PathBuf::from(mount_point));
            }
        }
    }
    out
}

fn controller(name: &str) -> Option<Box<dyn CgroupController>> {
    Some(match name {
        "memory" => Box::new(memory::Memory),
        "cpu" => Box::new(cpu::Cpu),
        "cpuacct" => Box::new(cpuacct::CpuAcct),
        "pids" => Box::new(pids::Pids),
        "freezer" => Box::new(freezer::Freezer),
        "devices" => Box::new(devices::Devices),
        _ => return None,
    })
}

/// The directories of cgroup `rel`, grouping co-mounted controllers.
pub fn dirs(
    mounts: &BTreeMap<String, PathBuf>,
    rel: &Path,
) -> Vec<(PathBuf, Vec<Box<dyn CgroupController>>)> {
    let mut out: Vec<(PathBuf, Vec<Box<dyn CgroupController>>)> = Vec::new();
    for name in USED {
        let (Some(mount), Some(ctrl)) = (mounts.get(*name), controller(name)) else {
            continue;
        };
        let dir = mount.join(rel);
        match out.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, ctrls)) => ctrls.push(ctrl),
            None => out.push((dir, vec![ctrl])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_hybrid_and_comounted() {
        let t = "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                 31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n\
                 32 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 33 25 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n";
        let m = parse_mountinfo(t);
        assert_eq!(m["cpu"], PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m["cpuacct"], PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m["memory"], PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(m.len(), 3);
        let d = dirs(&m, Path::new("amber/c1"));
        assert_eq!(d.len(), 2);
    }
}
