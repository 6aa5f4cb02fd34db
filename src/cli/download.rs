//! Writing a daemon's streamed answer (an archive, a core dump) to a file
//! or to standard output.
//!
//! To a file: into `dir/.NAME.partial`, renamed into place only when whole
//! and fsynced, so an interrupted download never leaves a file that looks
//! complete. The kernel's writeback is started every 8 MiB
//! (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, asynchronous), so the final
//! fsync finds most of a large archive on disk already instead of writing
//! it all at the end, after the network part is over.

use std::io::IsTerminal;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::Context;
use http_body_util::BodyExt;
use indicatif::ProgressBar;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Bytes written between two starts of writeback.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// `dir/.name.partial`: the file is renamed into place only when whole.
pub fn partial_path(f: &Path) -> PathBuf {
    let name = f
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    f.with_file_name(format!(".{name}.partial"))
}

/// The announced length of an answer.
pub fn content_length(resp: &hyper::Response<hyper::body::Incoming>) -> Option<u64> {
    resp.headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Refuse to write binary `what` to a terminal.
pub fn refuse_terminal(what: &str) -> anyhow::Result<()> {
    if std::io::stdout().is_terminal() {
        anyhow::bail!("refusing to write {what} to a terminal: use -o FILE or redirect stdout");
    }
    Ok(())
}

/// Write the answer's body to `output` (crash-safely, see the module
/// doc) or, with `None`, to standard output. `what` names it in errors
/// ("the archive"); a body shorter than announced is an error.
pub async fn save_body(
    resp: hyper::Response<hyper::body::Incoming>,
    output: Option<&Path>,
    bar: Option<&ProgressBar>,
    what: &str,
) -> anyhow::Result<u64> {
    let total = content_length(&resp);
    let body = resp.into_body();
    let Some(output) = output else {
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::io::stdout());
        return copy(body, &mut out, None, total, bar, what).await;
    };
    let partial = partial_path(output);
    let file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let fd = file.as_raw_fd();
    let mut out = tokio::io::BufWriter::with_capacity(4 << 20, file);
    let done = async {
        let n = copy(body, &mut out, Some(fd), total, bar, what).await?;
        out.get_ref().sync_all().await?;
        anyhow::Ok(n)
    }
    .await;
    let n = match done {
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
    };
    tokio::fs::rename(&partial, output).await.with_context(|| {
        format!(
            "cannot rename {} to {}",
            partial.display(),
            output.display()
        )
    })?;
    Ok(n)
}

async fn copy(
    mut body: hyper::body::Incoming,
    out: &mut (impl AsyncWrite + Unpin),
    writeback_fd: Option<i32>,
    total: Option<u64>,
    bar: Option<&ProgressBar>,
    what: &str,
) -> anyhow::Result<u64> {
    let (mut n, mut started) = (0u64, 0u64);
    while let Some(frame) = body.frame().await {
        let frame = frame.with_context(|| format!("the daemon ended {what} early"))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        out.write_all(data).await?;
        n += data.len() as u64;
        if let Some(b) = bar {
            b.inc(data.len() as u64);
        }
        if let Some(fd) = writeback_fd.filter(|_| n - started >= WRITEBACK_EVERY) {
            out.flush().await?;
            // SAFETY: a plain syscall on the descriptor of the file `out`
            // writes (alive as long as `out`); a failure only means the
            // writeback starts at the final fsync.
            unsafe {
                libc::sync_file_range(
                    fd,
                    started as i64,
                    (n - started) as i64,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            started = n;
        }
    }
    if total.is_some_and(|t| t != n) {
        anyhow::bail!("the daemon ended {what} early");
    }
    out.flush().await?;
    Ok(n)
}
