//! The kernel half of the engine: namespaces, mounts, cgroups, capabilities,
//! seccomp, the container process and its per-container shim.
//!
//! Knows nothing of images, the store or HTTP. Synchronous; no tokio. The
//! caller (a tokio daemon) never forks: [`start`] and [`exec`] spawn
//! `amber shim ...` as a new process, and that single-threaded shim does the
//! unshare/setns/fork work. See `docs/runtime.md`.

mod api;
pub mod cgroups;
pub mod config;
pub mod error;
pub mod oci;
pub mod process;
pub mod shim;
pub mod state;

pub use api::{
    attach, attach_exec, container_resolv_conf, delete, exec, exec_state, host_mounts_under, kill,
    pause, processes, resume, start, state, stats, update, wait, ExecStarted, ExecState, Started,
};
pub use cgroups::{Cgroup, Layout, Stats};
pub use config::{
    CreateOptions, ExecOptions, MountConfig, MountKind, ProcessConfig, Resources, Rlimit,
    DEFAULT_CGROUP_PARENT,
};
pub use error::{Result, RuntimeError};
pub use nix::sys::signal::Signal;
pub use shim::log::{read_log, LogRecord};
pub use shim::protocol::{AttachStream, Collected, Frame};
pub use state::{State, Status};

/// Entry point of the hidden `amber shim ...` sub-mode (argv after `shim`).
/// Returns the process exit code.
pub fn shim_main(args: Vec<String>) -> i32 {
    shim::shim_main(args)
}
