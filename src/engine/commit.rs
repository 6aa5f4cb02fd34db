//! `commit`: a container's writable layer becomes an image.
//!
//! Stopped: the upper dir is renamed into the layer store after one
//! streaming pass for its digest, and the container is re-based on the new
//! image (`Store::commit_stopped`). Running: frozen (unless `pause` is off)
//! while its upper is streamed as a tar straight into a new layer, then
//! thawed; the container keeps its own upper.

use serde_json::{json, Value};

use super::{lock, Engine, EngineError};
use crate::archive;
use crate::runtime::{self, Status};
use crate::store::{apply_change, CommitLayer};
use crate::types::{Digest, Reference};

/// What `POST /commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Name for the new image.
    pub tag: Option<Reference>,
    /// Commit message.
    pub comment: String,
    /// Author.
    pub author: String,
    /// Freeze a running container while its layer is captured.
    pub pause: bool,
    /// Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
}

impl Engine {
    /// `POST /commit?container=`.
    pub fn commit(&self, name: &str, opts: &CommitOptions) -> Result<Digest, EngineError> {
        let v = self.container_view(name)?;
        let dir = self.store.container_dir(&v.rec.id);
        let upper = dir.join("upper");
        let parent = v.rec.image_id.clone();
        let running = matches!(v.state.status, Status::Running | Status::Paused);
        if !running {
            let _guard = lock(&self.mount_lock);
            // A digest being computed since the exit: wait for it rather
            // than read the layer a second time alongside.
            let pending = lock(&self.digesting).remove(&v.rec.id);
            if let Some(h) = pending {
                let _ = h.join();
            }
            let summary = super::digest_cache::diff_id(&dir)?;
            let config = self.commit_config(&v, opts, &summary.diff_id)?;
            let layer = CommitLayer {
                diff_id: summary.diff_id,
                size: summary.size,
            };
            let id = self.store.commit_stopped(
                &v.rec.id,
                &layer,
                &config,
                &parent,
                opts.tag.as_ref(),
            )?;
            tracing::info!(container_id = %v.rec.id, image_id = %id, "committed stopped container");
            return Ok(id);
        }
        let freeze = opts.pause && v.state.status == Status::Running;
        if freeze {
            runtime::pause(&dir)?;
        }
        let copied = self.copy_upper_as_layer(&upper);
        if freeze {
            runtime::resume(&dir)?;
        }
        let layer = copied?;
        let config = self.commit_config(&v, opts, &layer.diff_id)?;
        let mut layers = self.store.image_new_layers(&parent)?;
        layers.push(layer);
        let id = self
            .store
            .add_image(&config, &layers, Some(&parent), opts.tag.as_ref())?;
        tracing::info!(container_id = %v.rec.id, image_id = %id, "committed running container");
        Ok(id)
    }

    /// Stream the upper dir as a layer tar through a pipe into a new layer:
    /// the data is read once, hashed once and written once.
    fn copy_upper_as_layer(
        &self,
        upper: &std::path::Path,
    ) -> Result<crate::store::NewLayer, EngineError> {
        let src = upper.to_path_buf();
        Ok(self.store.install_written_layer(move |w| {
            let s = archive::write_layer_tar(&src, w)?;
            Ok((s.diff_id, s.size))
        })?)
    }

    /// The new image's config: the parent's, with the container's config
    /// (plus `changes`), a history entry and the new layer.
    fn commit_config(
        &self,
        v: &super::ContainerView,
        opts: &CommitOptions,
        diff_id: &Digest,
    ) -> Result<Vec<u8>, EngineError> {
        let bad = |e: String| EngineError::InvalidArgument(e);
        let mut raw: Value = serde_json::from_slice(&self.store.image_config(&v.rec.image_id)?)
            .map_err(|e| bad(e.to_string()))?;
        let c = &v.spec.config;
        let mut oci: oci_spec::image::Config = serde_json::from_value(json!({
            "User": c.user, "Env": c.env, "Cmd": c.cmd, "Entrypoint": c.entrypoint,
            "WorkingDir": c.working_dir, "Labels": c.labels, "StopSignal": c.stop_signal,
            "ExposedPorts": c.exposed_ports, "Volumes": c.volumes,
        }))
        .map_err(|e| bad(format!("cannot express the container's config: {e}")))?;
        for ch in &opts.changes {
            apply_change(&mut oci, ch)?;
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        raw["config"] = serde_json::to_value(&oci).map_err(|e| bad(e.to_string()))?;
        raw["created"] = json!(now);
        raw["container"] = json!(v.rec.id);
        if !opts.author.is_empty() {
            raw["author"] = json!(opts.author);
        }
        let diff_ids = raw["rootfs"]["diff_ids"]
            .as_array_mut()
            .ok_or_else(|| bad("parent config has no rootfs.diff_ids".into()))?;
        diff_ids.push(json!(diff_id.to_string()));
        let entry = json!({"created": now, "created_by": super::shell_join(&v.spec.argv()), "comment": opts.comment, "author": opts.author});
        match raw["history"].as_array_mut() {
            Some(h) => h.push(entry),
            None => raw["history"] = json!([entry]),
        }
        serde_json::to_vec(&raw).map_err(|e| bad(e.to_string()))
    }

    /// `GET /images/{name}/history`, newest first.
    pub fn image_history(&self, name: &str) -> Result<Vec<Value>, EngineError> {
        let id = self.store.resolve_image(name)?;
        let rec = self.store.image(&id)?;
        let raw: Value =
            serde_json::from_slice(&self.store.image_config(&id)?).unwrap_or(Value::Null);
        let sizes: Vec<u64> = self
            .store
            .image_new_layers(&id)?
            .iter()
            .map(|l| l.size)
            .collect();
        let mut layer_sizes = sizes.into_iter();
        let mut out = Vec::new();
        for h in raw["history"].as_array().cloned().unwrap_or_default() {
            let empty = h["empty_layer"].as_bool().unwrap_or(false);
            let size = if empty {
                0
            } else {
                layer_sizes.next().unwrap_or(0)
            };
            let created = h["created"]
                .as_str()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map(|t| t.timestamp())
                .unwrap_or(0);
            out.push(json!({
                "Id": "<missing>", "Created": created,
                "CreatedBy": h["created_by"].as_str().unwrap_or_default(),
                "Tags": Value::Null, "Size": size,
                "Comment": h["comment"].as_str().unwrap_or_default(),
            }));
        }
        out.reverse();
        if let Some(top) = out.first_mut() {
            top["Id"] = json!(id.to_string());
            top["Tags"] = json!(rec.tags);
        }
        Ok(out)
    }
}
