//! COPY and ADD: sources gathered as tars (context files, another stage's
//! or image's files, a download, a heredoc) with a digest for the cache,
//! then written into the step container's root through `archive::copy`
//! (every path resolved inside that root).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::context::Owner;
use super::executor::{clean_path, nop, Builder, Stage};
use super::fetch::{self, Packing};
use super::parser::{Args, Instruction};
use super::rootfs::{ensure_dir, is_dir_in, resolve_owner};
use super::shell::{expand_heredoc, process_word, process_words};
use super::{BuildError, Change};
use crate::archive::copy::{self as cp, CopyOptions};

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

/// Where and how a COPY/ADD writes.
struct Target {
    /// Absolute, cleaned destination.
    dest: String,
    /// The destination was written as a directory (`/` at the end).
    dir_syntax: bool,
    /// `--chown`, resolved in the container at apply time.
    chown: Option<String>,
    /// `--chmod`.
    chmod: Option<u32>,
}

/// The sources gathered so far, and the digest of what they hold.
struct Gathered {
    items: Vec<Item>,
    digest: Sha256,
}

impl Gathered {
    fn push_tar(&mut self, path: PathBuf, is_dir: bool, strip_first: bool) {
        self.items.push(Item::Tar {
            path,
            is_dir,
            strip_first,
        });
    }
}

impl Builder<'_> {
    /// `COPY`/`ADD [--from=] [--chown=] [--chmod=] SRC... DEST`.
    pub(super) fn copy_step(&mut self, s: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        let (target, srcs) = self.copy_args(s, i)?;
        let mut g = Gathered {
            items: Vec::new(),
            digest: Sha256::new(),
        };
        for src in &srcs {
            self.gather(s, i, src, &target, &mut g)?;
        }
        if g.items.len() > 1 && !target.dir_syntax {
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
            "{} {flags}sha256:{} in {}",
            i.keyword,
            hex::encode(g.digest.finalize()),
            target.dest
        );
        let work = self.opts.work_dir.clone();
        let items = g.items;
        let mut apply = move |root: &Path| -> Result<(), BuildError> {
            let owner = target
                .chown
                .as_deref()
                .map(|c| resolve_owner(root, c))
                .transpose()?;
            for (n, item) in items.iter().enumerate() {
                let scratch = work.join(format!("final-{n}.tar"));
                apply_item(root, item, &target, owner, &scratch)?;
            }
            Ok(())
        };
        let key = nop(s, &text);
        self.commit(s, &key, Change::Files(&mut apply))
    }

    /// Flags and words of COPY/ADD, expanded: the target and the sources.
    fn copy_args(&self, s: &Stage, i: &Instruction) -> Result<(Target, Vec<String>), BuildError> {
        if i.keyword == "ADD" {
            i.check_flags(&["chown", "chmod", "link"])?;
        } else {
            i.check_flags(&["from", "chown", "chmod", "link"])?;
        }
        let esc = self.escape;
        let lookup = |k: &str| s.lookup(k);
        let mut words = match &i.args {
            Args::Json(v) => v
                .iter()
                .map(|w| process_word(w, &lookup, esc))
                .collect::<Result<Vec<_>, _>>(),
            Args::Text(t) => process_words(t, &lookup, esc),
        }
        .map_err(BuildError::Invalid)?;
        let dest_raw = match words.pop() {
            Some(d) if !words.is_empty() => d,
            _ => {
                return Err(BuildError::Invalid(format!(
                    "{} requires at least two arguments, but only one was provided. Destination could not be determined.",
                    i.keyword
                )))
            }
        };
        let workdir = s.doc["config"]["WorkingDir"].as_str().unwrap_or("/");
        let dest = if dest_raw.starts_with('/') {
            clean_path(&dest_raw)
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
        let target = Target {
            dest,
            dir_syntax: dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == ".",
            chown,
            chmod,
        };
        Ok((target, words))
    }

    /// Turn one source word into items, feeding the digest.
    fn gather(
        &mut self,
        s: &Stage,
        i: &Instruction,
        src: &str,
        target: &Target,
        g: &mut Gathered,
    ) -> Result<(), BuildError> {
        let tar_path = self
            .opts
            .work_dir
            .join(format!("src-{}-{}.tar", i.line, g.items.len()));
        let heredoc = src.strip_prefix("<<").and_then(|n| {
            i.heredocs
                .iter()
                .find(|h| h.name == n.trim_start_matches('-'))
        });
        if let Some(h) = heredoc {
            let content = if h.quoted {
                h.content.clone()
            } else {
                let lookup = |k: &str| s.lookup(k);
                expand_heredoc(&h.content, &lookup, self.escape).map_err(BuildError::Invalid)?
            };
            g.digest.update(b"heredoc\0");
            g.digest.update(content.as_bytes());
            write_one_file(&tar_path, &h.name, content.as_bytes(), 0o644, None)?;
            g.push_tar(tar_path, false, false);
            return Ok(());
        }
        if let Some(from) = i.flag("from") {
            return self.gather_from(from, src, tar_path, g);
        }
        if fetch::is_url(src) {
            if i.keyword != "ADD" {
                return Err(BuildError::Invalid("source can't be a URL for COPY".into()));
            }
            return gather_url(src, target, tar_path, g);
        }
        self.gather_context(i, src, g)
    }

    /// `COPY --from=`: the path exported from the stage's or image's files.
    fn gather_from(
        &mut self,
        from: &str,
        src: &str,
        tar_path: PathBuf,
        g: &mut Gathered,
    ) -> Result<(), BuildError> {
        let img = self.copy_source(from)?;
        let path = if src.starts_with('/') {
            src.to_string()
        } else {
            format!("/{src}")
        };
        g.digest
            .update(format!("from\0{}\0{path}\0", img.id).as_bytes());
        let (parent, last) = path.rsplit_once('/').unwrap_or(("", &path));
        if !super::context::has_glob(last) || super::context::has_glob(parent) {
            let mut f = File::create(&tar_path)
                .map_err(|e| host_err(format!("cannot create {}: {e}", tar_path.display())))?;
            self.host.export(&img.id, &path, &mut f)?;
            let is_dir = first_entry_is_dir(&tar_path)?;
            g.push_tar(tar_path, is_dir, true);
            return Ok(());
        }
        // A glob in the last component: export the parent, split by match.
        let parent = if parent.is_empty() { "/" } else { parent };
        let all = tar_path.with_extension("all.tar");
        let mut f = File::create(&all)
            .map_err(|e| host_err(format!("cannot create {}: {e}", all.display())))?;
        self.host.export(&img.id, parent, &mut f)?;
        let matches = split_by_glob(&all, last, &tar_path)?;
        let _ = std::fs::remove_file(&all);
        if matches.is_empty() {
            return Err(BuildError::Context(format!(
                "no source files were specified: {path} matches nothing in {from}"
            )));
        }
        for (p, is_dir) in matches {
            g.push_tar(p, is_dir, true);
        }
        Ok(())
    }

    /// Context sources (globs expanded); ADD's local archives stay whole.
    fn gather_context(
        &mut self,
        i: &Instruction,
        src: &str,
        g: &mut Gathered,
    ) -> Result<(), BuildError> {
        for (n, source) in self.ctx.sources(src)?.into_iter().enumerate() {
            if i.keyword == "ADD" && !source.is_dir {
                if let Some(packing) = archive_packing(&source.path)? {
                    g.digest.update(b"archive\0");
                    hash_file(&source.path, &mut g.digest)?;
                    g.items.push(Item::Archive {
                        path: source.path,
                        packing,
                    });
                    continue;
                }
            }
            let path = self
                .opts
                .work_dir
                .join(format!("src-{}-{}-{n}.tar", i.line, g.items.len()));
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
                .append(&mut tar, &mut g.digest, &source, &name, Owner::default())?;
            tar.into_inner()
                .and_then(|mut w| w.flush())
                .map_err(host_err)?;
            g.push_tar(path, source.is_dir, false);
        }
        Ok(())
    }
}

/// `ADD http://...`: downloaded, named after the URL (or the destination).
fn gather_url(
    src: &str,
    target: &Target,
    tar_path: PathBuf,
    g: &mut Gathered,
) -> Result<(), BuildError> {
    let d = fetch::download(src)?;
    g.digest.update(b"url\0");
    g.digest.update(&d.data);
    let name = if !target.dir_syntax {
        base_name(&target.dest)
    } else if d.name.is_empty() {
        return Err(BuildError::Fetch(format!(
            "cannot determine a file name from {src}: give a destination file"
        )));
    } else {
        d.name.clone()
    };
    write_one_file(&tar_path, &name, &d.data, 0o600, d.modified)?;
    g.push_tar(tar_path, false, false);
    Ok(())
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

fn write_one_file(
    path: &Path,
    name: &str,
    data: &[u8],
    mode: u32,
    mtime: Option<i64>,
) -> Result<(), BuildError> {
    let f = File::create(path)
        .map_err(|e| host_err(format!("cannot create {}: {e}", path.display())))?;
    let mut tar = tar::Builder::new(f);
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    let mtime = mtime.unwrap_or_else(|| chrono::Utc::now().timestamp());
    h.set_mtime(mtime.max(0) as u64);
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

/// A `docker cp` entry name without its first component (the exported
/// path's own name, `.` for the root); None for that top entry itself.
fn strip_top(raw: &str) -> Option<String> {
    let rest = match raw.strip_prefix("./") {
        Some(rest) => rest,
        None if raw == "." => "",
        None => raw.split_once('/').map(|(_, r)| r).unwrap_or(""),
    };
    Some(rest.to_string()).filter(|r| !r.is_empty())
}

/// Split a `docker cp` tar of a directory into one tar per child whose
/// name matches `pattern` (each in `docker cp` form: under its own name).
/// Returns (tar, is_dir) in name order.
fn split_by_glob(
    all: &Path,
    pattern: &str,
    base: &Path,
) -> Result<Vec<(PathBuf, bool)>, BuildError> {
    let mut ar = tar::Archive::new(File::open(all).map_err(host_err)?);
    type Split = (tar::Builder<File>, bool, PathBuf);
    let mut out: std::collections::BTreeMap<String, Split> = Default::default();
    for e in ar.entries().map_err(host_err)? {
        let mut e = e.map_err(host_err)?;
        let raw = e.path().map_err(host_err)?.to_string_lossy().into_owned();
        // Drop the exported directory's own name.
        let Some(rel) = strip_top(&raw) else {
            continue;
        };
        let child = rel.split('/').next().unwrap_or("").to_string();
        if child.is_empty() || !super::ignore::glob(pattern, &child) {
            continue;
        }
        if !out.contains_key(&child) {
            let p = base.with_extension(format!("{}.tar", out.len()));
            let f = File::create(&p).map_err(host_err)?;
            out.insert(child.clone(), (tar::Builder::new(f), false, p));
        }
        let Some((b, is_dir, _)) = out.get_mut(&child) else {
            continue;
        };
        let mut h = e.header().clone();
        let kind = h.entry_type();
        if rel.trim_end_matches('/') == child && kind.is_dir() {
            *is_dir = true;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = e
                .link_name()
                .map_err(host_err)?
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            let target = match (kind.is_hard_link(), target.split_once('/')) {
                (true, Some((_, t))) => t.to_string(),
                _ => target,
            };
            b.append_link(&mut h, &rel, &target).map_err(host_err)?;
        } else {
            b.append_data(&mut h, &rel, &mut e).map_err(host_err)?;
        }
    }
    let mut list = Vec::new();
    for (_, (b, is_dir, p)) in out {
        b.into_inner().map_err(host_err)?;
        list.push((p, is_dir));
    }
    Ok(list)
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
    target: &Target,
    owner: Option<Owner>,
    scratch: &Path,
) -> Result<(), BuildError> {
    let opts = CopyOptions {
        no_overwrite_dir_non_dir: false,
        copy_uid_gid: true,
    };
    let dest = target.dest.as_str();
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
            let (into, rename) = if *is_dir || target.dir_syntax || is_dir_in(root, dest)? {
                (dest.to_string(), None)
            } else {
                (parent_of(dest), Some(base_name(dest)))
            };
            ensure_dir(root, &into, owner.unwrap_or_default())?;
            retar(
                path,
                scratch,
                *strip_first,
                rename.as_deref(),
                owner,
                target.chmod,
            )?;
            let f = File::open(scratch).map_err(host_err)?;
            let r = cp::extract_tar_into(root, &into, f, &opts).map_err(host_err);
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
        strip_top(p)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_cp_names() {
        assert_eq!(strip_top("out/a/b"), Some("a/b".into()));
        assert_eq!(strip_top("out/"), None);
        assert_eq!(strip_top("out"), None);
        assert_eq!(strip_top("./bin/sh"), Some("bin/sh".into()));
        assert_eq!(strip_top("./"), None);
        assert_eq!(strip_top("."), None);
    }

    #[test]
    fn paths() {
        assert_eq!(base_name("/usr/local/"), "local");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b"), "/a");
    }
}
