//! The volume resource (`/volumes`): create, list, inspect, remove,
//! prune; volumes made for containers at create, and anonymous ones
//! removed with them (`rm -v`, `--rm`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::containers::ContainerView;
use super::mounts::{valid_volume_name, MountPoint};
use super::{Engine, EngineError};
use crate::store::VolumeRecord;

fn invalid(m: String) -> EngineError {
    EngineError::InvalidArgument(m)
}

impl Engine {
    /// Create the volumes the mounts name (anonymous ones get a random
    /// name). Returns the names of volumes created here, to undo on failure.
    pub(super) fn create_volumes(
        &self,
        mounts: &mut [MountPoint],
    ) -> Result<Vec<String>, EngineError> {
        let mut created = Vec::new();
        for m in mounts.iter_mut().filter(|m| m.kind == "volume") {
            let anonymous = m.name.is_empty();
            if anonymous {
                m.name = crate::store::random_hex(32);
            }
            let made = self
                .store
                .create_volume(&m.name, &BTreeMap::new(), anonymous);
            match made {
                Ok((_, true)) => created.push(m.name.clone()),
                Ok(_) => {}
                Err(e) => {
                    self.remove_volumes_quietly(&created);
                    return Err(e.into());
                }
            }
            m.source = m.name.clone();
        }
        Ok(created)
    }

    pub(super) fn remove_volumes_quietly(&self, names: &[String]) {
        for n in names {
            if let Err(e) = self.store.remove_volume(n) {
                tracing::error!(volume = %n, error = %e, "cannot remove volume");
            }
        }
    }
    /// Containers whose mounts use a volume.
    fn volume_users(&self, name: &str) -> Result<Vec<String>, EngineError> {
        let mut ids = Vec::new();
        for rec in self.store.list_containers()? {
            let id = rec.id.clone();
            let Ok(v) = self.view_of(rec) else { continue };
            if v.spec
                .mounts
                .iter()
                .any(|m| m.kind == "volume" && m.name == name)
            {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Anonymous volumes of a container (to remove with it on `rm -v`/`--rm`).
    pub(super) fn anonymous_volumes_of(&self, v: &ContainerView) -> Vec<String> {
        v.spec
            .mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .filter(|m| {
                self.store
                    .volume(&m.name)
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.anonymous)
            })
            .map(|m| m.name.clone())
            .collect()
    }

    /// Remove volumes no container uses any more.
    pub(super) fn remove_unused_volumes(&self, names: &[String]) {
        for n in names {
            if self.volume_users(n).is_ok_and(|u| u.is_empty()) {
                self.remove_volumes_quietly(std::slice::from_ref(n));
            }
        }
    }

    /// `DELETE /containers/{id}?force=&v=`.
    pub fn remove_container_and_volumes(
        self: &Arc<Self>,
        name: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), EngineError> {
        let v = self.container_view(name)?;
        let anon = if volumes {
            self.anonymous_volumes_of(&v)
        } else {
            Vec::new()
        };
        self.remove_container(&v.rec.id, force)?;
        self.remove_unused_volumes(&anon);
        Ok(())
    }

    fn volume_json(&self, r: &VolumeRecord) -> Value {
        json!({
            "CreatedAt": r.created, "Driver": r.driver, "Labels": r.labels,
            "Mountpoint": self.store.volume_dir(&r.name).join("_data"),
            "Name": r.name, "Options": null, "Scope": "local",
        })
    }

    /// `POST /volumes/create`.
    pub fn create_volume(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
    ) -> Result<Value, EngineError> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) if !valid_volume_name(n) => {
                return Err(invalid(format!(
                    "create {n}: \"{n}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                )))
            }
            Some(n) => n.to_string(),
            None => crate::store::random_hex(32),
        };
        let (r, _) = self.store.create_volume(&name, &labels, false)?;
        Ok(self.volume_json(&r))
    }

    /// `GET /volumes`.
    pub fn list_volumes(&self, dangling: Option<bool>) -> Result<Value, EngineError> {
        let mut out = Vec::new();
        for r in self.store.volumes()? {
            if let Some(d) = dangling {
                if self.volume_users(&r.name)?.is_empty() != d {
                    continue;
                }
            }
            out.push(self.volume_json(&r));
        }
        Ok(json!({"Volumes": out, "Warnings": null}))
    }

    /// `GET /volumes/{name}`.
    pub fn inspect_volume(&self, name: &str) -> Result<Value, EngineError> {
        let r = self
            .store
            .volume(name)?
            .ok_or_else(|| crate::store::StoreError::NoSuchVolume(name.into()))?;
        Ok(self.volume_json(&r))
    }

    /// `DELETE /volumes/{name}?force=`.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<(), EngineError> {
        if self.store.volume(name)?.is_none() {
            if force {
                return Ok(());
            }
            return Err(crate::store::StoreError::NoSuchVolume(name.into()).into());
        }
        let users = self.volume_users(name)?;
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        Ok(self.store.remove_volume(name)?)
    }

    /// `POST /volumes/prune`: unused anonymous volumes, or all unused ones.
    pub fn prune_volumes(&self, all: bool) -> Result<Value, EngineError> {
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for r in self.store.volumes()? {
            if (!all && !r.anonymous) || !self.volume_users(&r.name)?.is_empty() {
                continue;
            }
            reclaimed += super::containers::dir_size(&self.store.volume_dir(&r.name));
            self.store.remove_volume(&r.name)?;
            deleted.push(r.name);
        }
        Ok(json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}))
    }
}
