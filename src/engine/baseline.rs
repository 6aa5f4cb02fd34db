//! Baselines and rollback: a baseline is a bundle with a name; `rollback`
//! puts every container of it back to its captured state.
//!
//! For speed, `baseline create` materializes each container's captured
//! upper dir ahead of time beside the container
//! (`containers/<id>/baseline-<bundle>/upper`), so rolling back a container
//! that still exists is: stop it, exchange its upper dir with the prepared
//! one (one atomic `renameat2(RENAME_EXCHANGE)`), start it. A fresh copy
//! is prepared again afterwards for the next rollback. Containers removed
//! since are restored from the bundle; containers created since are removed
//! only with `prune`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::{CaptureOptions, Engine, EngineError};
use crate::capture::{self, ContainerCapture};
use crate::runtime::Status;
use crate::store::StoreError;

/// Prefix of a prepared upper dir's parent in a container's directory.
const PREPARED_PREFIX: &str = "baseline-";

/// Held while rollback copies are prepared or used: a rollback waits for
/// the previous one's background preparation.
static PREPARE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Engine {
    /// `baseline create NAME`: capture, then prepare the rollback copies.
    pub fn create_baseline(&self, name: &str, opts: &CaptureOptions) -> Result<Value, EngineError> {
        if !super::spec::valid_name(name) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid baseline name {name:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+"
            )));
        }
        let mut v = self.capture_bundle(opts, Some(name))?;
        let m = self.bundle_manifest(name)?;
        let t = Instant::now();
        for c in &m.containers {
            self.prepare_upper(&m.id, c, &c.id)?;
        }
        v["PrepareMs"] = json!(t.elapsed().as_millis() as u64);
        v["Baseline"] = json!(name);
        Ok(v)
    }

    fn prepared_dir(&self, container_id: &str, bundle_id: &str) -> PathBuf {
        self.store
            .container_dir(container_id)
            .join(format!("{PREPARED_PREFIX}{bundle_id}"))
    }

    /// Materialize a container's captured upper dir in `tmp/`, then rename
    /// it beside the container (replacing nothing: done only when absent).
    fn prepare_upper(
        &self,
        bundle_id: &str,
        c: &ContainerCapture,
        target: &str,
    ) -> Result<(), EngineError> {
        let dest = self.prepared_dir(target, bundle_id);
        if dest.join("upper").is_dir() || !self.store.container_dir(target).is_dir() {
            return Ok(());
        }
        let staging = self.store.staging_path("baseline");
        let upper = staging.join("upper");
        let done = (|| -> Result<(), EngineError> {
            std::fs::create_dir_all(&upper).map_err(io("create", &upper))?;
            let files = capture::read::file_list(&self.store, &c.files)?;
            capture::restore::materialize(&self.store, &files, &upper)?;
            // Captured volume content too, ready to be exchanged likewise.
            for (i, v) in c.volumes.iter().enumerate() {
                if let ("volume", Some(d)) = (v.kind.as_str(), &v.files) {
                    let dir = staging.join(format!("volume-{i}"));
                    std::fs::create_dir(&dir).map_err(io("create", &dir))?;
                    let files = capture::read::file_list(&self.store, d)?;
                    capture::restore::materialize(&self.store, &files, &dir)?;
                }
            }
            self.store.sync_blobs()?;
            std::fs::rename(&staging, &dest).map_err(io("install prepared upper dir", &dest))
        })();
        if done.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        done
    }

    /// Remove the prepared copies of a baseline (when it is removed).
    pub(super) fn remove_prepared_uppers(&self, bundle_id: &str) {
        let _prepared = super::lock(&PREPARE_LOCK);
        let Ok(recs) = self.store.list_containers() else {
            return;
        };
        for rec in recs {
            let p = self.prepared_dir(&rec.id, bundle_id);
            if p.exists() {
                let trash = self.store.staging_path("trash");
                if std::fs::rename(&p, &trash).is_ok() {
                    let _ = std::fs::remove_dir_all(&trash);
                }
            }
        }
    }

    /// `rollback NAME [--prune]`.
    pub fn rollback(self: &Arc<Self>, name: &str, prune: bool) -> Result<Value, EngineError> {
        let t0 = Instant::now();
        let _prepared = super::lock(&PREPARE_LOCK);
        let b = capture::index::resolve(&self.store, name)?;
        if b.baseline.as_deref() != Some(name) {
            return Err(EngineError::NotFound(format!("no such baseline: {name}")));
        }
        let m = self.bundle_manifest(&b.id)?;
        // Each baseline container's current self: the same ID, or a
        // container restored from it (by an earlier rollback or restore).
        let mut current: Vec<(&ContainerCapture, Option<String>)> = Vec::new();
        let recs = self.store.list_containers()?;
        for c in &m.containers {
            let found = recs
                .iter()
                .find(|r| r.id == c.id)
                .or_else(|| {
                    recs.iter()
                        .find(|r| self.restored_from(&r.id) == Some((m.id.clone(), c.id.clone())))
                })
                .map(|r| r.id.clone());
            current.push((c, found));
        }
        let extra: Vec<String> = recs
            .iter()
            .filter(|r| {
                !current
                    .iter()
                    .any(|(_, id)| id.as_deref() == Some(r.id.as_str()))
            })
            .map(|r| r.name.clone())
            .collect();
        // Names a baseline container needs must be free (or pruned).
        for (c, found) in &current {
            if found.is_none() && extra.contains(&c.name) && !prune {
                return Err(EngineError::Conflict(format!(
                    "container name {} is used by a container created after the baseline: rollback with --prune",
                    c.name
                )));
            }
        }
        let mut removed = Vec::new();
        if prune {
            for n in &extra {
                self.remove_container(n, true)?;
                removed.push(n.clone());
            }
        }
        let mut reset = Vec::new();
        let mut restored = Vec::new();
        for (c, found) in &current {
            match found {
                Some(id) => reset.push((*c, id.clone())),
                None => {
                    let image = self.restore_image_ref(c)?;
                    self.restore_one(&m.id, c, &c.name, &image, false)?;
                    restored.push(c.name.clone());
                }
            }
        }
        // The volumes each reset puts back; a volume two containers share
        // is reset once.
        let mut seen = std::collections::HashSet::new();
        let mut work = Vec::new();
        for (c, id) in &reset {
            let vols: Vec<(usize, PathBuf)> = self
                .volume_targets(c, id)?
                .into_iter()
                .filter(|(_, p)| seen.insert(p.clone()))
                .collect();
            work.push((*c, id.clone(), vols));
        }
        // Containers are independent: stop-and-swap them all at once, then
        // start them all at once.
        let trash: Vec<PathBuf> =
            parallel(&work, |(c, id, vols)| self.swap_upper(&m.id, c, id, vols))?
                .into_iter()
                .flatten()
                .collect();
        let swapped_ms = t0.elapsed().as_millis() as u64;
        parallel(&reset, |(c, id)| {
            if matches!(c.status.as_str(), "running" | "paused") {
                self.start_container(id)?;
            }
            Ok(())
        })?;
        let rollback_ms = t0.elapsed().as_millis() as u64;
        tracing::info!(baseline = name, bundle_id = %m.id, rollback_ms, "rolled back");
        // Ready for the next rollback, in the background (the next rollback
        // or baseline waits for it through PREPARE_LOCK; a daemon killed
        // meanwhile leaves only `tmp/` content, and a missing copy is made
        // when needed); the old upper dirs go.
        let engine = Arc::clone(self);
        let bundle = m.clone();
        let pairs: Vec<(String, String)> = reset
            .iter()
            .map(|(c, id)| (c.id.clone(), id.clone()))
            .collect();
        std::thread::spawn(move || {
            let _guard = super::lock(&PREPARE_LOCK);
            let t1 = Instant::now();
            for (cid, id) in &pairs {
                let Some(c) = bundle.containers.iter().find(|c| &c.id == cid) else {
                    continue;
                };
                if let Err(e) = engine.prepare_upper(&bundle.id, c, id) {
                    tracing::warn!(container_id = %id, error = %e, "could not prepare the next rollback copy");
                }
            }
            for t in trash {
                let _ = std::fs::remove_dir_all(t);
            }
            let prepare_ms = t1.elapsed().as_millis() as u64;
            tracing::info!(bundle_id = %bundle.id, prepare_ms, "prepared the next rollback");
        });
        Ok(json!({
            "Baseline": name, "Bundle": m.id,
            "Reset": reset.iter().map(|(c, _)| &c.name).collect::<Vec<_>>(),
            "Restored": restored, "Removed": removed,
            "RollbackMs": rollback_ms, "StopSwapMs": swapped_ms,
        }))
    }

    /// The (bundle, captured container) a restored container came from.
    fn restored_from(&self, id: &str) -> Option<(String, String)> {
        let path = self
            .store
            .container_dir(id)
            .join(super::restore::RESTORED_FROM);
        let v: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        Some((
            v["bundle"].as_str()?.to_string(),
            v["container"].as_str()?.to_string(),
        ))
    }

    /// For each captured volume of `c` (with content), the `_data` dir of
    /// the volume `target` mounts at the same place now.
    fn volume_targets(
        &self,
        c: &ContainerCapture,
        target: &str,
    ) -> Result<Vec<(usize, PathBuf)>, EngineError> {
        if !c
            .volumes
            .iter()
            .any(|v| v.kind == "volume" && v.files.is_some())
        {
            return Ok(Vec::new());
        }
        let mounts = self.inspect_container(target)?["Mounts"].clone();
        let mut out = Vec::new();
        for (i, v) in c.volumes.iter().enumerate() {
            if v.kind != "volume" || v.files.is_none() {
                continue;
            }
            let name = mounts
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["Type"] == "volume" && m["Destination"] == v.destination.as_str())
                .and_then(|m| m["Name"].as_str());
            if let Some(name) = name {
                out.push((i, self.store.volume_dir(name).join("_data")));
            }
        }
        Ok(out)
    }

    /// Stop the container, swap its upper dir (and the volumes in `vols`)
    /// for the prepared ones, put the captured log back. Returns the old
    /// dirs (now in `tmp/`).
    fn swap_upper(
        &self,
        bundle_id: &str,
        c: &ContainerCapture,
        target: &str,
        vols: &[(usize, PathBuf)],
    ) -> Result<Vec<PathBuf>, EngineError> {
        let v = self.container_view(target)?;
        if matches!(v.state.status, Status::Running | Status::Paused) {
            self.stop_container(target, Some(0), Some("SIGKILL"))?;
        }
        self.prepare_upper(bundle_id, c, target)?;
        let dir = self.store.container_dir(target);
        let prepared = self.prepared_dir(target, bundle_id);
        // One atomic exchange (renameat2 RENAME_EXCHANGE): a crash at any
        // instant leaves the container a whole upper dir, old or new.
        nix::fcntl::renameat2(
            None,
            &prepared.join("upper"),
            None,
            &dir.join("upper"),
            nix::fcntl::RenameFlags::RENAME_EXCHANGE,
        )
        .map_err(|e| io("swap in the prepared upper dir", &dir.join("upper"))(e.into()))?;
        // The old upper dir is where the prepared one was: out to tmp/.
        let old = self.store.staging_path("rollback-old");
        std::fs::rename(prepared.join("upper"), &old)
            .map_err(io("move away old upper dir", &prepared.join("upper")))?;
        let mut olds = vec![old];
        for (i, data) in vols {
            let ready = prepared.join(format!("volume-{i}"));
            if !ready.is_dir() {
                continue;
            }
            if data.exists() {
                nix::fcntl::renameat2(
                    None,
                    &ready,
                    None,
                    data,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                )
                .map_err(|e| io("swap in the prepared volume content", data)(e.into()))?;
                let old = self.store.staging_path("rollback-old");
                std::fs::rename(&ready, &old)
                    .map_err(io("move away old volume content", &ready))?;
                olds.push(old);
            } else {
                std::fs::rename(&ready, data).map_err(io("put back volume content", data))?;
            }
        }
        // Copies of volumes this container does not reset (another one
        // sharing the volume did) are not needed.
        if let Ok(rest) = std::fs::read_dir(&prepared) {
            for e in rest.flatten() {
                let old = self.store.staging_path("rollback-old");
                if std::fs::rename(e.path(), &old).is_ok() {
                    olds.push(old);
                }
            }
        }
        let _ = std::fs::remove_dir(&prepared);
        let log = capture::read::log(&self.store, c)?;
        let tmp = self.store.root().join("tmp");
        crate::store::write_file_synced(&dir.join("container.log"), &log, &tmp)?;
        Ok(olds)
    }
}

/// Run `f` on every item in its own thread; the first error wins, after
/// every thread has finished.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, EngineError> + Sync,
) -> Result<Vec<R>, EngineError> {
    std::thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|it| s.spawn(|| f(it))).collect();
        let mut out = Vec::new();
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(r)) => out.push(r),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(EngineError::InvalidArgument(
                        "a rollback worker panicked".into(),
                    ));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    })
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.to_path_buf();
    move |source| EngineError::Store(StoreError::Io { op, path, source })
}
