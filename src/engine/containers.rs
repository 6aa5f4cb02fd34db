//! Container records in Docker's shapes: create, inspect, list, rename,
//! remove, prune.

use std::sync::Arc;

use serde_json::{json, Value};

use super::spec::{self, ContainerSpec};
use super::{Engine, EngineError};
use crate::runtime::{self, State, Status};
use crate::store::{ContainerRecord, NewContainer, StoreError};
use crate::types::api::ContainerConfig;
use crate::types::container::{CreateRequest, CreateResponse};

/// A container with its parsed spec and live state.
pub struct ContainerView {
    /// The store's record.
    pub rec: ContainerRecord,
    /// The creation spec.
    pub spec: ContainerSpec,
    /// Runtime state (created when never started).
    pub state: State,
}

impl ContainerView {
    /// Docker's status word.
    pub fn status(&self) -> &'static str {
        match self.state.status {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
        }
    }
}

fn never_started() -> State {
    State {
        status: Status::Created,
        pid: None,
        shim_pid: None,
        exit_code: None,
        oom_killed: false,
        started_at: None,
        finished_at: None,
        error: None,
    }
}

impl Engine {
    /// `POST /containers/create`.
    pub fn create_container(
        &self,
        name: Option<&str>,
        req: CreateRequest,
    ) -> Result<CreateResponse, EngineError> {
        if req.config.image.is_empty() {
            return Err(EngineError::InvalidArgument(
                "config.Image is required".into(),
            ));
        }
        if let Some(n) = name {
            if !spec::valid_name(n.trim_start_matches('/')) {
                return Err(EngineError::InvalidArgument(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        let image_ref = req.config.image.clone();
        let image_id = self.store.resolve_image(&image_ref)?;
        let image_cfg = self.image_container_config(&image_id)?;
        let mut spec = spec::merge(req, &image_cfg, &image_ref)?;
        self.check_network(&spec)?;
        spec.mounts = self.plan_mounts(&spec)?;
        let new_volumes = self.create_volumes(&mut spec.mounts)?;
        let created = self.create_record(name, &spec, &image_id, &image_ref);
        if created.is_err() {
            self.remove_volumes_quietly(&new_volumes);
        }
        created
    }

    fn create_record(
        &self,
        name: Option<&str>,
        spec: &ContainerSpec,
        image_id: &crate::types::Digest,
        image_ref: &str,
    ) -> Result<CreateResponse, EngineError> {
        let spec_json = serde_json::to_string(&spec)
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        let id = crate::store::random_hex(32);
        let mut attempt = 0;
        let rec = loop {
            let n = match name {
                Some(n) => n.trim_start_matches('/').to_string(),
                None => spec::generated_name(&id, attempt),
            };
            let new = NewContainer {
                id: &id,
                name: &n,
                image_id,
                image_ref,
                spec: &spec_json,
            };
            match self.store.create_container(&new) {
                Err(StoreError::Conflict(_)) if name.is_none() && attempt < 50 => attempt += 1,
                other => break other?,
            }
        };
        tracing::info!(container_id = %rec.id, name = %rec.name, "container created");
        Ok(CreateResponse {
            id: rec.id,
            warnings: Vec::new(),
        })
    }

    fn image_container_config(
        &self,
        id: &crate::types::Digest,
    ) -> Result<ContainerConfig, EngineError> {
        let raw: Value =
            serde_json::from_slice(&self.store.image_config(id)?).unwrap_or(Value::Null);
        Ok(raw
            .get("config")
            .cloned()
            .and_then(|c| serde_json::from_value(c).ok())
            .unwrap_or_default())
    }

    /// Resolve a name or ID and load spec and state.
    pub fn container_view(&self, name: &str) -> Result<ContainerView, EngineError> {
        let rec = self.store.resolve_container(name)?;
        self.view_of(rec)
    }

    pub(super) fn view_of(&self, rec: ContainerRecord) -> Result<ContainerView, EngineError> {
        let spec: ContainerSpec = serde_json::from_str(&rec.spec).map_err(|e| {
            EngineError::InvalidArgument(format!("container {} has a bad spec: {e}", rec.id))
        })?;
        let dir = self.store.container_dir(&rec.id);
        let state = if dir.join("config.json").exists() {
            runtime::state(&dir)?
        } else {
            never_started()
        };
        Ok(ContainerView { rec, spec, state })
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect_container(&self, name: &str) -> Result<Value, EngineError> {
        let v = self.container_view(name)?;
        let dir = self.store.container_dir(&v.rec.id);
        let st = &v.state;
        let image_layers = self
            .store
            .image(&v.rec.image_id)
            .map(|r| self.store.layer_dirs(&r))
            .unwrap_or_default();
        let lower: Vec<String> = image_layers
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect();
        let zero = "0001-01-01T00:00:00Z";
        let mut config = serde_json::to_value(&v.spec.config).unwrap_or(Value::Null);
        if v.spec.config.hostname.is_empty() {
            config["Hostname"] = json!(&v.rec.id[..12]);
        }
        Ok(json!({
            "Id": v.rec.id,
            "Created": v.rec.created,
            "Path": v.spec.path,
            "Args": v.spec.args,
            "State": {
                "Status": v.status(),
                "Running": matches!(st.status, Status::Running | Status::Paused),
                "Paused": st.status == Status::Paused,
                "Restarting": false,
                "OOMKilled": st.oom_killed,
                "Dead": false,
                "Pid": st.pid.unwrap_or(0),
                "ExitCode": st.exit_code.unwrap_or(0),
                "Error": st.error.clone().unwrap_or_default(),
                "StartedAt": st.started_at.clone().unwrap_or_else(|| zero.into()),
                "FinishedAt": st.finished_at.clone().unwrap_or_else(|| zero.into()),
            },
            "Image": v.rec.image_id.to_string(),
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": dir.join("container.log"),
            "Name": format!("/{}", v.rec.name),
            "RestartCount": v.rec.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": self.exec_ids(&v.rec.id),
            "HostConfig": v.spec.host_config,
            "GraphDriver": {"Name": "overlay2", "Data": {
                "LowerDir": lower.join(":"),
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
                "MergedDir": dir.join("rootfs"),
            }},
            "Mounts": self.mounts_json(&v),
            "Config": config,
            "NetworkSettings": self.network_settings(&v),
        }))
    }

    /// `GET /containers/json` rows (filters applied by the caller's options).
    pub fn list_containers(&self, opts: &super::ListOptions) -> Result<Vec<Value>, EngineError> {
        let mut out = Vec::new();
        for rec in self.store.list_containers()? {
            let v = self.view_of(rec)?;
            if !opts.all && !matches!(v.state.status, Status::Running | Status::Paused) {
                continue;
            }
            if !opts.matches(&v, self) {
                continue;
            }
            out.push(self.summary(&v, opts.size));
        }
        if let Some(n) = opts.limit {
            out.truncate(n);
        }
        Ok(out)
    }

    fn summary(&self, v: &ContainerView, size: bool) -> Value {
        let created = chrono::DateTime::parse_from_rfc3339(&v.rec.created)
            .map(|t| t.timestamp())
            .unwrap_or(0);
        let mut row = json!({
            "Id": v.rec.id,
            "Names": [format!("/{}", v.rec.name)],
            "Image": v.rec.image_ref,
            "ImageID": v.rec.image_id.to_string(),
            "Command": shell_join(&v.spec.argv()),
            "Created": created,
            "Ports": self.summary_ports(&v.rec.id),
            "Labels": v.spec.config.labels.clone().unwrap_or_default(),
            "State": v.status(),
            "Status": status_text(&v.state),
            "HostConfig": {"NetworkMode": v.spec.host_config.network_mode},
            "NetworkSettings": {"Networks": self.network_settings(v)["Networks"]},
            "Mounts": self.mounts_json(v),
        });
        if size {
            row["SizeRw"] = json!(dir_size(&self.store.container_dir(&v.rec.id).join("upper")));
            row["SizeRootFs"] = json!(self
                .store
                .image(&v.rec.image_id)
                .map(|i| i.size)
                .unwrap_or(0));
        }
        row
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename_container(&self, name: &str, new_name: &str) -> Result<(), EngineError> {
        let new_name = new_name.trim_start_matches('/');
        if !spec::valid_name(new_name) {
            return Err(EngineError::InvalidArgument(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let rec = self.store.resolve_container(name)?;
        self.store.rename_container(&rec.id, new_name)?;
        // Peers on user networks know it by name.
        self.refresh_peer_hosts(&rec.id);
        Ok(())
    }

    /// `DELETE /containers/{id}?force=`.
    pub fn remove_container(self: &Arc<Self>, name: &str, force: bool) -> Result<(), EngineError> {
        let v = self.container_view(name)?;
        if matches!(v.state.status, Status::Running | Status::Paused) && !force {
            return Err(EngineError::Conflict(format!(
                "You cannot remove a {} container {}. Stop the container before attempting removal or force remove",
                v.status(),
                v.rec.id
            )));
        }
        self.destroy(&v.rec.id, force)
    }

    /// Runtime teardown, then the record and directory; wakes `removed` waiters.
    pub(super) fn destroy(&self, id: &str, force: bool) -> Result<(), EngineError> {
        super::lock(&self.digesting).remove(id);
        let dir = self.store.container_dir(id);
        // Keep the monitor from restarting it while it goes.
        let count = self
            .store
            .container(id)
            .map(|r| r.restart_count)
            .unwrap_or(0);
        let _ = self.store.set_container_restart(id, count, true);
        // `--rm` takes the container's anonymous volumes with it (Docker's rule).
        let anon = match self.store.container(id).map(|r| self.view_of(r)) {
            Ok(Ok(v)) if v.spec.host_config.auto_remove => self.anonymous_volumes_of(&v),
            _ => Vec::new(),
        };
        if dir.join("config.json").exists() {
            runtime::delete(&dir, force)?;
        }
        self.teardown_network(id);
        let networks = self.store.endpoints_of(id).unwrap_or_default();
        self.store.remove_container(id)?;
        for ep in networks {
            self.refresh_network_hosts(&ep.network_id);
        }
        self.remove_unused_volumes(&anon);
        self.notify_removed(id);
        tracing::info!(container_id = %id, "container removed");
        Ok(())
    }

    /// `POST /containers/prune`: remove every stopped container.
    pub fn prune_containers(self: &Arc<Self>) -> Result<Value, EngineError> {
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for rec in self.store.list_containers()? {
            let v = self.view_of(rec)?;
            if matches!(v.state.status, Status::Running | Status::Paused) {
                continue;
            }
            reclaimed += dir_size(&self.store.container_dir(&v.rec.id).join("upper"));
            self.destroy(&v.rec.id, false)?;
            deleted.push(v.rec.id);
        }
        Ok(json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}))
    }
}

/// Docker's `Status` column text.
pub fn status_text(st: &State) -> String {
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .num_seconds()
                    .max(0)
            })
            .unwrap_or(0)
    };
    match st.status {
        Status::Created if st.exit_code.is_some() => {
            format!("Created (start failed: exit {})", st.exit_code.unwrap_or(0))
        }
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", human_duration(since(&st.started_at))),
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&st.started_at))),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            st.exit_code.unwrap_or(-1),
            human_duration(since(&st.finished_at))
        ),
    }
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s / 3600 == 1 => "About an hour".into(),
        s if s < 3600 * 48 => format!("{} hours", s / 3600),
        s if s < 86400 * 14 => format!("{} days", s / 86400),
        s if s < 86400 * 60 => format!("{} weeks", s / 86400 / 7),
        s if s < 86400 * 365 * 2 => format!("{} months", s / 86400 / 30),
        s => format!("{} years", s / 86400 / 365),
    }
}

/// A command line as Docker shows it in `ps`.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("\"{a}\"")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Bytes of regular files under a directory.
pub fn dir_size(dir: &std::path::Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
