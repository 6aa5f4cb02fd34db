//! Moving bundles between daemons without an intermediate file
//! (docs/transfer.md): the receiver says which of a bundle's blobs it
//! lacks, the sender streams a thin archive of only those, and the
//! receiver imports it (thin, resumable: what it verified survives a
//! broken stream, so a retry sends only the rest).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::Method;
use serde::{Deserialize, Serialize};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::{Engine, EngineError};
use crate::capture::archive::{self, ArchiveBlob, ArchiveIndex, ExportOptions, ImportOptions};
use crate::capture::recv;
use crate::cli::client::{enc, stream_body, Client, ClientError};
use crate::types::Digest;

/// What a push or pull moved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferReport {
    /// The bundle's full ID.
    pub bundle: String,
    /// Blobs of the bundle (its images' config and layers included).
    pub blobs: usize,
    /// Blobs sent (those the receiver lacked).
    pub blobs_sent: usize,
    /// Bytes of the thin archive sent.
    pub bytes_sent: u64,
    /// Wall time in milliseconds.
    pub ms: u64,
}

impl TransferReport {
    /// What was sent of `blobs` since `start`.
    fn new(
        bundle: String,
        blobs: usize,
        blobs_sent: usize,
        bytes_sent: u64,
        start: Instant,
    ) -> Self {
        TransferReport {
            bundle,
            blobs,
            blobs_sent,
            bytes_sent,
            ms: start.elapsed().as_millis() as u64,
        }
    }
}

/// `POST /amber/v1/bundles/missing`: which blobs of a bundle a receiver
/// lacks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissingRequest {
    /// The bundle's ID.
    pub bundle: String,
    /// Its blobs, as the archive index lists them.
    pub blobs: Vec<ArchiveBlob>,
}

/// The answer of the missing-blob negotiation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissingReport {
    /// The bundle's ID.
    pub bundle: String,
    /// Whether the receiver has the bundle already (nothing to send).
    pub exists: bool,
    /// The blobs it lacks.
    pub missing: Vec<Digest>,
}

/// `POST /amber/v1/bundles/{id}/export` with a body: a thin export.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ThinExportRequest {
    /// Blobs to leave out (the receiver has them).
    pub exclude: Vec<Digest>,
    /// Leave the images out.
    pub no_images: bool,
}

/// A client error as an engine error: the peer's 4xx keep their kind.
pub(super) fn remote_err(host: &str, e: ClientError) -> EngineError {
    match &e {
        ClientError::Api { status, message } => match status.as_u16() {
            404 => EngineError::NotFound(format!("{host}: {message}")),
            400 => EngineError::InvalidArgument(format!("{host}: {message}")),
            409 => EngineError::Conflict(format!("{host}: {message}")),
            _ => EngineError::Remote(format!("{host}: {message}")),
        },
        _ => EngineError::Remote(format!("{host}: {e}")),
    }
}

/// A blocking task's panic as an engine error.
fn joined<T>(r: Result<Result<T, EngineError>, tokio::task::JoinError>) -> Result<T, EngineError> {
    r.map_err(|e| EngineError::Remote(format!("background task failed: {e}")))?
}

/// Run engine work that blocks (store, runtime) off the async runtime.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    joined(tokio::task::spawn_blocking(f).await)
}

impl Engine {
    /// The archive index of a bundle (`GET /amber/v1/bundles/{id}/index`):
    /// every blob with size and media type, what a pull negotiates on.
    pub fn bundle_index(&self, id: &str, no_images: bool) -> Result<ArchiveIndex, EngineError> {
        let plan = archive::plan_export_with(&self.store, id, &ExportOptions { no_images })?;
        Ok(plan.index)
    }

    /// Plan a thin export: every blob listed, those in `exclude` not sent.
    pub fn plan_thin_export(
        &self,
        id: &str,
        req: &ThinExportRequest,
    ) -> Result<archive::ExportPlan, EngineError> {
        let mut plan = archive::plan_export_with(
            &self.store,
            id,
            &ExportOptions {
                no_images: req.no_images,
            },
        )?;
        plan.leave_out(req.exclude.iter().cloned());
        Ok(plan)
    }

    /// The receiving side of the negotiation: which of `blobs` this daemon
    /// lacks (image blobs count as present when the image or layer is
    /// installed; blobs verified by an interrupted transfer too).
    pub fn missing_blobs(&self, req: &MissingRequest) -> Result<MissingReport, EngineError> {
        let exists = crate::capture::index::resolve(&self.store, &req.bundle)
            .is_ok_and(|b| b.id == req.bundle);
        let missing = if exists {
            Vec::new()
        } else {
            recv::missing(&self.store, &req.bundle, &req.blobs)
        };
        Ok(MissingReport {
            bundle: req.bundle.clone(),
            exists,
            missing,
        })
    }

    /// Push a bundle to another daemon: only the blobs it lacks.
    pub async fn push_bundle(&self, to: &Client, id: &str) -> Result<TransferReport, EngineError> {
        let start = Instant::now();
        let store = Arc::clone(&self.store);
        let name = id.to_string();
        let mut plan = blocking(move || {
            Ok(archive::plan_export_with(
                &store,
                &name,
                &ExportOptions::default(),
            )?)
        })
        .await?;
        let bundle = plan.index.bundle.clone();
        let host = to.host().to_string();
        let req = MissingRequest {
            bundle: bundle.clone(),
            blobs: plan.index.blobs.clone(),
        };
        let resp = to
            .post_json("/amber/v1/bundles/missing", &req)
            .await
            .map_err(|e| remote_err(&host, e))?;
        let bytes = crate::cli::client::read_all(resp)
            .await
            .map_err(|e| remote_err(&host, e))?;
        let answer: MissingReport = serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::Remote(format!("{host}: bad missing-blob answer: {e}")))?;
        let blobs = plan.index.blobs.len();
        if answer.exists {
            return Ok(TransferReport::new(bundle, blobs, 0, 0, start));
        }
        let missing: BTreeSet<Digest> = answer.missing.into_iter().collect();
        let have: Vec<Digest> = plan
            .index
            .blobs
            .iter()
            .map(|b| b.digest.clone())
            .filter(|d| !missing.contains(d))
            .collect();
        plan.leave_out(have);
        let blobs_sent = plan.blobs_written();
        let bytes_sent = plan.size;
        let (w, r) = tokio::io::duplex(1 << 20);
        let bridge = SyncIoBridge::new(w);
        let store = Arc::clone(&self.store);
        let writer = tokio::task::spawn_blocking(move || -> Result<(), EngineError> {
            let out = std::io::BufWriter::with_capacity(1 << 20, bridge);
            archive::write_export(&store, &plan, out)?;
            Ok(())
        });
        let path = format!("/amber/v1/bundles/import?thin=1&bundle={}", enc(&bundle));
        let sent = to
            .send(
                Method::POST,
                &path,
                Some("application/x-tar"),
                stream_body(r),
            )
            .await;
        let wrote = joined(writer.await);
        let resp = match sent {
            Ok(resp) => resp,
            // The export's own failure explains a truncated archive best.
            Err(e) => return Err(wrote.err().unwrap_or_else(|| remote_err(&host, e))),
        };
        crate::cli::client::read_all(resp)
            .await
            .map_err(|e| remote_err(&host, e))?;
        wrote?;
        let report = TransferReport::new(bundle, blobs, blobs_sent, bytes_sent, start);
        tracing::info!(bundle_id = %report.bundle, host = %host, blobs_sent, bytes_sent, "pushed bundle");
        Ok(report)
    }

    /// Pull a bundle from another daemon: only the blobs this one lacks.
    pub async fn pull_bundle(
        &self,
        from: &Client,
        id: &str,
    ) -> Result<TransferReport, EngineError> {
        let start = Instant::now();
        let host = from.host().to_string();
        let index: ArchiveIndex = from
            .get(&format!("/amber/v1/bundles/{}/index", enc(id)))
            .await
            .map_err(|e| remote_err(&host, e))?;
        let bundle = index.bundle.clone();
        let req = MissingRequest {
            bundle: bundle.clone(),
            blobs: index.blobs.clone(),
        };
        let answer = self.missing_blobs(&req)?;
        let blobs = index.blobs.len();
        if answer.exists {
            return Ok(TransferReport::new(bundle, blobs, 0, 0, start));
        }
        let missing: BTreeSet<&Digest> = answer.missing.iter().collect();
        let exclude: Vec<Digest> = index
            .blobs
            .iter()
            .map(|b| b.digest.clone())
            .filter(|d| !missing.contains(d))
            .collect();
        let blobs_sent = blobs - exclude.len();
        let resp = from
            .post_json(
                &format!("/amber/v1/bundles/{}/export", enc(&bundle)),
                &ThinExportRequest {
                    exclude,
                    no_images: false,
                },
            )
            .await
            .map_err(|e| remote_err(&host, e))?;
        let counted = Arc::new(AtomicU64::new(0));
        let c2 = Arc::clone(&counted);
        let stream = resp
            .into_body()
            .into_data_stream()
            .map_ok(move |b| {
                c2.fetch_add(b.len() as u64, Ordering::Relaxed);
                b
            })
            .map_err(std::io::Error::other);
        let reader = SyncIoBridge::new(StreamReader::new(stream));
        let store = Arc::clone(&self.store);
        let opts = ImportOptions {
            thin: true,
            resume: Some(bundle.clone()),
        };
        blocking(move || {
            Ok(archive::import_with(
                &store,
                reader,
                &opts,
                &super::capture::CAPTURE_LOCK,
            )?)
        })
        .await?;
        self.index_logs_in_background();
        let bytes_sent = counted.load(Ordering::Relaxed);
        let report = TransferReport::new(bundle, blobs, blobs_sent, bytes_sent, start);
        tracing::info!(bundle_id = %report.bundle, host = %host, blobs_sent, bytes_sent, "pulled bundle");
        Ok(report)
    }

    /// Push or pull with HOST given as a string (`POST
    /// /amber/v1/bundles/{id}/push?host=` and `/bundles/pull?host=&id=`).
    pub async fn transfer_bundle(
        &self,
        host: &str,
        id: &str,
        push: bool,
    ) -> Result<TransferReport, EngineError> {
        let client = self.remote_client(host)?;
        if push {
            self.push_bundle(&client, id).await
        } else {
            self.pull_bundle(&client, id).await
        }
    }
}
