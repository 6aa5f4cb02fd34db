//! What the caller asks for: a container's root filesystem, process and limits.
//!
//! All of it is serialized to `config.json` in the container directory, which
//! is how the shim (a separate process) receives it.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use super::error::{Result, RuntimeError};

/// Name of the default cgroup parent.
pub const DEFAULT_CGROUP_PARENT: &str = "amber";
/// Docker's minimum memory limit (6 MiB): below it the kernel cannot run a process.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// Overlay lower layers this runtime guarantees to mount (the real limit is
/// the kernel's 500-layer stacking limit).
pub const MAX_LOWER_LAYERS: usize = 500;

/// One resource limit (`setrlimit(2)`), e.g. `nofile` 1024:2048.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// Name, `nofile`, `nproc`, ... or `RLIMIT_NOFILE` style.
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The process to run (Docker-shaped; a subset of the OCI `process` object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessConfig {
    /// argv; `args[0]` is looked up in `$PATH` when it has no `/`.
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs. `PATH` and `HOME` get Docker's defaults when missing.
    pub env: Vec<String>,
    /// Working directory inside the container (default `/`).
    pub cwd: Option<String>,
    /// `user`, `uid`, `user:group`, `uid:gid` (resolved in the container's
    /// `/etc/passwd` and `/etc/group`); default root.
    pub user: Option<String>,
    /// Allocate a pseudo-terminal.
    pub tty: bool,
    /// Keep stdin open for attach clients.
    pub open_stdin: bool,
    /// Initial terminal size (rows, cols) when `tty`.
    pub console_size: Option<(u16, u16)>,
    /// Capabilities to add to Docker's default set (`NET_ADMIN` or `CAP_NET_ADMIN`, or `ALL`).
    pub cap_add: Vec<String>,
    /// Capabilities to drop from the default set (or `ALL`).
    pub cap_drop: Vec<String>,
    /// Resource limits applied with `setrlimit`.
    pub rlimits: Vec<Rlimit>,
}

/// Cgroup limits. `None` means unlimited / kernel default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Memory + swap limit in bytes (Docker's `--memory-swap`; -1 unlimited swap).
    pub memory_swap: Option<i64>,
    /// CPU quota as a fraction of CPUs (Docker's `--cpus`).
    pub cpus: Option<f64>,
    /// Relative CPU weight, Docker's `--cpu-shares` (2..262144, default 1024).
    pub cpu_shares: Option<u64>,
    /// Maximum number of tasks (Docker's `--pids-limit`).
    pub pids_limit: Option<i64>,
}

/// What kind of extra mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A bind mount of a host path (also how volumes are mounted).
    Bind,
    /// A new tmpfs.
    Tmpfs,
}

/// An extra mount in the container (Docker's `-v`, `--mount`, `--tmpfs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountConfig {
    /// Bind or tmpfs.
    pub kind: MountKind,
    /// Host path (bind); ignored for tmpfs.
    pub source: PathBuf,
    /// Absolute path in the container (resolved inside its root).
    pub destination: String,
    /// Read-only.
    pub readonly: bool,
    /// tmpfs data (`size=64m,mode=1777`).
    pub options: Option<String>,
}

/// Everything needed to create and start a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateOptions {
    /// Container id (also the cgroup leaf name).
    pub id: String,
    /// Container directory: config, socket, pid, exit status, log, etc files.
    pub dir: PathBuf,
    /// Overlay lower dirs, top-most first (overlay's `lowerdir` order).
    pub lower_dirs: Vec<PathBuf>,
    /// Overlay upper dir (the container's writable layer).
    pub upper_dir: PathBuf,
    /// Overlay work dir (same filesystem as `upper_dir`).
    pub work_dir: PathBuf,
    /// The process.
    pub process: ProcessConfig,
    /// Hostname (default: the first 12 characters of the id).
    pub hostname: Option<String>,
    /// Disable all security defaults, give all capabilities and host devices.
    pub privileged: bool,
    /// Cgroup limits.
    pub resources: Resources,
    /// Cgroup parent name (default [`DEFAULT_CGROUP_PARENT`]).
    pub cgroup_parent: Option<String>,
    /// Existing network namespace to join (e.g. `/run/netns/x`); default: a new
    /// one with only loopback, up.
    pub netns: Option<PathBuf>,
    /// The `amber` binary that runs the shim (default `std::env::current_exe()`).
    pub shim_exe: Option<PathBuf>,
    /// Extra mounts, made in order after /dev.
    #[serde(default)]
    pub mounts: Vec<MountConfig>,
    /// Hold output in the shim until the first client attaches (an attach
    /// was requested before start, as `docker run` does), so none is lost.
    #[serde(default)]
    pub hold_output_until_attach: bool,
}

impl CreateOptions {
    /// The effective hostname.
    pub fn hostname(&self) -> String {
        match &self.hostname {
            Some(h) => h.clone(),
            None => self.id.chars().take(12).collect(),
        }
    }

    /// The effective cgroup parent.
    pub fn cgroup_parent(&self) -> &str {
        self.cgroup_parent
            .as_deref()
            .unwrap_or(DEFAULT_CGROUP_PARENT)
    }

    /// Checks what can be checked without touching the kernel.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(RuntimeError::InvalidConfig(m));
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return bad(format!("invalid container id {:?}", self.id));
        }
        if self.process.args.is_empty() {
            return bad("no command specified".into());
        }
        if self.lower_dirs.is_empty() || self.lower_dirs.len() > MAX_LOWER_LAYERS {
            return bad(format!(
                "need 1..={MAX_LOWER_LAYERS} lower dirs, got {}",
                self.lower_dirs.len()
            ));
        }
        self.validate_paths()?;
        let parent = self.cgroup_parent();
        if parent.is_empty() || parent.split('/').any(|c| c.is_empty() || c == "..") {
            return bad(format!("invalid cgroup parent {parent:?}"));
        }
        self.resources.validate()
    }
}

impl CreateOptions {
    /// Paths must be absolute (the lower links are resolved from another
    /// directory) and upper/work must not contain overlay's separators.
    fn validate_paths(&self) -> Result<()> {
        let all = [&self.dir, &self.upper_dir, &self.work_dir]
            .into_iter()
            .chain(self.lower_dirs.iter());
        if let Some(p) = all.into_iter().find(|p| !p.is_absolute()) {
            return Err(RuntimeError::InvalidConfig(format!(
                "path {} is not absolute",
                p.display()
            )));
        }
        for p in [&self.upper_dir, &self.work_dir] {
            if p.to_string_lossy().contains([',', ':']) {
                return Err(RuntimeError::InvalidConfig(format!(
                    "overlay dir {} contains ',' or ':'",
                    p.display()
                )));
            }
        }
        Ok(())
    }
}

impl Resources {
    /// Docker's checks on limits.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(RuntimeError::InvalidConfig(m));
        if let Some(m) = self.memory {
            if m < MIN_MEMORY {
                return bad("Minimum memory limit allowed is 6MB".into());
            }
        }
        if let Some(s) = self.memory_swap {
            match self.memory {
                None if s > 0 => return bad(
                    "You should always set the Memory limit when using Memoryswap limit, see usage"
                        .into(),
                ),
                Some(m) if s > 0 && s < m => {
                    return bad(
                        "Minimum memoryswap limit should be larger than memory limit, see usage"
                            .into(),
                    )
                }
                _ => {}
            }
        }
        if let Some(c) = self.cpus {
            let n = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            if !(0.01..=n as f64).contains(&c) {
                return bad(format!(
                    "range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
                ));
            }
        }
        if let Some(s) = self.cpu_shares {
            if !(2..=262_144).contains(&s) {
                return bad(format!("cpu shares {s} out of range 2..262144"));
            }
        }
        Ok(())
    }
}

/// Options of a process exec'd into a running container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecOptions {
    /// Exec id, unique within the container (a file name).
    pub id: String,
    /// The process (caps and rlimits are those of the container unless given).
    pub process: ProcessConfig,
    /// Run privileged (all capabilities, no seccomp) like `docker exec --privileged`.
    pub privileged: bool,
    /// Nobody will attach (`docker exec -d`): output is discarded instead of
    /// being held until the first client attaches.
    pub detach: bool,
    /// The `amber` binary that runs the shim (default `std::env::current_exe()`).
    pub shim_exe: Option<PathBuf>,
}

/// Reads a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let data = std::fs::read(path).map_err(|e| RuntimeError::io("read", path, e))?;
    serde_json::from_slice(&data).map_err(|source| RuntimeError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a JSON file atomically (temp file + rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    // invariant: our config/state types serialize infallibly (no maps with non-string keys).
    let data = serde_json::to_vec_pretty(value).expect("serializable");
    write_atomic(path, &data)
}

/// Writes a file atomically: a sibling temp file, fsync-free, then rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data).map_err(|e| RuntimeError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| RuntimeError::io("rename", path, e))
}
