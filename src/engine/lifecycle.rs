//! Start, stop, kill, pause, wait; the per-container monitor that records
//! exits, applies `--rm` and restart policies; recovery after a daemon
//! restart.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::containers::ContainerView;
use super::{lock, Engine, EngineError};
use crate::runtime::{self, CreateOptions, ProcessConfig, Resources, Rlimit, Signal, Status};

/// Default seconds `stop` waits before SIGKILL (Docker's).
const DEFAULT_STOP_TIMEOUT: i64 = 10;
/// First restart-policy delay; doubles per consecutive restart (Docker's).
const RESTART_BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest restart-policy delay.
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Exit bookkeeping broadcast to `wait` callers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitEvents {
    /// Exits recorded since the daemon started.
    pub exits: u64,
    /// The container was removed.
    pub removed: bool,
    /// Exit code of the last exit.
    pub exit_code: i64,
}

/// Docker's `wait` conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Return at once when not running, else at exit.
    NotRunning,
    /// The next exit after the call.
    NextExit,
    /// Removal.
    Removed,
}

impl Engine {
    /// A receiver of the container's exit events.
    pub fn subscribe(&self, id: &str) -> watch::Receiver<ExitEvents> {
        let mut map = lock(&self.events);
        map.entry(id.to_string())
            .or_insert_with(|| watch::channel(ExitEvents::default()).0)
            .subscribe()
    }

    fn bump(&self, id: &str, f: impl FnOnce(&mut ExitEvents)) {
        let mut map = lock(&self.events);
        let tx = map
            .entry(id.to_string())
            .or_insert_with(|| watch::channel(ExitEvents::default()).0);
        tx.send_modify(f);
    }

    pub(super) fn notify_removed(&self, id: &str) {
        self.bump(id, |e| e.removed = true);
        lock(&self.pending_attach).remove(id);
    }

    /// An attach client waits for this container's start: hold its output.
    pub fn expect_attach(&self, id: &str) {
        lock(&self.pending_attach).insert(id.to_string());
    }

    /// `POST /containers/{id}/start`.
    pub fn start_container(self: &Arc<Self>, name: &str) -> Result<(), EngineError> {
        let v = self.container_view(name)?;
        if matches!(v.state.status, Status::Running | Status::Paused) {
            return Err(EngineError::NotModified("container already started".into()));
        }
        let _ = self
            .store
            .set_container_restart(&v.rec.id, v.rec.restart_count, false);
        let launched = self.launch(&v);
        if let Err(EngineError::Runtime(crate::runtime::RuntimeError::StartFailed {
            exit_code,
            ..
        })) = &launched
        {
            let code = *exit_code as i64;
            self.bump(&v.rec.id, |e| {
                e.exits += 1;
                e.exit_code = code;
            });
            if v.spec.host_config.auto_remove {
                if let Err(e) = self.destroy(&v.rec.id, true) {
                    tracing::error!(container_id = %v.rec.id, error = %e, "failed to auto-remove container");
                }
            }
        }
        launched
    }

    fn launch(self: &Arc<Self>, v: &ContainerView) -> Result<(), EngineError> {
        let hold = lock(&self.pending_attach).remove(&v.rec.id);
        let mut opts = self.create_options(v, hold)?;
        opts.mounts = self.mount_configs(v)?;
        opts.netns = self.setup_network(v)?;
        let started = match runtime::start(&opts) {
            Ok(s) => s,
            Err(e) => {
                self.teardown_network(&v.rec.id);
                return Err(e.into());
            }
        };
        self.network_started(&v.rec.id, started.shim_pid);
        tracing::info!(container_id = %v.rec.id, pid = started.pid, "container started");
        self.monitor(v.rec.id.clone(), started.shim_pid);
        Ok(())
    }

    fn create_options(&self, v: &ContainerView, hold: bool) -> Result<CreateOptions, EngineError> {
        let image = self.store.image(&v.rec.image_id)?;
        let mut lower = self.store.unpacked_layer_dirs(&image)?;
        lower.reverse();
        let dir = self.store.container_dir(&v.rec.id);
        let c = &v.spec.config;
        let h = &v.spec.host_config;
        let nonzero = |x: i64| if x > 0 { Some(x) } else { None };
        Ok(CreateOptions {
            id: v.rec.id.clone(),
            lower_dirs: lower,
            upper_dir: dir.join("upper"),
            work_dir: dir.join("work"),
            dir,
            process: ProcessConfig {
                args: v.spec.argv(),
                env: c.env.clone().unwrap_or_default(),
                cwd: if c.working_dir.is_empty() {
                    None
                } else {
                    Some(c.working_dir.clone())
                },
                user: if c.user.is_empty() {
                    None
                } else {
                    Some(c.user.clone())
                },
                tty: c.tty,
                open_stdin: c.open_stdin,
                console_size: h
                    .console_size
                    .as_ref()
                    .filter(|s| s.len() == 2 && s[0] > 0)
                    .map(|s| (s[0], s[1])),
                cap_add: h.cap_add.clone().unwrap_or_default(),
                cap_drop: h.cap_drop.clone().unwrap_or_default(),
                rlimits: h
                    .ulimits
                    .iter()
                    .flatten()
                    .map(|u| Rlimit {
                        name: u.name.clone(),
                        soft: u.soft as u64,
                        hard: u.hard as u64,
                    })
                    .collect(),
            },
            hostname: if c.hostname.is_empty() {
                None
            } else {
                Some(c.hostname.clone())
            },
            privileged: h.privileged,
            resources: Resources {
                memory: nonzero(h.memory),
                memory_swap: if h.memory_swap == 0 {
                    None
                } else {
                    Some(h.memory_swap)
                },
                cpus: if h.nano_cpus > 0 {
                    Some(h.nano_cpus as f64 / 1e9)
                } else {
                    None
                },
                cpu_shares: nonzero(h.cpu_shares).map(|s| s as u64),
                pids_limit: h.pids_limit.and_then(nonzero),
            },
            cgroup_parent: Some(self.cgroup_parent.clone()),
            netns: None,
            mounts: Vec::new(),
            shim_exe: Some(super::shim_exe()),
            hold_output_until_attach: hold,
        })
    }

    /// `POST /containers/{id}/stop?t=&signal=`.
    pub fn stop_container(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), EngineError> {
        let v = self.container_view(name)?;
        if !matches!(v.state.status, Status::Running | Status::Paused) {
            return Err(EngineError::NotModified("container already stopped".into()));
        }
        self.store
            .set_container_restart(&v.rec.id, v.rec.restart_count, true)?;
        let dir = self.store.container_dir(&v.rec.id);
        if v.state.status == Status::Paused {
            runtime::resume(&dir)?;
        }
        let sig = parse_signal(
            signal
                .or(v.spec.config.stop_signal.as_deref())
                .unwrap_or("SIGTERM"),
        )?;
        let t = timeout
            .or(v.spec.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT)
            .max(0);
        let _ = runtime::kill(&dir, sig);
        let st = runtime::wait(&dir, Duration::from_secs(t as u64))?;
        if st.status != Status::Exited {
            let _ = runtime::kill(&dir, Signal::SIGKILL);
            runtime::wait(&dir, Duration::from_secs(30))?;
        }
        // Docker's stop returns with the network released; the monitor's
        // own teardown then finds nothing left.
        if let Some(shim) = v.state.shim_pid {
            self.network_exited(&v.rec.id, shim);
        }
        Ok(())
    }

    /// `POST /containers/{id}/kill?signal=`.
    pub fn kill_container(&self, name: &str, signal: Option<&str>) -> Result<(), EngineError> {
        let v = self.container_view(name)?;
        if !matches!(v.state.status, Status::Running | Status::Paused) {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                v.rec.id
            )));
        }
        let sig = parse_signal(signal.unwrap_or("SIGKILL"))?;
        if matches!(sig, Signal::SIGKILL | Signal::SIGTERM | Signal::SIGINT) {
            self.store
                .set_container_restart(&v.rec.id, v.rec.restart_count, true)?;
        }
        Ok(runtime::kill(&self.store.container_dir(&v.rec.id), sig)?)
    }

    /// `POST /containers/{id}/restart?t=`.
    pub fn restart_container(
        self: &Arc<Self>,
        name: &str,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        match self.stop_container(name, timeout, None) {
            Ok(()) | Err(EngineError::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        self.start_container(name)
    }

    /// `POST /containers/{id}/pause` and `/unpause`.
    pub fn pause_container(&self, name: &str, pause: bool) -> Result<(), EngineError> {
        let v = self.container_view(name)?;
        let dir = self.store.container_dir(&v.rec.id);
        match (v.state.status, pause) {
            (Status::Running, true) => Ok(runtime::pause(&dir)?),
            (Status::Paused, false) => Ok(runtime::resume(&dir)?),
            (Status::Paused, true) => Err(EngineError::Conflict(format!(
                "Container {} is already paused",
                v.rec.id
            ))),
            (Status::Running, false) => Err(EngineError::Conflict(format!(
                "Container {} is not paused",
                v.rec.id
            ))),
            _ => Err(EngineError::Conflict(format!(
                "Container {} is not running",
                v.rec.id
            ))),
        }
    }

    /// The exit code to answer a finished wait with.
    pub fn exit_code(&self, id: &str) -> i64 {
        let dir = self.store.container_dir(id);
        runtime::state(&dir)
            .ok()
            .and_then(|s| s.exit_code)
            .unwrap_or(0) as i64
    }

    /// Start the monitor thread of a running container.
    fn monitor(self: &Arc<Self>, id: String, shim_pid: i32) {
        let engine = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name(format!("monitor-{}", &id[..12]))
            .spawn(move || {
                wait_pid(shim_pid);
                engine.network_exited(&id, shim_pid);
                engine.on_exit(&id);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "failed to start a container monitor");
        }
    }

    fn on_exit(self: &Arc<Self>, id: &str) {
        let dir = self.store.container_dir(id);
        let state = runtime::state(&dir);
        let code = state.as_ref().ok().and_then(|s| s.exit_code).unwrap_or(-1) as i64;
        self.bump(id, |e| {
            e.exits += 1;
            e.exit_code = code;
        });
        let Ok(rec) = self.store.container(id) else {
            return;
        };
        let Ok(v) = self.view_of(rec) else { return };
        tracing::info!(container_id = %id, exit_code = ?state.as_ref().ok().and_then(|s| s.exit_code), "container exited");
        let oom = state.as_ref().is_ok_and(|s| s.oom_killed);
        let wants = v
            .spec
            .config
            .labels
            .as_ref()
            .and_then(|l| l.get("amber.capture-on-failure"))
            .is_some_and(|x| x == "true" || x == "1");
        if wants && !v.rec.stopped_by_user && (code != 0 || oom) {
            self.capture_on_failure(&v, code, oom);
        }
        if v.spec.host_config.auto_remove {
            if let Err(e) = self.destroy(id, true) {
                tracing::error!(container_id = %id, error = %e, "failed to auto-remove container");
            }
            return;
        }
        if !self.should_restart(&v) {
            // The writable layer's digest, ahead of a commit (low priority:
            // it only spares a later commit one read of the layer).
            let dir = self.store.container_dir(id);
            let spawned = std::thread::Builder::new()
                .name(format!("digest-{}", &id[..12]))
                .spawn(move || {
                    // SAFETY: setpriority on the calling thread only.
                    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
                    super::digest_cache::precompute(&dir)
                });
            if let Ok(h) = spawned {
                lock(&self.digesting).insert(id.to_string(), h);
            }
        }
        if self.should_restart(&v) {
            let delay = RESTART_BACKOFF_START
                .saturating_mul(1u32 << v.rec.restart_count.clamp(0, 16) as u32)
                .min(RESTART_BACKOFF_MAX);
            std::thread::sleep(delay);
            self.restart_by_policy(id);
        }
    }

    /// `run --capture-on-failure`: the flight recorder keeps the failed
    /// container's scene in a bundle labelled with the reason.
    fn capture_on_failure(&self, v: &ContainerView, code: i64, oom: bool) {
        let name = v.rec.name.trim_start_matches('/').to_string();
        let reason = if oom {
            format!("{name} was OOM-killed")
        } else {
            format!("{name} exited with code {code}")
        };
        let opts = super::CaptureOptions {
            containers: vec![v.rec.id.clone()],
            all: false,
            label: format!("capture on failure: {reason}"),
            annotations: [
                ("exit-code".to_string(), code.to_string()),
                ("oom-killed".to_string(), oom.to_string()),
            ]
            .into_iter()
            .collect(),
            no_pause: true,
            ..Default::default()
        };
        match self.capture(&opts) {
            Ok(m) => {
                tracing::info!(container_id = %v.rec.id, bundle = %m["Id"], "captured on failure")
            }
            Err(e) => {
                tracing::error!(container_id = %v.rec.id, error = %e, "capture on failure failed")
            }
        }
    }

    fn should_restart(&self, v: &ContainerView) -> bool {
        let p = &v.spec.host_config.restart_policy;
        let code = v.state.exit_code.unwrap_or(0);
        match p.name.as_str() {
            "always" => !v.rec.stopped_by_user,
            "unless-stopped" => !v.rec.stopped_by_user,
            "on-failure" => {
                !v.rec.stopped_by_user
                    && code != 0
                    && (p.maximum_retry_count == 0 || v.rec.restart_count < p.maximum_retry_count)
            }
            _ => false,
        }
    }

    fn restart_by_policy(self: &Arc<Self>, id: &str) {
        // Re-read: a stop or rm during the backoff wins.
        let Ok(rec) = self.store.container(id) else {
            return;
        };
        if rec.stopped_by_user {
            return;
        }
        let count = rec.restart_count + 1;
        let _ = self.store.set_container_restart(id, count, false);
        match self.view_of(rec) {
            Ok(v) if v.state.status == Status::Exited => {
                if let Err(e) = self.launch(&v) {
                    tracing::error!(container_id = %id, error = %e, "restart by policy failed");
                }
            }
            _ => {}
        }
    }

    /// After a daemon (re)start: monitor running containers again, and
    /// apply restart policies to those that exited while it was down.
    pub(super) fn recover(self: &Arc<Self>) -> Result<(), EngineError> {
        for rec in self.store.list_containers()? {
            let id = rec.id.clone();
            let Ok(v) = self.view_of(rec) else { continue };
            match v.state.status {
                Status::Running | Status::Paused => {
                    if let Some(shim) = v.state.shim_pid {
                        tracing::info!(container_id = %id, "found running container");
                        self.monitor(id, shim);
                    }
                }
                Status::Exited if v.spec.host_config.auto_remove => {
                    let _ = self.destroy(&id, true);
                }
                // `always` restarts on daemon start even after a manual stop.
                Status::Exited if v.spec.host_config.restart_policy.name == "always" => {
                    let _ = self
                        .store
                        .set_container_restart(&id, v.rec.restart_count, false);
                    self.restart_by_policy(&id);
                }
                Status::Exited if self.should_restart(&v) => self.restart_by_policy(&id),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Block until a process (not our child) exits: pidfd + poll, or polling
/// `/proc` when pidfds are unavailable.
fn wait_pid(pid: i32) {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd >= 0 {
        // SAFETY: the kernel just gave us this fd; we own it from here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd for the duration of the call.
            let rc = unsafe { libc::poll(&mut pfd, 1, -1) };
            if rc > 0
                || (rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
            {
                return;
            }
        }
    }
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `SIGTERM`, `TERM`, `15` → a signal.
pub fn parse_signal(s: &str) -> Result<Signal, EngineError> {
    let bad = || EngineError::InvalidArgument(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}
