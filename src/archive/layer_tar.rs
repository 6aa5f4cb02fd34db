//! Write an overlay layer directory as an OCI layer tar, deterministically,
//! hashing the stream on the way (the layer's diff_id).
//!
//! The reverse of [`extract_layer`](super::extract_layer). Entries are
//! written in a sorted depth-first walk (each directory's names sorted by
//! bytes, as Go's `filepath.WalkDir` in moby does), named relative to the
//! layer (`bin/`, `bin/busybox`), in ustar headers with PAX records for long
//! names and `SCHILY.xattr.*`. Overlay whiteouts become OCI ones at this
//! boundary only, as moby's overlay whiteout converter does: a character
//! device 0/0 becomes an empty `.wh.NAME` file (mode 0600), an opaque
//! directory (`trusted.overlay.opaque=y`) gets an empty `.wh..wh..opq`
//! entry right after its own. See docs/archive.md and
//! <https://github.com/opencontainers/image-spec/blob/main/layer.md>.
//!
//! The walk is by descriptors (`openat`, `fstatat` with `O_NOFOLLOW`): a
//! symlink swapped into the tree is archived as a symlink, never followed.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, SFlag};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};
use xattr::FileExt as _;

use super::copy::{is_type, lstatat, openat, read_names};
use super::extract::OVERLAY_OPAQUE_XATTR;
use super::ArchiveError;
use crate::types::Digest;

/// Bytes per read of file data: few large reads keep syscalls out of the
/// profile, where sha256 should be alone.
const COPY_BUF: usize = 256 * 1024;
/// Tar block size.
const BLOCK: usize = 512;
/// Zeros for padding and the end-of-archive marker (two blocks).
const ZEROS: [u8; 2 * BLOCK] = [0; 2 * BLOCK];
/// Bytes in a ustar header's name and linkname fields; longer values are
/// carried by PAX `path` / `linkpath` records (as Docker's Go writer does).
const NAME_FIELD: usize = 100;
/// PAX key prefix for extended attributes (GNU tar, Docker, the extractor).
const PAX_XATTR: &[u8] = b"SCHILY.xattr.";
/// Overlayfs's own attributes (opaque, origin, redirect...) describe the
/// upper directory, not the layer: never archived. Whiteout translation
/// carries the one that means something in a layer.
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
/// OCI whiteout prefix.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// OCI opaque-directory marker.
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Mode of `.wh.NAME` files (moby's choice).
const WHITEOUT_MODE: u32 = 0o600;

/// What [`write_layer_tar`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerTarSummary {
    /// sha256 of the uncompressed tar: the layer's diff_id.
    pub diff_id: Digest,
    /// Bytes of (uncompressed) tar.
    pub size: u64,
    /// Tar entries, whiteouts and opaque markers included, PAX headers not
    /// (as [`extract_layer`](super::extract_layer) counts them).
    pub entries: u64,
}

/// How [`write_layer_compressed`] compresses the tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// A plain tar.
    None,
    /// gzip at the default level (6), header with mtime 0 and OS 255 (as Go).
    Gzip,
    /// Zstandard.
    Zstd {
        /// Compression level (1-22; 3 is zstd's default).
        level: i32,
        /// Worker threads; 0 compresses on the calling thread. With one or
        /// more workers the output is the same whatever their number.
        threads: u32,
    },
}

/// A writer that feeds every byte it passes on into sha256 and counts them.
///
/// sha256 is the slowest step of every layer stream, so it runs on a
/// thread of its own: written bytes are gathered into 256 KiB chunks and
/// hashed there while the caller goes on reading and writing.
pub struct HashingWriter<W> {
    inner: W,
    count: u64,
    pending: Vec<u8>,
    hasher: Option<HashThread>,
}

struct HashThread {
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    handle: std::thread::JoinHandle<Sha256>,
}

/// Bytes gathered before a chunk goes to the hashing thread.
const HASH_CHUNK: usize = 256 * 1024;

impl<W: Write> HashingWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            count: 0,
            pending: Vec::with_capacity(HASH_CHUNK),
            hasher: None,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn send_pending(&mut self) {
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(HASH_CHUNK));
        let t = self.hasher.get_or_insert_with(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
            let handle = std::thread::spawn(move || {
                let mut h = Sha256::new();
                for c in rx {
                    h.update(&c);
                }
                h
            });
            HashThread { tx, handle }
        });
        // The thread only ends when the sender is dropped: a send fails
        // only if it panicked, which `finish` reports by hashing here.
        if let Err(e) = t.tx.send(chunk) {
            self.pending = e.0;
        }
    }

    /// The digest and length of what was written, and the inner writer
    /// (not flushed).
    pub fn finish(mut self) -> (Digest, u64, W) {
        let rest = std::mem::take(&mut self.pending);
        let mut h = match self.hasher.take() {
            Some(HashThread { tx, handle }) => {
                drop(tx);
                // invariant: the hashing thread only loops over its channel.
                handle.join().expect("hashing thread panicked")
            }
            None => Sha256::new(),
        };
        h.update(&rest);
        (Digest::from_hasher(h), self.count, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pending.extend_from_slice(&buf[..n]);
        self.count += n as u64;
        if self.pending.len() >= HASH_CHUNK {
            self.send_pending();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Write the layer directory `dir` (an overlay upper directory, or any
/// tree) to `out` as a deterministic OCI layer tar, hashing it on the way.
///
/// The same content and metadata give the same bytes on every run and
/// host. File data is read once and goes nowhere but `out`. A file that
/// changes size while it is read fails the write (the digest would not
/// describe the directory); sockets are skipped, as Docker does; a name
/// starting with `.wh.` is refused (it would read back as a whiteout).
pub fn write_layer_tar<W: Write>(dir: &Path, out: W) -> Result<LayerTarSummary, ArchiveError> {
    let mut out = out;
    let summary = write_tar_into(dir, &mut out)?;
    out.flush().map_err(io_at(dir, "flush layer tar of", b""))?;
    Ok(summary)
}

/// The diff_id, size and entry count of `dir`'s layer tar, written to a
/// hashing sink only.
pub fn layer_diff_id(dir: &Path) -> Result<LayerTarSummary, ArchiveError> {
    write_layer_tar(dir, io::sink())
}

/// [`write_layer_tar`] through a compressor: returns the summary of the
/// uncompressed tar, and the digest and size of the compressed stream
/// written to `out` (the blob's digest and size in a manifest).
pub fn write_layer_compressed<W: Write>(
    dir: &Path,
    out: W,
    compression: LayerCompression,
) -> Result<(LayerTarSummary, Digest, u64), ArchiveError> {
    let out = HashingWriter::new(out);
    let (summary, mut out) = match compression {
        LayerCompression::None => {
            let mut out = out;
            (write_tar_into(dir, &mut out)?, out)
        }
        LayerCompression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            let summary = write_tar_into(dir, &mut enc)?;
            (summary, enc.finish().map_err(io_at(dir, "compress", b""))?)
        }
        LayerCompression::Zstd { level, threads } => {
            let start = io_at(dir, "start compressing", b"");
            let mut enc = zstd::Encoder::new(out, level).map_err(start)?;
            if threads > 0 {
                let mt = io_at(dir, "start compression threads for", b"");
                enc.multithread(threads).map_err(mt)?;
            }
            let summary = write_tar_into(dir, &mut enc)?;
            (summary, enc.finish().map_err(io_at(dir, "compress", b""))?)
        }
    };
    out.flush()
        .map_err(io_at(dir, "flush compressed layer of", b""))?;
    let (digest, size, _) = out.finish();
    Ok((summary, digest, size))
}

/// Write the tar, end marker included, without flushing `out`.
fn write_tar_into<W: Write>(dir: &Path, out: &mut W) -> Result<LayerTarSummary, ArchiveError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut root =
        Dir::open(dir, flags, Mode::empty()).map_err(errno_at(dir, "open layer directory", b""))?;
    let mut w = LayerWriter {
        root: dir,
        out: HashingWriter::new(out),
        buf: vec![0; COPY_BUF],
        links: HashMap::new(),
        entries: 0,
    };
    w.walk(&mut root, b"")?;
    w.out
        .write_all(&ZEROS)
        .map_err(io_at(dir, "write end of layer tar of", b""))?;
    let (diff_id, size, _) = w.out.finish();
    Ok(LayerTarSummary {
        diff_id,
        size,
        entries: w.entries,
    })
}

/// An error on the entry `arc` (archive name) of the layer at `root`.
fn io_at<'a>(
    root: &'a Path,
    op: &'static str,
    arc: &'a [u8],
) -> impl FnOnce(io::Error) -> ArchiveError + 'a {
    move |source| ArchiveError::Io {
        op,
        path: root.join(OsStr::from_bytes(arc)),
        source,
    }
}

fn errno_at<'a>(
    root: &'a Path,
    op: &'static str,
    arc: &'a [u8],
) -> impl FnOnce(Errno) -> ArchiveError + 'a {
    move |e| io_at(root, op, arc)(e.into())
}

/// The error for a file that changed while it was archived.
fn changed(root: &Path, arc: &[u8]) -> ArchiveError {
    let source = io::Error::other("the file changed while the layer was being archived");
    io_at(root, "archive", arc)(source)
}

/// A header with `st`'s mode bits, owner and mtime (whole seconds), size 0,
/// empty user and group names, device numbers 0.
fn header_for(st: &FileStat, kind: EntryType) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid.into());
    h.set_gid(st.st_gid.into());
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    set_device(&mut h, 0, 0);
    h
}

fn set_device(h: &mut Header, major: u32, minor: u32) {
    if let Some(u) = h.as_ustar_mut() {
        u.set_device_major(major);
        u.set_device_minor(minor);
    }
}

/// Copy `value` into a NUL-padded header field, truncated: a longer value
/// is carried by a PAX record.
fn set_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Append the PAX record `LEN KEY=VALUE\n`, whose length counts itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest;
    while len != rest + digits(len) {
        len = rest + digits(len);
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// `dir/name` → (`dir/`, `name`); a trailing `/` is not part of the name.
fn split_name(arc: &[u8]) -> (&[u8], &[u8]) {
    let trimmed = arc.strip_suffix(b"/").unwrap_or(arc);
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => (b"", trimmed),
    }
}

/// The name of the PAX header block before `arc`, as Go writes it.
fn pax_header_name(arc: &[u8]) -> Vec<u8> {
    let (dir, base) = split_name(arc);
    [dir, b"PaxHeaders.0/", base].concat()
}

/// Extended attributes of `name` in the directory `dir`, sorted by name.
/// Read through `/proc/self/fd/DIR/NAME` with the `l*xattr` calls: the
/// directory is the one we hold, the last component is never followed.
fn read_xattrs_at(dir: RawFd, name: &OsStr) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    let mut path = PathBuf::from(format!("/proc/self/fd/{dir}"));
    path.push(name);
    collect_xattrs(xattr::list(&path), |n| xattr::get(&path, n))
}

/// Extended attributes of an open file, sorted by name (no path lookup).
fn read_xattrs_of(file: &File) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    collect_xattrs(file.list_xattr(), |n| file.get_xattr(n))
}

fn collect_xattrs<I: Iterator<Item = OsString>>(
    names: io::Result<I>,
    get: impl Fn(&OsStr) -> io::Result<Option<Vec<u8>>>,
) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    let names = match names {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for n in names {
        // Removed since it was listed: nothing to archive.
        if let Some(v) = get(&n)? {
            out.push((n, v));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether the directory with these attributes is an opaque overlay one.
fn is_opaque(xattrs: &[(OsString, Vec<u8>)]) -> bool {
    xattrs
        .iter()
        .any(|(k, v)| k == OVERLAY_OPAQUE_XATTR && v.as_slice() == b"y")
}

/// The attributes a layer carries: all but overlayfs's own.
fn layer_xattrs(mut xattrs: Vec<(OsString, Vec<u8>)>) -> Vec<(OsString, Vec<u8>)> {
    xattrs.retain(|(k, _)| !k.as_bytes().starts_with(OVERLAY_XATTR_PREFIX));
    xattrs
}

struct LayerWriter<'a, W: Write> {
    root: &'a Path,
    out: HashingWriter<W>,
    /// One read buffer for every file.
    buf: Vec<u8>,
    /// (dev, ino) of multiply-linked entries already archived → their name.
    links: HashMap<(u64, u64), Vec<u8>>,
    entries: u64,
}

impl<W: Write> LayerWriter<'_, W> {
    /// Archive the children of `dir`, sorted by name, as `prefix` + name.
    fn walk(&mut self, dir: &mut Dir, prefix: &[u8]) -> Result<(), ArchiveError> {
        let names = read_names(dir).map_err(errno_at(self.root, "read directory", prefix))?;
        let fd = dir.as_raw_fd();
        for name in names {
            let arc = [prefix, name.as_bytes()].concat();
            let st = lstatat(fd, &name).map_err(errno_at(self.root, "inspect", &arc))?;
            self.entry(fd, &name, arc, &st)?;
        }
        Ok(())
    }

    /// Archive `name` in `dir` (whose lstat is `st`) as `arc`.
    fn entry(
        &mut self,
        dir: RawFd,
        name: &OsStr,
        arc: Vec<u8>,
        st: &FileStat,
    ) -> Result<(), ArchiveError> {
        let kind = st.st_mode & libc::S_IFMT;
        if kind == libc::S_IFCHR && st.st_rdev == 0 {
            return self.whiteout(&arc, st);
        }
        if name.as_bytes().starts_with(WHITEOUT_PREFIX) {
            return Err(ArchiveError::UnsafePath {
                path: String::from_utf8_lossy(&arc).into_owned(),
                reason: "has a name OCI reserves for whiteouts and cannot be archived",
            });
        }
        if let Some(first) = self.earlier_link(&arc, st) {
            let h = header_for(st, EntryType::Link);
            return self.append(h, &arc, Some(&first), &[]);
        }
        match kind {
            libc::S_IFDIR => self.directory(dir, name, arc, st),
            libc::S_IFREG => self.regular(dir, name, &arc),
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(Some(dir), name).map_err(errno_at(
                    self.root,
                    "read symlink",
                    &arc,
                ))?;
                let h = header_for(st, EntryType::Symlink);
                self.special(dir, name, &arc, h, Some(target.as_bytes()))
            }
            libc::S_IFIFO => self.special(dir, name, &arc, header_for(st, EntryType::Fifo), None),
            libc::S_IFCHR | libc::S_IFBLK => self.device(dir, name, &arc, st),
            // Sockets: Docker skips them; they cannot be recreated from a tar.
            _ => Ok(()),
        }
    }

    /// The name this file was archived under, if it is a further link to
    /// an inode already in the tar; otherwise remember it.
    fn earlier_link(&mut self, arc: &[u8], st: &FileStat) -> Option<Vec<u8>> {
        let kind = st.st_mode & libc::S_IFMT;
        if kind == libc::S_IFDIR || kind == libc::S_IFSOCK || st.st_nlink < 2 {
            return None;
        }
        let key = (st.st_dev, st.st_ino);
        if let Some(first) = self.links.get(&key) {
            return Some(first.clone());
        }
        self.links.insert(key, arc.to_vec());
        None
    }

    /// A character or block device (not a whiteout).
    fn device(
        &mut self,
        dir: RawFd,
        name: &OsStr,
        arc: &[u8],
        st: &FileStat,
    ) -> Result<(), ArchiveError> {
        let kind = if st.st_mode & libc::S_IFMT == libc::S_IFCHR {
            EntryType::Char
        } else {
            EntryType::Block
        };
        let mut h = header_for(st, kind);
        set_device(&mut h, libc::major(st.st_rdev), libc::minor(st.st_rdev));
        self.special(dir, name, arc, h, None)
    }

    /// An entry without data: its attributes, then its header.
    fn special(
        &mut self,
        dir: RawFd,
        name: &OsStr,
        arc: &[u8],
        h: Header,
        link: Option<&[u8]>,
    ) -> Result<(), ArchiveError> {
        let xattrs = read_xattrs_at(dir, name).map_err(io_at(self.root, "read xattrs of", arc))?;
        self.append(h, arc, link, &layer_xattrs(xattrs))
    }

    /// Overlay whiteout (character device 0/0) → empty `.wh.NAME` file.
    fn whiteout(&mut self, arc: &[u8], st: &FileStat) -> Result<(), ArchiveError> {
        let (parent, base) = split_name(arc);
        let name = [parent, WHITEOUT_PREFIX, base].concat();
        let mut h = header_for(st, EntryType::Regular);
        h.set_mode(WHITEOUT_MODE);
        self.append(h, &name, None, &[])
    }

    /// The directory's entry, its opaque marker if any, then its children.
    fn directory(
        &mut self,
        dir: RawFd,
        name: &OsStr,
        mut arc: Vec<u8>,
        st: &FileStat,
    ) -> Result<(), ArchiveError> {
        arc.push(b'/');
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut sub = Dir::openat(Some(dir), name, flags, Mode::empty()).map_err(errno_at(
            self.root,
            "open directory",
            &arc,
        ))?;
        let xattrs = read_xattrs_at(dir, name).map_err(io_at(self.root, "read xattrs of", &arc))?;
        let opaque = is_opaque(&xattrs);
        self.append(
            header_for(st, EntryType::Directory),
            &arc,
            None,
            &layer_xattrs(xattrs),
        )?;
        if opaque {
            // As moby: the directory's owner and permission bits, mtime 0.
            let mut h = header_for(st, EntryType::Regular);
            h.set_mode(st.st_mode & 0o777);
            h.set_mtime(0);
            self.append(h, &[&arc[..], OPAQUE_MARKER].concat(), None, &[])?;
        }
        self.walk(&mut sub, &arc)
    }

    /// A regular file: header from the opened file's fstat, then its data.
    fn regular(&mut self, dir: RawFd, name: &OsStr, arc: &[u8]) -> Result<(), ArchiveError> {
        // O_NONBLOCK: if the file was swapped for a FIFO, open must not hang.
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let fd = openat(dir, name, flags).map_err(errno_at(self.root, "open", arc))?;
        let st =
            nix::sys::stat::fstat(fd.as_raw_fd()).map_err(errno_at(self.root, "inspect", arc))?;
        if !is_type(&st, SFlag::S_IFREG) {
            return Err(changed(self.root, arc));
        }
        let file = File::from(fd);
        let xattrs = read_xattrs_of(&file).map_err(io_at(self.root, "read xattrs of", arc))?;
        let size = st.st_size.max(0) as u64;
        let mut h = header_for(&st, EntryType::Regular);
        h.set_size(size);
        self.append(h, arc, None, &layer_xattrs(xattrs))?;
        self.copy_data(file, size, arc)
    }

    /// Stream exactly `size` bytes of `file` to the tar, then the padding;
    /// a file shorter or longer than `size` is an error.
    fn copy_data(&mut self, mut file: File, size: u64, arc: &[u8]) -> Result<(), ArchiveError> {
        let mut left = size;
        loop {
            // Ask for one byte more than is left: a short read proves the
            // end of the file without another call.
            let want = (left + 1).min(self.buf.len() as u64) as usize;
            let n = match file.read(&mut self.buf[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r.map_err(io_at(self.root, "read", arc))?,
            };
            if n as u64 > left || (n == 0 && left > 0) {
                return Err(changed(self.root, arc));
            }
            if n == 0 {
                break;
            }
            self.out.write_all(&self.buf[..n]).map_err(io_at(
                self.root,
                "write layer tar entry",
                arc,
            ))?;
            left -= n as u64;
            if left == 0 && n < want {
                break;
            }
        }
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        self.out
            .write_all(&ZEROS[..pad])
            .map_err(io_at(self.root, "write layer tar entry", arc))
    }

    /// Write the header of `arc`, preceded by a PAX header for attributes
    /// and names longer than the ustar fields.
    fn append(
        &mut self,
        mut h: Header,
        arc: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(OsString, Vec<u8>)],
    ) -> Result<(), ArchiveError> {
        // Records sorted by key, as Go writes them.
        let mut pax = Vec::new();
        for (k, v) in xattrs {
            pax_record(&mut pax, &[PAX_XATTR, k.as_bytes()].concat(), v);
        }
        if let Some(link) = link {
            if link.len() > NAME_FIELD {
                pax_record(&mut pax, b"linkpath", link);
            }
            set_field(&mut h.as_old_mut().linkname, link);
        }
        if arc.len() > NAME_FIELD {
            pax_record(&mut pax, b"path", arc);
        }
        set_field(&mut h.as_old_mut().name, arc);
        if !pax.is_empty() {
            let mut x = Header::new_ustar();
            x.set_entry_type(EntryType::XHeader);
            set_field(&mut x.as_old_mut().name, &pax_header_name(arc));
            x.set_mode(0o644);
            x.set_uid(0);
            x.set_gid(0);
            x.set_size(pax.len() as u64);
            set_device(&mut x, 0, 0);
            x.set_cksum();
            let pad = (BLOCK - pax.len() % BLOCK) % BLOCK;
            let out = &mut self.out;
            out.write_all(x.as_bytes())
                .and_then(|()| out.write_all(&pax))
                .and_then(|()| out.write_all(&ZEROS[..pad]))
                .map_err(io_at(self.root, "write layer tar entry", arc))?;
        }
        h.set_cksum();
        self.out
            .write_all(h.as_bytes())
            .map_err(io_at(self.root, "write layer tar entry", arc))?;
        self.entries += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for (key, value, want) in [
            (&b"path"[..], &b"a"[..], &b"9 path=a\n"[..]),
            (
                b"path",
                b"abcdefghijklmnopqrstuvwxyz",
                b"35 path=abcdefghijklmnopqrstuvwxyz\n",
            ),
            (b"k", &[b'v'; 95][..], &[]),
        ] {
            let mut out = Vec::new();
            pax_record(&mut out, key, value);
            let (len, _) = out.split_at(out.iter().position(|&b| b == b' ').unwrap());
            let len: usize = std::str::from_utf8(len).unwrap().parse().unwrap();
            assert_eq!(len, out.len());
            if !want.is_empty() {
                assert_eq!(out, want);
            }
        }
    }

    #[test]
    fn splits_and_names() {
        assert_eq!(split_name(b"a/b/c"), (&b"a/b/"[..], &b"c"[..]));
        assert_eq!(split_name(b"a/b/"), (&b"a/"[..], &b"b"[..]));
        assert_eq!(split_name(b"top"), (&b""[..], &b"top"[..]));
        assert_eq!(pax_header_name(b"d/x"), b"d/PaxHeaders.0/x");
    }
}
