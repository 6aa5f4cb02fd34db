//! Tar out of a container (`GET /containers/{id}/archive`): a walk by
//! descriptors that never follows a symlink.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, SFlag};
use tar::{EntryType, Header};

use super::resolve::{is_type, lstatat, openat, read_names, Located};
use super::stat::PathStat;
use crate::archive::ArchiveError;

/// Bytes in the name and linkname fields of a tar header; longer names go
/// in a GNU long-name entry first.
const TAR_NAME_LEN: usize = 100;

/// Write a tar of the file or tree at `path` in the container rooted at
/// `root` to `out` (`GET /containers/{id}/archive`), and return its stat.
///
/// Entries are named from the last component (`/var/log` gives `log/`,
/// `log/...`); a path ending in `/.` gives the directory's contents as
/// `./...`. Symlinks are archived as symlinks and never followed; a file
/// with several links in the tree becomes a tar hardlink after the first.
/// Sockets are skipped, as Docker does.
pub fn write_tar_of<W: Write>(root: &Path, path: &str, out: W) -> Result<PathStat, ArchiveError> {
    write_tar(root, path, out, false)
}

/// [`write_tar_of`] that stays on the filesystem `path` is on (as
/// `tar --one-file-system`): other mounts (a running container's `/dev`,
/// `/proc`, its bind-mounted `/etc/hosts`) appear as empty directories or
/// not at all. Used by `export`, which is the container's own filesystem.
pub fn write_tar_one_fs<W: Write>(
    root: &Path,
    path: &str,
    out: W,
) -> Result<PathStat, ArchiveError> {
    write_tar(root, path, out, true)
}

fn write_tar<W: Write>(
    root: &Path,
    path: &str,
    out: W,
    one_fs: bool,
) -> Result<PathStat, ArchiveError> {
    let loc = Located::find(root, path)?;
    let st = loc.lstat(path)?;
    let stat = loc.stat(path, &st)?;
    let mut w = TarWriter {
        builder: tar::Builder::new(out),
        links: HashMap::new(),
        device: one_fs.then_some(st.st_dev),
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
    /// Stay on this device (`write_tar_one_fs`).
    device: Option<u64>,
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
        let foreign = self.device.is_some_and(|d| d != st.st_dev);
        if foreign && st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Ok(());
        }
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
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(walk_err("inspect", arc))?;
        if is_kernel_fs(&fd) || self.device.is_some_and(|d| d != st.st_dev) {
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
pub(super) fn is_kernel_fs(dir: &OwnedFd) -> bool {
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
