//! `bundle diff ID` against the live containers: each container of the
//! bundle (the same ID, else the same name) is read as `capture --no-pause`
//! would read it (writable layer, inspect, processes, log) through a dry
//! sink that only hashes, so nothing is stored: no blob, no bundle.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};

use super::{ContainerView, Engine, EngineError};
use crate::capture::diff::{compare, Side};
use crate::capture::{self, BlobSink, CaptureError, ContainerCapture, FileEntry};
use crate::runtime::Status;

impl Engine {
    /// `bundle diff ID` with no second bundle: what changed in the bundle's
    /// containers since it was captured.
    pub fn bundle_diff_live(&self, name: &str) -> Result<Value, EngineError> {
        let m = self.bundle_manifest(name)?;
        let recs = self.store.list_containers()?;
        let mut out = Vec::new();
        for c in &m.containers {
            let rec = recs.iter().find(|r| r.id == c.id).or_else(|| {
                recs.iter()
                    .find(|r| r.name.trim_start_matches('/') == c.name)
            });
            let view = match rec.map(|r| self.view_of(r.clone())).transpose() {
                Ok(Some(v)) => v,
                // Gone (or removed while we look).
                Ok(None) | Err(EngineError::NotFound(_)) => {
                    out.push(json!({"name": c.name, "change": "removed"}));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut d = self.diff_with_live(c, &view)?;
            if view.rec.id != c.id {
                d["recreated"] = json!({"a": c.id, "b": view.rec.id});
            }
            out.push(d);
        }
        Ok(json!({"a": m.id, "b": "live", "containers": out}))
    }

    /// One captured container against the live `v`, never frozen.
    fn diff_with_live(
        &self,
        c: &ContainerCapture,
        v: &ContainerView,
    ) -> Result<Value, EngineError> {
        let id = &v.rec.id;
        let dir = self.store.container_dir(id);
        let inspect = self.inspect_container(id)?;
        let captured = Side::captured(&self.store, c)?;
        // The bundle's own list is the stat cache when it is the same
        // container (inode numbers mean nothing in another's upper dir):
        // unchanged files are not read again.
        let cache: HashMap<String, FileEntry> = if c.id == *id {
            let files = captured.files.iter();
            files.map(|f| (f.path.clone(), f.clone())).collect()
        } else {
            HashMap::new()
        };
        let mut sink = BlobSink::dry(&self.store);
        let (files, _) = capture::walk::walk_upper(&dir.join("upper"), &mut sink, &cache)?;
        // The mounts the bundle kept (`--volumes`), read live the same way.
        let mut mounts = Vec::new();
        for m in capture::volumes::mounts_of(&inspect, |n| {
            self.store.volume_dir(n).join("_data").display().to_string()
        }) {
            if c.volumes
                .iter()
                .any(|v| v.destination == m.3 && v.files.is_some())
            {
                let (v, f) = capture::volumes::capture_mount(&mut sink, m, u64::MAX)?;
                mounts.push((v.destination, f));
            }
        }
        let files = capture::volumes::merge(
            files,
            mounts
                .iter()
                .map(|(d, f)| (d.as_str(), f.clone()))
                .collect(),
        );
        let processes: Vec<Value> = match v.state.status {
            Status::Running | Status::Paused => self
                .container_pids(id)
                .into_iter()
                .filter_map(|p| capture::procs::process(p, &HashMap::new()))
                .collect(),
            _ => Vec::new(),
        };
        let live = Side {
            name: &v.rec.name,
            status: v.status(),
            inspect: &inspect,
            processes: &processes,
            files,
            log: whole_lines(&dir.join("container.log"))?,
        };
        Ok(compare(captured, live))
    }
}

/// A log file up to its last newline (the shim may be writing a line);
/// empty when there is none.
fn whole_lines(path: &Path) -> Result<Vec<u8>, CaptureError> {
    let name = path.display().to_string();
    let mut data = Vec::new();
    match std::fs::File::open(path) {
        Ok(mut f) => f
            .read_to_end(&mut data)
            .map_err(|e| CaptureError::io("read log", &name, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(data),
        Err(e) => return Err(CaptureError::io("open log", &name, e)),
    };
    let end = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    data.truncate(end);
    Ok(data)
}
