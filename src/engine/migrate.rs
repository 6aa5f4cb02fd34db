//! `amber migrate` (docs/transfer.md): capture containers on a source
//! daemon with their volumes, move the bundle to a target (only the blobs
//! it lacks), restore them there under the same names, check them, and
//! remove them from the source unless `keep`.
//!
//! Running containers move in two rounds: a first capture is moved while
//! they keep running (most of the bytes), then they are stopped, captured
//! again and only the difference moved, so nothing written before the stop
//! is lost. Until the target's restore has succeeded and been checked the
//! source containers stay intact (a stopped one is started again) and a
//! partial restore on the target is removed.

use std::sync::Arc;
use std::time::Instant;

use hyper::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::bundle_transfer::{blocking, remote_err, TransferReport};
use super::{CaptureOptions, Engine, EngineError, RestoreOptions};
use crate::cli::client::{empty, enc_path, read_all, Client};

/// `POST /amber/v1/migrate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MigrateOptions {
    /// Containers by name or ID.
    pub containers: Vec<String>,
    /// Every container of the source.
    pub all: bool,
    /// Target host.
    pub to: String,
    /// Source host (this daemon when empty).
    pub from: Option<String>,
    /// Keep the containers on the source (and running).
    pub keep: bool,
}

/// One container's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MigratedContainer {
    /// Its name (the same on both sides).
    pub name: String,
    /// Its ID on the source.
    pub source_id: String,
    /// Its ID on the target.
    pub target_id: String,
    /// Whether it runs on the target.
    pub running: bool,
    /// `removed` or `kept` on the source.
    pub source: String,
}

/// What a migration did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MigrateReport {
    /// The bundle restored on the target (kept on both sides).
    pub bundle: String,
    /// Blobs and bytes moved, all rounds together.
    pub transfer: TransferReport,
    /// Per container.
    pub containers: Vec<MigratedContainer>,
    /// Wall time in milliseconds.
    pub ms: u64,
}

/// One side of a migration: this daemon or another.
enum Side<'a> {
    Local(&'a Arc<Engine>),
    Remote(&'a Client),
}

impl Side<'_> {
    fn name(&self) -> String {
        match self {
            Side::Local(_) => "this host".into(),
            Side::Remote(c) => c.host().to_string(),
        }
    }

    async fn capture(&self, opts: CaptureOptions) -> Result<Value, EngineError> {
        match self {
            Side::Local(e) => {
                let e = Arc::clone(e);
                blocking(move || e.capture(&opts)).await
            }
            Side::Remote(c) => {
                let body = json!({
                    "containers": opts.containers, "all": opts.all, "label": opts.label,
                    "volumes": opts.volumes, "annotations": opts.annotations,
                });
                let resp = c
                    .post_json("/amber/v1/capture", &body)
                    .await
                    .map_err(|e| remote_err(c.host(), e))?;
                decode(c, resp).await
            }
        }
    }

    /// Stop (`stop`), start, remove (force) or inspect a container.
    async fn container(&self, op: &str, name: &str) -> Result<Value, EngineError> {
        match self {
            Side::Local(e) => {
                let e = Arc::clone(e);
                let (op, name) = (op.to_string(), name.to_string());
                blocking(move || match op.as_str() {
                    "stop" => e.stop_container(&name, None, None).map(|_| Value::Null),
                    "start" => e.start_container(&name).map(|_| Value::Null),
                    "remove" => e.remove_container(&name, true).map(|_| Value::Null),
                    _ => e.inspect_container(&name),
                })
                .await
            }
            Side::Remote(c) => {
                let path = format!("/containers/{}", enc_path(name));
                let (method, path) = match op {
                    "stop" => (Method::POST, format!("{path}/stop")),
                    "start" => (Method::POST, format!("{path}/start")),
                    "remove" => (Method::DELETE, format!("{path}?force=1")),
                    _ => (Method::GET, format!("{path}/json")),
                };
                let resp = c
                    .send(method, &path, None, empty())
                    .await
                    .map_err(|e| remote_err(c.host(), e))?;
                let bytes = read_all(resp).await.map_err(|e| remote_err(c.host(), e))?;
                Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
            }
        }
    }

    async fn remove_bundle(&self, id: &str) {
        let _ = match self {
            Side::Local(e) => {
                let (e, id) = (Arc::clone(e), id.to_string());
                blocking(move || e.remove_bundle(&id).map(|_| Value::Null)).await
            }
            Side::Remote(c) => c
                .send(
                    Method::DELETE,
                    &format!("/amber/v1/bundles/{id}"),
                    None,
                    empty(),
                )
                .await
                .map(|_| Value::Null)
                .map_err(|e| remote_err(c.host(), e)),
        };
    }
}

async fn decode(
    c: &Client,
    resp: hyper::Response<hyper::body::Incoming>,
) -> Result<Value, EngineError> {
    let bytes = read_all(resp).await.map_err(|e| remote_err(c.host(), e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| EngineError::Remote(format!("{}: bad answer: {e}", c.host())))
}

/// The containers a capture summary lists: (ID, name, status).
fn captured(summary: &Value) -> Vec<(String, String, String)> {
    summary["Containers"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                    (
                        s("Id"),
                        s("Name").trim_start_matches('/').to_string(),
                        s("Status"),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn add(total: &mut TransferReport, r: &TransferReport) {
    total.bundle = r.bundle.clone();
    total.blobs = r.blobs;
    total.blobs_sent += r.blobs_sent;
    total.bytes_sent += r.bytes_sent;
}

impl Engine {
    /// `POST /amber/v1/migrate`: resolve the hosts, then [`Engine::migrate`].
    pub async fn migrate_hosts(
        self: &Arc<Self>,
        opts: &MigrateOptions,
    ) -> Result<MigrateReport, EngineError> {
        let target = self.remote_client(&opts.to)?;
        let source = match opts.from.as_deref().filter(|s| !s.is_empty()) {
            Some(h) => Some(self.remote_client(h)?),
            None => None,
        };
        self.migrate(
            source.as_ref(),
            &target,
            &opts.containers,
            opts.all,
            opts.keep,
        )
        .await
    }

    /// Migrate containers from `source` (`None`: this daemon) to `target`.
    pub async fn migrate(
        self: &Arc<Self>,
        source: Option<&Client>,
        target: &Client,
        containers: &[String],
        all: bool,
        keep: bool,
    ) -> Result<MigrateReport, EngineError> {
        let start = Instant::now();
        if containers.is_empty() && !all {
            return Err(EngineError::InvalidArgument(
                "migrate needs container names or --all".into(),
            ));
        }
        let src = match source {
            Some(c) => Side::Remote(c),
            None => Side::Local(self),
        };
        let dst = Side::Remote(target);
        let label = format!("migrate to {}", target.host());
        let opts = CaptureOptions {
            containers: containers.to_vec(),
            all,
            label: label.clone(),
            volumes: true,
            ..Default::default()
        };
        // Round 1: captured while running, moved.
        let first = src.capture(opts.clone()).await?;
        let first_id = first["Id"].as_str().unwrap_or_default().to_string();
        let list = captured(&first);
        if list.is_empty() {
            src.remove_bundle(&first_id).await;
            return Err(EngineError::InvalidArgument(
                "no containers to migrate".into(),
            ));
        }
        // Names in use on the target: refused before anything changes.
        for (_, name, _) in &list {
            if dst.container("inspect", name).await.is_ok() {
                src.remove_bundle(&first_id).await;
                return Err(EngineError::Conflict(format!(
                    "a container named {name} exists on {}; remove or rename it first",
                    dst.name()
                )));
            }
        }
        let mut total = TransferReport {
            bundle: first_id.clone(),
            blobs: 0,
            blobs_sent: 0,
            bytes_sent: 0,
            ms: 0,
        };
        let moved = self.move_bundle(source, target, &first_id).await;
        let moved = match moved {
            Ok(r) => r,
            Err(e) => {
                src.remove_bundle(&first_id).await;
                return Err(e);
            }
        };
        add(&mut total, &moved);
        let running: Vec<String> = list
            .iter()
            .filter(|(_, _, s)| matches!(s.as_str(), "running" | "paused"))
            .map(|(_, n, _)| n.clone())
            .collect();
        // Round 2 (not with keep): stopped, captured again, the difference
        // moved; the stopped containers are recorded as running in it.
        // A container run with --rm would be removed by the stop: such a
        // migration takes one round (the source runs until it is removed).
        let mut auto_remove = false;
        for name in &running {
            let v = src.container("inspect", name).await.unwrap_or(Value::Null);
            auto_remove |= v["HostConfig"]["AutoRemove"] == Value::Bool(true);
        }
        let mut stopped: Vec<String> = Vec::new();
        let mut bundle = first_id.clone();
        let result: Result<(), EngineError> = async {
            if keep || running.is_empty() || auto_remove {
                return Ok(());
            }
            for name in &running {
                src.container("stop", name).await?;
                stopped.push(name.clone());
            }
            let names: Vec<String> = list.iter().map(|(_, n, _)| n.clone()).collect();
            let mut opts2 = opts.clone();
            opts2.containers = names;
            opts2.all = false;
            opts2
                .annotations
                .insert("migrate-running".into(), running.join(","));
            let second = src.capture(opts2).await?;
            bundle = second["Id"].as_str().unwrap_or_default().to_string();
            let r = self.move_bundle(source, target, &bundle).await?;
            add(&mut total, &r);
            Ok(())
        }
        .await;
        if let Err(e) = result {
            self.undo(&src, &dst, &stopped, &[], &[&first_id, &bundle])
                .await;
            return Err(e);
        }
        // Restore on the target; the second bundle records the stopped
        // containers as exited, so they are started here explicitly.
        let names: Vec<String> = list.iter().map(|(_, n, _)| n.clone()).collect();
        let restored = self.restore_on(target, &bundle, &names, &running).await;
        let restored = match restored {
            Ok(v) => v,
            Err(e) => {
                self.undo(&src, &dst, &stopped, &names, &[&first_id, &bundle])
                    .await;
                return Err(e);
            }
        };
        // Done: the source copies go (unless keep).
        let mut out = Vec::new();
        for (id, name, _) in &list {
            let source_state = if keep {
                "kept"
            } else {
                match src.container("remove", name).await {
                    Ok(_) => "removed",
                    Err(e) => {
                        tracing::warn!(container = %name, error = %e, "migrate: could not remove the source container");
                        "kept (remove failed)"
                    }
                }
            };
            let (target_id, running) = restored
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, i, r)| (i.clone(), *r))
                .unwrap_or_default();
            out.push(MigratedContainer {
                name: name.clone(),
                source_id: id.clone(),
                target_id,
                running,
                source: source_state.into(),
            });
        }
        if bundle != first_id {
            src.remove_bundle(&first_id).await;
            dst.remove_bundle(&first_id).await;
        }
        total.bundle = bundle.clone();
        total.ms = start.elapsed().as_millis() as u64;
        tracing::info!(bundle_id = %bundle, to = %target.host(), containers = out.len(), "migrated containers");
        Ok(MigrateReport {
            bundle,
            transfer: total,
            containers: out,
            ms: start.elapsed().as_millis() as u64,
        })
    }

    /// Source to target: straight from this daemon, or through it when the
    /// source is another one.
    async fn move_bundle(
        &self,
        source: Option<&Client>,
        target: &Client,
        id: &str,
    ) -> Result<TransferReport, EngineError> {
        if let Some(s) = source {
            self.pull_bundle(s, id).await?;
        }
        self.push_bundle(target, id).await
    }

    /// Restore `names` from `bundle` on the target, start those of
    /// `running` that are not, and check each is there (and running when it
    /// was). Returns (name, target ID, running).
    async fn restore_on(
        &self,
        target: &Client,
        bundle: &str,
        names: &[String],
        running: &[String],
    ) -> Result<Vec<(String, String, bool)>, EngineError> {
        let host = target.host().to_string();
        let opts = RestoreOptions {
            containers: names.to_vec(),
            ..Default::default()
        };
        let body = json!({"containers": opts.containers});
        let resp = target
            .post_json(&format!("/amber/v1/bundles/{bundle}/restore"), &body)
            .await
            .map_err(|e| remote_err(&host, e))?;
        decode(target, resp).await?;
        let dst = Side::Remote(target);
        let mut out = Vec::new();
        for name in names {
            let mut v = dst.container("inspect", name).await?;
            let want = running.contains(name);
            if want && v["State"]["Running"] != Value::Bool(true) {
                dst.container("start", name).await?;
                v = dst.container("inspect", name).await?;
            }
            let is_running = v["State"]["Running"] == Value::Bool(true);
            if want && !is_running {
                return Err(EngineError::Remote(format!(
                    "{host}: {name} was restored but does not run"
                )));
            }
            out.push((
                name.clone(),
                v["Id"].as_str().unwrap_or_default().to_string(),
                is_running,
            ));
        }
        Ok(out)
    }

    /// A migration failed before the target's restore was checked: remove
    /// what the target got of it, start the source containers stopped for
    /// it, drop its bundles on the source.
    async fn undo(
        &self,
        src: &Side<'_>,
        dst: &Side<'_>,
        stopped: &[String],
        restored: &[String],
        bundles: &[&str],
    ) {
        for name in restored {
            let _ = dst.container("remove", name).await;
        }
        let mut all_back = true;
        for name in stopped {
            if let Err(e) = src.container("start", name).await {
                all_back = false;
                tracing::warn!(container = %name, error = %e, "migrate: could not start the source container again");
            }
        }
        // A source container that could not be started again keeps its
        // bundles, to restore it from.
        if all_back {
            for b in bundles {
                src.remove_bundle(b).await;
            }
        }
    }
}
