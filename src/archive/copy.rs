//! The primitives behind `docker cp` (`HEAD/GET/PUT /containers/{id}/archive`).
//!
//! Every path is resolved inside the container root as if it were `/`: the
//! parent directory is opened with `openat2(RESOLVE_IN_ROOT)`, then all work
//! is done with `*at` calls relative to that descriptor, so a symlink in the
//! container (`escape -> /`, `up -> ../../..`) lands on the container's root,
//! never the host's. No path string is ever resolved on the host; this is
//! the lesson of CVE-2018-15664 (symlink-exchange race in `docker cp`). No
//! library is loaded from the container (CVE-2019-14271): names and ids are
//! copied as numbers. See docs/archive.md.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use serde::{Deserialize, Serialize};
use tar::{EntryType, Header};

use super::ArchiveError;

/// The kernel's own limit on symlinks followed in one lookup (MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;
/// Bytes in the name and linkname fields of a tar header; longer names go
/// in a GNU long-name entry first.
const TAR_NAME_LEN: usize = 100;

/// Go `os.FileMode` type bits, as Docker encodes `ContainerPathStat.Mode`.
pub mod go_mode {
    /// `d`: a directory.
    pub const DIR: u32 = 1 << 31;
    /// `L`: a symbolic link.
    pub const SYMLINK: u32 = 1 << 27;
    /// `D`: a device file.
    pub const DEVICE: u32 = 1 << 26;
    /// `p`: a named pipe.
    pub const NAMED_PIPE: u32 = 1 << 25;
    /// `S`: a unix socket.
    pub const SOCKET: u32 = 1 << 24;
    /// `u`: setuid.
    pub const SETUID: u32 = 1 << 23;
    /// `g`: setgid.
    pub const SETGID: u32 = 1 << 22;
    /// `c`: a character device (with `DEVICE`).
    pub const CHAR_DEVICE: u32 = 1 << 21;
    /// `t`: sticky.
    pub const STICKY: u32 = 1 << 20;
}

/// What Docker reports about a path in a container, sent base64(JSON) in
/// the `X-Docker-Container-Path-Stat` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStat {
    /// The last component of the path (`/` for the root).
    pub name: String,
    /// `st_size` of the path itself (not followed).
    pub size: i64,
    /// Go `os.FileMode` bits: permissions plus the `go_mode` type bits.
    pub mode: u32,
    /// Modification time, RFC 3339 in UTC.
    pub mtime: String,
    /// For a symlink, the path it resolves to inside the container.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// The value of the `X-Docker-Container-Path-Stat` header:
    /// standard base64 of the JSON object.
    pub fn header_value(&self) -> String {
        // invariant: a struct of strings and integers always serializes.
        let json = serde_json::to_vec(self).expect("PathStat serializes");
        base64::engine::general_purpose::STANDARD.encode(json)
    }
}

/// Translate a Unix `st_mode` into Go's `os.FileMode` bits.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => go_mode::DIR,
        libc::S_IFLNK => go_mode::SYMLINK,
        libc::S_IFIFO => go_mode::NAMED_PIPE,
        libc::S_IFSOCK => go_mode::SOCKET,
        libc::S_IFBLK => go_mode::DEVICE,
        libc::S_IFCHR => go_mode::DEVICE | go_mode::CHAR_DEVICE,
        _ => 0,
    };
    for (bit, go) in [
        (libc::S_ISUID, go_mode::SETUID),
        (libc::S_ISGID, go_mode::SETGID),
        (libc::S_ISVTX, go_mode::STICKY),
    ] {
        if st_mode & bit != 0 {
            m |= go;
        }
    }
    m
}

/// A container path, cleaned lexically as Docker does
/// (`filepath.Join("/", p)`, keeping a trailing `/` or `/.`).
#[derive(Debug, PartialEq)]
struct ContainerPath {
    parts: Vec<OsString>,
    /// Ends with `/.`: the directory's contents, not the directory.
    contents: bool,
    /// Ends with `/` or `/.`, or is `/`: a final symlink is followed.
    follow_last: bool,
}

impl ContainerPath {
    fn parse(path: &str) -> Self {
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
fn joined(parts: &[OsString]) -> PathBuf {
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

fn open_root(root: &Path) -> Result<OwnedFd, ArchiveError> {
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
fn open_in_root(root: &OwnedFd, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
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
fn lookup_err(e: Errno, path: &str) -> ArchiveError {
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
fn resolve_display(root: &OwnedFd, parts: &[OsString]) -> Result<PathBuf, Errno> {
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
struct Located {
    root: OwnedFd,
    /// The directory holding it (`O_PATH`).
    parent: OwnedFd,
    /// Its name in `parent` (`.` when `parent` is the object itself).
    name: OsString,
    path: ContainerPath,
}

impl Located {
    fn find(root: &Path, path: &str) -> Result<Self, ArchiveError> {
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

    fn lstat(&self, path: &str) -> Result<FileStat, ArchiveError> {
        lstatat(self.parent.as_raw_fd(), &self.name).map_err(|e| lookup_err(e, path))
    }

    /// The last component, as Docker's `filepath.Base` gives it.
    fn base(&self) -> String {
        match self.path.parts.last() {
            Some(_) if self.path.contents => ".".into(),
            Some(last) => last.to_string_lossy().into_owned(),
            None => "/".into(),
        }
    }

    fn stat(&self, path: &str, st: &FileStat) -> Result<PathStat, ArchiveError> {
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

/// Describe the path `path` in the container rooted at `root` without
/// following its last component (`HEAD /containers/{id}/archive`). A
/// missing path is [`ArchiveError::NotFound`].
pub fn stat_path(root: &Path, path: &str) -> Result<PathStat, ArchiveError> {
    let loc = Located::find(root, path)?;
    let st = loc.lstat(path)?;
    loc.stat(path, &st)
}

/// Write a tar of the file or tree at `path` in the container rooted at
/// `root` to `out` (`GET /containers/{id}/archive`), and return its stat.
///
/// Entries are named from the last component (`/var/log` gives `log/`,
/// `log/...`); a path ending in `/.` gives the directory's contents as
/// `./...`. Symlinks are archived as symlinks and never followed; a file
/// with several links in the tree becomes a tar hardlink after the first.
/// Sockets are skipped, as Docker does.
pub fn write_tar_of<W: Write>(root: &Path, path: &str, out: W) -> Result<PathStat, ArchiveError> {
    let loc = Located::find(root, path)?;
    let st = loc.lstat(path)?;
    let stat = loc.stat(path, &st)?;
    let mut w = TarWriter {
        builder: tar::Builder::new(out),
        links: HashMap::new(),
    };
    let name = match loc.base() {
        b if b == "/" => ".".to_string(),
        b => b,
    };
    w.entry(loc.parent.as_raw_fd(), &loc.name, name.as_bytes(), &st)?;
    w.builder.into_inner().map_err(|e| ArchiveError::Io {
        op: "finish archive of",
        path: path.into(),
        source: e,
    })?;
    Ok(stat)
}

fn walk_err<'a>(op: &'static str, arc: &'a [u8]) -> impl FnOnce(Errno) -> ArchiveError + 'a {
    move |e| ArchiveError::Io {
        op,
        path: PathBuf::from(OsStr::from_bytes(arc)),
        source: e.into(),
    }
}

struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    /// (dev, ino) of multiply-linked files already archived → their name.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> TarWriter<W> {
    /// Archive `name` in `dir` (whose lstat is `st`) as `arc`.
    fn entry(
        &mut self,
        dir: RawFd,
        name: &OsStr,
        arc: &[u8],
        st: &FileStat,
    ) -> Result<(), ArchiveError> {
        let mut h = Header::new_gnu();
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid.into());
        h.set_gid(st.st_gid.into());
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => self.directory(dir, name, arc, h),
            libc::S_IFREG => self.regular(dir, name, arc, h, st),
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(Some(dir), name)
                    .map_err(walk_err("read symlink", arc))?;
                h.set_entry_type(EntryType::Symlink);
                self.append(h, arc, Some(target.as_bytes()), io::empty())
            }
            libc::S_IFIFO => {
                h.set_entry_type(EntryType::Fifo);
                self.append(h, arc, None, io::empty())
            }
            libc::S_IFCHR | libc::S_IFBLK => {
                let char_dev = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
                h.set_entry_type(if char_dev {
                    EntryType::Char
                } else {
                    EntryType::Block
                });
                let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
                h.set_device_major(major).map_err(self.write_err(arc))?;
                h.set_device_minor(minor).map_err(self.write_err(arc))?;
                self.append(h, arc, None, io::empty())
            }
            _ => Ok(()),
        }
    }

    fn directory(
        &mut self,
        dir: RawFd,
        name: &OsStr,
        arc: &[u8],
        mut h: Header,
    ) -> Result<(), ArchiveError> {
        let mut prefix = arc.to_vec();
        if !prefix.ends_with(b"/") {
            prefix.push(b'/');
        }
        h.set_entry_type(EntryType::Directory);
        self.append(h, &prefix, None, io::empty())?;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
        let fd = openat(dir, name, flags).map_err(walk_err("open directory", arc))?;
        if is_kernel_fs(&fd) {
            return Ok(());
        }
        let mut d = Dir::from(fd).map_err(walk_err("read directory", arc))?;
        let names = read_names(&mut d).map_err(walk_err("read directory", arc))?;
        for child in names {
            let mut child_arc = prefix.clone();
            child_arc.extend_from_slice(child.as_bytes());
            let st = match lstatat(d.as_raw_fd(), &child) {
                // Removed while we walk: the archive is of what was there.
                Err(Errno::ENOENT) => continue,
                r => r.map_err(walk_err("inspect", &child_arc))?,
            };
            self.entry(d.as_raw_fd(), &child, &child_arc, &st)?;
        }
        Ok(())
    }

    fn regular(
        &mut self,
        dir: RawFd,
        name: &OsStr,
        arc: &[u8],
        mut h: Header,
        st: &FileStat,
    ) -> Result<(), ArchiveError> {
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                h.set_entry_type(EntryType::Link);
                return self.append(h, arc, Some(&first), io::empty());
            }
            self.links.insert(key, arc.to_vec());
        }
        // O_NONBLOCK: if the file was swapped for a FIFO, open must not hang.
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let fd = openat(dir, name, flags).map_err(walk_err("open", arc))?;
        let now = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(walk_err("inspect", arc))?;
        if !is_type(&now, SFlag::S_IFREG) {
            return Err(walk_err("archive", arc)(Errno::EINVAL));
        }
        let size = now.st_size.max(0) as u64;
        h.set_entry_type(EntryType::Regular);
        h.set_size(size);
        // Exactly `size` bytes even if the file changes under us: a short
        // file is padded with zeros, a longer one cut.
        let data = File::from(fd).take(size).chain(io::repeat(0)).take(size);
        self.append(h, arc, None, data)
    }

    fn write_err<'a>(&self, arc: &'a [u8]) -> impl FnOnce(io::Error) -> ArchiveError + 'a {
        move |source| ArchiveError::Io {
            op: "write archive entry",
            path: PathBuf::from(OsStr::from_bytes(arc)),
            source,
        }
    }

    /// Append an entry named `arc` exactly as given (`./x` stays `./x`),
    /// preceded by GNU long-name/long-link entries when needed.
    fn append(
        &mut self,
        mut h: Header,
        arc: &[u8],
        link: Option<&[u8]>,
        data: impl Read,
    ) -> Result<(), ArchiveError> {
        if arc.len() > TAR_NAME_LEN {
            self.long_name(EntryType::GNULongName, arc)?;
        }
        if let Some(link) = link {
            if link.len() > TAR_NAME_LEN {
                self.long_name(EntryType::GNULongLink, link)?;
            }
            copy_field(&mut h.as_old_mut().linkname, link);
        }
        copy_field(&mut h.as_old_mut().name, arc);
        h.set_cksum();
        self.builder.append(&h, data).map_err(self.write_err(arc))
    }

    fn long_name(&mut self, kind: EntryType, value: &[u8]) -> Result<(), ArchiveError> {
        let mut h = Header::new_gnu();
        copy_field(&mut h.as_old_mut().name, b"././@LongLink");
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(kind);
        h.set_size(value.len() as u64 + 1);
        h.set_cksum();
        let data = value.chain(&[0u8][..]);
        self.builder.append(&h, data).map_err(self.write_err(value))
    }
}

/// Whether `dir` is on a kernel filesystem (`/proc`, `/sys`, cgroups...)
/// mounted in a running container's root: its contents are not the
/// container's files (`/proc/kcore` alone claims terabytes), and Docker,
/// which archives the container's own filesystem, never sees them.
fn is_kernel_fs(dir: &OwnedFd) -> bool {
    use nix::sys::statfs::{self as sfs, fstatfs};
    let kernel = [
        sfs::PROC_SUPER_MAGIC,
        sfs::SYSFS_MAGIC,
        sfs::CGROUP_SUPER_MAGIC,
        sfs::CGROUP2_SUPER_MAGIC,
        sfs::DEBUGFS_MAGIC,
        sfs::SECURITYFS_MAGIC,
        sfs::TRACEFS_MAGIC,
    ];
    fstatfs(dir).is_ok_and(|st| kernel.contains(&st.filesystem_type()))
}

/// Copy `value` into a NUL-padded header field, truncating.
fn copy_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

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
    let (_, reader) = super::decompress(input)?;
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
        let rel = super::extract::sanitize(&raw_path)?;
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
            if super::compress::is_truncation(&e) {
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
        if !super::extract::symlink_stays_inside(rel, &target) {
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
        let target = super::extract::sanitize(&link).map_err(|_| outside())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_container_paths() {
        let cases: &[(&str, &[&str], bool, bool)] = &[
            ("/etc/hosts", &["etc", "hosts"], false, false),
            ("etc/hosts", &["etc", "hosts"], false, false),
            ("/var/log/", &["var", "log"], false, true),
            ("/var/log/.", &["var", "log"], true, true),
            ("/a/../../b/./c", &["b", "c"], false, false),
            ("/", &[], false, true),
            ("", &[], false, true),
        ];
        for (raw, parts, contents, follow) in cases {
            let cp = ContainerPath::parse(raw);
            let want: Vec<OsString> = parts.iter().map(OsString::from).collect();
            assert_eq!(cp.parts, want, "{raw}");
            assert_eq!((cp.contents, cp.follow_last), (*contents, *follow), "{raw}");
        }
    }

    #[test]
    fn go_modes() {
        let cases = [
            (libc::S_IFREG | 0o644, 0o644),
            (libc::S_IFDIR | 0o755, go_mode::DIR | 0o755),
            (libc::S_IFLNK | 0o777, go_mode::SYMLINK | 0o777),
            (libc::S_IFIFO | 0o600, go_mode::NAMED_PIPE | 0o600),
            (libc::S_IFSOCK | 0o755, go_mode::SOCKET | 0o755),
            (libc::S_IFBLK | 0o660, go_mode::DEVICE | 0o660),
            (
                libc::S_IFCHR | 0o666,
                go_mode::DEVICE | go_mode::CHAR_DEVICE | 0o666,
            ),
            (libc::S_IFREG | 0o4755, go_mode::SETUID | 0o755),
            (libc::S_IFREG | 0o2755, go_mode::SETGID | 0o755),
            (
                libc::S_IFDIR | 0o1777,
                go_mode::DIR | go_mode::STICKY | 0o777,
            ),
        ];
        for (unix, go) in cases {
            assert_eq!(go_file_mode(unix), go, "{unix:o}");
        }
        assert_eq!(go_mode::DIR | 0o755, 2147484141);
    }

    #[test]
    fn kernel_filesystems_are_recognised() {
        let open = |p: &str| {
            nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
                .map(own)
                .unwrap()
        };
        assert!(is_kernel_fs(&open("/proc")));
        assert!(is_kernel_fs(&open("/sys")));
        let t = tempfile::tempdir().unwrap();
        assert!(!is_kernel_fs(&open(t.path().to_str().unwrap())));
    }

    #[test]
    fn header_value_is_base64_json() {
        let st = PathStat {
            name: "hosts".into(),
            size: 12,
            mode: 0o644,
            mtime: "2024-01-02T03:04:05Z".into(),
            link_target: String::new(),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(st.header_value())
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name": "hosts", "size": 12, "mode": 420,
                "mtime": "2024-01-02T03:04:05Z", "linkTarget": ""})
        );
    }
}
