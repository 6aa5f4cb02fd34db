//! What `HEAD /containers/{id}/archive` reports: [`PathStat`] and the Go
//! `os.FileMode` bits Docker encodes it with.

use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::resolve::Located;
use crate::archive::ArchiveError;

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

/// Describe the path `path` in the container rooted at `root` without
/// following its last component (`HEAD /containers/{id}/archive`). A
/// missing path is [`ArchiveError::NotFound`].
pub fn stat_path(root: &Path, path: &str) -> Result<PathStat, ArchiveError> {
    let loc = Located::find(root, path)?;
    let st = loc.lstat(path)?;
    loc.stat(path, &st)
}
