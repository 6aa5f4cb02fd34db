//! Path resolution inside a container root: `openat2(RESOLVE_IN_ROOT)`,
//! `*at` helpers over descriptors, and the lexical cleaning of container
//! paths. No path string is ever resolved on the host.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

use super::stat::{go_file_mode, PathStat};
use crate::archive::ArchiveError;

/// The kernel's own limit on symlinks followed in one lookup (MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// A container path, cleaned lexically as Docker does
/// (`filepath.Join("/", p)`, keeping a trailing `/` or `/.`).
#[derive(Debug, PartialEq)]
pub(super) struct ContainerPath {
    pub(super) parts: Vec<OsString>,
    /// Ends with `/.`: the directory's contents, not the directory.
    pub(super) contents: bool,
    /// Ends with `/` or `/.`, or is `/`: a final symlink is followed.
    pub(super) follow_last: bool,
}

impl ContainerPath {
    pub(super) fn parse(path: &str) -> Self {
        let mut parts: Vec<OsString> = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p.into()),
            }
        }
        let contents = path == "." || path.ends_with("/.");
        let follow_last = contents || path.ends_with('/') || parts.is_empty();
        ContainerPath {
            parts,
            contents,
            follow_last,
        }
    }
}

/// `/a/b` from components.
pub(super) fn joined(parts: &[OsString]) -> PathBuf {
    let mut p = PathBuf::from("/");
    p.extend(parts);
    p
}

/// Take ownership of a descriptor a successful open just returned.
pub(crate) fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open(2)-family call and
    // is owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `O_CLOEXEC` always: a descriptor into a container must not leak into a
/// child (CVE-2024-21626).
pub(crate) fn openat(dir: RawFd, name: &OsStr, flags: OFlag) -> Result<OwnedFd, Errno> {
    nix::fcntl::openat(Some(dir), name, flags | OFlag::O_CLOEXEC, Mode::empty()).map(own)
}

/// `fstatat` without following a final symlink.
pub(crate) fn lstatat(dir: RawFd, name: &OsStr) -> Result<FileStat, Errno> {
    nix::sys::stat::fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// The names in a directory, sorted, without `.` and `..`.
pub(crate) fn read_names(dir: &mut Dir) -> Result<Vec<OsString>, Errno> {
    let mut names = Vec::new();
    for e in dir.iter() {
        let name = OsStr::from_bytes(e?.file_name().to_bytes()).to_os_string();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

pub(crate) fn is_type(st: &FileStat, kind: SFlag) -> bool {
    st.st_mode & libc::S_IFMT == kind.bits()
}

pub(super) fn open_root(root: &Path) -> Result<OwnedFd, ArchiveError> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    nix::fcntl::open(root, flags, Mode::empty())
        .map(own)
        .map_err(|e| ArchiveError::Io {
            op: "open container root",
            path: root.to_path_buf(),
            source: e.into(),
        })
}

/// Open `path` with `root` as `/`: every `..` and symlink, absolute or
/// not, is resolved by the kernel inside `root`. Magic links (`/proc/*/fd`)
/// are refused: they could point anywhere.
pub(super) fn open_in_root(root: &OwnedFd, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // EAGAIN: a concurrent rename made the kernel give up; try again a few
    // times, as openat2(2) suggests.
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(root.as_raw_fd(), path, how) {
            Err(Errno::EAGAIN) if tries < 8 => tries += 1,
            r => return r.map(own),
        }
    }
}

/// The error for a failed lookup of `path` in the container.
pub(super) fn lookup_err(e: Errno, path: &str) -> ArchiveError {
    match e {
        Errno::ENOENT => ArchiveError::NotFound { path: path.into() },
        Errno::ENOTDIR => ArchiveError::NotADirectory { path: path.into() },
        e => ArchiveError::Io {
            op: "resolve in container",
            path: path.into(),
            source: e.into(),
        },
    }
}

/// Resolve `parts` as the kernel would with the container root as `/`,
/// for display only (`linkTarget`): its result is never used to open
/// anything. A missing tail is kept as written, like Docker's
/// `FollowSymlinkInScope`.
pub(super) fn resolve_display(root: &OwnedFd, parts: &[OsString]) -> Result<PathBuf, Errno> {
    let mut todo: Vec<OsString> = parts.iter().rev().cloned().collect();
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == "." || c.is_empty() {
            continue;
        }
        if c == ".." {
            done.pop();
            continue;
        }
        let dir = open_in_root(root, &joined(&done), OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let st = match lstatat(dir.as_raw_fd(), &c) {
            Err(Errno::ENOENT) => {
                done.push(c);
                done.extend(todo.into_iter().rev());
                break;
            }
            r => r?,
        };
        if !is_type(&st, SFlag::S_IFLNK) {
            done.push(c);
            continue;
        }
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(Errno::ELOOP);
        }
        let target = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), c.as_os_str())?;
        if target.as_bytes().starts_with(b"/") {
            done.clear();
        }
        let pieces = target.as_bytes().split(|b| *b == b'/');
        todo.extend(pieces.rev().map(|p| OsStr::from_bytes(p).to_os_string()));
    }
    Ok(joined(&done))
}

/// A container path's final object, ready for `*at` calls.
pub(super) struct Located {
    root: OwnedFd,
    /// The directory holding it (`O_PATH`).
    pub(super) parent: OwnedFd,
    /// Its name in `parent` (`.` when `parent` is the object itself).
    pub(super) name: OsString,
    path: ContainerPath,
}

impl Located {
    pub(super) fn find(root: &Path, path: &str) -> Result<Self, ArchiveError> {
        let root = open_root(root)?;
        let cp = ContainerPath::parse(path);
        let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        let (parent, name) = match cp.parts.split_last() {
            Some((last, dir)) if !cp.follow_last => {
                let parent = open_in_root(&root, &joined(dir), dir_flags);
                (parent.map_err(|e| lookup_err(e, path))?, last.clone())
            }
            _ => {
                let fd = open_in_root(&root, &joined(&cp.parts), dir_flags);
                (fd.map_err(|e| lookup_err(e, path))?, ".".into())
            }
        };
        Ok(Located {
            root,
            parent,
            name,
            path: cp,
        })
    }

    pub(super) fn lstat(&self, path: &str) -> Result<FileStat, ArchiveError> {
        lstatat(self.parent.as_raw_fd(), &self.name).map_err(|e| lookup_err(e, path))
    }

    /// The last component, as Docker's `filepath.Base` gives it.
    pub(super) fn base(&self) -> String {
        match self.path.parts.last() {
            Some(_) if self.path.contents => ".".into(),
            Some(last) => last.to_string_lossy().into_owned(),
            None => "/".into(),
        }
    }

    pub(super) fn stat(&self, path: &str, st: &FileStat) -> Result<PathStat, ArchiveError> {
        let link_target = if is_type(st, SFlag::S_IFLNK) {
            let resolved = resolve_display(&self.root, &self.path.parts);
            resolved
                .map_err(|e| lookup_err(e, path))?
                .display()
                .to_string()
        } else {
            String::new()
        };
        let mtime = chrono::DateTime::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        Ok(PathStat {
            name: self.base(),
            size: st.st_size,
            mode: go_file_mode(st.st_mode),
            mtime,
            link_target,
        })
    }
}
