//! Writing a daemon's streamed answer (an archive, a core dump) to a file
//! or to standard output.
//!
//! To a file: into `dir/.NAME.partial`, renamed into place only when whole
//! and fsynced, so an interrupted download never leaves a file that looks
//! complete (through a symlink, in the directory of the file it names). A
//! device or a pipe (`-o /dev/null`) is written as it is, never replaced.
//! The kernel's writeback is started every 8 MiB
//! (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, asynchronous), so the final
//! fsync finds most of a large archive on disk already instead of writing
//! it all at the end, after the network part is over.

use std::io::IsTerminal;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use anyhow::Context;
use http_body_util::BodyExt;
use indicatif::ProgressBar;

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
        // Standard output's descriptor, unbuffered (its `Stdout` would
        // scan binary data for newlines).
        let out = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .context("cannot use standard output")?;
        return pipe_to(body, total, bar, what, move |rx| {
            write_chunks(out, rx, None)
        })
        .await
        .map(|(n, _)| n);
    };
    // Through a symlink to what it names, so the link stays a link.
    let output = &std::fs::canonicalize(output).unwrap_or_else(|_| output.to_path_buf());
    match std::fs::metadata(output) {
        Ok(m) if m.is_dir() => anyhow::bail!("{} is a directory", output.display()),
        // A device or a pipe (`-o /dev/null`, a FIFO): written as it is,
        // never replaced by a file.
        Ok(m) if !m.is_file() => {
            let out = std::fs::OpenOptions::new()
                .write(true)
                .open(output)
                .with_context(|| format!("cannot open {}", output.display()))?;
            return pipe_to(body, total, bar, what, move |rx| {
                write_chunks(out, rx, None)
            })
            .await
            .with_context(|| format!("cannot write {}", output.display()))
            .map(|(n, _)| n);
        }
        _ => {}
    }
    let partial = partial_path(output);
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let fd = file.as_raw_fd();
    let done = pipe_to(body, total, bar, what, move |rx| {
        let file = write_chunks(file, rx, Some(fd))?;
        file.sync_all()
    })
    .await
    .with_context(|| format!("cannot write {}", partial.display()));
    let n = match done {
        Ok((n, ())) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
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

/// Hand the body's chunks to `write`, run on a thread of its own (straight
/// from the body's buffers, no copy through async writers); its result
/// with the byte count.
async fn pipe_to<T: Send + 'static>(
    body: hyper::body::Incoming,
    total: Option<u64>,
    bar: Option<&ProgressBar>,
    what: &str,
    write: impl FnOnce(Chunks) -> std::io::Result<T> + Send + 'static,
) -> anyhow::Result<(u64, T)> {
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || write(rx));
    let received = copy_frames(body, total, bar, what, |chunk| {
        let tx = tx.clone();
        async move { tx.send(chunk).await.is_ok() }
    })
    .await;
    drop(tx);
    let written = writer
        .await
        .map_err(|e| anyhow::anyhow!("the writing thread failed: {e}"))?;
    // A failed write is the error to report (the body was cut short for it).
    let written = written?;
    Ok((received?, written))
}

type Chunks = tokio::sync::mpsc::Receiver<bytes::Bytes>;

/// Write every chunk to `out`; with `writeback_fd` (the file `out` writes),
/// start its writeback every [`WRITEBACK_EVERY`] bytes.
fn write_chunks<W: std::io::Write>(
    mut out: W,
    mut rx: Chunks,
    writeback_fd: Option<i32>,
) -> std::io::Result<W> {
    let (mut n, mut started) = (0u64, 0u64);
    while let Some(chunk) = rx.blocking_recv() {
        out.write_all(&chunk)?;
        n += chunk.len() as u64;
        if let Some(fd) = writeback_fd.filter(|_| n - started >= WRITEBACK_EVERY) {
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
    out.flush()?;
    Ok(out)
}

/// Hand every data frame of `body` to `sink` (which says whether it still
/// takes more), counting and checking the length against `total`.
async fn copy_frames<F, Fut>(
    mut body: hyper::body::Incoming,
    total: Option<u64>,
    bar: Option<&ProgressBar>,
    what: &str,
    mut sink: F,
) -> anyhow::Result<u64>
where
    F: FnMut(bytes::Bytes) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.with_context(|| format!("the daemon ended {what} early"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        n += data.len() as u64;
        if let Some(b) = bar {
            b.inc(data.len() as u64);
        }
        if !sink(data).await {
            // The writer stopped: its error is the one to report.
            return Ok(n);
        }
    }
    if total.is_some_and(|t| t != n) {
        anyhow::bail!("the daemon ended {what} early");
    }
    Ok(n)
}
