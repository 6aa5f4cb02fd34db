//! Check a layer tar without unpacking it, copying it to a writer and
//! hashing it on the way: what `load` does so it can keep the verified tar
//! and unpack it later (see docs/archive.md, "deferred unpack").
//!
//! The rules are [`super::extract_layer`]'s, applied to a model of the tree
//! (which paths are directories) instead of the filesystem, so an archive
//! `extract_layer` would refuse is refused here with the same message. The
//! later unpack applies every rule again on the real tree: this pass only
//! makes the refusal happen while the user is still waiting for it.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tar::{Archive, Entry, EntryType};

use super::extract::{sanitize, symlink_stays_inside, OPAQUE_MARKER, WHITEOUT_PREFIX};
use super::{compress, ArchiveError};
use crate::types::Digest;

/// Reads the stream for the tar parser, copying every byte to `out` and
/// hashing it (unless its digest comes from elsewhere).
struct TeeReader<R, W> {
    inner: R,
    out: W,
    hasher: Option<Sha256>,
    count: u64,
    /// A failed write, reported as itself rather than as a corrupt tar.
    write_error: Option<io::Error>,
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let kind = e.kind();
            self.write_error = Some(e);
            return Err(io::Error::new(kind, "cannot keep the layer"));
        }
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// What a path of the modelled tree is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    Other,
}

/// What [`check_layer`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSummary {
    /// sha256 of the stream (the layer's diff_id), when asked for.
    pub diff_id: Option<Digest>,
    /// Length of the stream.
    pub tar_size: u64,
    /// Entries in it.
    pub entries: u64,
}

/// Check the (uncompressed) layer tar `input` against the extraction rules
/// as if it were unpacked into an empty directory with `allow_devices` as
/// given and a tar-split recorded (so an entry may not replace another).
/// Every byte read is written to `out`, which is returned with the
/// stream's length and, with `hash`, its digest (a caller that hashes the
/// same bytes on another thread passes `false`: sha256 is the slow part).
pub fn check_layer<R: Read, W: Write>(
    input: R,
    out: W,
    allow_devices: bool,
    hash: bool,
) -> Result<(CheckSummary, W), ArchiveError> {
    let tee = TeeReader {
        inner: input,
        out,
        hasher: hash.then(Sha256::new),
        count: 0,
        write_error: None,
    };
    let mut archive = Archive::new(tee);
    let mut model = Model {
        tree: HashMap::new(),
        allow_devices,
        entries: 0,
    };
    let walked = (|| {
        for entry in archive.entries().map_err(corrupt)? {
            model.check(&mut entry.map_err(corrupt)?)?;
        }
        Ok(())
    })();
    let mut tee = archive.into_inner();
    if let Some(source) = tee.write_error.take() {
        return Err(keep_error(source));
    }
    walked?;
    // The bytes after the end marker belong to the stream (and its digest).
    io::copy(&mut tee, &mut io::sink()).map_err(|e| match tee.write_error.take() {
        Some(source) => keep_error(source),
        None => corrupt(e),
    })?;
    let summary = CheckSummary {
        diff_id: tee.hasher.map(Digest::from_hasher),
        tar_size: tee.count,
        entries: model.entries,
    };
    Ok((summary, tee.out))
}

fn corrupt(source: io::Error) -> ArchiveError {
    ArchiveError::Corrupt { source }
}

fn keep_error(source: io::Error) -> ArchiveError {
    ArchiveError::Io {
        op: "keep",
        path: PathBuf::from("the layer tar"),
        source,
    }
}

fn unsafe_path(path: String, reason: &'static str) -> ArchiveError {
    ArchiveError::UnsafePath { path, reason }
}

struct Model {
    /// Every path the unpack would have created, relative.
    tree: HashMap<PathBuf, Kind>,
    allow_devices: bool,
    entries: u64,
}

impl Model {
    fn check<R: Read>(&mut self, entry: &mut Entry<'_, R>) -> Result<(), ArchiveError> {
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
            let h = entry.header();
            h.mode().map_err(corrupt)?;
            h.mtime().map_err(corrupt)?;
            return Ok(());
        }
        self.parents(&rel)?;
        let name = rel.file_name().unwrap_or_default().to_string_lossy();
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            return self.whiteout(&raw, &rel, target);
        }
        // In the order the unpack meets them: the entry, then its metadata.
        match kind {
            EntryType::Directory => match self.tree.get(&rel) {
                Some(Kind::Dir) => {}
                Some(Kind::Other) => return Err(duplicate(&rel)),
                None => {
                    self.tree.insert(rel, Kind::Dir);
                }
            },
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.create(&rel)?;
                read_content(entry, &raw)?;
            }
            EntryType::Symlink => {
                let target = entry.link_name().map_err(corrupt)?.ok_or_else(|| {
                    unsafe_path(raw.display().to_string(), "is a symlink without a target")
                })?;
                if !symlink_stays_inside(&rel, &target) {
                    return Err(unsafe_path(
                        format!("{} -> {}", raw.display(), target.display()),
                        "is a symlink pointing outside the layer",
                    ));
                }
                self.create(&rel)?;
            }
            EntryType::Link => return self.hardlink(entry, &rel),
            EntryType::Char | EntryType::Block if !self.allow_devices => {
                return Err(ArchiveError::Device {
                    path: raw.display().to_string(),
                })
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => self.create(&rel)?,
            _ => {
                return Err(unsafe_path(
                    raw.display().to_string(),
                    "has an unsupported entry type",
                ))
            }
        }
        check_header(entry, kind != EntryType::Symlink)
    }

    /// Parents are created as directories; none may be anything else.
    fn parents(&mut self, rel: &Path) -> Result<(), ArchiveError> {
        let mut cur = PathBuf::new();
        for c in rel.parent().into_iter().flat_map(Path::components) {
            cur.push(c);
            match self.tree.get(&cur) {
                Some(Kind::Dir) => {}
                Some(Kind::Other) => {
                    return Err(unsafe_path(
                        rel.display().to_string(),
                        "goes through a symlink or non-directory",
                    ))
                }
                None => {
                    self.tree.insert(cur.clone(), Kind::Dir);
                }
            }
        }
        Ok(())
    }

    /// A new non-directory at `rel`: nothing may be there yet.
    fn create(&mut self, rel: &Path) -> Result<(), ArchiveError> {
        if self.tree.contains_key(rel) {
            return Err(duplicate(rel));
        }
        self.tree.insert(rel.to_path_buf(), Kind::Other);
        Ok(())
    }

    fn whiteout(&mut self, raw: &Path, rel: &Path, target: &str) -> Result<(), ArchiveError> {
        if rel.file_name() == Some(std::ffi::OsStr::new(OPAQUE_MARKER)) {
            return Ok(());
        }
        if target.is_empty() || target == "." || target == ".." || target.contains('/') {
            return Err(unsafe_path(
                raw.display().to_string(),
                "is an invalid whiteout",
            ));
        }
        self.create(&rel.with_file_name(target))
    }

    fn hardlink<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        rel: &Path,
    ) -> Result<(), ArchiveError> {
        let raw_target = entry
            .link_name()
            .map_err(corrupt)?
            .map(|t| t.into_owned())
            .unwrap_or_default();
        let shown = || format!("{} => {}", rel.display(), raw_target.display());
        let target = sanitize(&raw_target)
            .map_err(|_| unsafe_path(shown(), "is a hardlink pointing outside the layer"))?;
        let not_inside = || {
            unsafe_path(
                shown(),
                "is a hardlink to a file that is not earlier in the layer",
            )
        };
        if target.as_os_str().is_empty() || target == rel {
            return Err(not_inside());
        }
        self.parents(&target).map_err(|_| not_inside())?;
        if self.tree.get(&target) != Some(&Kind::Other) {
            return Err(not_inside());
        }
        self.create(rel)
    }
}

fn duplicate(rel: &Path) -> ArchiveError {
    unsafe_path(
        rel.display().to_string(),
        "appears twice in the layer (duplicate entry)",
    )
}

/// The header fields the unpack applies must parse (a symlink's mode is
/// not applied).
fn check_header<R: Read>(entry: &mut Entry<'_, R>, mode: bool) -> Result<(), ArchiveError> {
    let h = entry.header();
    h.uid().map_err(corrupt)?;
    h.gid().map_err(corrupt)?;
    if mode {
        h.mode().map_err(corrupt)?;
    }
    h.mtime().map_err(corrupt)?;
    if let Some(exts) = entry.pax_extensions().map_err(corrupt)? {
        for ext in exts {
            ext.map_err(corrupt)?;
        }
    }
    Ok(())
}

/// Read a file's content through, refusing a short one.
fn read_content<R: Read>(entry: &mut Entry<'_, R>, raw: &Path) -> Result<(), ArchiveError> {
    let want = entry.size();
    let got = io::copy(entry, &mut io::sink()).map_err(|e| {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{extract_layer, ExtractOptions};

    fn tar_of(entries: &[(&str, EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(if *kind == EntryType::Regular { 3 } else { 0 });
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            h.set_path(name).unwrap();
            h.set_cksum();
            let data: &[u8] = if *kind == EntryType::Regular {
                b"abc"
            } else {
                b""
            };
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// The check and a real unpack agree on every case: both accept, or
    /// both refuse with the same message.
    #[test]
    fn agrees_with_extraction() {
        use EntryType as T;
        let cases: Vec<Vec<(&str, T, &str)>> = vec![
            vec![("a/b", T::Regular, ""), ("a/c", T::Symlink, "b")],
            vec![("l", T::Symlink, "/etc"), ("l/x", T::Regular, "")],
            vec![("f", T::Regular, ""), ("f/x", T::Regular, "")],
            vec![("f", T::Regular, ""), ("f", T::Regular, "")],
            vec![("d", T::Directory, ""), ("d", T::Directory, "")],
            vec![("d", T::Directory, ""), ("d", T::Regular, "")],
            vec![("f", T::Regular, ""), ("h", T::Link, "f")],
            vec![("h", T::Link, "nothere")],
            vec![("d", T::Directory, ""), ("h", T::Link, "d")],
            vec![("h", T::Link, "h")],
            vec![("s", T::Symlink, "../x")],
            vec![("d/.wh.x", T::Regular, "")],
            vec![("d/.wh..", T::Regular, "")],
            vec![("d/x", T::Regular, ""), ("d/.wh.x", T::Regular, "")],
            vec![("d/.wh..wh..opq", T::Regular, ""), ("d/y", T::Regular, "")],
            vec![("dev", T::Char, "")],
            vec![("p", T::Fifo, "")],
        ];
        for entries in cases {
            let data = tar_of(&entries);
            let dir = tempfile::tempdir().unwrap();
            let diff = dir.path().join("diff");
            std::fs::create_dir(&diff).unwrap();
            let opts = ExtractOptions {
                split: Some(dir.path().join("split")),
                ..Default::default()
            };
            let real = extract_layer(&data[..], &diff, &opts).map_err(|e| e.to_string());
            let model = check_layer(&data[..], Vec::new(), false, true);
            match (&real, &model) {
                (Ok(r), Ok((m, copy))) => {
                    assert_eq!(Some(&r.diff_id), m.diff_id.as_ref(), "{entries:?}");
                    assert_eq!(copy, &data);
                }
                (Err(r), Err(m)) => assert_eq!(r, &m.to_string(), "{entries:?}"),
                _ => panic!(
                    "{entries:?}: extract {real:?}, check {:?}",
                    model.map(|(s, _)| s)
                ),
            }
        }
    }
}
