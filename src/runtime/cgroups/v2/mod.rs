//! cgroup v2 (unified): one directory per container, controllers enabled
//! through `cgroup.subtree_control` of each ancestor.

pub mod cpu;
pub mod devices;
pub mod freezer;
pub mod memory;
pub mod pids;

use std::path::Path;

use super::{read, write, CgroupController};
use crate::runtime::error::Result;

/// Controllers a container uses.
const WANTED: &[&str] = &["cpu", "memory", "pids"];

/// The v2 controllers.
pub fn controllers() -> Vec<Box<dyn CgroupController>> {
    vec![
        Box::new(memory::Memory),
        Box::new(cpu::Cpu),
        Box::new(pids::Pids),
    ]
}

/// The `+ctrl ...` line enabling the wanted controllers that are
/// `available` (a `cgroup.controllers` text) and not yet `enabled` (a
/// `cgroup.subtree_control` text). Writing only the missing ones keeps an
/// already delegated tree working where enabling again would fail.
pub fn subtree_line(available: &str, enabled: &str) -> String {
    let on: Vec<&str> = enabled.split_whitespace().collect();
    available
        .split_whitespace()
        .filter(|c| WANTED.contains(c) && !on.contains(c))
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Enables the wanted controllers from `root` down to the parent of `rel`.
pub fn enable_controllers(root: &Path, rel: &Path) -> Result<()> {
    let mut dir = root.to_path_buf();
    let parents: Vec<_> = rel
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for comp in std::iter::once(None).chain(parents.into_iter().map(Some)) {
        if let Some(c) = comp {
            dir.push(c);
            std::fs::create_dir_all(&dir).map_err(|e| super::cg_err("create", &dir, e))?;
        }
        let enabled = read(&dir.join("cgroup.subtree_control")).unwrap_or_default();
        let line = subtree_line(&read(&dir.join("cgroup.controllers"))?, &enabled);
        if !line.is_empty() {
            write(&dir.join("cgroup.subtree_control"), &line)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_line_filters() {
        let all = "cpuset cpu io memory hugetlb pids rdma misc\n";
        assert_eq!(subtree_line(all, ""), "+cpu +memory +pids");
        assert_eq!(subtree_line(all, "cpu io memory\n"), "+pids");
        assert_eq!(subtree_line("", ""), "");
    }
}
