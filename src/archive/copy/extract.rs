//! Tar into a container (`PUT /containers/{id}/archive`): every entry is
//! created with `*at` calls below the destination's descriptor.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use tar::{EntryType, Header};

use super::resolve::{
    is_type, joined, lookup_err, lstatat, open_in_root, open_root, openat, own, read_names,
    resolve_display, ContainerPath,
};
use crate::archive::ArchiveError;

/// How `PUT /containers/{id}/archive` unpacks; the query parameters of the
/// same names.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// `noOverwriteDirNonDir`: refuse to replace a directory with a
    /// non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID`: keep the archive's owners; otherwise everything
    /// unpacked is owned by root, as Docker does.
    pub copy_uid_gid: bool,
}

/// Unpack the tar `input` (plain, gzip or zstd) into the existing directory
/// `dest_dir` of the container rooted at `root` (`docker cp SRC CTR:DEST`).
///
/// A missing destination is [`ArchiveError::NotFound`], one that is not a
/// directory [`ArchiveError::NotADirectory`]. Entries with `..` or absolute
/// names, relative symlinks climbing above the destination, hardlinks to
/// anything but an earlier entry, and device nodes are refused. Parents
/// that are symlinks already in the container are followed as in a chroot:
/// by the kernel, inside `root`.
pub fn extract_tar_into<R: Read + Send + 'static>(
    root: &Path,
    dest_dir: &str,
    input: R,
    opts: &CopyOptions,
) -> Result<(), ArchiveError> {
    let root_fd = open_root(root)?;
    let dest = ContainerPath::parse(dest_dir);
    // O_DIRECTORY fails with ENOTDIR before a FIFO could block the open.
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let dest_fd =
        open_in_root(&root_fd, &joined(&dest.parts), flags).map_err(|e| lookup_err(e, dest_dir))?;
    let base = resolve_display(&root_fd, &dest.parts).map_err(|e| lookup_err(e, dest_dir))?;
    let (_, reader) = crate::archive::decompress(input)?;
    let mut unpacker = Unpacker {
        root: root_fd,
        dest: dest_fd,
        base,
        opts,
        cached: None,
        dir_times: Vec::new(),
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(corrupt)? {
        unpacker.unpack(&mut entry.map_err(corrupt)?)?;
    }
    unpacker.finish()
}

fn corrupt(source: io::Error) -> ArchiveError {
    ArchiveError::Corrupt { source }
}

fn entry_err<'a>(op: &'static str, raw: &'a str) -> impl FnOnce(Errno) -> ArchiveError + 'a {
    move |e| ArchiveError::Io {
        op,
        path: raw.into(),
        source: e.into(),
    }
}

fn unsafe_entry(raw: &str, reason: &'static str) -> ArchiveError {
    ArchiveError::UnsafePath {
        path: raw.into(),
        reason,
    }
}

/// How to open a directory below the destination.
#[derive(Clone, Copy, PartialEq)]
enum Walk {
    /// Create missing directories (0755, like Docker's `MkdirAll`) and
    /// follow symlinks already in the container, inside the root.
    Create,
    /// Follow symlinks inside the root, create nothing.
    Follow,
    /// Only real directories: no symlink, nothing created.
    Strict,
}

struct Unpacker<'a> {
    root: OwnedFd,
    dest: OwnedFd,
    /// The destination's container path, to resolve symlinks met below it.
    base: PathBuf,
    opts: &'a CopyOptions,
    /// The last directory opened with `Walk::Create`, by relative path.
    cached: Option<(PathBuf, OwnedFd)>,
    /// Directory mtimes, set once all entries are written.
    dir_times: Vec<(PathBuf, u64)>,
}

impl Unpacker<'_> {
    fn unpack<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ArchiveError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw_path = entry.path().map_err(corrupt)?.into_owned();
        let raw = raw_path.display().to_string();
        let rel = crate::archive::extract::sanitize(&raw_path)?;
        let name = rel.file_name().unwrap_or(OsStr::new(".")).to_os_string();
        if name == "." && kind != EntryType::Directory {
            return Err(unsafe_entry(
                &raw,
                "would replace the destination directory",
            ));
        }
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let parent = self.open_dir(parent_rel, &raw, Walk::Create)?;
        let dir = parent.as_raw_fd();
        match kind {
            EntryType::Directory => self.directory(entry, &rel, dir, &name, &raw),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.make_room(dir, &name, &rel, &raw, false)?;
                self.regular(entry, dir, &name, &raw)
            }
            EntryType::Symlink => self.symlink(entry, &rel, dir, &name, &raw),
            EntryType::Link => self.hardlink(entry, &rel, dir, &name, &raw),
            EntryType::Fifo => {
                self.make_room(dir, &name, &rel, &raw, false)?;
                nix::unistd::mkfifoat(Some(dir), name.as_os_str(), Mode::from_bits_truncate(0o600))
                    .map_err(entry_err("create fifo", &raw))?;
                // O_NONBLOCK: opening a FIFO for reading must not wait for
                // a writer.
                let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW;
                let fd = openat(dir, &name, flags).map_err(entry_err("open", &raw))?;
                self.set_owner_mode(&fd, entry.header(), &raw)?;
                set_times(&fd, entry.header().mtime().map_err(corrupt)?, &raw)
            }
            EntryType::Char | EntryType::Block => Err(ArchiveError::Device { path: raw }),
            _ => Err(unsafe_entry(&raw, "has an unsupported entry type")),
        }
    }

    /// Open the directory `rel` below the destination.
    fn open_dir(&mut self, rel: &Path, raw: &str, walk: Walk) -> Result<OwnedFd, ArchiveError> {
        let dup = |fd: &OwnedFd| {
            fd.try_clone().map_err(|source| ArchiveError::Io {
                op: "duplicate descriptor for",
                path: raw.into(),
                source,
            })
        };
        if let Some((p, fd)) = &self.cached {
            if walk == Walk::Create && p == rel {
                return dup(fd);
            }
        }
        let mut cur = dup(&self.dest)?;
        let mut walked = self.base.clone();
        for c in rel.iter() {
            walked.push(c);
            cur = self
                .step(&cur, c, &walked, walk)
                .map_err(entry_err("open parent directory of", raw))?;
        }
        if walk == Walk::Create {
            self.cached = Some((rel.to_path_buf(), dup(&cur)?));
        }
        Ok(cur)
    }

    /// The directory `name` in `dir`, whose container path is `walked`.
    fn step(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        walked: &Path,
        walk: Walk,
    ) -> Result<OwnedFd, Errno> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
        match openat(dir.as_raw_fd(), name, flags) {
            Err(Errno::ENOENT) if walk == Walk::Create => {
                let mode = Mode::from_bits_truncate(0o755);
                match nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, mode) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                openat(dir.as_raw_fd(), name, flags)
            }
            // A symlink (or a non-directory): let the kernel resolve the
            // whole path with the container root as `/`.
            Err(Errno::ELOOP | Errno::ENOTDIR) if walk != Walk::Strict => {
                open_in_root(&self.root, walked, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            }
            r => r,
        }
    }

    /// Clear the way for a new `name` in `dir`; `Ok(true)` when an existing
    /// directory is to be merged with a directory entry.
    fn make_room(
        &mut self,
        dir: RawFd,
        name: &OsStr,
        rel: &Path,
        raw: &str,
        dir_entry: bool,
    ) -> Result<bool, ArchiveError> {
        let st = match lstatat(dir, name) {
            Err(Errno::ENOENT) => return Ok(false),
            r => r.map_err(entry_err("inspect", raw))?,
        };
        let is_dir = is_type(&st, SFlag::S_IFDIR);
        if is_dir && dir_entry {
            return Ok(true);
        }
        if self.opts.no_overwrite_dir_non_dir && is_dir != dir_entry {
            let reason = if is_dir {
                "a directory cannot be replaced by a non-directory"
            } else {
                "a non-directory cannot be replaced by a directory"
            };
            return Err(ArchiveError::Overwrite {
                path: raw.into(),
                reason,
            });
        }
        self.cached = None;
        self.dir_times.retain(|(p, _)| !p.starts_with(rel));
        let removed = if is_dir {
            remove_tree(dir, name)
        } else {
            nix::unistd::unlinkat(Some(dir), name, nix::unistd::UnlinkatFlags::NoRemoveDir)
        };
        removed.map_err(entry_err("replace", raw))?;
        Ok(false)
    }

    fn directory<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        dir: RawFd,
        name: &OsStr,
        raw: &str,
    ) -> Result<(), ArchiveError> {
        if !self.make_room(dir, name, rel, raw, true)? {
            nix::sys::stat::mkdirat(Some(dir), name, Mode::from_bits_truncate(0o700))
                .map_err(entry_err("create directory", raw))?;
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
        let fd = openat(dir, name, flags).map_err(entry_err("open", raw))?;
        self.set_owner_mode(&fd, entry.header(), raw)?;
        let mtime = entry.header().mtime().map_err(corrupt)?;
        self.dir_times.push((rel.to_path_buf(), mtime));
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        dir: RawFd,
        name: &OsStr,
        raw: &str,
    ) -> Result<(), ArchiveError> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
        let fd = nix::fcntl::openat(
            Some(dir),
            name,
            flags | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map(own)
        .map_err(entry_err("create", raw))?;
        let mut file = File::from(fd);
        let want = entry.size();
        let truncated = |got| ArchiveError::Truncated {
            path: raw.into(),
            got,
            want,
        };
        let got = io::copy(entry, &mut file).map_err(|e| {
            if crate::archive::compress::is_truncation(&e) {
                truncated(0)
            } else {
                corrupt(e)
            }
        })?;
        if got != want {
            return Err(truncated(got));
        }
        let fd = OwnedFd::from(file);
        self.set_owner_mode(&fd, entry.header(), raw)?;
        set_times(&fd, entry.header().mtime().map_err(corrupt)?, raw)
    }

    fn symlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        dir: RawFd,
        name: &OsStr,
        raw: &str,
    ) -> Result<(), ArchiveError> {
        let target = entry
            .link_name()
            .map_err(corrupt)?
            .ok_or_else(|| unsafe_entry(raw, "is a symlink without a target"))?
            .into_owned();
        // Docker refuses these too ("breakout"); absolute targets resolve
        // inside the container and are kept.
        if !crate::archive::extract::symlink_stays_inside(rel, &target) {
            let path = format!("{raw} -> {}", target.display());
            return Err(unsafe_entry(
                &path,
                "is a symlink pointing outside the destination",
            ));
        }
        self.make_room(dir, name, rel, raw, false)?;
        nix::unistd::symlinkat(&target, Some(dir), name)
            .map_err(entry_err("create symlink", raw))?;
        let (uid, gid) = self.owner(entry.header())?;
        let nofollow = AtFlags::AT_SYMLINK_NOFOLLOW;
        nix::unistd::fchownat(
            Some(dir),
            name,
            Some(uid.into()),
            Some(gid.into()),
            nofollow,
        )
        .map_err(entry_err("chown", raw))?;
        let t = nix::sys::time::TimeSpec::new(entry.header().mtime().map_err(corrupt)? as i64, 0);
        let flag = nix::sys::stat::UtimensatFlags::NoFollowSymlink;
        nix::sys::stat::utimensat(Some(dir), name, &t, &t, flag)
            .map_err(entry_err("set mtime of", raw))
    }

    fn hardlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        dir: RawFd,
        name: &OsStr,
        raw: &str,
    ) -> Result<(), ArchiveError> {
        let outside = || unsafe_entry(raw, "is a hardlink to something not earlier in the archive");
        let link = entry.link_name().map_err(corrupt)?.unwrap_or_default();
        let target = crate::archive::extract::sanitize(&link).map_err(|_| outside())?;
        let Some(target_name) = target.file_name() else {
            return Err(outside());
        };
        if target == rel {
            return Err(outside());
        }
        let target_parent = target.parent().unwrap_or(Path::new(""));
        let target_dir = self
            .open_dir(target_parent, raw, Walk::Strict)
            .map_err(|_| outside())?;
        match lstatat(target_dir.as_raw_fd(), target_name) {
            Ok(st) if !is_type(&st, SFlag::S_IFDIR) => {}
            _ => return Err(outside()),
        }
        self.make_room(dir, name, rel, raw, false)?;
        let (from, to) = (Some(target_dir.as_raw_fd()), Some(dir));
        nix::unistd::linkat(from, target_name, to, name, AtFlags::empty())
            .map_err(entry_err("create hardlink", raw))
    }

    /// Owner of new files: the archive's with `copyUIDGID`, else root.
    fn owner(&self, h: &Header) -> Result<(u32, u32), ArchiveError> {
        if !self.opts.copy_uid_gid {
            return Ok((0, 0));
        }
        Ok((
            h.uid().map_err(corrupt)? as u32,
            h.gid().map_err(corrupt)? as u32,
        ))
    }

    /// chown, then chmod (chown clears setuid/setgid), through the open fd.
    fn set_owner_mode(&self, fd: &OwnedFd, h: &Header, raw: &str) -> Result<(), ArchiveError> {
        let (uid, gid) = self.owner(h)?;
        nix::unistd::fchown(fd.as_raw_fd(), Some(uid.into()), Some(gid.into()))
            .map_err(entry_err("chown", raw))?;
        let mode = Mode::from_bits_truncate(h.mode().map_err(corrupt)? & 0o7777);
        nix::sys::stat::fchmod(fd.as_raw_fd(), mode).map_err(entry_err("chmod", raw))
    }

    /// Directory times last, deepest first, so writing children does not
    /// undo them.
    fn finish(mut self) -> Result<(), ArchiveError> {
        for (rel, mtime) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            let raw = rel.display().to_string();
            let fd = self.open_dir(&rel, &raw, Walk::Follow)?;
            set_times(&fd, mtime, &raw)?;
        }
        Ok(())
    }
}

fn set_times(fd: &OwnedFd, mtime: u64, raw: &str) -> Result<(), ArchiveError> {
    let t = nix::sys::time::TimeSpec::new(mtime as i64, 0);
    nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t).map_err(entry_err("set mtime of", raw))
}

/// Remove `name` in `dir` and everything below it, never following a
/// symlink.
fn remove_tree(dir: RawFd, name: &OsStr) -> Result<(), Errno> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
    let mut d = Dir::from(openat(dir, name, flags)?)?;
    for child in read_names(&mut d)? {
        let st = lstatat(d.as_raw_fd(), &child)?;
        if is_type(&st, SFlag::S_IFDIR) {
            remove_tree(d.as_raw_fd(), &child)?;
        } else {
            let flag = nix::unistd::UnlinkatFlags::NoRemoveDir;
            nix::unistd::unlinkat(Some(d.as_raw_fd()), child.as_os_str(), flag)?;
        }
    }
    nix::unistd::unlinkat(Some(dir), name, nix::unistd::UnlinkatFlags::RemoveDir)
}
