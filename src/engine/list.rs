//! `ps` options and filters.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ContainerView, Engine, EngineError};

/// Options of `GET /containers/json`.
#[derive(Debug, Default, Clone)]
pub struct ListOptions {
    /// Include stopped containers.
    pub all: bool,
    /// At most this many (newest first).
    pub limit: Option<usize>,
    /// Compute sizes.
    pub size: bool,
    /// Docker filters: status, name, label, ancestor, id.
    pub filters: BTreeMap<String, Vec<String>>,
}

impl ListOptions {
    /// Parse Docker's container filters.
    pub fn parse_filters(json: &str) -> Result<BTreeMap<String, Vec<String>>, EngineError> {
        let map = parse_filter_map(json)?;
        for k in map.keys() {
            if !matches!(
                k.as_str(),
                "status" | "name" | "label" | "ancestor" | "id" | "exited"
            ) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filters: invalid filter '{k}'"
                )));
            }
        }
        Ok(map)
    }

    /// Whether a container passes every filter.
    pub(super) fn matches(&self, v: &ContainerView, engine: &Engine) -> bool {
        self.filters
            .iter()
            .all(|(k, vals)| vals.iter().any(|val| one(k, val, v, engine)))
    }
}

/// Docker's filters JSON, in either form: `{"k": {"v": true}}` or the old
/// `{"k": ["v"]}`.
pub fn parse_filter_map(json: &str) -> Result<BTreeMap<String, Vec<String>>, EngineError> {
    let bad = |why: String| EngineError::InvalidArgument(format!("invalid filters: {why}"));
    let v: BTreeMap<String, Value> = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (k, vals) in v {
        let vals: Vec<String> = match vals {
            Value::Object(m) => m.keys().cloned().collect(),
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => return Err(bad(format!("bad value for {k:?}"))),
        };
        out.insert(k, vals);
    }
    Ok(out)
}

fn one(key: &str, val: &str, v: &ContainerView, engine: &Engine) -> bool {
    match key {
        "status" => v.status() == val,
        "name" => v.rec.name.contains(val.trim_start_matches('/')),
        "id" => v.rec.id.starts_with(val),
        "exited" => {
            v.status() == "exited"
                && v.state.exit_code.map(|c| c.to_string()).as_deref() == Some(val)
        }
        "label" => {
            let labels = v.spec.config.labels.clone().unwrap_or_default();
            match val.split_once('=') {
                Some((k, want)) => labels.get(k).map(String::as_str) == Some(want),
                None => labels.contains_key(val),
            }
        }
        "ancestor" => {
            v.rec.image_ref == val
                || engine
                    .store
                    .resolve_image(val)
                    .map(|id| id == v.rec.image_id)
                    .unwrap_or(false)
        }
        _ => false,
    }
}
