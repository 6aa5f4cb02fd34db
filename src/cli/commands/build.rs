//! `amber build`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use hyper::Method;
use tokio::io::AsyncBufReadExt;

use crate::build::ignore::Ignore;
use crate::cli::client::{enc, stream_body, Client};

/// Build an image from a Dockerfile and a context directory (or a tar, or
/// a Dockerfile, on standard input with `-`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The context directory, or `-` for a tar (or a Dockerfile) on stdin.
    pub context: String,
    /// Name and optionally a tag (NAME[:TAG]); may be repeated.
    #[arg(short, long = "tag")]
    pub tag: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile); `-` reads it from stdin.
    #[arg(short, long = "file")]
    pub file: Option<String>,
    /// A build-time variable (KEY=VALUE, or KEY to take it from the environment).
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// The build stage to stop after.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use the build cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Print only the image ID.
    #[arg(short, long)]
    pub quiet: bool,
    /// A label for the image (KEY=VALUE); may be repeated.
    #[arg(long)]
    pub label: Vec<String>,
    /// Network mode of RUN steps (default, bridge, none, host).
    #[arg(long)]
    pub network: Option<String>,
    /// Remove intermediate containers (always done; accepted for Docker compatibility).
    #[arg(long, default_value_t = true, hide = true)]
    pub rm: bool,
    /// Remove intermediate containers even after a failure (always done).
    #[arg(long, hide = true)]
    pub force_rm: bool,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let (query, body, writer) = prepare(&args)?;
    let resp = c
        .send(
            Method::POST,
            &format!("/build?{query}"),
            Some("application/x-tar"),
            body,
        )
        .await?;
    let mut lines = tokio::io::BufReader::new(crate::cli::stream::body_reader(resp)).lines();
    let mut id = None;
    let mut failure = None;
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let msg: serde_json::Value =
            serde_json::from_str(&line).context("bad message from the daemon")?;
        if let Some(text) = msg["stream"].as_str() {
            if !args.quiet {
                print!("{text}");
                let _ = std::io::stdout().flush();
            }
        }
        if let Some(i) = msg["aux"]["ID"].as_str() {
            id = Some(i.to_string());
        }
        if let Some(e) = msg["errorDetail"]["message"]
            .as_str()
            .or(msg["error"].as_str())
        {
            failure = Some(e.to_string());
        }
    }
    if let Some(w) = writer {
        // The daemon may stop reading early (a failed build): its error wins.
        let written = w
            .join()
            .map_err(|_| anyhow::anyhow!("the context writer panicked"))?;
        if failure.is_none() {
            written?;
        }
    }
    if let Some(e) = failure {
        anyhow::bail!("{e}");
    }
    let id = id.ok_or_else(|| anyhow::anyhow!("the daemon ended the build without an image ID"))?;
    if args.quiet {
        println!("{id}");
    }
    Ok(0)
}

type Writer = std::thread::JoinHandle<anyhow::Result<()>>;

/// The query, the request body (the context tar) and the thread writing it.
fn prepare(args: &Args) -> anyhow::Result<(String, crate::cli::client::Body, Option<Writer>)> {
    let mut query = String::new();
    for t in &args.tag {
        query.push_str(&format!("&t={}", enc(t)));
    }
    let mut build_args = BTreeMap::new();
    for a in &args.build_arg {
        match a.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), Some(v.to_string())),
            None => build_args.insert(a.clone(), std::env::var(a).ok()),
        };
    }
    if !build_args.is_empty() {
        query.push_str(&format!(
            "&buildargs={}",
            enc(&serde_json::to_string(&build_args)?)
        ));
    }
    let mut labels = BTreeMap::new();
    for l in &args.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    if !labels.is_empty() {
        query.push_str(&format!(
            "&labels={}",
            enc(&serde_json::to_string(&labels)?)
        ));
    }
    if let Some(t) = &args.target {
        query.push_str(&format!("&target={}", enc(t)));
    }
    if args.no_cache {
        query.push_str("&nocache=1");
    }
    if let Some(n) = &args.network {
        query.push_str(&format!("&networkmode={}", enc(n)));
    }
    if args.quiet {
        query.push_str("&q=1");
    }
    query.push_str("&rm=1");
    if args.context == "-" {
        return stdin_context(args, query);
    }
    let dir = PathBuf::from(&args.context);
    if !dir.is_dir() {
        anyhow::bail!(
            "unable to prepare context: path {:?} not found or not a directory",
            args.context
        );
    }
    // A Dockerfile outside the context travels in the tar under a private name.
    let (dockerfile, extra) = match args.file.as_deref() {
        None => ("Dockerfile".to_string(), None),
        Some("-") => {
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut text)?;
            (EXTRA_DOCKERFILE.to_string(), Some(text))
        }
        Some(f) => {
            let fp = std::fs::canonicalize(f)
                .with_context(|| format!("cannot find the Dockerfile {f}"))?;
            let root = std::fs::canonicalize(&dir)?;
            match fp.strip_prefix(&root) {
                Ok(rel) => (rel.to_string_lossy().into_owned(), None),
                Err(_) => (EXTRA_DOCKERFILE.to_string(), Some(std::fs::read(&fp)?)),
            }
        }
    };
    query.push_str(&format!("&dockerfile={}", enc(&dockerfile)));
    let (reader, writer) = std::io::pipe()?;
    let handle = std::thread::spawn(move || write_context(&dir, extra, writer));
    let file = tokio::fs::File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
    Ok((query, stream_body(file), Some(handle)))
}

/// Name of a Dockerfile from outside the context inside the sent tar.
const EXTRA_DOCKERFILE: &str = ".dockerfile.amber";

/// `build -`: stdin is a context tar (plain or compressed) or a Dockerfile.
fn stdin_context(
    args: &Args,
    mut query: String,
) -> anyhow::Result<(String, crate::cli::client::Body, Option<Writer>)> {
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut data)?;
    let archive = data.starts_with(&[0x1f, 0x8b])
        || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || crate::build::fetch::looks_like_tar(&data);
    let dockerfile = args.file.clone().unwrap_or_else(|| "Dockerfile".into());
    let body = if archive {
        data
    } else {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        tar.append_data(&mut h, "Dockerfile", &data[..])?;
        tar.into_inner()?
    };
    let name = if archive {
        dockerfile
    } else {
        "Dockerfile".into()
    };
    query.push_str(&format!("&dockerfile={}", enc(&name)));
    Ok((query, crate::cli::client::full(body), None))
}

/// Tar the context directory (symlinks as symlinks, `.dockerignore`
/// applied; the Dockerfile and `.dockerignore` always go).
fn write_context(dir: &Path, extra: Option<Vec<u8>>, out: impl Write) -> anyhow::Result<()> {
    let ignore = std::fs::read_to_string(dir.join(".dockerignore"))
        .map(|t| Ignore::parse(&t))
        .unwrap_or_default();
    let mut tar = tar::Builder::new(std::io::BufWriter::new(out));
    tar.follow_symlinks(false);
    let mut it = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter();
    while let Some(entry) = it.next() {
        let entry = entry?;
        let rel = entry
            .path()
            .strip_prefix(dir)?
            .to_string_lossy()
            .into_owned();
        let always = rel == "Dockerfile" || rel == ".dockerignore";
        if !always && ignore.ignored(&rel) {
            if entry.file_type().is_dir() && !ignore.has_exceptions() {
                it.skip_current_dir();
            }
            continue;
        }
        let ft = entry.file_type();
        if ft.is_dir() || ft.is_file() || ft.is_symlink() {
            tar.append_path_with_name(entry.path(), &rel)
                .with_context(|| format!("cannot add {rel} to the build context"))?;
        }
    }
    if let Some(text) = extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        tar.append_data(&mut h, EXTRA_DOCKERFILE, &text[..])?;
    }
    tar.into_inner()?.flush()?;
    Ok(())
}
