//! COPY and ADD: sources gathered as tars (context files, another stage's
//! or image's files, a download, a heredoc) with a digest for the cache,
//! then written into the step container's root through `archive::copy`
//! (every path resolved inside that root).

use std::fs::File;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::context::Owner;
use super::executor::{clean_path, nop, Builder, Stage};
use super::fetch::{self, Packing};
use super::parser::{Args, Instruction};
use super::shell::{expand_heredoc, process_word, process_words};
use super::{BuildError, Change};
use crate::archive::copy::{self as cp, go_mode, CopyOptions};
use crate::archive::ArchiveError;

/// Bytes read to tell an archive from a plain file.
const SNIFF: usize = 4096;

/// One thing to copy.
enum Item {
    /// A tar whose entries are relative to the item: a directory's
    /// contents, or one file under its own name. `strip_first`: entries
    /// carry the source's name as first component (`docker cp` form).
    Tar {
        path: PathBuf,
        is_dir: bool,
        strip_first: bool,
    },
    /// A local archive ADD unpacks.
    Archive { path: PathBuf, packing: Packing },
}

fn host_err(e: impl std::fmt::Display) -> BuildError {
    BuildError::Host(e.to_string())
}

impl Builder<'_> {
    /// `COPY`/`ADD [--from=] [--chown=] [--chmod=] SRC... DEST`.
    pub(super) fn copy_step(&mut self, s: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        let add = i.keyword == "ADD";
        if add {
            i.check_flags(&["chown", "chmod", "link"])?;
        } else {
            i.check_flags(&["from", "chown", "chmod", "link"])?;
        }
        let esc = self.escape;
        let lookup = |k: &str| s.lookup(k);
        let words = match &i.args {
            Args::Json(v) => v
                .iter()
                .map(|w| process_word(w, &lookup, esc))
                .collect::<Result<Vec<_>, _>>(),
            Args::Text(t) => process_words(t, &lookup, esc),
        }
        .map_err(BuildError::Invalid)?;
        let Some((dest_raw, srcs)) = words.split_last().filter(|(_, s)| !s.is_empty()) else {
            return Err(BuildError::Invalid(format!(
                "{} requires at least two arguments, but only one was provided. Destination could not be determined.",
                i.keyword
            )));
        };
        let workdir = s.doc["config"]["WorkingDir"]
            .as_str()
            .unwrap_or("/")
            .to_string();
        let dir_syntax = dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == ".";
        let dest = if dest_raw.starts_with('/') {
            clean_path(dest_raw)
        } else {
            clean_path(&format!("{workdir}/{dest_raw}"))
        };
        let chown = i
            .flag("chown")
            .map(|c| process_word(c, &lookup, esc))
            .transpose()
            .map_err(BuildError::Invalid)?;
        let chmod = i
            .flag("chmod")
            .map(|m| {
                u32::from_str_radix(m, 8)
                    .map_err(|_| BuildError::Invalid(format!("invalid --chmod {m:?}: use octal")))
            })
            .transpose()?;
        let mut digest = Sha256::new();
        let mut items = Vec::new();
        for src in srcs {
            self.gather(s, i, src, &dest, dir_syntax, &mut digest, &mut items)?;
        }
        if items.len() > 1 && !dir_syntax {
            return Err(BuildError::Invalid(format!(
                "When using {} with more than one source file, the destination must be a directory and end with a /",
                i.keyword
            )));
        }
        let mut flags = String::new();
        for f in ["from", "chown", "chmod"] {
            if let Some(v) = i.flag(f) {
                flags.push_str(&format!("--{f}={v} "));
            }
        }
        let text = format!(
            "{} {flags}sha256:{} in {dest}",
            i.keyword,
            hex::encode(digest.finalize())
        );
        let work = self.opts.work_dir.clone();
        let mut apply = move |root: &Path| -> Result<(), BuildError> {
            let owner = chown
                .as_deref()
                .map(|c| resolve_owner(root, c))
                .transpose()?;
            for (n, item) in items.iter().enumerate() {
                apply_item(
                    root,
                    item,
                    &dest,
                    dir_syntax,
                    owner,
                    chmod,
                    &work.join(format!("final-{n}.tar")),
                )?;
            }
            Ok(())
        };
        let key = nop(s, &text);
        self.commit(s, &key, Change::Files(&mut apply))
    }

    /// Turn one source word into items, feeding the digest.
    #[allow(clippy::too_many_arguments)]
    fn gather(
        &mut self,
        s: &Stage,
        i: &Instruction,
        src: &str,
        dest: &str,
        dir_syntax: bool,
        digest: &mut Sha256,
        items: &mut Vec<Item>,
    ) -> Result<(), BuildError> {
        let add = i.keyword == "ADD";
        let tar_path = self
            .opts
            .work_dir
            .join(format!("src-{}-{}.tar", i.line, items.len()));
        if let Some(h) = src.strip_prefix("<<").and_then(|n| {
            i.heredocs
                .iter()
                .find(|h| h.name == n.trim_start_matches('-'))
        }) {
            let content = if h.quoted {
                h.content.clone()
            } else {
                let lookup = |k: &str| s.lookup(k);
                expand_heredoc(&h.content, &lookup, self.escape).map_err(BuildError::Invalid)?
            };
            digest.update(b"heredoc\0");
            digest.update(content.as_bytes());
            write_one_file(&tar_path, &h.name, content.as_bytes(), 0o644)?;
            items.push(Item::Tar {
                path: tar_path,
                is_dir: false,
                strip_first: false,
            });
            return Ok(());
        }
        if let Some(from) = i.flag("from") {
            let img = self.copy_source(from)?;
            let path = if src.starts_with('/') {
                src.to_string()
            } else {
                format!("/{src}")
            };
            let mut f = File::create(&tar_path)
                .map_err(|e| host_err(format!("cannot create {}: {e}", tar_path.display())))?;
            self.host.export(&img.id, &path, &mut f)?;
            digest.update(format!("from\0{}\0{path}\0", img.id).as_bytes());
            let is_dir = first_entry_is_dir(&tar_path)?;
            items.push(Item::Tar {
                path: tar_path,
                is_dir,
                strip_first: true,
            });
            return Ok(());
        }
        if fetch::is_url(src) {
            if !add {
                return Err(BuildError::Invalid("source can't be a URL for COPY".into()));
            }
            let d = fetch::download(src)?;
            digest.update(b"url\0");
            digest.update(&d.data);
            let name = if dir_syntax || d.name.is_empty() {
                if d.name.is_empty() {
                    return Err(BuildError::Fetch(format!(
                        "cannot determine a file name from {src}: give a destination file"
                    )));
                }
                d.name.clone()
            } else {
                base_name(dest)
            };
            write_one_file(&tar_path, &name, &d.data, 0o600)?;
            items.push(Item::Tar {
                path: tar_path,
                is_dir: false,
                strip_first: false,
            });
            return Ok(());
        }
        for (n, source) in self.ctx.sources(src)?.into_iter().enumerate() {
            if add && !source.is_dir {
                if let Some(packing) = archive_packing(&source.path)? {
                    digest.update(b"archive\0");
                    hash_file(&source.path, digest)?;
                    items.push(Item::Archive {
                        path: source.path,
                        packing,
                    });
                    continue;
                }
            }
            let path = self
                .opts
                .work_dir
                .join(format!("src-{}-{}-{n}.tar", i.line, items.len()));
            let f = File::create(&path)
                .map_err(|e| host_err(format!("cannot create {}: {e}", path.display())))?;
            let mut tar = tar::Builder::new(std::io::BufWriter::new(f));
            let name = if source.is_dir {
                String::new()
            } else if !super::context::has_glob(src) {
                // The name as written, not a symlink's target's.
                base_name(src)
            } else {
                base_name(&source.rel)
            };
            self.ctx
                .append(&mut tar, digest, &source, &name, Owner::default())?;
            tar.into_inner()
                .and_then(|mut w| w.flush())
                .map_err(host_err)?;
            items.push(Item::Tar {
                path,
                is_dir: source.is_dir,
                strip_first: false,
            });
        }
        Ok(())
    }
}

fn base_name(p: &str) -> String {
    p.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string()
}

fn parent_of(p: &str) -> String {
    match p.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((d, _)) => d.to_string(),
    }
}

fn write_one_file(path: &Path, name: &str, data: &[u8], mode: u32) -> Result<(), BuildError> {
    let f = File::create(path)
        .map_err(|e| host_err(format!("cannot create {}: {e}", path.display())))?;
    let mut tar = tar::Builder::new(f);
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    tar.append_data(&mut h, name, data).map_err(host_err)?;
    tar.finish().map_err(host_err)
}

fn hash_file(path: &Path, digest: &mut Sha256) -> Result<(), BuildError> {
    let mut f =
        File::open(path).map_err(|e| host_err(format!("cannot read {}: {e}", path.display())))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(host_err)?;
        if n == 0 {
            return Ok(());
        }
        digest.update(&buf[..n]);
    }
}

/// Some(packing) when the file is a (possibly compressed) tar.
fn archive_packing(path: &Path) -> Result<Option<Packing>, BuildError> {
    let mut head = Vec::new();
    File::open(path)
        .and_then(|f| f.take(SNIFF as u64).read_to_end(&mut head))
        .map_err(|e| host_err(format!("cannot read {}: {e}", path.display())))?;
    let packing = fetch::packing(&head);
    let mut block = Vec::new();
    let mut r = fetch::open_decompressed(path, packing)?;
    // A decompression error means "not an archive": copied as is.
    let _ = r.by_ref().take(512).read_to_end(&mut block);
    Ok(fetch::looks_like_tar(&block).then_some(packing))
}

fn first_entry_is_dir(path: &Path) -> Result<bool, BuildError> {
    let f = File::open(path).map_err(host_err)?;
    let mut ar = tar::Archive::new(f);
    let mut entries = ar.entries().map_err(host_err)?;
    match entries.next() {
        Some(e) => Ok(e.map_err(host_err)?.header().entry_type().is_dir()),
        None => Ok(false),
    }
}

fn apply_item(
    root: &Path,
    item: &Item,
    dest: &str,
    dir_syntax: bool,
    owner: Option<Owner>,
    chmod: Option<u32>,
    scratch: &Path,
) -> Result<(), BuildError> {
    let opts = CopyOptions {
        no_overwrite_dir_non_dir: false,
        copy_uid_gid: true,
    };
    match item {
        Item::Archive { path, packing } => {
            ensure_dir(root, dest, owner.unwrap_or_default())?;
            let r = fetch::open_decompressed(path, *packing)?;
            cp::extract_tar_into(root, dest, r, &opts).map_err(host_err)
        }
        Item::Tar {
            path,
            is_dir,
            strip_first,
        } => {
            let (target, rename) = if *is_dir || dir_syntax || is_dir_in(root, dest)? {
                (dest.to_string(), None)
            } else {
                (parent_of(dest), Some(base_name(dest)))
            };
            ensure_dir(root, &target, owner.unwrap_or_default())?;
            retar(path, scratch, *strip_first, rename.as_deref(), owner, chmod)?;
            let f = File::open(scratch).map_err(host_err)?;
            let r = cp::extract_tar_into(root, &target, f, &opts).map_err(host_err);
            let _ = std::fs::remove_file(scratch);
            r
        }
    }
}

/// Rewrite a source tar for its destination: strip the `docker cp` top
/// component, rename a single file, apply `--chown`/`--chmod`.
fn retar(
    src: &Path,
    dst: &Path,
    strip_first: bool,
    rename: Option<&str>,
    owner: Option<Owner>,
    chmod: Option<u32>,
) -> Result<(), BuildError> {
    let strip = |p: &str| -> Option<String> {
        if !strip_first {
            return Some(p.to_string());
        }
        let p = p.trim_start_matches("./");
        p.split_once('/')
            .map(|(_, rest)| rest.to_string())
            .filter(|r| !r.is_empty())
    };
    let mut ar = tar::Archive::new(File::open(src).map_err(host_err)?);
    let out = File::create(dst).map_err(host_err)?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(out));
    for e in ar.entries().map_err(host_err)? {
        let mut e = e.map_err(host_err)?;
        let mut h = e.header().clone();
        let raw = e.path().map_err(host_err)?.to_string_lossy().into_owned();
        let kind = h.entry_type();
        let name = match (rename, kind.is_dir()) {
            (Some(r), false) => r.to_string(),
            _ => match strip(&raw) {
                Some(n) => n,
                None if kind.is_dir() => continue,
                None => base_name(&raw),
            },
        };
        if let Some(o) = owner {
            h.set_uid(o.uid);
            h.set_gid(o.gid);
        }
        if let Some(m) = chmod {
            h.set_mode(m);
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = e
                .link_name()
                .map_err(host_err)?
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            let target = if kind.is_hard_link() {
                strip(&target).unwrap_or(target)
            } else {
                target
            };
            b.append_link(&mut h, &name, &target).map_err(host_err)?;
        } else if kind.is_dir() {
            b.append_data(
                &mut h,
                format!("{}/", name.trim_end_matches('/')),
                std::io::empty(),
            )
            .map_err(host_err)?;
        } else if kind.is_file() {
            b.append_data(&mut h, &name, &mut e).map_err(host_err)?;
        }
    }
    b.into_inner().and_then(|mut w| w.flush()).map_err(host_err)
}

/// Whether `path` is a directory in the container (symlinks followed).
fn is_dir_in(root: &Path, path: &str) -> Result<bool, BuildError> {
    Ok(stat_dir(root, path)? == Some(true))
}

/// Some(is_dir) when `path` exists in the container.
fn stat_dir(root: &Path, path: &str) -> Result<Option<bool>, BuildError> {
    let mut p = path.to_string();
    for _ in 0..40 {
        match cp::stat_path(root, &p) {
            Ok(st)
                if st.mode & go_mode::SYMLINK != 0
                    && !st.link_target.is_empty()
                    && st.link_target != p =>
            {
                p = st.link_target.clone();
            }
            Ok(st) => return Ok(Some(st.mode & go_mode::DIR != 0)),
            Err(ArchiveError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(host_err(e)),
        }
    }
    Err(BuildError::Invalid(format!("too many symlinks at {path}")))
}

/// `mkdir -p` inside the container root, new directories owned by `owner`.
pub(super) fn ensure_dir(root: &Path, dir: &str, owner: Owner) -> Result<(), BuildError> {
    let parts: Vec<&str> = dir
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut existing = 0;
    for n in 1..=parts.len() {
        let p = format!("/{}", parts[..n].join("/"));
        match stat_dir(root, &p)? {
            Some(true) => existing = n,
            Some(false) => {
                return Err(BuildError::Invalid(format!(
                    "cannot create directory {dir}: {p} is not a directory"
                )))
            }
            None => break,
        }
    }
    if existing == parts.len() {
        return Ok(());
    }
    let base = format!("/{}", parts[..existing].join("/"));
    let mut tar = tar::Builder::new(Vec::new());
    for n in existing + 1..=parts.len() {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(owner.uid);
        h.set_gid(owner.gid);
        h.set_size(0);
        h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
        tar.append_data(
            &mut h,
            format!("{}/", parts[existing..n].join("/")),
            std::io::empty(),
        )
        .map_err(host_err)?;
    }
    let data = tar.into_inner().map_err(host_err)?;
    let opts = CopyOptions {
        no_overwrite_dir_non_dir: false,
        copy_uid_gid: true,
    };
    cp::extract_tar_into(root, &base, Cursor::new(data), &opts).map_err(host_err)
}

/// `--chown=user[:group]`, names looked up in the container's
/// `/etc/passwd` and `/etc/group` (read inside its root).
fn resolve_owner(root: &Path, spec: &str) -> Result<Owner, BuildError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match u.parse::<u64>() {
        Ok(n) => (n, None),
        Err(_) => {
            let passwd = read_in_root(root, "/etc/passwd")?;
            let f = find_entry(&passwd, u).ok_or_else(|| {
                BuildError::Invalid(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            })?;
            (f.0, Some(f.1))
        }
    };
    let gid = match g {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                let group = read_in_root(root, "/etc/group")?;
                find_entry(&group, g)
                    .ok_or_else(|| {
                        BuildError::Invalid(format!(
                            "unable to find group {g}: no matching entries in group file"
                        ))
                    })?
                    .0
            }
        },
    };
    Ok(Owner { uid, gid })
}

/// (field 3, field 4) of the line whose first field is `name`.
fn find_entry(file: &str, name: &str) -> Option<(u64, u64)> {
    file.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.first() != Some(&name) || f.len() < 3 {
            return None;
        }
        let id = f[2].parse().ok()?;
        let second = f.get(3).and_then(|x| x.parse().ok()).unwrap_or(id);
        Some((id, second))
    })
}

fn read_in_root(root: &Path, path: &str) -> Result<String, BuildError> {
    let mut buf = Vec::new();
    if cp::write_tar_of(root, path, &mut buf).is_err() {
        return Ok(String::new());
    }
    let mut ar = tar::Archive::new(&buf[..]);
    let mut text = String::new();
    if let Some(Ok(mut e)) = ar.entries().map_err(host_err)?.next() {
        let _ = e.read_to_string(&mut text);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup() {
        let p = "root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1001::/home:/bin/sh\n";
        assert_eq!(find_entry(p, "tester"), Some((1000, 1001)));
        assert_eq!(find_entry(p, "nobody"), None);
        assert_eq!(find_entry("wheel:x:10:tester\n", "wheel"), Some((10, 10)));
    }

    #[test]
    fn paths() {
        assert_eq!(base_name("/usr/local/"), "local");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b"), "/a");
    }
}
