//! `restore`: recreate a bundle's containers with their configuration,
//! writable layer and log history, and start those that were running.
//!
//! Every check (names, images) happens before anything changes. Each
//! container's upper dir is materialized in `tmp/` first and swapped in by
//! one rename after the container is created, so a container never shows a
//! half-restored filesystem.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};

use super::{Engine, EngineError};
use crate::capture::{self, ContainerCapture};
use crate::store::StoreError;
use crate::types::container::CreateRequest;

/// Written in a restored container's directory: the bundle and captured
/// container it came from (a rollback resets it as that container).
pub(super) const RESTORED_FROM: &str = "restored-from.json";

/// What `POST /amber/v1/bundles/{id}/restore` asks for.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct RestoreOptions {
    /// Only these containers of the bundle (names); all when empty.
    pub containers: Vec<String>,
    /// Appended to every restored container's name.
    pub name_suffix: String,
    /// Remove existing containers of the same names first.
    pub replace: bool,
}

/// Removes a staging directory however the restore ends.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Engine {
    /// Restore containers of a bundle; returns what was created.
    pub fn restore(
        self: &Arc<Self>,
        bundle: &str,
        opts: &RestoreOptions,
    ) -> Result<Value, EngineError> {
        if opts.replace && !opts.name_suffix.is_empty() {
            return Err(EngineError::InvalidArgument(
                "give --name-suffix or --replace, not both".into(),
            ));
        }
        let m = self.bundle_manifest(bundle)?;
        let chosen: Vec<&ContainerCapture> = if opts.containers.is_empty() {
            m.containers.iter().collect()
        } else {
            opts.containers
                .iter()
                .map(|n| capture::read::container(&m, n))
                .collect::<Result<_, _>>()?
        };
        // All checks first: nothing changes when one fails.
        let mut plan = Vec::new();
        for c in &chosen {
            let name = format!("{}{}", c.name, opts.name_suffix);
            if !opts.replace && self.store.resolve_container(&name).is_ok() {
                return Err(EngineError::Conflict(format!(
                    "container name {name} is already in use: restore with --name-suffix or --replace"
                )));
            }
            self.check_volumes(c, opts.replace)?;
            plan.push((*c, name, self.restore_image_ref(c)?));
        }
        let mut out = Vec::new();
        for (c, name, image) in plan {
            out.push(self.restore_one(&m.id, c, &name, &image, opts.replace)?);
        }
        Ok(json!({"Bundle": m.id, "Containers": out}))
    }

    /// The reference to create the container from: its original one when it
    /// still names the same image, else the image ID.
    pub(super) fn restore_image_ref(&self, c: &ContainerCapture) -> Result<String, EngineError> {
        match self.store.resolve_image(&c.image_ref) {
            Ok(id) if id == c.image_id => Ok(c.image_ref.clone()),
            _ if self.store.image(&c.image_id).is_ok() => Ok(c.image_id.to_string()),
            _ => Err(EngineError::NotFound(format!(
                "image {} ({}) of container {} is not in this store: pull or load it, then restore",
                c.image_ref, c.image_id, c.name
            ))),
        }
    }

    pub(super) fn restore_one(
        self: &Arc<Self>,
        bundle: &str,
        c: &ContainerCapture,
        name: &str,
        image: &str,
        replace: bool,
    ) -> Result<Value, EngineError> {
        let staging = Staging(self.store.staging_path("restore"));
        let upper = staging.0.join("upper");
        let io =
            |op: &'static str, path: PathBuf| move |source| StoreError::Io { op, path, source };
        std::fs::create_dir_all(&upper).map_err(io("create", upper.clone()))?;
        let files = capture::read::file_list(&self.store, &c.files)?;
        capture::restore::materialize(&self.store, &files, &upper)?;
        let log = capture::read::log(&self.store, c)?;
        // One barrier for the whole materialized tree (same filesystem).
        self.store.sync_blobs()?;
        if replace && self.store.resolve_container(name).is_ok() {
            self.remove_container(name, true)?;
        }
        let req = create_request(c, image)?;
        let id = self.create_container(Some(name), req)?.id;
        let dir = self.store.container_dir(&id);
        std::fs::rename(&upper, dir.join("upper"))
            .map_err(io("install upper dir", dir.join("upper")))?;
        crate::store::write_file_synced(&dir.join("container.log"), &log, &staging.0)?;
        let origin = json!({"bundle": bundle, "container": c.id}).to_string();
        crate::store::write_file_synced(&dir.join(RESTORED_FROM), origin.as_bytes(), &staging.0)?;
        let volumes = self.restore_volumes(c, &id, &staging.0)?;
        let start = matches!(c.status.as_str(), "running" | "paused");
        if start {
            self.start_container(&id)?;
        }
        tracing::info!(bundle_id = bundle, container_id = %id, name, "restored container");
        Ok(json!({
            "Id": id, "Name": name, "From": c.id, "Started": start, "Files": files.len(),
            "Volumes": volumes,
        }))
    }

    /// A named volume with captured content is refilled only when it is
    /// absent or empty here, or with `--replace` (anonymous volumes are
    /// made anew for the restored container).
    fn check_volumes(&self, c: &ContainerCapture, replace: bool) -> Result<(), EngineError> {
        for v in &c.volumes {
            if v.kind != "volume" || v.files.is_none() || replace {
                continue;
            }
            let Some(rec) = self.store.volume(&v.name)? else {
                continue;
            };
            let data = self.store.volume_dir(&v.name).join("_data");
            let empty = std::fs::read_dir(&data).map_or(true, |mut d| d.next().is_none());
            if !rec.anonymous && !empty {
                return Err(EngineError::Conflict(format!(
                    "volume {} of container {} exists here and is not empty: restore with --replace to overwrite it",
                    v.name, c.name
                )));
            }
        }
        Ok(())
    }

    /// Put the captured content of the container's volumes back (each
    /// materialized in `tmp/`, then swapped in by renames); bind mounts are
    /// host paths and are left alone (their content stays readable with
    /// `bundle files`/`bundle cat`). Returns what was done per mount.
    fn restore_volumes(
        &self,
        c: &ContainerCapture,
        id: &str,
        staging: &std::path::Path,
    ) -> Result<Vec<Value>, EngineError> {
        if c.volumes.is_empty() {
            return Ok(Vec::new());
        }
        let mounts = self.inspect_container(id)?["Mounts"].clone();
        let io =
            |op: &'static str, path: PathBuf| move |source| StoreError::Io { op, path, source };
        let mut out = Vec::new();
        for (i, v) in c.volumes.iter().enumerate() {
            let result = match (v.kind.as_str(), &v.files) {
                ("volume", Some(digest)) => {
                    let name = mounts
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|m| {
                            m["Type"] == "volume" && m["Destination"] == v.destination.as_str()
                        })
                        .and_then(|m| m["Name"].as_str())
                        .ok_or_else(|| {
                            EngineError::InvalidArgument(format!(
                                "restored container {} has no volume at {}",
                                c.name, v.destination
                            ))
                        })?
                        .to_string();
                    let staged = staging.join(format!("volume-{i}"));
                    std::fs::create_dir(&staged).map_err(io("create", staged.clone()))?;
                    let files = capture::read::file_list(&self.store, digest)?;
                    capture::restore::materialize(&self.store, &files, &staged)?;
                    self.store.sync_blobs()?;
                    let data = self.store.volume_dir(&name).join("_data");
                    let old = staging.join(format!("volume-{i}.old"));
                    if data.exists() {
                        std::fs::rename(&data, &old).map_err(io("move aside", data.clone()))?;
                    }
                    std::fs::rename(&staged, &data)
                        .map_err(io("install volume content", data.clone()))?;
                    json!({"Destination": v.destination, "Volume": name, "Restored": true, "Files": files.len()})
                }
                ("bind", Some(_)) => json!({
                    "Destination": v.destination, "Source": v.source, "Restored": false,
                    "Reason": "bind mounts are host paths: read the captured content with bundle files / bundle cat",
                }),
                _ => json!({
                    "Destination": v.destination, "Restored": false,
                    "Reason": v.skipped.clone().unwrap_or_else(|| "no content captured".into()),
                }),
            };
            out.push(result);
        }
        Ok(out)
    }
}

/// The create request that gives the captured configuration again.
fn create_request(c: &ContainerCapture, image: &str) -> Result<CreateRequest, EngineError> {
    let mut body = c.inspect["Config"].clone();
    if !body.is_object() {
        return Err(EngineError::InvalidArgument(format!(
            "bundle has no configuration for container {}",
            c.name
        )));
    }
    body["Image"] = json!(image);
    body["HostConfig"] = c.inspect["HostConfig"].clone();
    serde_json::from_value(body).map_err(|e| {
        EngineError::InvalidArgument(format!(
            "captured configuration of {} is not usable: {e}",
            c.name
        ))
    })
}
