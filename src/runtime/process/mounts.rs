//! The caller's extra mounts (binds of host paths, volumes, tmpfs), made
//! inside the new root before `pivot_root`. Destinations are resolved
//! inside the root: a symlink in the image can never point a mount at a
//! host path (the same guard as CVE-2021-30465's fix in runc).

use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::runtime::config::{MountConfig, MountKind};
use crate::runtime::error::{Result, RuntimeError};

/// Symlinks followed while resolving one destination (Linux's MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// `path` (absolute, inside the container) as a host path under `root`,
/// following symlinks as if `root` were `/`. Missing components are kept
/// as they are (they will be created).
pub fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf> {
    let mut todo: Vec<PathBuf> = vec![PathBuf::from(path)];
    let mut cur = PathBuf::new();
    let mut links = 0;
    let mut pending: Vec<String> = Vec::new();
    // Components left to walk, in reverse order (a stack).
    if let Some(p) = todo.pop() {
        pending.extend(components(&p).into_iter().rev());
    }
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "." => {}
            ".." => {
                cur.pop();
            }
            name => {
                let next = cur.join(name);
                let host = root.join(&next);
                match host.symlink_metadata() {
                    Ok(m) if m.file_type().is_symlink() => {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(RuntimeError::InvalidConfig(format!(
                                "too many symlinks resolving {path}"
                            )));
                        }
                        let target = std::fs::read_link(&host)
                            .map_err(|e| RuntimeError::io("readlink", &host, e))?;
                        if target.is_absolute() {
                            cur = PathBuf::new();
                        }
                        pending.extend(components(&target).into_iter().rev());
                    }
                    _ => cur = next,
                }
            }
        }
    }
    Ok(root.join(cur))
}

fn components(p: &Path) -> Vec<String> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

fn sys(op: String) -> impl FnOnce(nix::Error) -> RuntimeError {
    move |e| RuntimeError::sys(op, e)
}

/// Make every mount under `root`, in order (a later one may sit on an
/// earlier one).
pub fn mount_all(root: &Path, mounts: &[MountConfig]) -> Result<()> {
    for m in mounts {
        let target = resolve_in_root(root, &m.destination)?;
        match m.kind {
            MountKind::Bind => bind(m, &target)?,
            MountKind::Tmpfs => {
                ensure_dir(&target)?;
                let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                if m.readonly {
                    flags |= MsFlags::MS_RDONLY;
                }
                mount(
                    Some("tmpfs"),
                    &target,
                    Some("tmpfs"),
                    flags,
                    m.options.as_deref(),
                )
                .map_err(sys(format!("mount tmpfs on {}", m.destination)))?;
            }
        }
    }
    Ok(())
}

fn ensure_dir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| RuntimeError::io("create", p, e))
}

fn bind(m: &MountConfig, target: &Path) -> Result<()> {
    let src = &m.source;
    let meta = src.metadata().map_err(|e| RuntimeError::StartFailed {
        message: format!(
            "error mounting \"{}\" to rootfs at \"{}\": {e}",
            src.display(),
            m.destination
        ),
        exit_code: 126,
    })?;
    if meta.is_dir() {
        ensure_dir(target)?;
    } else if target.symlink_metadata().is_err() {
        if let Some(d) = target.parent() {
            ensure_dir(d)?;
        }
        std::fs::write(target, b"").map_err(|e| RuntimeError::io("create", target, e))?;
    }
    mount(
        Some(src.as_path()),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys(format!("bind {} on {}", src.display(), m.destination)))?;
    if m.readonly {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(sys(format!("remount {} read-only", m.destination)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("real/dir")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("real/up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/abs/dir").unwrap(),
            root.join("real/dir")
        );
        assert_eq!(
            resolve_in_root(root, "/real/up/x").unwrap(),
            root.join("etc/x")
        );
        assert_eq!(
            resolve_in_root(root, "/new/../data").unwrap(),
            root.join("data")
        );
        assert!(resolve_in_root(root, "/loop/x").is_err());
    }
}
