//! Tar-split: keep what a layer tar holds besides file contents (headers,
//! PAX records, padding, the end marker, trailing bytes) so the exact tar,
//! byte for byte, can be written again from the unpacked directory.
//!
//! A layer's diff_id is the sha256 of the tar it came in. Docker and
//! Podman keep "tar-split" metadata for the same reason; this is amber's
//! own format (docs/archive.md): a zstd stream of records
//!
//! ```text
//! "AMBSPLIT1\n"
//! 'R' u32le len  bytes        raw tar bytes, written as they are
//! 'F' u32le len  path u64le n  n bytes of the file at path (relative)
//! 'E' u64le total             end: the tar's length
//! ```
//!
//! Recording happens during extraction ([`Recorder`], fed by a reader that
//! sits under the tar parser); [`replay`] writes the tar again.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use super::layer_tar::HashingWriter;
use super::ArchiveError;
use crate::types::Digest;

const MAGIC: &[u8] = b"AMBSPLIT1\n";
/// Raw bytes are flushed as a record once this many are pending.
const RAW_CHUNK: usize = 256 * 1024;
/// Bytes per read of file data on replay.
const COPY_BUF: usize = 256 * 1024;
/// A record longer than this is corruption, not data.
const MAX_RECORD: u32 = 64 * 1024 * 1024;

/// The name of the split file next to a layer's `diff/`.
pub const SPLIT_FILE: &str = "tar-split.zst";

struct State {
    out: zstd::Encoder<'static, BufWriter<File>>,
    pending: Vec<u8>,
    /// File content bytes still to pass unrecorded.
    skip: u64,
    total: u64,
    error: Option<io::Error>,
}

impl State {
    fn flush_raw(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.out.write_all(b"R")?;
        self.out
            .write_all(&(self.pending.len() as u32).to_le_bytes())?;
        self.out.write_all(&self.pending)?;
        self.pending.clear();
        Ok(())
    }

    fn see(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let skipped = (self.skip.min(bytes.len() as u64)) as usize;
        self.skip -= skipped as u64;
        self.pending.extend_from_slice(&bytes[skipped..]);
        if self.pending.len() >= RAW_CHUNK && self.error.is_none() {
            if let Err(e) = self.flush_raw() {
                self.error = Some(e);
            }
        }
    }
}

/// Records a tar stream's non-content bytes into a split file.
#[derive(Clone)]
pub struct Recorder(Rc<RefCell<State>>);

impl Recorder {
    /// Start a split file at `path` (created; the caller syncs it).
    pub fn create(path: &Path) -> Result<Recorder, ArchiveError> {
        let err = |source| ArchiveError::Io {
            op: "create",
            path: path.to_path_buf(),
            source,
        };
        let f = File::create(path).map_err(err)?;
        let mut out = zstd::Encoder::new(BufWriter::new(f), 3).map_err(err)?;
        out.write_all(MAGIC).map_err(err)?;
        Ok(Recorder(Rc::new(RefCell::new(State {
            out,
            pending: Vec::new(),
            skip: 0,
            total: 0,
            error: None,
        }))))
    }

    /// Wrap the tar stream: every byte read through it is recorded unless
    /// it is file content announced by [`Recorder::file`].
    pub fn reader<R: Read>(&self, inner: R) -> RecordingReader<R> {
        RecordingReader {
            inner,
            state: Some(self.0.clone()),
        }
    }

    /// The next `size` bytes of the stream are the content of `path`.
    pub fn file(&self, path: &Path, size: u64) -> Result<(), ArchiveError> {
        let mut s = self.0.borrow_mut();
        let name = path.as_os_str().as_bytes();
        let r = s.flush_raw().and_then(|_| {
            s.out.write_all(b"F")?;
            s.out.write_all(&(name.len() as u32).to_le_bytes())?;
            s.out.write_all(name)?;
            s.out.write_all(&size.to_le_bytes())
        });
        s.skip = size;
        r.map_err(|source| ArchiveError::Io {
            op: "record",
            path: path.to_path_buf(),
            source,
        })
    }

    /// Write the end record and close the file.
    pub fn finish(self) -> io::Result<()> {
        let state = Rc::try_unwrap(self.0)
            .map_err(|_| io::Error::other("tar-split recorder still in use"))?;
        let mut s = state.into_inner();
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        s.flush_raw()?;
        s.out.write_all(b"E")?;
        let total = s.total;
        s.out.write_all(&total.to_le_bytes())?;
        let mut w = s.out.finish()?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    }
}

/// See [`Recorder::reader`]; [`RecordingReader::plain`] records nothing.
pub struct RecordingReader<R> {
    inner: R,
    state: Option<Rc<RefCell<State>>>,
}

impl<R> RecordingReader<R> {
    /// A pass-through reader (no recording).
    pub fn plain(inner: R) -> Self {
        RecordingReader { inner, state: None }
    }
}

impl<R: Read> Read for RecordingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(s) = &self.state {
            s.borrow_mut().see(&buf[..n]);
        }
        Ok(n)
    }
}

/// Write the tar recorded in `split` again, reading file contents from the
/// unpacked layer `dir`. Returns the digest and length of what was
/// written; the caller compares them with the layer's diff_id.
pub fn replay<W: Write>(dir: &Path, split: &Path, out: W) -> Result<(Digest, u64), ArchiveError> {
    let bad = |why: String| ArchiveError::Corrupt {
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!("tar-split {}: {why}", split.display()),
        ),
    };
    let io_at =
        |op: &'static str, path: PathBuf| move |source| ArchiveError::Io { op, path, source };
    let f = File::open(split).map_err(io_at("open", split.to_path_buf()))?;
    let mut r = zstd::Decoder::new(f).map_err(io_at("read", split.to_path_buf()))?;
    let mut magic = [0u8; MAGIC.len()];
    r.read_exact(&mut magic)
        .map_err(|e| bad(format!("cannot read header: {e}")))?;
    if magic != MAGIC {
        return Err(bad("not a tar-split file".into()));
    }
    let root = open_dir(dir)?;
    let mut out = HashingWriter::new(out);
    let mut buf = vec![0u8; COPY_BUF];
    let write_err = io_at("write layer tar of", dir.to_path_buf());
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag)
            .map_err(|e| bad(format!("cut short: {e}")))?;
        match tag[0] {
            b'R' => {
                let len = read_len(&mut r).map_err(|e| bad(e.to_string()))?;
                let mut raw = (&mut r).take(len as u64);
                let n = io::copy(&mut raw, &mut out).map_err(|e| bad(e.to_string()))?;
                if n != len as u64 {
                    return Err(bad("raw record cut short".into()));
                }
            }
            b'F' => {
                let len = read_len(&mut r).map_err(|e| bad(e.to_string()))?;
                let mut name = vec![0u8; len as usize];
                r.read_exact(&mut name).map_err(|e| bad(e.to_string()))?;
                let mut size = [0u8; 8];
                r.read_exact(&mut size).map_err(|e| bad(e.to_string()))?;
                let size = u64::from_le_bytes(size);
                let rel = Path::new(OsStr::from_bytes(&name));
                copy_file(&root, dir, rel, size, &mut out, &mut buf)?;
            }
            b'E' => {
                let mut total = [0u8; 8];
                r.read_exact(&mut total).map_err(|e| bad(e.to_string()))?;
                if u64::from_le_bytes(total) != out.count() {
                    return Err(bad("length does not match the recorded tar".into()));
                }
                break;
            }
            other => return Err(bad(format!("unknown record {other:#x}"))),
        }
    }
    out.flush().map_err(write_err)?;
    let (digest, size, _) = out.finish();
    Ok((digest, size))
}

fn read_len<R: Read>(r: &mut R) -> io::Result<u32> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_RECORD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "record too long",
        ));
    }
    Ok(len)
}

fn open_dir(dir: &Path) -> Result<OwnedFd, ArchiveError> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(dir, flags, Mode::empty()).map_err(|e| ArchiveError::Io {
        op: "open layer directory",
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    // SAFETY: `fd` was just returned by open(2) and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Copy exactly `size` bytes of `rel` (inside `root`, no symlinks followed)
/// to `out`; a file of another length means the layer changed.
fn copy_file<W: Write>(
    root: &OwnedFd,
    dir: &Path,
    rel: &Path,
    size: u64,
    out: &mut W,
    buf: &mut [u8],
) -> Result<(), ArchiveError> {
    let path = dir.join(rel);
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let fd = nix::fcntl::openat2(root.as_raw_fd(), rel, how).map_err(|e| ArchiveError::Io {
        op: "open layer file",
        path: path.clone(),
        source: e.into(),
    })?;
    // SAFETY: `fd` was just returned by openat2(2) and is owned by nothing else.
    let file = unsafe { File::from_raw_fd(fd) };
    let changed = || ArchiveError::Io {
        op: "re-create layer tar from",
        path: path.clone(),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            "the file's size differs from the layer's record (the layer was modified)",
        ),
    };
    let len = file
        .metadata()
        .map_err(|source| ArchiveError::Io {
            op: "inspect",
            path: path.clone(),
            source,
        })?
        .len();
    if len != size {
        return Err(changed());
    }
    let mut reader = BufReader::with_capacity(0, file).take(size);
    let mut left = size;
    while left > 0 {
        let n = reader.read(buf).map_err(|source| ArchiveError::Io {
            op: "read",
            path: path.clone(),
            source,
        })?;
        if n == 0 {
            return Err(changed());
        }
        out.write_all(&buf[..n])
            .map_err(|source| ArchiveError::Io {
                op: "write layer tar from",
                path: path.clone(),
                source,
            })?;
        left -= n as u64;
    }
    Ok(())
}
