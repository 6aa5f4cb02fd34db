//! Unpack a layer tar into a directory, refusing anything that could write
//! outside it, and translating OCI whiteouts into overlayfs's form.
//!
//! Rules (see docs/archive.md): no absolute entry paths and no `..`; no
//! entry is written through a symlink; relative symlink targets may not
//! climb above the root (absolute targets are kept: they resolve inside the
//! container's root, and extraction never follows them); hardlink targets
//! must be earlier entries inside the root; device nodes only when allowed.
//! OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) become overlay whiteouts
//! (character device 0/0, `trusted.overlay.opaque=y`); see
//! <https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts>.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;
use tar::{Archive, Entry, EntryType};

use super::hash::HashingReader;
use super::split::{Recorder, RecordingReader};
use super::writeback::WritebackWriter;
use super::{compress, ArchiveError};
use crate::types::Digest;

/// OCI whiteout prefix.
pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";
/// Longest entry name accepted (PATH_MAX).
const MAX_NAME: usize = 4096;
/// OCI opaque-directory marker.
pub(crate) const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The overlayfs xattr marking an opaque directory.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// How to unpack.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Create character and block devices (privileged imports only).
    pub allow_devices: bool,
    /// Record a tar-split file here (see [`super::split`]) so the exact tar
    /// can be written again; entries that replace an earlier entry of the
    /// same tar are then refused (the earlier content would be lost).
    pub split: Option<PathBuf>,
    /// Do not hash the stream: the caller wrote it and knows its digest
    /// (`ExtractSummary::diff_id` is then the empty stream's).
    pub skip_digest: bool,
}

/// What an extraction produced.
#[derive(Debug, Clone)]
pub struct ExtractSummary {
    /// sha256 of the uncompressed tar stream (the layer's diff_id).
    pub diff_id: Digest,
    /// Length of the uncompressed tar stream.
    pub tar_size: u64,
    /// Entries unpacked.
    pub entries: u64,
}

/// Unpack the (uncompressed) tar `input` into the existing directory `dest`.
pub fn extract_layer<R: Read>(
    input: R,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractSummary, ArchiveError> {
    let recorder = opts.split.as_deref().map(Recorder::create).transpose()?;
    let input = match &recorder {
        Some(r) => r.reader(input),
        None => RecordingReader::plain(input),
    };
    let input = if opts.skip_digest {
        HashingReader::counting_only(input)
    } else {
        HashingReader::new(input)
    };
    let mut archive = Archive::new(input);
    let mut unpacker = Unpacker {
        root: dest,
        opts,
        verified_dirs: HashSet::new(),
        deferred_dirs: Vec::new(),
        entries: 0,
        recorder: recorder.clone(),
    };
    let iter = archive.entries().map_err(corrupt)?;
    for entry in iter {
        let mut entry = entry.map_err(corrupt)?;
        unpacker.unpack(&mut entry)?;
    }
    unpacker.finish_dirs()?;
    let entries = unpacker.entries;
    drop(unpacker);
    let (diff_id, tar_size) = archive.into_inner().finish().map_err(corrupt)?;
    if let (Some(r), Some(path)) = (recorder, &opts.split) {
        r.finish().map_err(io_err("write", path))?;
    }
    Ok(ExtractSummary {
        diff_id,
        tar_size,
        entries,
    })
}

fn corrupt(source: io::Error) -> ArchiveError {
    ArchiveError::Corrupt { source }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ArchiveError + 'a {
    move |source| ArchiveError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn nix_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(nix::Error) -> ArchiveError + 'a {
    move |e| ArchiveError::Io {
        op,
        path: path.to_path_buf(),
        source: io::Error::from(e),
    }
}

/// Metadata to apply to a directory once all its children are written.
struct DeferredDir {
    path: PathBuf,
    mode: u32,
    mtime: u64,
}

struct Unpacker<'a> {
    root: &'a Path,
    opts: &'a ExtractOptions,
    /// Relative directories known to be real directories (not symlinks).
    verified_dirs: HashSet<PathBuf>,
    deferred_dirs: Vec<DeferredDir>,
    entries: u64,
    recorder: Option<Recorder>,
}

/// Turn an archive path into a clean relative path, or refuse it.
pub(crate) fn sanitize(raw: &Path) -> Result<PathBuf, ArchiveError> {
    let unsafe_path = |reason| ArchiveError::UnsafePath {
        path: raw.display().to_string(),
        reason,
    };
    if raw.as_os_str().len() > MAX_NAME {
        let shown: String = raw.display().to_string().chars().take(64).collect();
        return Err(ArchiveError::UnsafePath {
            path: format!("{shown}..."),
            reason: "is longer than 4096 bytes",
        });
    }
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_path("contains a '..' component")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_path("is an absolute path"))
            }
        }
    }
    Ok(out)
}

/// Whether a relative symlink at `link` (relative path) pointing to
/// `target` stays inside the root when resolved lexically.
pub(crate) fn symlink_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

impl Unpacker<'_> {
    fn unpack<R: Read>(&mut self, entry: &mut Entry<'_, R>) -> Result<(), ArchiveError> {
        let raw = entry.path().map_err(corrupt)?.into_owned();
        let rel = sanitize(&raw)?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName
        ) {
            return Ok(());
        }
        self.entries += 1;
        if rel.as_os_str().is_empty() {
            return self.defer_root_dir(entry);
        }
        self.ensure_parents(&rel)?;
        let name = rel.file_name().unwrap_or_default().to_string_lossy();
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            return self.whiteout(&raw, &rel, target);
        }
        let path = self.root.join(&rel);
        match kind {
            EntryType::Directory => return self.directory(entry, &rel, &path),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let file = self.create_file(&rel, &path)?;
                // Sparse entries' archived bytes are not the file's: keep
                // them raw in the split.
                if let (Some(r), false) = (&self.recorder, kind == EntryType::GNUSparse) {
                    r.file(&rel, entry.size())?;
                }
                let file = self.regular(entry, &raw, file)?;
                // Metadata through the new file's descriptor: no path walk.
                return apply_file_metadata(entry, &file, &path);
            }
            EntryType::Symlink => self.symlink(entry, &raw, &rel, &path)?,
            EntryType::Link => return self.hardlink(entry, &rel, &path),
            EntryType::Char | EntryType::Block => self.device(entry, &raw, &rel, &path)?,
            EntryType::Fifo => {
                self.replace(&rel, &path)?;
                nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600))
                    .map_err(nix_err("create fifo", &path))?;
            }
            _ => {
                return Err(ArchiveError::UnsafePath {
                    path: raw.display().to_string(),
                    reason: "has an unsupported entry type",
                })
            }
        }
        apply_metadata(entry, &path, kind != EntryType::Symlink)
    }

    /// Create missing parents of `rel` and refuse to go through symlinks.
    fn ensure_parents(&mut self, rel: &Path) -> Result<(), ArchiveError> {
        let mut cur = PathBuf::new();
        let parents: Vec<_> = rel
            .parent()
            .map(|p| p.components().collect())
            .unwrap_or_default();
        for c in parents {
            cur.push(c);
            if self.verified_dirs.contains(&cur) {
                continue;
            }
            let full = self.root.join(&cur);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(ArchiveError::UnsafePath {
                        path: rel.display().to_string(),
                        reason: "goes through a symlink or non-directory",
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&full).map_err(io_err("create directory", &full))?;
                }
                Err(e) => return Err(io_err("inspect", &full)(e)),
            }
            self.verified_dirs.insert(cur.clone());
        }
        Ok(())
    }

    /// Remove whatever exists at `path` so a new non-directory can take it.
    fn replace(&mut self, rel: &Path, path: &Path) -> Result<(), ArchiveError> {
        self.verified_dirs.remove(rel);
        let existing = fs::symlink_metadata(path);
        if self.recorder.is_some() && existing.is_ok() {
            return Err(ArchiveError::UnsafePath {
                path: rel.display().to_string(),
                reason: "appears twice in the layer (duplicate entry)",
            });
        }
        match existing {
            Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_err("replace", path)),
            Ok(_) => fs::remove_file(path).map_err(io_err("replace", path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("inspect", path)(e)),
        }
    }

    fn directory<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        rel: &Path,
        path: &Path,
    ) -> Result<(), ArchiveError> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                self.replace(rel, path)?;
                fs::create_dir(path).map_err(io_err("create directory", path))?;
            }
            Err(_) => fs::create_dir(path).map_err(io_err("create directory", path))?,
        }
        self.verified_dirs.insert(rel.to_path_buf());
        apply_owner_xattrs(entry, path)?;
        let h = entry.header();
        self.deferred_dirs.push(DeferredDir {
            path: path.to_path_buf(),
            mode: h.mode().map_err(corrupt)?,
            mtime: h.mtime().map_err(corrupt)?,
        });
        Ok(())
    }

    fn defer_root_dir<R: Read>(&mut self, entry: &mut Entry<'_, R>) -> Result<(), ArchiveError> {
        let h = entry.header();
        self.deferred_dirs.push(DeferredDir {
            path: self.root.to_path_buf(),
            mode: h.mode().map_err(corrupt)?,
            mtime: h.mtime().map_err(corrupt)?,
        });
        Ok(())
    }

    /// Create a new regular file at `path` (`O_EXCL | O_NOFOLLOW`: never
    /// through a symlink). Whatever is there already is handled by
    /// [`Unpacker::replace`] (an error when a tar-split is recorded), so
    /// the common case costs one `openat`, no `stat`.
    fn create_file(&mut self, rel: &Path, path: &Path) -> Result<std::fs::File, ArchiveError> {
        let open = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
        };
        match open() {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.replace(rel, path)?;
                open().map_err(io_err("create", path))
            }
            r => r.map_err(io_err("create", path)),
        }
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        raw: &Path,
        file: std::fs::File,
    ) -> Result<std::fs::File, ArchiveError> {
        let want = entry.size();
        let mut file = WritebackWriter::new(file);
        let got = io::copy(entry, &mut file).map_err(|e| {
            if compress::is_truncation(&e) {
                ArchiveError::Truncated {
                    path: raw.display().to_string(),
                    got: 0,
                    want,
                }
            } else {
                corrupt(e)
            }
        })?;
        if got != want {
            return Err(ArchiveError::Truncated {
                path: raw.display().to_string(),
                got,
                want,
            });
        }
        Ok(file.into_inner())
    }

    fn symlink<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        raw: &Path,
        rel: &Path,
        path: &Path,
    ) -> Result<(), ArchiveError> {
        let target = entry
            .link_name()
            .map_err(corrupt)?
            .ok_or_else(|| ArchiveError::UnsafePath {
                path: raw.display().to_string(),
                reason: "is a symlink without a target",
            })?
            .into_owned();
        if !symlink_stays_inside(rel, &target) {
            return Err(ArchiveError::UnsafePath {
                path: format!("{} -> {}", raw.display(), target.display()),
                reason: "is a symlink pointing outside the layer",
            });
        }
        self.replace(rel, path)?;
        std::os::unix::fs::symlink(&target, path).map_err(io_err("create symlink", path))
    }

    fn hardlink<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        rel: &Path,
        path: &Path,
    ) -> Result<(), ArchiveError> {
        let raw_target = entry
            .link_name()
            .map_err(corrupt)?
            .map(|t| t.into_owned())
            .unwrap_or_default();
        let target_rel = sanitize(&raw_target).map_err(|_| ArchiveError::UnsafePath {
            path: format!("{} => {}", rel.display(), raw_target.display()),
            reason: "is a hardlink pointing outside the layer",
        })?;
        let target = self.root.join(&target_rel);
        let not_inside = || ArchiveError::UnsafePath {
            path: format!("{} => {}", rel.display(), raw_target.display()),
            reason: "is a hardlink to a file that is not earlier in the layer",
        };
        if target_rel.as_os_str().is_empty() || target_rel == rel {
            return Err(not_inside());
        }
        self.ensure_parents(&target_rel).map_err(|_| not_inside())?;
        match fs::symlink_metadata(&target) {
            Ok(m) if !m.is_dir() => {}
            _ => return Err(not_inside()),
        }
        self.replace(rel, path)?;
        fs::hard_link(&target, path).map_err(io_err("create hardlink", path))
    }

    fn device<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        raw: &Path,
        rel: &Path,
        path: &Path,
    ) -> Result<(), ArchiveError> {
        if !self.opts.allow_devices {
            return Err(ArchiveError::Device {
                path: raw.display().to_string(),
            });
        }
        let h = entry.header();
        let major = h.device_major().map_err(corrupt)?.unwrap_or(0);
        let minor = h.device_minor().map_err(corrupt)?.unwrap_or(0);
        let kind = if h.entry_type() == EntryType::Char {
            SFlag::S_IFCHR
        } else {
            SFlag::S_IFBLK
        };
        self.replace(rel, path)?;
        let dev = nix::sys::stat::makedev(major.into(), minor.into());
        mknod(path, kind, Mode::from_bits_truncate(0o600), dev).map_err(nix_err("mknod", path))
    }

    /// `.wh.NAME` → overlay whiteout for NAME; `.wh..wh..opq` → opaque parent.
    fn whiteout(&mut self, raw: &Path, rel: &Path, target: &str) -> Result<(), ArchiveError> {
        let parent = self.root.join(rel.parent().unwrap_or(Path::new("")));
        if rel.file_name() == Some(OsStr::new(OPAQUE_MARKER)) {
            return xattr::set(&parent, OVERLAY_OPAQUE_XATTR, b"y")
                .map_err(io_err("mark opaque", &parent));
        }
        if target.is_empty() || target == "." || target == ".." || target.contains('/') {
            return Err(ArchiveError::UnsafePath {
                path: raw.display().to_string(),
                reason: "is an invalid whiteout",
            });
        }
        let victim_rel = rel.with_file_name(target);
        let victim = self.root.join(&victim_rel);
        self.replace(&victim_rel, &victim)?;
        mknod(&victim, SFlag::S_IFCHR, Mode::empty(), 0)
            .map_err(nix_err("create whiteout", &victim))
    }

    fn finish_dirs(&mut self) -> Result<(), ArchiveError> {
        for d in self.deferred_dirs.drain(..).rev() {
            fs::set_permissions(&d.path, fs::Permissions::from_mode(d.mode & 0o7777))
                .map_err(io_err("set mode of", &d.path))?;
            set_mtime(&d.path, d.mtime)?;
        }
        Ok(())
    }
}

fn apply_owner_xattrs<R: Read>(entry: &mut Entry<'_, R>, path: &Path) -> Result<(), ArchiveError> {
    let h = entry.header();
    let uid = h.uid().map_err(corrupt)? as u32;
    let gid = h.gid().map_err(corrupt)? as u32;
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_err("chown", path))?;
    for (name, value) in archive_xattrs(entry)? {
        xattr::set(path, &name, &value).map_err(io_err("set xattr on", path))?;
    }
    Ok(())
}

/// [`apply_metadata`] for a regular file just written, through its
/// descriptor (`fchown`, `fsetxattr`, `fchmod`, `futimens`).
fn apply_file_metadata<R: Read>(
    entry: &mut Entry<'_, R>,
    file: &std::fs::File,
    path: &Path,
) -> Result<(), ArchiveError> {
    use std::os::fd::AsRawFd;
    use xattr::FileExt as _;
    let h = entry.header();
    let uid = h.uid().map_err(corrupt)? as u32;
    let gid = h.gid().map_err(corrupt)? as u32;
    let mode = h.mode().map_err(corrupt)? & 0o7777;
    let mtime = h.mtime().map_err(corrupt)?;
    std::os::unix::fs::fchown(file, Some(uid), Some(gid)).map_err(io_err("chown", path))?;
    for (name, value) in archive_xattrs(entry)? {
        file.set_xattr(&name, &value)
            .map_err(io_err("set xattr on", path))?;
    }
    // chmod after chown: chown clears setuid/setgid bits.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err("set mode of", path))?;
    let t = TimeSpec::new(mtime as i64, 0);
    nix::sys::stat::futimens(file.as_raw_fd(), &t, &t).map_err(nix_err("set mtime of", path))
}

/// The PAX `SCHILY.xattr.*` attributes of an entry, without overlay's own
/// (`trusted.overlay.*` come only from whiteout translation: an archive
/// must not forge opaque dirs or redirects).
fn archive_xattrs<R: Read>(
    entry: &mut Entry<'_, R>,
) -> Result<Vec<(String, Vec<u8>)>, ArchiveError> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(corrupt)? {
        for ext in exts {
            let ext = ext.map_err(corrupt)?;
            let Ok(key) = ext.key() else { continue };
            let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
                continue;
            };
            if name.starts_with("trusted.overlay.") {
                continue;
            }
            out.push((name.to_string(), ext.value_bytes().to_vec()));
        }
    }
    Ok(out)
}

fn apply_metadata<R: Read>(
    entry: &mut Entry<'_, R>,
    path: &Path,
    follows_mode: bool,
) -> Result<(), ArchiveError> {
    apply_owner_xattrs(entry, path)?;
    let h = entry.header();
    if follows_mode {
        // chmod after chown: chown clears setuid/setgid bits.
        let mode = h.mode().map_err(corrupt)? & 0o7777;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(io_err("set mode of", path))?;
    }
    set_mtime(path, h.mtime().map_err(corrupt)?)
}

fn set_mtime(path: &Path, mtime: u64) -> Result<(), ArchiveError> {
    let t = TimeSpec::new(mtime as i64, 0);
    nix::sys::stat::utimensat(
        None,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(nix_err("set mtime of", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_paths() {
        assert_eq!(sanitize(Path::new("./a/b")).unwrap(), PathBuf::from("a/b"));
        assert_eq!(sanitize(Path::new("./")).unwrap(), PathBuf::new());
        assert!(sanitize(Path::new("../x")).is_err());
        assert!(sanitize(Path::new("a/../../x")).is_err());
        assert!(sanitize(Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn symlink_escape_rules() {
        let ok = [
            ("bin/sh", "busybox"),
            ("usr/bin/env", "../../bin/busybox"),
            ("a", "/etc/x"),
        ];
        for (l, t) in ok {
            assert!(
                symlink_stays_inside(Path::new(l), Path::new(t)),
                "{l} -> {t}"
            );
        }
        let bad = [("a", ".."), ("bin/sh", "../../etc"), ("x", "a/../../b")];
        for (l, t) in bad {
            assert!(
                !symlink_stays_inside(Path::new(l), Path::new(t)),
                "{l} -> {t}"
            );
        }
    }
}
