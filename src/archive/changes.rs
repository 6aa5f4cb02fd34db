//! `docker diff` (`GET /containers/{id}/changes`): what a container changed,
//! read from its overlay upper directory against the image's lower layers.
//!
//! The upper directory is written by the running container, so it is
//! walked with descriptors (`O_NOFOLLOW`), never by re-resolving path
//! strings on the host. Lower layers are the store's read-only layers.
//! Overlay's rules: <https://docs.kernel.org/filesystems/overlayfs.html>.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, SFlag};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use xattr::FileExt as _;

use super::copy::{is_type, lstatat, openat, read_names};
use super::extract::OVERLAY_OPAQUE_XATTR;
use super::ArchiveError;

/// What happened to a path, with Docker's numbers (`Kind` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ChangeKind {
    /// `C`: existed in the image and was changed (or its children were).
    Modified = 0,
    /// `A`: did not exist in the image.
    Added = 1,
    /// `D`: existed in the image and was removed.
    Deleted = 2,
}

impl ChangeKind {
    /// The letter `docker diff` prints: `C`, `A` or `D`.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

impl Serialize for ChangeKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

impl<'de> Deserialize<'de> for ChangeKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            0 => Ok(ChangeKind::Modified),
            1 => Ok(ChangeKind::Added),
            2 => Ok(ChangeKind::Deleted),
            n => Err(serde::de::Error::custom(format!(
                "unknown change kind {n} (want 0, 1 or 2)"
            ))),
        }
    }
}

/// One line of `docker diff`: `{"Path": "/etc/passwd", "Kind": 0}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Absolute path inside the container.
    #[serde(rename = "Path")]
    pub path: String,
    /// What happened to it.
    #[serde(rename = "Kind")]
    pub kind: ChangeKind,
}

/// The changes recorded in the overlay `upper` directory over `lowers`
/// (top-most first), sorted by path.
///
/// An overlay whiteout (character device 0/0) is `D`; a path that exists
/// in the lowers is `C`, anything else `A` (so a new directory's children
/// are `A`, and every directory above a change that existed below is `C`).
/// An opaque directory, or one below an opaque directory, that existed
/// below hides its lower children: those not in the upper are `D`.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, ArchiveError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let fd = nix::fcntl::open(
        upper,
        flags | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map(super::copy::own)
    .map_err(|e| io_err("open upper directory", upper)(e.into()))?;
    let mut out = BTreeMap::new();
    let walker = Walker {
        lowers,
        out: &mut out,
    };
    walker.walk(fd, Path::new(""), true)?;
    Ok(out
        .into_iter()
        .map(|(path, kind)| Change { path, kind })
        .collect())
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ArchiveError + 'a {
    move |source| ArchiveError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn nix_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> ArchiveError + 'a {
    move |e| io_err(op, path)(e.into())
}

/// `/a/b` for the relative `a/b`.
fn container_path(rel: &Path) -> String {
    Path::new("/").join(rel).to_string_lossy().into_owned()
}

fn is_whiteout_stat(st: &FileStat) -> bool {
    is_type(st, SFlag::S_IFCHR) && st.st_rdev == 0
}

fn is_whiteout(md: &Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

fn opaque_file(file: &File) -> bool {
    matches!(file.get_xattr(OVERLAY_OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
}

fn opaque_path(path: &Path) -> Result<bool, ArchiveError> {
    // `xattr::get` does not follow symlinks (lgetxattr).
    let v = xattr::get(path, OVERLAY_OPAQUE_XATTR).map_err(io_err("read xattrs of", path))?;
    Ok(v.as_deref() == Some(b"y"))
}

/// A path as the lowers show it.
enum Below {
    /// A directory, merged from these lowers (indexes, top-most first).
    Dir(Vec<usize>),
    /// Something else.
    Other,
}

/// Look `rel` up through the lowers as overlay does: the top-most layer
/// that has a name decides; a whiteout hides it; directories merge down to
/// the first opaque one.
fn lookup(lowers: &[PathBuf], rel: &Path) -> Result<Option<Below>, ArchiveError> {
    let mut active: Vec<usize> = (0..lowers.len()).collect();
    let mut prefix = PathBuf::new();
    let count = rel.iter().count();
    for (i, c) in rel.iter().enumerate() {
        prefix.push(c);
        let mut next = Vec::new();
        for &l in &active {
            // Only directories (lstat, never symlinks) were kept in
            // `active`, so this join goes through real directories.
            let p = lowers[l].join(&prefix);
            let md = match fs::symlink_metadata(&p) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                r => r.map_err(io_err("inspect", &p))?,
            };
            if is_whiteout(&md) {
                break;
            }
            if !md.is_dir() {
                if next.is_empty() {
                    return Ok((i + 1 == count).then_some(Below::Other));
                }
                break;
            }
            next.push(l);
            if opaque_path(&p)? {
                break;
            }
        }
        if next.is_empty() {
            return Ok(None);
        }
        active = next;
    }
    Ok(Some(Below::Dir(active)))
}

struct Walker<'a> {
    lowers: &'a [PathBuf],
    out: &'a mut BTreeMap<String, ChangeKind>,
}

impl Walker<'_> {
    /// Record the children of the upper directory `fd` (at `rel`);
    /// `merged`: overlay merges this directory with the lowers.
    fn walk(mut self, fd: OwnedFd, rel: &Path, merged: bool) -> Result<Self, ArchiveError> {
        let shown = Path::new("/").join(rel);
        let mut dir = Dir::from(fd).map_err(nix_err("read directory", &shown))?;
        let names = read_names(&mut dir).map_err(nix_err("read directory", &shown))?;
        if !merged {
            if let Some(Below::Dir(layers)) = lookup(self.lowers, rel)? {
                self.hidden_children(&layers, rel, &names)?;
            }
        }
        for name in names {
            self = self.child(dir.as_raw_fd(), &name, &rel.join(&name), merged)?;
        }
        Ok(self)
    }

    fn child(
        self,
        dir: RawFd,
        name: &OsStr,
        rel: &Path,
        parent_merged: bool,
    ) -> Result<Self, ArchiveError> {
        let shown = Path::new("/").join(rel);
        let st = match lstatat(dir, name) {
            // Removed by the running container while we walk.
            Err(Errno::ENOENT) => return Ok(self),
            r => r.map_err(nix_err("inspect", &shown))?,
        };
        if is_whiteout_stat(&st) {
            self.out.insert(container_path(rel), ChangeKind::Deleted);
            return Ok(self);
        }
        let below = lookup(self.lowers, rel)?;
        let kind = match below {
            Some(_) => ChangeKind::Modified,
            None => ChangeKind::Added,
        };
        self.out.insert(container_path(rel), kind);
        if !is_type(&st, SFlag::S_IFDIR) {
            return Ok(self);
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
        let fd = match openat(dir, name, flags) {
            Err(Errno::ENOENT) => return Ok(self),
            r => r.map_err(nix_err("open", &shown))?,
        };
        let file = File::from(fd);
        let merged = parent_merged && !opaque_file(&file) && matches!(below, Some(Below::Dir(_)));
        self.walk(OwnedFd::from(file), rel, merged)
    }

    /// `D` for what the lowers had in `rel` that the unmerged upper
    /// directory (with `upper_names`) no longer shows.
    fn hidden_children(
        &mut self,
        layers: &[usize],
        rel: &Path,
        upper_names: &[OsString],
    ) -> Result<(), ArchiveError> {
        let upper: HashSet<&OsString> = upper_names.iter().collect();
        let mut seen = HashSet::new();
        for &l in layers {
            let dir = self.lowers[l].join(rel);
            for e in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
                let e = e.map_err(io_err("read directory", &dir))?;
                let name = e.file_name();
                if !seen.insert(name.clone()) {
                    continue;
                }
                let md = e.metadata().map_err(io_err("inspect", &e.path()))?;
                if !is_whiteout(&md) && !upper.contains(&name) {
                    self.out
                        .insert(container_path(&rel.join(&name)), ChangeKind::Deleted);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{mknod, Mode};

    fn mkfile(base: &Path, rel: &str) {
        let p = base.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, rel).unwrap();
    }

    fn mkdir(base: &Path, rel: &str) {
        fs::create_dir_all(base.join(rel)).unwrap();
    }

    fn whiteout(base: &Path, rel: &str) {
        let p = base.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        mknod(&p, SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
    }

    fn opaque(base: &Path, rel: &str) {
        mkdir(base, rel);
        xattr::set(base.join(rel), OVERLAY_OPAQUE_XATTR, b"y").unwrap();
    }

    fn letters(c: &[Change]) -> Vec<String> {
        c.iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path))
            .collect()
    }

    #[test]
    fn diff_of_an_overlay_upper() {
        let t = tempfile::tempdir().unwrap();
        let (upper, low0, low1) = (t.path().join("u"), t.path().join("l0"), t.path().join("l1"));
        // Bottom layer.
        for f in [
            "etc/passwd",
            "etc/hosts",
            "var/lib/x",
            "opt/app/a",
            "opt/app/b",
        ] {
            mkfile(&low1, f);
        }
        mkfile(&low1, "usr/bin/tool");
        mkfile(&low1, "gone/old");
        // Top lower: adds a file, deletes one below, makes one dir opaque.
        mkfile(&low0, "etc/motd");
        whiteout(&low0, "var/lib/x");
        opaque(&low0, "gone");
        mkfile(&low0, "gone/new");
        // The container's changes.
        mkfile(&upper, "etc/passwd"); // copied up and modified
        mkfile(&upper, "etc/added"); // new file in an old dir
        whiteout(&upper, "etc/hosts"); // rm /etc/hosts
        mkfile(&upper, "srv/new/deep/file"); // a new tree
        mkfile(&upper, "var/lib/x"); // recreated after a lower deleted it
        opaque(&upper, "opt/app"); // rm -rf /opt/app; mkdir /opt/app
        mkfile(&upper, "opt/app/b"); // and put b back
        mkfile(&upper, "gone/new2");

        let got = changes(&upper, &[low0.clone(), low1.clone()]).unwrap();
        let want = [
            "C /etc",
            "A /etc/added",
            "D /etc/hosts",
            "C /etc/passwd",
            "C /gone",
            "A /gone/new2",
            "C /opt",
            "C /opt/app",
            "D /opt/app/a",
            "C /opt/app/b",
            "A /srv",
            "A /srv/new",
            "A /srv/new/deep",
            "A /srv/new/deep/file",
            "C /var",
            "C /var/lib",
            "A /var/lib/x",
        ];
        assert_eq!(letters(&got), want);
    }

    #[test]
    fn whiteouts_and_opaques_in_lowers_hide_what_is_below() {
        let t = tempfile::tempdir().unwrap();
        let (upper, low0, low1) = (t.path().join("u"), t.path().join("l0"), t.path().join("l1"));
        mkfile(&low1, "d/x");
        mkfile(&low1, "d/y");
        mkfile(&low1, "file");
        whiteout(&low0, "d/y");
        mkdir(&low0, "d");
        // The upper hides d entirely, and replaces a lower file by a dir.
        opaque(&upper, "d");
        mkfile(&upper, "file/inner");
        let got = changes(&upper, &[low0, low1]).unwrap();
        assert_eq!(
            letters(&got),
            ["C /d", "D /d/x", "C /file", "A /file/inner"]
        );
    }

    #[test]
    fn serializes_as_the_docker_api() {
        let c = Change {
            path: "/etc/passwd".into(),
            kind: ChangeKind::Deleted,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"Path":"/etc/passwd","Kind":2}"#);
        let back: Change = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert!(serde_json::from_str::<ChangeKind>("7").is_err());
    }
}
