//! Placeholder transfer of a remote bundle to this daemon for `cluster
//! capture`: the remote's `GET /amber/v1/bundles/{id}/export` streamed
//! straight into the local import (no intermediate file). It moves every
//! blob each time; the negotiated `pull_bundle` (docs/transfer.md), which
//! sends only blobs this store lacks, replaces it at merge.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;

use super::{Engine, EngineError};
use crate::cli::client::{empty, enc_path, Client};

/// What a pull moved.
#[derive(Debug, Clone)]
pub(super) struct Pulled {
    /// The bundle ID (the same here as on the remote).
    pub bundle: String,
    /// Bytes received from the remote.
    pub bytes: u64,
}

/// Chunks queued between the network side and the blocking import.
const QUEUE: usize = 16;

impl Engine {
    /// Pull bundle `id` from `from` into the local store. Dropping the
    /// future (a timeout) ends the import with an error, so nothing
    /// partial becomes visible and no lock stays held.
    pub(super) async fn pull_bundle_placeholder(
        self: &Arc<Self>,
        from: &Client,
        id: &str,
    ) -> Result<Pulled, EngineError> {
        let path = format!("/amber/v1/bundles/{}/export", enc_path(id));
        let resp = from
            .send(Method::GET, &path, None, empty())
            .await
            .map_err(|e| EngineError::InvalidArgument(format!("export from the host: {e}")))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Option<Bytes>>(QUEUE);
        let engine = Arc::clone(self);
        let import = tokio::task::spawn_blocking(move || {
            engine.import_bundle(ChannelReader {
                rx,
                buf: Bytes::new(),
                done: false,
            })
        });
        let mut body = resp.into_body();
        let mut bytes = 0u64;
        let mut fed = Ok(());
        loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        bytes += data.len() as u64;
                        if tx.send(Some(data)).await.is_err() {
                            break; // the import gave up: its error says why
                        }
                    }
                }
                Some(Err(e)) => {
                    fed = Err(EngineError::InvalidArgument(format!(
                        "the host ended the transfer: {e}"
                    )));
                    break;
                }
                None => {
                    let _ = tx.send(None).await;
                    break;
                }
            }
        }
        drop(tx);
        let report = import
            .await
            .map_err(|e| EngineError::InvalidArgument(format!("import worker failed: {e}")))?;
        fed?;
        let report = report?;
        Ok(Pulled {
            bundle: report.id,
            bytes,
        })
    }
}

/// A blocking reader over the queued chunks; a queue closed without its
/// end marker (`None`) is an interrupted transfer, not an end of file.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Option<Bytes>>,
    buf: Bytes,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Some(b)) => self.buf = b,
                Some(None) => self.done = true,
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the transfer from the host was interrupted",
                    ))
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(chunks: &[&'static [u8]], end: bool) -> ChannelReader {
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        for c in chunks {
            tx.try_send(Some(Bytes::from_static(c))).unwrap();
        }
        if end {
            tx.try_send(None).unwrap();
        }
        ChannelReader {
            rx,
            buf: Bytes::new(),
            done: false,
        }
    }

    #[test]
    fn a_complete_transfer_reads_to_its_end() {
        let mut out = Vec::new();
        reader(&[b"abc", b"", b"defg"], true)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"abcdefg");
    }

    #[test]
    fn an_interrupted_transfer_is_an_error_not_an_end() {
        let mut out = Vec::new();
        let e = reader(&[b"abc"], false).read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(out, b"abc");
    }
}
