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
    let (file, dest) = Dest::open(output)?;
    let durable = matches!(dest, Dest::Partial { .. });
    let written = pipe_to(resp.into_body(), total, bar, what, file, durable)
        .await
        .with_context(|| format!("cannot write {}", dest.name()));
    match (dest, written) {
        (Dest::AsIs(..), w) => w,
        (Dest::Partial { partial, .. }, Err(e)) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
        (
            Dest::Partial {
                partial, output, ..
            },
            Ok(n),
        ) => {
            std::fs::rename(&partial, &output).with_context(|| {
                format!(
                    "cannot rename {} to {}",
                    partial.display(),
                    output.display()
                )
            })?;
            Ok(n)
        }
    }
}

/// Where a download goes.
enum Dest {
    /// Written as it is: standard output, a device, a FIFO (never replaced
    /// by a file), named for errors.
    AsIs(String),
    /// A file: written to `partial`, fsynced, renamed to `output`.
    Partial { partial: PathBuf, output: PathBuf },
}

impl Dest {
    /// The file to write, and where it goes.
    fn open(output: Option<&Path>) -> anyhow::Result<(std::fs::File, Dest)> {
        let Some(output) = output else {
            // Standard output's descriptor, unbuffered (its `Stdout` would
            // scan binary data for newlines).
            let out = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .context("cannot use standard output")?;
            return Ok((out.into(), Dest::AsIs("standard output".into())));
        };
        // Through a symlink to what it names, so the link stays a link.
        let output = std::fs::canonicalize(output).unwrap_or_else(|_| output.to_path_buf());
        match std::fs::metadata(&output) {
            Ok(m) if m.is_dir() => anyhow::bail!("{} is a directory", output.display()),
            Ok(m) if !m.is_file() => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&output)
                    .with_context(|| format!("cannot open {}", output.display()))?;
                Ok((f, Dest::AsIs(output.display().to_string())))
            }
            _ => {
                let partial = partial_path(&output);
                let file = std::fs::File::create(&partial)
                    .with_context(|| format!("cannot create {}", partial.display()))?;
                Ok((file, Dest::Partial { partial, output }))
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Dest::AsIs(name) => name.clone(),
            Dest::Partial { partial, .. } => partial.display().to_string(),
        }
    }
}

/// Write the body to `file` from a thread of its own, straight from the
/// body's buffers (no copy through async writers); with `durable`, start
/// its writeback every [`WRITEBACK_EVERY`] bytes and fsync it at the end.
/// Returns the byte count; a failed write is the error reported (the body
/// was cut short for it).
async fn pipe_to(
    mut body: hyper::body::Incoming,
    total: Option<u64>,
    bar: Option<&ProgressBar>,
    what: &str,
    file: std::fs::File,
    durable: bool,
) -> anyhow::Result<u64> {
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || write_chunks(file, rx, durable));
    let received = async {
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
            if tx.send(data).await.is_err() {
                // The writer stopped: its error is the one to report.
                return Ok(n);
            }
        }
        if total.is_some_and(|t| t != n) {
            anyhow::bail!("the daemon ended {what} early");
        }
        Ok(n)
    }
    .await;
    drop(tx);
    writer
        .await
        .map_err(|e| anyhow::anyhow!("the writing thread failed: {e}"))??;
    received
}

/// Write every chunk to `file` (see [`pipe_to`]).
fn write_chunks(
    mut file: std::fs::File,
    mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    durable: bool,
) -> std::io::Result<()> {
    use std::io::Write;
    let (mut n, mut started) = (0u64, 0u64);
    while let Some(chunk) = rx.blocking_recv() {
        file.write_all(&chunk)?;
        n += chunk.len() as u64;
        if durable && n - started >= WRITEBACK_EVERY {
            // SAFETY: a plain syscall on a descriptor we own; a failure
            // only means the writeback starts at the final fsync.
            unsafe {
                libc::sync_file_range(
                    file.as_raw_fd(),
                    started as i64,
                    (n - started) as i64,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            started = n;
        }
    }
    if durable {
        file.sync_all()?;
    }
    Ok(())
}
