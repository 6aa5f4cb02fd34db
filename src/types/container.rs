//! Docker Engine API bodies for containers and execs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::api::ContainerConfig;

/// `HostConfig.RestartPolicy`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `""`/`no`, `always`, `unless-stopped`, `on-failure`.
    pub name: String,
    /// Retries for `on-failure` (0 = unlimited).
    pub maximum_retry_count: i64,
}

/// `HostConfig.LogConfig`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    /// Always `json-file`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Driver options.
    pub config: BTreeMap<String, String>,
}

/// `HostConfig.Ulimits` element.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    /// `nofile`, `nproc`...
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// Docker's `HostConfig` (the subset amber applies; other fields are kept
/// as they came so inspect shows them).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// Bind mounts (`/host:/ctr[:ro]`), applied by the volumes issue.
    pub binds: Option<Vec<String>>,
    /// Network mode (`bridge`, `host`, `none`...).
    pub network_mode: String,
    /// Restart policy.
    pub restart_policy: RestartPolicy,
    /// Remove the container when it exits (`--rm`).
    pub auto_remove: bool,
    /// Capabilities to add.
    pub cap_add: Option<Vec<String>>,
    /// Capabilities to drop.
    pub cap_drop: Option<Vec<String>>,
    /// All capabilities, no confinement.
    pub privileged: bool,
    /// Run an init as pid 1.
    pub init: Option<bool>,
    /// Memory limit in bytes (0 = none).
    pub memory: i64,
    /// Memory + swap (-1 unlimited swap, 0 = default).
    pub memory_swap: i64,
    /// CPUs in units of 1e-9.
    pub nano_cpus: i64,
    /// Relative CPU weight.
    pub cpu_shares: i64,
    /// Pids limit (0 or -1 = unlimited).
    pub pids_limit: Option<i64>,
    /// Resource limits.
    pub ulimits: Option<Vec<Ulimit>>,
    /// Log driver.
    pub log_config: LogConfig,
    /// Initial console size `[rows, cols]`.
    pub console_size: Option<Vec<u16>>,
    /// Published ports: `"80/tcp"` → host bindings (`-p`).
    pub port_bindings: Option<super::ports::PortMap>,
    /// Publish every exposed port on a free host port (`-P`).
    pub publish_all_ports: bool,
    /// Mounts in the long form (`--mount`).
    pub mounts: Option<Vec<Mount>>,
    /// Tmpfs mounts: path → options (`--tmpfs /run:size=64m`).
    pub tmpfs: Option<BTreeMap<String, String>>,
    /// Containers whose volumes to mount too (`NAME[:ro|rw]`).
    pub volumes_from: Option<Vec<String>>,
    /// Extra `/etc/hosts` lines (`name:ip`, `name:host-gateway`).
    pub extra_hosts: Option<Vec<String>>,
    /// Nameservers for `/etc/resolv.conf`.
    pub dns: Option<Vec<String>>,
    /// Search domains for `/etc/resolv.conf`.
    pub dns_search: Option<Vec<String>>,
    /// Resolver options for `/etc/resolv.conf`.
    pub dns_options: Option<Vec<String>>,
    /// Everything else the client sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `HostConfig.Mounts` element (`--mount type=...`).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Host path (bind) or volume name (volume; empty = anonymous).
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Mount read-only.
    pub read_only: bool,
    /// Volume options (`NoCopy`).
    pub volume_options: Option<VolumeOptions>,
    /// Tmpfs options.
    pub tmpfs_options: Option<TmpfsOptions>,
    /// Bind options (`CreateMountpoint`...), kept as sent.
    pub bind_options: Option<serde_json::Value>,
}

/// `Mount.VolumeOptions`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    /// Do not copy the image's content into a new volume.
    pub no_copy: bool,
    /// Labels of a volume created by the mount.
    pub labels: Option<BTreeMap<String, String>>,
}

/// `Mount.TmpfsOptions`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    /// Size limit in bytes (0 = kernel default).
    pub size_bytes: i64,
    /// File mode of the root.
    pub mode: u32,
}

/// `POST /containers/create` body: the config plus `HostConfig`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateRequest {
    /// The container config.
    #[serde(flatten)]
    pub config: ContainerConfig,
    /// Host-side settings.
    pub host_config: HostConfig,
    /// Seconds to wait for a stop before SIGKILL.
    pub stop_timeout: Option<i64>,
    /// Networking config (kept for inspect).
    pub networking_config: Option<serde_json::Value>,
}

/// `POST /containers/create` answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateResponse {
    /// New container ID.
    pub id: String,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// `POST /containers/{id}/exec` body.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    /// Attach stdin.
    pub attach_stdin: bool,
    /// Attach stdout.
    pub attach_stdout: bool,
    /// Attach stderr.
    pub attach_stderr: bool,
    /// Allocate a tty.
    pub tty: bool,
    /// Extra environment.
    pub env: Option<Vec<String>>,
    /// Command.
    pub cmd: Vec<String>,
    /// User.
    pub user: String,
    /// Working directory.
    pub working_dir: String,
    /// All capabilities.
    pub privileged: bool,
    /// Initial console size `[rows, cols]`.
    pub console_size: Option<Vec<u16>>,
    /// Detach keys (ignored).
    pub detach_keys: String,
}

/// `POST /exec/{id}/start` body.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStartConfig {
    /// Run detached.
    pub detach: bool,
    /// Tty (must match the exec's).
    pub tty: bool,
    /// Initial console size.
    pub console_size: Option<Vec<u16>>,
}

/// `POST /containers/{id}/wait` answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitResponse {
    /// Exit code.
    pub status_code: i64,
    /// Error, if waiting failed.
    pub error: Option<WaitError>,
}

/// The error of a wait.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitError {
    /// Message.
    pub message: String,
}
