//! Image operations in Docker's shapes.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;

use super::{Engine, EngineError};
use crate::store::{ImageRecord, ImportOptions, RemoveOptions};
use crate::types::api::{
    ContainerConfig, DeleteItem, GraphDriver, ImageInspect, ImageSummary, RootFs,
};
use crate::types::{Digest, Reference};

/// Docker's `filters` for `GET /images/json`.
#[derive(Debug, Default, Clone)]
pub struct ImageFilters {
    /// `reference=PATTERN` (glob on `repo` or `repo:tag`).
    pub reference: Vec<String>,
    /// `dangling=true|false`.
    pub dangling: Option<bool>,
    /// `label=KEY` or `label=KEY=VALUE`.
    pub label: Vec<String>,
}

impl ImageFilters {
    /// Parse Docker's filters JSON: `{"name": {"value": true}}` or the old
    /// `{"name": ["value"]}`.
    pub fn parse(json: &str) -> Result<ImageFilters, EngineError> {
        let bad = |why: String| EngineError::InvalidArgument(format!("invalid filters: {why}"));
        let mut f = ImageFilters::default();
        for (key, vals) in super::list::parse_filter_map(json)? {
            match key.as_str() {
                "reference" => f.reference = vals,
                "label" => f.label = vals,
                "dangling" => {
                    f.dangling = match vals.first().map(String::as_str) {
                        Some("true" | "1") => Some(true),
                        Some("false" | "0") => Some(false),
                        other => return Err(bad(format!("invalid dangling value {other:?}"))),
                    }
                }
                other => return Err(bad(format!("invalid filter {other:?}"))),
            }
        }
        Ok(f)
    }
}

/// A `*`-glob match (Docker's reference filter uses path.Match).
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            s.starts_with(head)
                && (0..=s.len() - head.len()).any(|i| {
                    let rest = &s[head.len() + i..];
                    s.is_char_boundary(head.len() + i)
                        && !s[head.len()..head.len() + i].contains('/')
                        && glob(tail, rest)
                })
        }
    }
}

impl Engine {
    /// `GET /images/json`.
    pub fn list_images(
        &self,
        all: bool,
        filters: &ImageFilters,
    ) -> Result<Vec<ImageSummary>, EngineError> {
        let records = self.store.list_images()?;
        let parents: std::collections::HashSet<Digest> =
            records.iter().filter_map(|r| r.parent.clone()).collect();
        let mut out = Vec::new();
        for rec in records {
            if !all && rec.tags.is_empty() && parents.contains(&rec.id) {
                continue;
            }
            let (config, created) = self.config_of(&rec)?;
            if !matches_filters(&rec, &config, filters) {
                continue;
            }
            out.push(ImageSummary {
                id: rec.id.to_string(),
                parent_id: rec
                    .parent
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                repo_tags: rec.tags.clone(),
                repo_digests: Vec::new(),
                created,
                size: rec.size,
                shared_size: -1,
                labels: config.labels.clone().unwrap_or_default(),
                containers: self.containers_of(&rec.id),
            });
        }
        Ok(out)
    }

    /// `GET /images/{name}/json`.
    pub fn inspect_image(&self, name: &str) -> Result<ImageInspect, EngineError> {
        let id = self.store.resolve_image(name)?;
        let rec = self.store.image(&id)?;
        let raw: Value = serde_json::from_slice(&self.store.image_config(&id)?).map_err(|e| {
            EngineError::InvalidArgument(format!("image {id} has an invalid config: {e}"))
        })?;
        let config = container_config(&raw);
        let dirs = self.store.layer_dirs(&rec);
        let mut driver = BTreeMap::new();
        if let Some((top, lower)) = dirs.split_last() {
            driver.insert("UpperDir".into(), top.display().to_string());
            if !lower.is_empty() {
                let lower: Vec<String> = lower
                    .iter()
                    .rev()
                    .map(|p| p.display().to_string())
                    .collect();
                driver.insert("LowerDir".into(), lower.join(":"));
            }
        }
        let s = |k: &str| {
            raw.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let comment = raw
            .get("history")
            .and_then(Value::as_array)
            .and_then(|h| h.last())
            .and_then(|h| h.get("comment"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(ImageInspect {
            id: id.to_string(),
            repo_tags: rec.tags.clone(),
            repo_digests: Vec::new(),
            parent: rec
                .parent
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            comment,
            created: s("created"),
            docker_version: String::new(),
            author: s("author"),
            config,
            architecture: s("architecture"),
            os: s("os"),
            size: rec.size,
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data: driver,
            },
            root_fs: RootFs {
                kind: "layers".into(),
                layers: rec.layers.iter().map(|d| d.to_string()).collect(),
            },
            metadata: serde_json::json!({ "LastTagTime": rec.last_tagged.unwrap_or_else(|| "0001-01-01T00:00:00Z".into()) }),
        })
    }

    /// `POST /images/create?fromSrc=-`: import a root filesystem tar.
    pub fn import_image<R: Read + Send + 'static>(
        &self,
        input: R,
        opts: &ImportOptions,
    ) -> Result<Digest, EngineError> {
        Ok(self.store.import(input, opts)?)
    }

    /// `POST /images/{name}/tag`.
    pub fn tag_image(&self, source: &str, target: &Reference) -> Result<(), EngineError> {
        self.store.tag(source, &target.familiar())?;
        Ok(())
    }

    /// Containers per image, for `Containers` in `GET /images/json`.
    fn containers_of(&self, id: &Digest) -> i64 {
        self.store
            .containers_using(id)
            .map(|v| v.len() as i64)
            .unwrap_or(-1)
    }

    /// `DELETE /images/{name}`.
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<DeleteItem>, EngineError> {
        Ok(self.store.remove_image(name, RemoveOptions { force })?)
    }

    /// An image's `.Config` and its creation time (Unix seconds).
    fn config_of(&self, rec: &ImageRecord) -> Result<(ContainerConfig, i64), EngineError> {
        let raw: Value =
            serde_json::from_slice(&self.store.image_config(&rec.id)?).unwrap_or(Value::Null);
        let created = raw
            .get("created")
            .and_then(Value::as_str)
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.timestamp())
            .unwrap_or(0);
        Ok((container_config(&raw), created))
    }
}

/// The `.Config` of an image config document (Docker and OCI agree on the
/// PascalCase field names inside `config`).
fn container_config(raw: &Value) -> ContainerConfig {
    raw.get("config")
        .cloned()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default()
}

fn matches_filters(rec: &ImageRecord, config: &ContainerConfig, f: &ImageFilters) -> bool {
    if let Some(d) = f.dangling {
        if d != rec.tags.is_empty() {
            return false;
        }
    }
    if !f.reference.is_empty() {
        let hit = rec.tags.iter().any(|t| {
            let repo = crate::store::repo_name(t);
            f.reference.iter().any(|p| glob(p, t) || glob(p, repo))
        });
        if !hit {
            return false;
        }
    }
    let labels = config.labels.clone().unwrap_or_default();
    f.label.iter().all(|l| match l.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(l),
    })
}

impl Engine {
    /// `POST /images/prune`: remove dangling images (untagged, used by no
    /// container, parent of no image); with `all`, every image no container
    /// uses.
    pub fn prune_images(&self, all: bool) -> Result<serde_json::Value, EngineError> {
        let records = self.store.list_images()?;
        let parents: std::collections::HashSet<Digest> =
            records.iter().filter_map(|r| r.parent.clone()).collect();
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        for rec in records {
            let unused = self.store.containers_using(&rec.id)?.is_empty();
            let prunable = if all {
                unused
            } else {
                unused && rec.tags.is_empty() && !parents.contains(&rec.id)
            };
            if !prunable {
                continue;
            }
            for item in self
                .store
                .remove_image(&rec.id.to_string(), RemoveOptions { force: true })?
            {
                if item.deleted.as_deref() == Some(rec.id.to_string().as_str()) {
                    reclaimed += rec.size;
                }
                deleted.push(item);
            }
        }
        Ok(serde_json::json!({"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_path_match() {
        assert!(glob("busybox", "busybox"));
        assert!(glob("busy*", "busybox"));
        assert!(glob("*", "busybox"));
        assert!(!glob("*", "me/app"));
        assert!(glob("me/*", "me/app"));
        assert!(glob("busybox:*", "busybox:latest"));
        assert!(!glob("busy", "busybox"));
    }

    #[test]
    fn parses_both_filter_forms() {
        let f =
            ImageFilters::parse(r#"{"reference":{"busybox":true},"dangling":["false"]}"#).unwrap();
        assert_eq!(f.reference, vec!["busybox"]);
        assert_eq!(f.dangling, Some(false));
        assert!(ImageFilters::parse(r#"{"bogus":["x"]}"#).is_err());
    }
}
