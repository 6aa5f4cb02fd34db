//! `bundle diff A B` (and `bundle diff A` against the live containers):
//! per container, files added/removed/changed, config and environment
//! changes, processes that appeared or vanished, ports and the log lines
//! new in B.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::manifest::{ContainerCapture, FileEntry, Manifest};
use super::{read, CaptureError};
use crate::store::Store;

/// The difference between two bundles.
pub fn diff(store: &Store, a: &Manifest, b: &Manifest) -> Result<Value, CaptureError> {
    let mut out = Vec::new();
    let names: BTreeSet<&str> = a
        .containers
        .iter()
        .chain(&b.containers)
        .map(|c| c.name.as_str())
        .collect();
    for name in names {
        let ca = a.containers.iter().find(|c| c.name == name);
        let cb = b.containers.iter().find(|c| c.name == name);
        out.push(match (ca, cb) {
            (Some(ca), Some(cb)) => container_diff(store, ca, cb)?,
            (Some(_), None) => json!({"name": name, "change": "removed"}),
            (None, Some(_)) => json!({"name": name, "change": "added"}),
            (None, None) => continue,
        });
    }
    Ok(json!({"a": a.id, "b": b.id, "containers": out}))
}

/// One side of a container diff: a captured container, or a live one read
/// without storing anything.
pub struct Side<'a> {
    /// Container name.
    pub name: &'a str,
    /// Docker's status word.
    pub status: &'a str,
    /// The inspect document.
    pub inspect: &'a Value,
    /// Process entries (as in the manifest).
    pub processes: &'a [Value],
    /// The writable layer's file list.
    pub files: Vec<FileEntry>,
    /// The log bytes (JSON lines).
    pub log: Vec<u8>,
}

impl<'a> Side<'a> {
    /// A captured container, its file list and log read from the store.
    pub fn captured(store: &Store, c: &'a ContainerCapture) -> Result<Side<'a>, CaptureError> {
        Ok(Side {
            name: &c.name,
            status: &c.status,
            inspect: &c.inspect,
            processes: &c.processes,
            files: super::volumes::stored_files(store, c)?,
            log: read::log(store, c)?,
        })
    }
}

fn container_diff(
    store: &Store,
    a: &ContainerCapture,
    b: &ContainerCapture,
) -> Result<Value, CaptureError> {
    Ok(compare(
        Side::captured(store, a)?,
        Side::captured(store, b)?,
    ))
}

/// Files added/removed/changed, config, env, processes, ports and the log
/// lines new in `b`.
pub fn compare(a: Side<'_>, b: Side<'_>) -> Value {
    let fa = by_path(a.files);
    let fb = by_path(b.files);
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    for (p, f) in &fb {
        match fa.get(p) {
            None => added.push(json!({"path": format!("/{p}"), "kind": f.kind, "size": f.size})),
            Some(old) if differs(old, f) => changed.push(json!({
                "path": format!("/{p}"), "kind": f.kind, "size_a": old.size, "size_b": f.size,
            })),
            Some(_) => {}
        }
    }
    for (p, f) in &fa {
        if !fb.contains_key(p) {
            removed.push(json!({"path": format!("/{p}"), "kind": f.kind, "size": f.size}));
        }
    }
    let (ca, cb) = (&a.inspect["Config"], &b.inspect["Config"]);
    json!({
        "name": b.name,
        "change": "changed",
        "status": {"a": a.status, "b": b.status},
        "files": {"added": added, "removed": removed, "changed": changed},
        "config": config_changes(ca, cb),
        "env": set_diff(&strings(&ca["Env"]), &strings(&cb["Env"])),
        "processes": process_diff(a.processes, b.processes),
        "ports": {"a": a.inspect["NetworkSettings"]["Ports"], "b": b.inspect["NetworkSettings"]["Ports"]},
        "new_log_lines": new_log_lines(&a.log, &b.log),
    })
}

fn by_path(list: Vec<FileEntry>) -> BTreeMap<String, FileEntry> {
    list.into_iter().map(|f| (f.path.clone(), f)).collect()
}

fn differs(a: &FileEntry, b: &FileEntry) -> bool {
    a.kind != b.kind
        || a.mode != b.mode
        || a.uid != b.uid
        || a.gid != b.gid
        || a.digest != b.digest
        || a.target != b.target
        || a.opaque != b.opaque
}

/// Keys of the container config whose values differ (Env separately).
fn config_changes(a: &Value, b: &Value) -> Vec<Value> {
    let empty = serde_json::Map::new();
    let ma = a.as_object().unwrap_or(&empty);
    let mb = b.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
    keys.into_iter()
        .filter(|k| *k != "Env")
        .filter(|k| ma.get(*k) != mb.get(*k))
        .map(|k| json!({"key": k, "a": ma.get(k), "b": mb.get(k)}))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn set_diff(a: &[String], b: &[String]) -> Value {
    let sa: BTreeSet<&String> = a.iter().collect();
    let sb: BTreeSet<&String> = b.iter().collect();
    json!({
        "added": sb.difference(&sa).collect::<Vec<_>>(),
        "removed": sa.difference(&sb).collect::<Vec<_>>(),
    })
}

fn process_diff(a: &[Value], b: &[Value]) -> Value {
    let cmd = |p: &Value| strings(&p["cmdline"]).join(" ");
    let pa: Vec<String> = a.iter().map(cmd).collect();
    let pb: Vec<String> = b.iter().map(cmd).collect();
    let d = set_diff(&pa, &pb);
    json!({"appeared": d["added"], "vanished": d["removed"]})
}

/// Lines of `b` after the bytes it shares with `a` (a log only grows); when
/// `b` does not extend `a` (log rotated, another container), the lines of
/// `b` not in `a`.
pub fn new_log_lines(a: &[u8], b: &[u8]) -> Vec<Value> {
    let fresh: Vec<super::LogLine> = if b.starts_with(a) {
        super::log_lines(&b[a.len()..])
    } else {
        let old: BTreeSet<&[u8]> = a.split(|c| *c == b'\n').collect();
        let kept: Vec<u8> = b
            .split(|c| *c == b'\n')
            .filter(|l| !old.contains(l))
            .flat_map(|l| l.iter().copied().chain([b'\n']))
            .collect();
        super::log_lines(&kept)
    };
    fresh
        .into_iter()
        .map(|l| json!({"time": l.time, "line": l.text}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_log_lines_after_the_shared_prefix() {
        let a = b"{\"log\":\"one\\n\",\"stream\":\"stdout\",\"time\":\"t1\"}\n";
        let mut b = a.to_vec();
        b.extend_from_slice(b"{\"log\":\"two\\n\",\"stream\":\"stdout\",\"time\":\"t2\"}\n");
        let v = new_log_lines(a, &b);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0]["line"], "two");
        assert_eq!(v[0]["time"], "t2");
        assert!(new_log_lines(&b, &b).is_empty());
    }

    #[test]
    fn config_changes_skip_env() {
        let a = json!({"Env": ["A=1"], "Cmd": ["sh"], "User": ""});
        let b = json!({"Env": ["A=2"], "Cmd": ["top"], "User": ""});
        let c = config_changes(&a, &b);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0]["key"], "Cmd");
        let e = set_diff(&strings(&a["Env"]), &strings(&b["Env"]));
        assert_eq!(e["added"][0], "A=2");
        assert_eq!(e["removed"][0], "A=1");
    }
}
