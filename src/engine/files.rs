//! A container's files: `cp` (archive endpoints), `diff`, `export`.
//!
//! A running container is reached through `/proc/<pid>/root` (its own mount
//! namespace); a stopped one gets its overlay mounted for the duration of
//! the operation. Every path is resolved inside that root by
//! `archive::copy` (openat2 `RESOLVE_IN_ROOT`), so nothing outside it is
//! read or written.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{lock, Engine, EngineError};
use crate::archive::changes::{changes, Change};
use crate::archive::copy::{self, CopyOptions, PathStat};
use crate::runtime::Status;

/// Where short overlay lower-dir links for temporary mounts live: overlay's
/// mount options are limited to one page, so layer paths are kept short.
const MOUNT_LINKS_DIR: &str = "/run/amber/mnt";

impl Engine {
    /// Run `f` on the container's root filesystem as the container sees it.
    pub(super) fn with_rootfs<T>(
        &self,
        name: &str,
        f: impl FnOnce(&Path) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let v = self.container_view(name)?;
        if let (Status::Running | Status::Paused, Some(pid)) = (v.state.status, v.state.pid) {
            return f(Path::new(&format!("/proc/{pid}/root")));
        }
        // One temporary mount at a time per data root: the work dir is shared.
        let _guard = lock(&self.mount_lock);
        let image = self.store.image(&v.rec.image_id)?;
        let dir = self.store.container_dir(&v.rec.id);
        let mut lowers = self.store.unpacked_layer_dirs(&image)?;
        lowers.reverse();
        let mount = TempMount::new(
            &lowers,
            &dir.join("upper"),
            &dir.join("work"),
            &dir.join("rootfs"),
        )?;
        let result = f(&mount.target);
        drop(mount);
        result
    }

    /// `HEAD /containers/{id}/archive`.
    pub fn stat_in_container(&self, name: &str, path: &str) -> Result<PathStat, EngineError> {
        self.with_rootfs(name, |root| Ok(copy::stat_path(root, path)?))
    }

    /// `GET /containers/{id}/archive`: a tar of `path` written to `out`.
    pub fn archive_from_container(
        &self,
        name: &str,
        path: &str,
        out: impl Write,
    ) -> Result<PathStat, EngineError> {
        self.with_rootfs(name, |root| Ok(copy::write_tar_of(root, path, out)?))
    }

    /// `PUT /containers/{id}/archive`: unpack a tar into the directory `path`.
    pub fn extract_to_container<R: Read + Send + 'static>(
        &self,
        name: &str,
        path: &str,
        input: R,
        opts: &CopyOptions,
    ) -> Result<(), EngineError> {
        self.with_rootfs(name, |root| {
            Ok(copy::extract_tar_into(root, path, input, opts)?)
        })
    }

    /// `GET /containers/{id}/export`: the whole filesystem as a tar.
    pub fn export_container(&self, name: &str, out: impl Write) -> Result<(), EngineError> {
        self.with_rootfs(name, |root| {
            copy::write_tar_one_fs(root, "/.", out)?;
            Ok(())
        })
    }

    /// `GET /containers/{id}/changes`: what the writable layer changed.
    pub fn container_changes(&self, name: &str) -> Result<Vec<Change>, EngineError> {
        let v = self.container_view(name)?;
        let image = self.store.image(&v.rec.image_id)?;
        let mut lowers = self.store.unpacked_layer_dirs(&image)?;
        lowers.reverse();
        let upper = self.store.container_dir(&v.rec.id).join("upper");
        Ok(hide_runtime_files(changes(&upper, &lowers)?))
    }
}

/// The files the runtime bind-mounts over (`/etc/hostname`, `hosts`,
/// `resolv.conf`) are not the user's changes: Docker's diff omits them, and
/// `/etc` itself when nothing else in it changed.
fn hide_runtime_files(list: Vec<Change>) -> Vec<Change> {
    const MOUNTED: [&str; 3] = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];
    let mut out: Vec<Change> = list
        .into_iter()
        .filter(|c| {
            !(MOUNTED.contains(&c.path.as_str())
                && c.kind == crate::archive::changes::ChangeKind::Added)
        })
        .collect();
    let etc_used = out.iter().any(|c| c.path.starts_with("/etc/"));
    out.retain(|c| {
        c.path != "/etc" || etc_used || c.kind != crate::archive::changes::ChangeKind::Modified
    });
    out
}

/// An overlay mounted on the host for one operation; unmounted on drop.
struct TempMount {
    target: PathBuf,
    links: PathBuf,
}

impl TempMount {
    fn new(
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<TempMount, EngineError> {
        let io = |what: &str, p: &Path, e: std::io::Error| {
            EngineError::InvalidArgument(format!("failed to {what} {}: {e}", p.display()))
        };
        let links = PathBuf::from(MOUNT_LINKS_DIR).join(crate::store::random_hex(4));
        std::fs::create_dir_all(&links).map_err(|e| io("create", &links, e))?;
        let mut lowerdir = Vec::new();
        for (i, l) in lowers.iter().enumerate() {
            let link = links.join(i.to_string());
            std::os::unix::fs::symlink(l, &link).map_err(|e| io("link", &link, e))?;
            lowerdir.push(link.display().to_string());
        }
        std::fs::create_dir_all(target).map_err(|e| io("create", target, e))?;
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowerdir.join(":"),
            upper.display(),
            work.display()
        );
        let mounted = nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        );
        if let Err(e) = mounted {
            let _ = std::fs::remove_dir_all(&links);
            return Err(EngineError::InvalidArgument(format!(
                "failed to mount the container's filesystem at {}: {e}",
                target.display()
            )));
        }
        Ok(TempMount {
            target: target.to_path_buf(),
            links,
        })
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.target, nix::mount::MntFlags::MNT_DETACH) {
            tracing::error!(path = %self.target.display(), error = %e, "failed to unmount a temporary container mount");
        }
        let _ = std::fs::remove_dir_all(&self.links);
    }
}
