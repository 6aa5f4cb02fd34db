//! Materialize a captured file list back into a directory (a container's
//! new upper dir): content from chunks, modes, owners, times, symlinks,
//! devices, overlay whiteouts (0/0 char devices) and opaque directories.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path};

use base64::Engine as _;
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use super::manifest::FileEntry;
use super::CaptureError;
use crate::store::Store;

/// The xattr overlayfs marks an opaque directory with.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Write `files` under `dest` (an empty directory).
pub fn materialize(store: &Store, files: &[FileEntry], dest: &Path) -> Result<(), CaptureError> {
    let mut dirs = Vec::new();
    for f in files {
        let rel = safe_relative(&f.path)?;
        let path = dest.join(rel);
        let err = |op: &'static str| {
            let p = f.path.clone();
            move |e: std::io::Error| CaptureError::io(op, &p, e)
        };
        let sys = |op: &'static str| {
            let p = f.path.clone();
            move |e: nix::errno::Errno| CaptureError::io(op, &p, e.into())
        };
        match f.kind.as_str() {
            "dir" => {
                fs::create_dir(&path).map_err(err("create directory"))?;
                dirs.push((f, path.clone()));
            }
            "file" => {
                let mut out = File::create(&path).map_err(err("create file"))?;
                for d in &f.chunks {
                    out.write_all(&store.read_blob(d)?)
                        .map_err(err("write file"))?;
                }
            }
            "symlink" => {
                symlink(f.target.as_deref().unwrap_or_default(), &path)
                    .map_err(err("create symlink"))?;
            }
            "whiteout" => {
                mknod(&path, SFlag::S_IFCHR, Mode::empty(), 0).map_err(sys("create whiteout"))?
            }
            "char" | "block" => {
                let kind = if f.kind == "char" {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                mknod(
                    &path,
                    kind,
                    Mode::from_bits_truncate(f.mode & 0o7777),
                    f.rdev.unwrap_or(0),
                )
                .map_err(sys("create device"))?
            }
            "fifo" => nix::unistd::mkfifo(&path, Mode::from_bits_truncate(f.mode & 0o7777))
                .map_err(sys("create fifo"))?,
            // A socket is not content: it is recreated by its owner.
            _ => continue,
        }
        std::os::unix::fs::lchown(&path, Some(f.uid), Some(f.gid)).map_err(err("chown"))?;
        for (name, value) in &f.xattrs {
            let v = base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|e| {
                    CaptureError::Invalid(format!("bad xattr {name} of {}: {e}", f.path))
                })?;
            xattr::set(&path, name, &v).map_err(err("set xattr on"))?;
        }
        if f.opaque {
            xattr::set(&path, OPAQUE_XATTR, b"y").map_err(err("mark opaque"))?;
        }
        if f.kind != "dir" {
            finish_entry(f, &path)?;
        }
    }
    // Directories last, deepest first: creating children changes their mtime.
    for (f, path) in dirs.iter().rev() {
        finish_entry(f, path)?;
    }
    Ok(())
}

/// Mode (not for symlinks) and modification time.
fn finish_entry(f: &FileEntry, path: &Path) -> Result<(), CaptureError> {
    if f.kind != "symlink" {
        fs::set_permissions(path, fs::Permissions::from_mode(f.mode & 0o7777))
            .map_err(|e| CaptureError::io("chmod", &f.path, e))?;
    }
    let t = TimeSpec::new(
        f.mtime_ns.div_euclid(1_000_000_000),
        f.mtime_ns.rem_euclid(1_000_000_000),
    );
    utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| CaptureError::io("set times of", &f.path, e.into()))
}

/// A file list path must stay inside the directory it is restored into.
pub fn safe_relative(p: &str) -> Result<&Path, CaptureError> {
    let path = Path::new(p);
    let ok = !p.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(path)
    } else {
        Err(CaptureError::Invalid(format!(
            "refusing file list path {p:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_stay_inside() {
        for (p, ok) in [
            ("a/b", true),
            ("a", true),
            ("../a", false),
            ("/etc", false),
            ("a/../../b", false),
            ("", false),
            ("./a", false),
        ] {
            assert_eq!(safe_relative(p).is_ok(), ok, "{p}");
        }
    }
}
