//! `docker exec`: create, start, inspect.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{lock, Engine, EngineError};
use crate::runtime::{self, ExecOptions, ProcessConfig, RuntimeError, Status};
use crate::types::container::ExecConfig;

/// An exec the daemon knows (in memory: Docker forgets execs on restart too).
#[derive(Debug, Clone)]
pub struct ExecRecord {
    /// Exec ID (64 hex).
    pub id: String,
    /// Its container.
    pub container_id: String,
    /// What to run.
    pub config: ExecConfig,
    /// Started already.
    pub started: bool,
}

impl Engine {
    /// `POST /containers/{id}/exec`.
    pub fn create_exec(&self, container: &str, config: ExecConfig) -> Result<String, EngineError> {
        let v = self.container_view(container)?;
        if !matches!(v.state.status, Status::Running) {
            let what = if v.state.status == Status::Paused {
                "paused"
            } else {
                "not running"
            };
            return Err(EngineError::Conflict(format!(
                "Container {} is {what}",
                v.rec.id
            )));
        }
        if config.cmd.is_empty() {
            return Err(EngineError::InvalidArgument(
                "No exec command specified".into(),
            ));
        }
        let id = crate::store::random_hex(32);
        let rec = ExecRecord {
            id: id.clone(),
            container_id: v.rec.id,
            config,
            started: false,
        };
        lock(&self.execs).insert(id.clone(), rec);
        Ok(id)
    }

    /// An exec by ID.
    pub fn exec_record(&self, id: &str) -> Result<ExecRecord, EngineError> {
        lock(&self.execs)
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))
    }

    /// `POST /exec/{id}/start`: run the process (its output is held by its
    /// shim until the caller attaches).
    pub fn start_exec(self: &Arc<Self>, id: &str, detach: bool) -> Result<ExecRecord, EngineError> {
        let mut rec = self.exec_record(id)?;
        if rec.started {
            return Err(EngineError::Conflict(format!(
                "Error: Exec command {id} has already run"
            )));
        }
        let v = self.container_view(&rec.container_id)?;
        let c = &rec.config;
        let opts = ExecOptions {
            id: id.to_string(),
            process: ProcessConfig {
                args: c.cmd.clone(),
                env: c.env.clone().unwrap_or_default(),
                cwd: Some(if c.working_dir.is_empty() {
                    v.spec.config.working_dir.clone()
                } else {
                    c.working_dir.clone()
                })
                .filter(|w| !w.is_empty()),
                user: Some(if c.user.is_empty() {
                    v.spec.config.user.clone()
                } else {
                    c.user.clone()
                })
                .filter(|u| !u.is_empty()),
                tty: c.tty,
                open_stdin: c.attach_stdin,
                console_size: c
                    .console_size
                    .as_ref()
                    .filter(|s| s.len() == 2 && s[0] > 0)
                    .map(|s| (s[0], s[1])),
                ..Default::default()
            },
            privileged: c.privileged,
            detach,
            shim_exe: Some(super::shim_exe()),
        };
        let dir = self.store.container_dir(&rec.container_id);
        match runtime::exec(&dir, &opts) {
            Ok(_) => {}
            Err(RuntimeError::WrongState { .. }) => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is not running",
                    rec.container_id
                )))
            }
            Err(e) => return Err(e.into()),
        }
        rec.started = true;
        lock(&self.execs).insert(id.to_string(), rec.clone());
        Ok(rec)
    }

    /// `GET /exec/{id}/json`.
    pub fn inspect_exec(&self, id: &str) -> Result<Value, EngineError> {
        let rec = self.exec_record(id)?;
        let dir = self.store.container_dir(&rec.container_id);
        let st = if rec.started {
            runtime::exec_state(&dir, id).ok()
        } else {
            None
        };
        let c = &rec.config;
        Ok(json!({
            "ID": rec.id,
            "Running": st.as_ref().is_some_and(|s| s.running),
            "ExitCode": st.as_ref().and_then(|s| s.exit_code),
            "ProcessConfig": {
                "tty": c.tty,
                "entrypoint": c.cmd.first().cloned().unwrap_or_default(),
                "arguments": c.cmd.iter().skip(1).collect::<Vec<_>>(),
                "privileged": c.privileged,
                "user": c.user,
            },
            "OpenStdin": c.attach_stdin,
            "OpenStderr": c.attach_stderr,
            "OpenStdout": c.attach_stdout,
            "CanRemove": false,
            "ContainerID": rec.container_id,
            "DetachKeys": "",
            "Pid": st.as_ref().and_then(|s| s.pid).unwrap_or(0),
        }))
    }

    /// Exec IDs of a container (for inspect's `ExecIDs`).
    pub(super) fn exec_ids(&self, container: &str) -> Option<Vec<String>> {
        let ids: Vec<String> = lock(&self.execs)
            .values()
            .filter(|e| e.container_id == container)
            .map(|e| e.id.clone())
            .collect();
        if ids.is_empty() {
            None
        } else {
            Some(ids)
        }
    }
}
