//! `amber cp` / `amber container cp`: tar archives through the archive
//! endpoints, placed with the docker CLI's rules (`archive.PrepareArchiveCopy`):
//! into an existing directory under the source's name; onto a missing path
//! (or an existing file) under the destination's name; `SRC/.` copies a
//! directory's contents.

use std::io::IsTerminal;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use hyper::Method;
use serde::Deserialize;

use crate::cli::client::{empty, enc, enc_path, read_all, stream_body, Client};
use crate::cli::stream::body_reader;

/// Copy files/folders between a container and the local filesystem.
///
/// Use `-` as the source to read a tar archive from stdin and extract it
/// to a directory destination in a container; use `-` as the destination
/// to stream a tar archive of a container source to stdout.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Archive mode (copy all uid/gid information).
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH (accepted; links are copied as links).
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy.
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or a local path or `-`.
    pub src: String,
    /// CONTAINER:DEST_PATH or a local path or `-`.
    pub dst: String,
}

/// `X-Docker-Container-Path-Stat`.
#[derive(Debug, Deserialize)]
struct PathStat {
    #[serde(default)]
    mode: u32,
}

/// Go's `os.ModeDir`.
const MODE_DIR: u32 = 1 << 31;

/// Where an archive lands: extract into `dir`, with the archive's top
/// entry `from` renamed to `to` when set.
#[derive(Debug, PartialEq)]
struct Plan {
    dir: String,
    rename: Option<(String, String)>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    match (split(&args.src), split(&args.dst)) {
        ((Some(_), _), (Some(_), _)) => {
            anyhow::bail!("copying between containers is not supported")
        }
        ((Some(ctr), src), (None, dst)) => from_container(c, ctr, src, dst, &args).await,
        ((None, src), (Some(ctr), dst)) => to_container(c, src, ctr, dst, &args).await,
        _ => anyhow::bail!("must specify at least one container source"),
    }
}

/// Docker's `splitCpArg`.
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') && !c.contains('/') => (Some(c), p),
        _ => (None, arg),
    }
}

/// The name a path's archive carries: its base, or `.` for `DIR/.`.
fn base(p: &str) -> String {
    if p.ends_with("/.") || p == "." {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn parent(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((d, _)) => d.into(),
        None => ".".into(),
    }
}

/// `archive.PrepareArchiveCopy`: `dst_state` is (exists, is a directory).
fn plan(src: &str, src_dir: bool, dst: &str, dst_state: (bool, bool)) -> anyhow::Result<Plan> {
    let (exists, is_dir) = dst_state;
    if exists && is_dir {
        return Ok(Plan {
            dir: dst.to_string(),
            rename: None,
        });
    }
    if src_dir && exists {
        anyhow::bail!("cannot copy a directory to a file");
    }
    if !src_dir && !exists && dst.ends_with('/') {
        anyhow::bail!("no such directory: {dst}");
    }
    Ok(Plan {
        dir: parent(dst),
        rename: Some((base(src), base(dst))),
    })
}

/// An entry's path with its first component renamed by the plan.
fn rebase(entry: &Path, rename: &Option<(String, String)>) -> PathBuf {
    let Some((from, to)) = rename else {
        return entry.to_path_buf();
    };
    let comps: Vec<Component> = entry
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    // `join("")` would add a trailing `/` (a directory to `unpack`).
    let rest = |skip: usize| -> PathBuf {
        let mut p = PathBuf::from(to);
        p.extend(comps.iter().skip(skip));
        p
    };
    if from == "." {
        return rest(0);
    }
    match comps.first() {
        Some(Component::Normal(f)) if f.to_str() == Some(from.as_str()) => rest(1),
        _ => entry.to_path_buf(),
    }
}

fn stat_of(resp: &hyper::Response<hyper::body::Incoming>) -> anyhow::Result<PathStat> {
    let raw = resp
        .headers()
        .get("x-docker-container-path-stat")
        .ok_or_else(|| anyhow::anyhow!("the daemon sent no X-Docker-Container-Path-Stat header"))?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .map_err(|e| anyhow::anyhow!("bad X-Docker-Container-Path-Stat header: {e}"))?;
    Ok(serde_json::from_slice(&json)?)
}

async fn from_container(
    c: &Client,
    ctr: &str,
    src: &str,
    dst: &str,
    args: &Args,
) -> anyhow::Result<i32> {
    let path = format!("/containers/{}/archive?path={}", enc_path(ctr), enc(src));
    let resp = c.send(Method::GET, &path, None, empty()).await?;
    if dst == "-" {
        let mut out = tokio::io::stdout();
        tokio::io::copy(&mut body_reader(resp), &mut out).await?;
        return Ok(0);
    }
    let src_dir = stat_of(&resp)?.mode & MODE_DIR != 0;
    let meta = std::fs::metadata(dst).ok();
    let state = (meta.is_some(), meta.as_ref().is_some_and(|m| m.is_dir()));
    let plan = plan(src, src_dir, dst, state)?;
    let reader = tokio_util::io::SyncIoBridge::new(body_reader(resp));
    let owners = args.archive;
    let n = tokio::task::spawn_blocking(move || extract(reader, &plan, owners)).await??;
    report(args, n, dst);
    Ok(0)
}

/// Unpack an archive by the plan, refusing entries that would land
/// outside the target directory (`..`, absolute paths, symlinked parents).
fn extract<R: std::io::Read>(r: R, plan: &Plan, owners: bool) -> anyhow::Result<u64> {
    let dir = std::fs::canonicalize(&plan.dir)
        .map_err(|e| anyhow::anyhow!("no such directory {}: {e}", plan.dir))?;
    let mut ar = tar::Archive::new(r);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(owners);
    ar.set_overwrite(true);
    let mut total = 0u64;
    for entry in ar.entries()? {
        let mut entry = entry?;
        let rel = rebase(&entry.path()?, &plan.rename);
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            anyhow::bail!(
                "refusing archive entry outside the destination: {}",
                rel.display()
            );
        }
        let target = dir.join(&rel);
        if rel.as_os_str().is_empty() || target == dir {
            continue;
        }
        let parent = target.parent().unwrap_or(&dir);
        std::fs::create_dir_all(parent)?;
        if !std::fs::canonicalize(parent)?.starts_with(&dir) {
            anyhow::bail!(
                "refusing archive entry through a symlink: {}",
                rel.display()
            );
        }
        total += entry.size();
        if entry.header().entry_type().is_hard_link() {
            let link = entry
                .link_name()?
                .ok_or_else(|| anyhow::anyhow!("hard link without a target"))?;
            let _ = std::fs::remove_file(&target);
            std::fs::hard_link(dir.join(rebase(&link, &plan.rename)), &target)?;
            continue;
        }
        entry.unpack(&target)?;
    }
    Ok(total)
}

async fn to_container(
    c: &Client,
    src: &str,
    ctr: &str,
    dst: &str,
    args: &Args,
) -> anyhow::Result<i32> {
    let mut query = format!("copyUIDGID={}&noOverwriteDirNonDir=true", args.archive);
    if src == "-" {
        let path = format!(
            "/containers/{}/archive?path={}&{query}",
            enc_path(ctr),
            enc(dst)
        );
        let resp = c
            .send(
                Method::PUT,
                &path,
                Some("application/x-tar"),
                stream_body(tokio::io::stdin()),
            )
            .await?;
        read_all(resp).await?;
        return Ok(0);
    }
    let meta =
        std::fs::symlink_metadata(src).map_err(|e| anyhow::anyhow!("could not stat {src}: {e}"))?;
    let src_dir = meta.is_dir();
    let state = match c
        .send(
            Method::HEAD,
            &format!("/containers/{}/archive?path={}", enc_path(ctr), enc(dst)),
            None,
            empty(),
        )
        .await
    {
        Ok(resp) => (true, stat_of(&resp)?.mode & MODE_DIR != 0),
        Err(e) if e.is_not_found() => (false, false),
        Err(e) => return Err(e.into()),
    };
    let plan = plan(src, src_dir, dst, state)?;
    let name = match &plan.rename {
        Some((_, to)) => to.clone(),
        None => base(src),
    };
    query.push_str(&format!("&path={}", enc(&plan.dir)));
    let (rd, wr) = tokio::io::duplex(64 * 1024);
    let src_owned = src.to_string();
    let writer = tokio::task::spawn_blocking(move || {
        pack(
            tokio_util::io::SyncIoBridge::new(wr),
            &src_owned,
            &name,
            src_dir,
        )
    });
    let path = format!("/containers/{}/archive?{query}", enc_path(ctr));
    let sent = c
        .send(
            Method::PUT,
            &path,
            Some("application/x-tar"),
            stream_body(rd),
        )
        .await;
    let n = writer.await??;
    read_all(sent?).await?;
    report(args, n, &format!("{ctr}:{dst}"));
    Ok(0)
}

/// Tar `src` under `name` (links stay links).
fn pack<W: std::io::Write>(w: W, src: &str, name: &str, dir: bool) -> anyhow::Result<u64> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    if dir {
        b.append_dir_all(name, src)?;
    } else {
        b.append_path_with_name(src, name)?;
    }
    b.into_inner()?.flush()?;
    Ok(size_of(Path::new(src)))
}

fn size_of(p: &Path) -> u64 {
    walk_size(p).unwrap_or(0)
}

fn walk_size(p: &Path) -> std::io::Result<u64> {
    let m = std::fs::symlink_metadata(p)?;
    if !m.is_dir() {
        return Ok(m.len());
    }
    let mut n = 0;
    for e in std::fs::read_dir(p)? {
        n += walk_size(&e?.path()).unwrap_or(0);
    }
    Ok(n)
}

fn report(args: &Args, n: u64, to: &str) {
    if !args.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {to}",
            crate::cli::output::human_size(n as i64)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_docker() {
        assert_eq!(split("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split("/abs:path"), (None, "/abs:path"));
        assert_eq!(split("./a:b"), (None, "./a:b"));
        assert_eq!(split("file"), (None, "file"));
        assert_eq!(split("-"), (None, "-"));
    }

    #[test]
    fn placement() {
        // Into an existing directory: keep the source's name.
        let p = plan("/etc/hosts", false, "/tmp/out", (true, true)).unwrap();
        assert_eq!(
            p,
            Plan {
                dir: "/tmp/out".into(),
                rename: None
            }
        );
        // Onto a missing path: the destination's name.
        let p = plan("/etc/hosts", false, "/tmp/h2", (false, false)).unwrap();
        assert_eq!(p.dir, "/tmp");
        assert_eq!(p.rename, Some(("hosts".into(), "h2".into())));
        // A directory's contents.
        let p = plan("/etc/.", true, "/tmp/new", (false, false)).unwrap();
        assert_eq!(p.rename, Some((".".into(), "new".into())));
        assert!(plan("/etc", true, "/tmp/file", (true, false)).is_err());
        assert!(plan("/etc/hosts", false, "/tmp/nodir/", (false, false)).is_err());
    }

    #[test]
    fn rebasing() {
        let r = Some(("hosts".to_string(), "h2".to_string()));
        assert_eq!(rebase(Path::new("hosts"), &r).as_os_str(), "h2");
        let r = Some(("d".to_string(), "e".to_string()));
        assert_eq!(rebase(Path::new("d/x/y"), &r), Path::new("e/x/y"));
        let r = Some((".".to_string(), "new".to_string()));
        assert_eq!(rebase(Path::new("./a"), &r), Path::new("new/a"));
        assert_eq!(rebase(Path::new("./"), &r), Path::new("new"));
    }
}
