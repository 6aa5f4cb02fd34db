//! Cgroups for containers: the host's layout (v1, hybrid or v2) is detected
//! once; each controller of each version is one file behind [`CgroupController`].
//!
//! On hybrid hosts (v1 controllers plus a controller-less cgroup2 mount at
//! `/sys/fs/cgroup/unified`) the v1 controllers are used.

pub mod v1;
pub mod v2;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::config::Resources;
use super::error::{Result, RuntimeError};

/// Where the cgroup filesystems live.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// How long `destroy` keeps killing stragglers before giving up.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(5);

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1 (legacy or hybrid): controller name → mount point.
    V1(BTreeMap<String, PathBuf>),
    /// Pure cgroup v2 (unified) mounted at the given root.
    V2(PathBuf),
}

/// Usage numbers of one container.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Memory in use, bytes.
    pub memory_usage: u64,
    /// Memory limit, bytes (`None`: unlimited).
    pub memory_limit: Option<u64>,
    /// CPU time consumed, nanoseconds.
    pub cpu_usage_ns: u64,
    /// Number of tasks.
    pub pids_current: u64,
    /// Task limit (`None`: unlimited).
    pub pids_limit: Option<u64>,
}

/// One controller of one cgroup version.
pub trait CgroupController {
    /// The controller's name (`memory`, `cpu`, ...).
    fn name(&self) -> &'static str;
    /// Writes the limits of `res` into the cgroup directory `dir`.
    fn apply(&self, dir: &Path, res: &Resources) -> Result<()>;
    /// Adds this controller's numbers to `stats`.
    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()>;
}

/// Whether containers get a device allow-list (the v1 `devices`
/// controller, or an eBPF program on v2).
pub fn has_device_control() -> bool {
    match layout() {
        Layout::V1(m) => m.contains_key("devices"),
        Layout::V2(_) => true,
    }
}

/// Detects the layout once per process.
pub fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(detect)
}

fn detect() -> Layout {
    let is_v2 = nix::sys::statfs::statfs(CGROUP_ROOT)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    if is_v2 {
        return Layout::V2(PathBuf::from(CGROUP_ROOT));
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    Layout::V1(v1::parse_mountinfo(&info))
}

/// The cgroup(s) of one container.
#[derive(Debug, Clone)]
pub struct Cgroup {
    layout: Layout,
    rel: PathBuf,
}

/// Reads a cgroup file, trimmed.
pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| cg_err("read", path, e))
}

/// Writes a cgroup file.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    tracing::debug!(path = %path.display(), value, "cgroup write");
    std::fs::write(path, value).map_err(|e| cg_err(&format!("write {value:?} to"), path, e))
}

pub(crate) fn cg_err(op: &str, path: &Path, source: std::io::Error) -> RuntimeError {
    RuntimeError::Cgroup {
        op: op.to_string(),
        path: path.to_path_buf(),
        source,
    }
}

impl Cgroup {
    /// The cgroup `parent/id` on this host (nothing is created yet).
    pub fn new(parent: &str, id: &str) -> Cgroup {
        Cgroup::with_layout(layout().clone(), parent, id)
    }

    /// Same as [`Cgroup::new`] with an explicit layout.
    pub fn with_layout(layout: Layout, parent: &str, id: &str) -> Cgroup {
        Cgroup {
            layout,
            rel: Path::new(parent).join(id),
        }
    }

    /// Directories of this cgroup, one per used hierarchy, with the controllers living there.
    pub fn dirs(&self) -> Vec<(PathBuf, Vec<Box<dyn CgroupController>>)> {
        match &self.layout {
            Layout::V2(root) => vec![(root.join(&self.rel), v2::controllers())],
            Layout::V1(mounts) => v1::dirs(mounts, &self.rel),
        }
    }

    /// All directories (for cleanup checks).
    pub fn paths(&self) -> Vec<PathBuf> {
        self.dirs().into_iter().map(|(d, _)| d).collect()
    }

    /// Creates the cgroup directories (and the parent's).
    pub fn create(&self) -> Result<()> {
        if let Layout::V2(root) = &self.layout {
            v2::enable_controllers(root, &self.rel)?;
        }
        for dir in self.paths() {
            std::fs::create_dir_all(&dir).map_err(|e| cg_err("create", &dir, e))?;
        }
        Ok(())
    }

    /// Applies limits on every controller.
    pub fn apply(&self, res: &Resources) -> Result<()> {
        for (dir, ctrls) in self.dirs() {
            for c in ctrls {
                c.apply(&dir, res)?;
            }
        }
        Ok(())
    }

    /// Moves process `pid` into the cgroup.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for dir in self.paths() {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Host pids of every process in the cgroup.
    pub fn procs(&self) -> Result<Vec<i32>> {
        let Some(dir) = self.paths().into_iter().next() else {
            return Ok(vec![]);
        };
        let text = read(&dir.join("cgroup.procs"))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Reads the usage numbers.
    pub fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        for (dir, ctrls) in self.dirs() {
            for c in ctrls {
                c.stats(&dir, &mut stats)?;
            }
        }
        Ok(stats)
    }

    /// Whether the kernel's OOM killer killed a task of this cgroup.
    pub fn oom_killed(&self) -> bool {
        match &self.layout {
            Layout::V2(root) => v2::memory::oom_kills(&root.join(&self.rel)) > 0,
            Layout::V1(m) => m
                .get("memory")
                .map(|p| v1::memory::oom_kills(&p.join(&self.rel)) > 0)
                .unwrap_or(false),
        }
    }

    /// Freezes (`true`) or thaws (`false`) every task, waiting until done.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        match &self.layout {
            Layout::V2(root) => v2::freezer::set_frozen(&root.join(&self.rel), frozen),
            Layout::V1(m) => v1::freezer::set_frozen(&self.v1_dir(m, "freezer")?, frozen),
        }
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> bool {
        match &self.layout {
            Layout::V2(root) => v2::freezer::is_frozen(&root.join(&self.rel)),
            Layout::V1(m) => self
                .v1_dir(m, "freezer")
                .map(|d| v1::freezer::is_frozen(&d))
                .unwrap_or(false),
        }
    }

    fn v1_dir(&self, mounts: &BTreeMap<String, PathBuf>, ctrl: &str) -> Result<PathBuf> {
        mounts.get(ctrl).map(|m| m.join(&self.rel)).ok_or_else(|| {
            RuntimeError::InvalidConfig(format!("cgroup v1 controller {ctrl} is not mounted"))
        })
    }

    /// Restricts device access to Docker's defaults: the v1 `devices`
    /// files, or on v2 an eBPF device program attached to the cgroup.
    pub fn restrict_devices(&self) -> Result<()> {
        match &self.layout {
            Layout::V1(m) if m.contains_key("devices") => {
                v1::devices::apply_default_rules(&self.v1_dir(m, "devices")?)
            }
            Layout::V1(_) => Ok(()),
            Layout::V2(root) => v2::devices::apply_default_rules(&root.join(&self.rel)),
        }
    }

    /// Whether any directory of the cgroup still exists.
    pub fn exists(&self) -> bool {
        self.paths().iter().any(|p| p.exists())
    }

    /// Kills every remaining task and removes the directories.
    pub fn destroy(&self) -> Result<()> {
        let start = Instant::now();
        for dir in self.paths() {
            loop {
                match std::fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if start.elapsed() > DESTROY_TIMEOUT => {
                        return Err(cg_err("remove", &dir, e))
                    }
                    Err(_) => {
                        kill_procs(&dir);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }
        Ok(())
    }
}

fn kill_procs(dir: &Path) {
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // Best effort: the task may be gone already.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Parses a "max" or integer limit as written in cgroup files.
pub(crate) fn parse_limit(s: &str) -> Option<u64> {
    match s.trim() {
        "max" | "" => None,
        v => v.parse().ok(),
    }
}

/// Parses `key value` lines (memory.stat, cpu.stat, memory.events, ...).
pub(crate) fn parse_flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next().and_then(|v| v.parse().ok()))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_and_limits() {
        let t = "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n";
        assert_eq!(parse_flat_keyed(t, "usage_usec"), Some(1234));
        assert_eq!(parse_flat_keyed(t, "user"), None);
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("1048576"), Some(1_048_576));
    }
}
