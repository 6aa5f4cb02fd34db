//! Container mounts: `-v`, `--mount`, `--tmpfs`, `--volumes-from` and the
//! image's VOLUMEs resolved at create into the spec's mount points, turned
//! into runtime mounts at start (a new volume gets the image's content
//! first, as Docker does), and inspect's `Mounts`.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::containers::ContainerView;
use super::spec::ContainerSpec;
use super::{Engine, EngineError};
use crate::runtime::{MountConfig, MountKind};
use crate::types::container::Mount;

/// One mount of a container, as inspect's `Mounts` shows it (plus what
/// the engine needs at start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Volume name (volumes only).
    #[serde(default)]
    pub name: String,
    /// Host path (binds) or volume name as given.
    #[serde(default)]
    pub source: String,
    /// Path in the container.
    pub destination: String,
    /// Mode as given (`ro`, `rw,nocopy`...).
    #[serde(default)]
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// Do not copy the image's content into a new volume.
    #[serde(default)]
    pub no_copy: bool,
    /// tmpfs mount data.
    #[serde(default)]
    pub tmpfs_options: Option<String>,
}

/// Docker's rule for local volume names.
pub fn valid_volume_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
}

fn invalid(m: String) -> EngineError {
    EngineError::InvalidArgument(m)
}

/// `-v SRC:DST[:MODE]` / `-v DST`.
pub fn parse_bind(spec: &str) -> Result<MountPoint, EngineError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid(format!("invalid volume specification: '{spec}'"))),
    };
    let mut rw = true;
    let mut no_copy = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => rw = false,
            "rw" => rw = true,
            "nocopy" => no_copy = true,
            "z" | "Z" | "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
            | "delegated" | "cached" | "consistent" => {}
            _ => return Err(invalid(format!("invalid mode: {m}"))),
        }
    }
    let kind = if src.starts_with('/') {
        "bind"
    } else {
        "volume"
    };
    if !dst.starts_with('/') {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{kind}\": invalid mount path: '{dst}' mount path must be absolute"
        )));
    }
    if dst == "/" {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{kind}\": invalid specification: destination can't be '/'"
        )));
    }
    if kind == "volume" && !src.is_empty() && !valid_volume_name(src) {
        return Err(invalid(format!(
            "create {src}: \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(MountPoint {
        kind: kind.into(),
        name: src.into(),
        source: src.into(),
        destination: clean(dst),
        mode: mode.into(),
        rw,
        no_copy,
        tmpfs_options: None,
    })
}

/// `/a/b/` → `/a/b`.
fn clean(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.into()
    }
}

/// A `HostConfig.Mounts` element.
fn from_mount(m: &Mount) -> Result<MountPoint, EngineError> {
    let bad = |why: String| {
        invalid(format!(
            "invalid mount config for type \"{}\": {why}",
            m.kind
        ))
    };
    if !m.target.starts_with('/') {
        return Err(bad(format!(
            "invalid mount path: '{}' mount path must be absolute",
            m.target
        )));
    }
    let mut p = MountPoint {
        kind: m.kind.clone(),
        name: String::new(),
        source: m.source.clone(),
        destination: clean(&m.target),
        mode: String::new(),
        rw: !m.read_only,
        no_copy: m.volume_options.as_ref().is_some_and(|o| o.no_copy),
        tmpfs_options: None,
    };
    match m.kind.as_str() {
        "bind" => {
            if !m.source.starts_with('/') {
                return Err(bad(format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
            if !Path::new(&m.source).exists() {
                return Err(bad(format!(
                    "bind source path does not exist: {}",
                    m.source
                )));
            }
        }
        "volume" => {
            if !m.source.is_empty() && !valid_volume_name(&m.source) {
                return Err(bad(format!("invalid volume name: {}", m.source)));
            }
            p.name = m.source.clone();
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(bad("source must not be specified".into()));
            }
            let mut opts = Vec::new();
            if let Some(t) = &m.tmpfs_options {
                if t.size_bytes > 0 {
                    opts.push(format!("size={}", t.size_bytes));
                }
                if t.mode != 0 {
                    opts.push(format!("mode={:o}", t.mode));
                }
            }
            p.tmpfs_options = (!opts.is_empty()).then(|| opts.join(","));
        }
        other => return Err(invalid(format!("mount type unknown: {other:?}"))),
    }
    Ok(p)
}

impl Engine {
    /// At create: every mount of the new container, in Docker's precedence
    /// (explicit mounts over `--volumes-from` over image VOLUMEs). Nothing
    /// is created here; see [`Engine::create_volumes`].
    pub(super) fn plan_mounts(&self, spec: &ContainerSpec) -> Result<Vec<MountPoint>, EngineError> {
        let h = &spec.host_config;
        let mut explicit = Vec::new();
        for b in h.binds.iter().flatten() {
            explicit.push(parse_bind(b)?);
        }
        for m in h.mounts.iter().flatten() {
            explicit.push(from_mount(m)?);
        }
        for (dst, opts) in h.tmpfs.iter().flatten() {
            if !dst.starts_with('/') {
                return Err(invalid(format!(
                    "invalid mount config for type \"tmpfs\": invalid mount path: '{dst}' mount path must be absolute"
                )));
            }
            explicit.push(MountPoint {
                kind: "tmpfs".into(),
                name: String::new(),
                source: String::new(),
                destination: clean(dst),
                mode: opts.clone(),
                rw: !opts.split(',').any(|o| o == "ro"),
                no_copy: false,
                tmpfs_options: (!opts.is_empty()).then(|| opts.clone()),
            });
        }
        for (i, a) in explicit.iter().enumerate() {
            if explicit[..i].iter().any(|b| b.destination == a.destination) {
                return Err(invalid(format!("Duplicate mount point: {}", a.destination)));
            }
        }
        let mut out = explicit;
        let taken = |out: &[MountPoint], d: &str| out.iter().any(|m| m.destination == d);
        for from in h.volumes_from.iter().flatten() {
            let (name, mode) = from.split_once(':').unwrap_or((from, ""));
            let rec = self.store.resolve_container(name)?;
            let other = self.view_of(rec)?;
            for m in other.spec.mounts.iter().filter(|m| m.kind != "tmpfs") {
                if !taken(&out, &m.destination) {
                    let mut m = m.clone();
                    match mode {
                        "ro" => m.rw = false,
                        "rw" => m.rw = true,
                        "" => {}
                        x => return Err(invalid(format!("invalid mode: {x}"))),
                    }
                    out.push(m);
                }
            }
        }
        let image_volumes = spec.config.volumes.iter().flatten().map(|(k, _)| k);
        for dst in image_volumes
            .filter(|k| k.starts_with('/'))
            .map(|k| clean(k))
        {
            if !taken(&out, &dst) {
                out.push(MountPoint {
                    kind: "volume".into(),
                    name: String::new(),
                    source: String::new(),
                    destination: dst,
                    mode: String::new(),
                    rw: true,
                    no_copy: false,
                    tmpfs_options: None,
                });
            }
        }
        Ok(out)
    }
    /// At start: the runtime's mounts. Missing bind sources are created (as
    /// `-v` does in Docker); an empty volume gets the image's content.
    pub(super) fn mount_configs(&self, v: &ContainerView) -> Result<Vec<MountConfig>, EngineError> {
        let mut out = Vec::new();
        for m in &v.spec.mounts {
            let (kind, source) = match m.kind.as_str() {
                "bind" => {
                    let p = PathBuf::from(&m.source);
                    if !p.exists() {
                        std::fs::create_dir_all(&p).map_err(|e| {
                            invalid(format!(
                                "error while creating mount source path '{}': {e}",
                                m.source
                            ))
                        })?;
                    }
                    (MountKind::Bind, p)
                }
                "volume" => {
                    self.store.create_volume(&m.name, &BTreeMap::new(), false)?;
                    let data = self.store.volume_dir(&m.name).join("_data");
                    if !m.no_copy && dir_is_empty(&data) {
                        self.copy_image_content(v, &m.destination, &data)?;
                    }
                    (MountKind::Bind, data)
                }
                _ => (MountKind::Tmpfs, PathBuf::new()),
            };
            out.push(MountConfig {
                kind,
                source,
                destination: m.destination.clone(),
                readonly: !m.rw,
                options: m.tmpfs_options.clone(),
            });
        }
        Ok(out)
    }

    fn copy_image_content(
        &self,
        v: &ContainerView,
        path: &str,
        dest: &Path,
    ) -> Result<(), EngineError> {
        let image = self.store.image(&v.rec.image_id)?;
        let rel = path.trim_start_matches('/');
        for layer in self.store.unpacked_layer_dirs(&image)? {
            let src = layer.join(rel);
            if src.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                merge_layer_dir(&src, dest).map_err(|e| {
                    invalid(format!(
                        "failed to copy {path} of the image into its volume: {e}"
                    ))
                })?;
            }
        }
        Ok(())
    }

    /// `Mounts` of inspect.
    pub(super) fn mounts_json(&self, v: &ContainerView) -> Value {
        let items: Vec<Value> = v
            .spec
            .mounts
            .iter()
            .map(|m| {
                let mut o = json!({
                    "Type": m.kind, "Source": m.source, "Destination": m.destination,
                    "Mode": m.mode, "RW": m.rw, "Propagation": "",
                });
                match m.kind.as_str() {
                    "volume" => {
                        o["Name"] = json!(m.name);
                        o["Driver"] = json!("local");
                        o["Source"] = json!(self.store.volume_dir(&m.name).join("_data"));
                    }
                    "bind" => o["Propagation"] = json!("rprivate"),
                    _ => {}
                }
                o
            })
            .collect();
        Value::Array(items)
    }
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

/// Overlay xattr marking a directory that hides lower layers.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    xattr::get(p, OPAQUE_XATTR)
        .ok()
        .flatten()
        .is_some_and(|v| v == b"y")
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match p.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => Ok(()),
    }
}

/// Apply one unpacked layer's directory onto `dest`: whiteouts delete,
/// opaque directories start empty, the rest is copied with modes and owners.
fn merge_layer_dir(src: &Path, dest: &Path) -> std::io::Result<()> {
    let root_meta = src.symlink_metadata()?;
    if is_opaque(src) {
        for e in std::fs::read_dir(dest)?.flatten() {
            remove_any(&e.path())?;
        }
    }
    copy_meta(&root_meta, dest)?;
    for entry in walkdir::WalkDir::new(src).min_depth(1) {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(src)
            .map_err(std::io::Error::other)?;
        let target = dest.join(rel);
        let meta = entry.path().symlink_metadata()?;
        if is_whiteout(&meta) {
            remove_any(&target)?;
            continue;
        }
        if meta.is_dir() {
            if target.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
                remove_any(&target)?;
            }
            if is_opaque(entry.path()) && target.is_dir() {
                std::fs::remove_dir_all(&target)?;
            }
            std::fs::create_dir_all(&target)?;
            copy_meta(&meta, &target)?;
        } else if meta.file_type().is_symlink() {
            remove_any(&target)?;
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
            std::os::unix::fs::lchown(&target, Some(meta.uid()), Some(meta.gid()))?;
        } else if meta.is_file() {
            remove_any(&target)?;
            std::fs::copy(entry.path(), &target)?;
            copy_meta(&meta, &target)?;
        }
    }
    Ok(())
}

fn copy_meta(meta: &std::fs::Metadata, target: &Path) -> std::io::Result<()> {
    std::os::unix::fs::lchown(target, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(
        target,
        std::fs::Permissions::from_mode(meta.mode() & 0o7777),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_specs() {
        let b = parse_bind("/srv/www:/www:ro").unwrap();
        assert_eq!(
            (b.kind.as_str(), b.rw, b.destination.as_str()),
            ("bind", false, "/www")
        );
        let n = parse_bind("data:/var/lib/data/").unwrap();
        assert_eq!((n.kind.as_str(), n.name.as_str()), ("volume", "data"));
        assert_eq!(n.destination, "/var/lib/data");
        let a = parse_bind("/cache").unwrap();
        assert_eq!((a.kind.as_str(), a.name.as_str()), ("volume", ""));
        for (bad, msg) in [
            ("rel/dir:/x", "includes invalid characters"),
            ("/a:rel", "must be absolute"),
            ("/a:/b:xx", "invalid mode: xx"),
            ("/a:/b:ro:x", "invalid volume specification"),
            ("/a:/", "destination can't be '/'"),
        ] {
            let e = parse_bind(bad).unwrap_err().to_string();
            assert!(e.contains(msg), "{bad}: {e}");
        }
    }

    #[test]
    fn layers_merge_with_whiteouts() {
        let d = tempfile::tempdir().unwrap();
        let (l1, l2, out) = (
            d.path().join("l1"),
            d.path().join("l2"),
            d.path().join("out"),
        );
        std::fs::create_dir_all(l1.join("sub")).unwrap();
        std::fs::write(l1.join("a"), "1").unwrap();
        std::fs::write(l1.join("sub/b"), "2").unwrap();
        std::fs::create_dir_all(&l2).unwrap();
        nix::sys::stat::mknod(
            &l2.join("a"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        std::fs::write(l2.join("c"), "3").unwrap();
        std::fs::create_dir_all(&out).unwrap();
        merge_layer_dir(&l1, &out).unwrap();
        merge_layer_dir(&l2, &out).unwrap();
        assert!(!out.join("a").exists());
        assert_eq!(std::fs::read_to_string(out.join("sub/b")).unwrap(), "2");
        assert_eq!(std::fs::read_to_string(out.join("c")).unwrap(), "3");
    }
}
