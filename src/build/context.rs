//! The build context on the daemon's side: a private directory the client's
//! tar was unpacked into (hardened extraction), `.dockerignore` applied,
//! COPY/ADD sources resolved inside it (globs, symlinks followed only
//! within the context) and written as a tar for the step container, with a
//! digest of what is copied for the cache.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::ignore::{glob, Ignore};
use super::BuildError;

/// Symlinks followed in one source lookup (the kernel's MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// An unpacked build context.
pub struct Context {
    root: PathBuf,
    ignore: Ignore,
}

/// Owner given to copied files (`--chown`, else root).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    /// User ID.
    pub uid: u64,
    /// Group ID.
    pub gid: u64,
}

/// One source resolved in the context.
#[derive(Debug, Clone)]
pub struct Source {
    /// The host path (symlinks resolved, inside the context).
    pub path: PathBuf,
    /// The path relative to the context root.
    pub rel: String,
    /// A directory (its contents are copied).
    pub is_dir: bool,
}

impl Context {
    /// A context unpacked at `root`, with its `.dockerignore` read.
    pub fn open(root: &Path) -> Context {
        let ignore = fs::read_to_string(root.join(".dockerignore"))
            .map(|t| Ignore::parse(&t))
            .unwrap_or_default();
        Context {
            root: root.to_path_buf(),
            ignore,
        }
    }

    /// The context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Read a file of the context (the Dockerfile), never through a symlink
    /// leaving it.
    pub fn read(&self, rel: &str) -> Result<String, BuildError> {
        let src = self.resolve(rel).map_err(|_| {
            BuildError::Context(format!("Cannot locate specified Dockerfile: {rel}"))
        })?;
        fs::read_to_string(&src.path).map_err(|e| {
            BuildError::Context(format!("cannot read {rel} in the build context: {e}"))
        })
    }

    /// Resolve a source (glob allowed) to the entries it names.
    pub fn sources(&self, pattern: &str) -> Result<Vec<Source>, BuildError> {
        if !has_glob(pattern) {
            let s = self.resolve(pattern)?;
            if s.rel != "." && self.ignore.ignored(&s.rel) {
                return Err(not_found(pattern));
            }
            return Ok(vec![s]);
        }
        let parts = components(pattern)?;
        let mut found = Vec::new();
        self.glob_walk(&self.root.clone(), String::new(), &parts, &mut found)?;
        if found.is_empty() {
            return Err(BuildError::Context(format!(
                "no source files were specified: {pattern} matches nothing in the build context"
            )));
        }
        found.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(found)
    }

    fn glob_walk(
        &self,
        dir: &Path,
        prefix: String,
        parts: &[String],
        out: &mut Vec<Source>,
    ) -> Result<(), BuildError> {
        let Some((first, rest)) = parts.split_first() else {
            return Ok(());
        };
        let mut names: Vec<String> = fs::read_dir(dir)
            .map_err(|e| BuildError::Context(format!("cannot read the build context: {e}")))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names.into_iter().filter(|n| glob(first, n)) {
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if self.ignore.ignored(&rel) {
                continue;
            }
            if rest.is_empty() {
                out.push(self.resolve(&rel)?);
            } else if dir.join(&name).is_dir() && !is_symlink(&dir.join(&name)) {
                self.glob_walk(&dir.join(&name), rel, rest, out)?;
            }
        }
        Ok(())
    }

    /// Resolve `rel` inside the context, following symlinks only while they
    /// stay inside it.
    pub fn resolve(&self, rel: &str) -> Result<Source, BuildError> {
        let mut todo: Vec<String> = components(rel)?;
        todo.reverse();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            let path = self.root.join(done.join("/")).join(&c);
            let meta = fs::symlink_metadata(&path).map_err(|_| not_found(rel))?;
            if !meta.file_type().is_symlink() {
                done.push(c);
                continue;
            }
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(BuildError::Context(format!(
                    "too many symlinks resolving {rel}"
                )));
            }
            let target = fs::read_link(&path).map_err(|_| not_found(rel))?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                return Err(outside(rel, "a symlink to an absolute path"));
            }
            let mut base = done.clone();
            for t in target.split('/') {
                match t {
                    "" | "." => {}
                    ".." => {
                        if base.pop().is_none() {
                            return Err(outside(rel, "a symlink leaving the context"));
                        }
                    }
                    t => base.push(t.to_string()),
                }
            }
            // Re-walk the target's components (they may hold symlinks too).
            done.clear();
            for t in base.into_iter().rev() {
                todo.push(t);
            }
        }
        let path = self.root.join(done.join("/"));
        let meta = fs::metadata(&path).map_err(|_| not_found(rel))?;
        let rel = if done.is_empty() {
            ".".to_string()
        } else {
            done.join("/")
        };
        Ok(Source {
            path,
            rel,
            is_dir: meta.is_dir(),
        })
    }

    /// Append `src` to `tar` under `name` (a directory: its contents under
    /// `name/`, or at the top when `name` is empty), skipping ignored
    /// paths. Feeds `digest` with names, modes, owners and contents (not
    /// times, so a touched but unchanged file keeps the cache).
    pub fn append(
        &self,
        tar: &mut tar::Builder<impl Write>,
        digest: &mut Sha256,
        src: &Source,
        name: &str,
        owner: Owner,
    ) -> Result<(), BuildError> {
        if !src.is_dir {
            return append_entry(tar, digest, &src.path, name, owner);
        }
        let walk = walkdir::WalkDir::new(&src.path)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1);
        let mut it = walk.into_iter();
        while let Some(entry) = it.next() {
            let entry = entry
                .map_err(|e| BuildError::Context(format!("cannot read the build context: {e}")))?;
            let sub = entry
                .path()
                .strip_prefix(&src.path)
                .map_err(|_| BuildError::Context("walked outside a source directory".into()))?
                .to_string_lossy()
                .into_owned();
            let ctx_rel = if src.rel == "." {
                sub.clone()
            } else {
                format!("{}/{sub}", src.rel)
            };
            if self.ignore.ignored(&ctx_rel) {
                if entry.file_type().is_dir() && !self.ignore.has_exceptions() {
                    it.skip_current_dir();
                }
                continue;
            }
            let dest = if name.is_empty() {
                sub
            } else {
                format!("{name}/{sub}")
            };
            append_entry(tar, digest, entry.path(), &dest, owner)?;
        }
        Ok(())
    }
}

fn is_symlink(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// Whether a source has glob characters.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn components(rel: &str) -> Result<Vec<String>, BuildError> {
    let mut out: Vec<String> = Vec::new();
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(outside(rel, "a path above the context"));
                }
            }
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

fn not_found(rel: &str) -> BuildError {
    BuildError::Context(format!(
        "file not found in build context or excluded by .dockerignore: {rel}"
    ))
}

fn outside(rel: &str, why: &str) -> BuildError {
    BuildError::Context(format!(
        "forbidden path outside the build context: {rel} ({why})"
    ))
}

/// One tar entry from a host file (regular, directory or symlink; other
/// kinds are skipped).
fn append_entry(
    tar: &mut tar::Builder<impl Write>,
    digest: &mut Sha256,
    path: &Path,
    name: &str,
    owner: Owner,
) -> Result<(), BuildError> {
    let io_err = |e: io::Error| BuildError::Context(format!("cannot read {}: {e}", path.display()));
    let meta = fs::symlink_metadata(path).map_err(io_err)?;
    let ft = meta.file_type();
    let mut h = tar::Header::new_gnu();
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(owner.uid);
    h.set_gid(owner.gid);
    h.set_mtime(meta.mtime().max(0) as u64);
    let kind: u8;
    if ft.is_symlink() {
        kind = b'l';
        let target = fs::read_link(path).map_err(io_err)?;
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        digest.update(target.as_os_str().as_encoded_bytes());
        tar.append_link(&mut h, name, &target).map_err(io_err)?;
    } else if ft.is_dir() {
        kind = b'd';
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        tar.append_data(&mut h, format!("{name}/"), io::empty())
            .map_err(io_err)?;
    } else if ft.is_file() {
        kind = b'f';
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(meta.len());
        let f = File::open(path).map_err(io_err)?;
        let mut reader = DigestReader { inner: f, digest };
        tar.append_data(&mut h, name, &mut reader).map_err(io_err)?;
    } else {
        return Ok(());
    }
    digest.update([kind]);
    digest.update(name.as_bytes());
    digest.update(format!(
        "\0{:o}\0{}\0{}\0",
        meta.mode() & 0o7777,
        owner.uid,
        owner.gid
    ));
    Ok(())
}

/// Feeds what it reads into a digest.
struct DigestReader<'a, R> {
    inner: R,
    digest: &'a mut Sha256,
}

impl<R: io::Read> io::Read for DigestReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn ctx() -> (tempfile::TempDir, Context) {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("src/sub")).unwrap();
        fs::write(r.join("src/a.txt"), "a").unwrap();
        fs::write(r.join("src/b.txt"), "b").unwrap();
        fs::write(r.join("src/sub/c.log"), "c").unwrap();
        fs::write(r.join("top.txt"), "t").unwrap();
        fs::write(r.join(".dockerignore"), "**/*.log\n").unwrap();
        symlink("src/a.txt", r.join("inlink")).unwrap();
        symlink("../../etc/passwd", r.join("uplink")).unwrap();
        symlink("/etc/passwd", r.join("abslink")).unwrap();
        let c = Context::open(r);
        (d, c)
    }

    #[test]
    fn resolves_inside_only() {
        let (_d, c) = ctx();
        assert_eq!(c.resolve("inlink").unwrap().rel, "src/a.txt");
        assert_eq!(c.resolve("/top.txt").unwrap().rel, "top.txt");
        assert_eq!(c.resolve(".").unwrap().rel, ".");
        for bad in ["../x", "uplink", "abslink", "src/../../x"] {
            let e = c.resolve(bad).unwrap_err().to_string();
            assert!(e.contains("outside the build context"), "{bad}: {e}");
        }
        assert!(c
            .resolve("nope")
            .unwrap_err()
            .to_string()
            .contains("not found"));
    }

    #[test]
    fn globs_and_ignore() {
        let (_d, c) = ctx();
        let s: Vec<String> = c
            .sources("src/*.txt")
            .unwrap()
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(s, vec!["src/a.txt", "src/b.txt"]);
        assert!(c.sources("src/sub/c.log").is_err());
        assert!(c.sources("*.nothing").is_err());
    }

    #[test]
    fn digest_follows_content_not_time() {
        let (d, c) = ctx();
        let sum = |c: &Context| {
            let mut tar = tar::Builder::new(Vec::new());
            let mut h = Sha256::new();
            let s = c.resolve("src").unwrap();
            c.append(&mut tar, &mut h, &s, "", Owner::default())
                .unwrap();
            let names: Vec<String> = tar::Archive::new(&tar.into_inner().unwrap()[..])
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect();
            (hex::encode(h.finalize()), names)
        };
        let (a, names) = sum(&c);
        assert_eq!(names, vec!["a.txt", "b.txt", "sub/"]);
        let f = File::options()
            .write(true)
            .open(d.path().join("src/a.txt"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(sum(&c).0, a);
        fs::write(d.path().join("src/a.txt"), "changed").unwrap();
        assert_ne!(sum(&c).0, a);
    }
}
