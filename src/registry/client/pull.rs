//! `pull`: manifest (through an index to this platform's), config, then
//! every missing layer downloaded in parallel, each streamed straight into
//! its own unpacking thread while its digest is computed; interrupted
//! downloads resume with `Range`. Every digest is verified; nothing is
//! visible until the whole image is.

use std::io::{self, Read};
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{
    empty, error_of, origin, read_document, Credentials, Ctx, Endpoint, Progress, RegistryConfig,
    RegistryError, Session, MANIFEST_TYPES,
};
use crate::store::{PulledLayer, StagedLayer, Store};
use crate::types::DEFAULT_DOMAIN;
use crate::types::{Digest, Reference};

/// Layers downloaded at once.
const PARALLEL: usize = 3;
/// Attempts per layer download (the first plus resumptions).
const ATTEMPTS: usize = 4;

/// Pull `r` into `store`; returns the image ID.
pub async fn pull(ctx: Ctx<'_>, r: &Reference) -> Result<Digest, RegistryError> {
    let Ctx {
        store,
        creds,
        cfg,
        seen,
        progress,
    } = ctx;
    let mut mirror_errors = Vec::new();
    if r.domain() == DEFAULT_DOMAIN {
        for m in &cfg.registry_mirrors {
            let ep = Endpoint::mirror(m, r.path());
            match pull_from(store.clone(), ep, None, r, cfg, progress).await {
                Ok((id, _)) => return Ok(id),
                Err(e) => {
                    tracing::info!(mirror = %m, error = %e, "mirror could not serve the pull");
                    mirror_errors.push(format!("mirror {m}: {e}"));
                }
            }
        }
    }
    let ep = origin(r, cfg);
    let (host, repo) = (ep.host.clone(), ep.repo.clone());
    let (id, blobs) = pull_from(store, ep, creds, r, cfg, progress)
        .await
        .map_err(|e| match (e, mirror_errors.is_empty()) {
            (e, true) => e,
            (RegistryError::Remote(m), false) => {
                RegistryError::Remote(format!("{m} (after mirrors: {})", mirror_errors.join("; ")))
            }
            (e, false) => e,
        })?;
    for b in blobs {
        seen.record(&b, &host, &repo);
    }
    Ok(id)
}

async fn pull_from(
    store: Arc<Store>,
    ep: Endpoint,
    creds: Option<Credentials>,
    r: &Reference,
    cfg: &RegistryConfig,
    progress: &Progress,
) -> Result<(Digest, Vec<Digest>), RegistryError> {
    let wanted = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => crate::types::DEFAULT_TAG.to_string(),
    };
    let s = Arc::new(Session::new(ep, creds, "pull", cfg)?);
    progress.status(
        r.tag().filter(|_| r.digest().is_none()),
        format!("Pulling from {}", s.endpoint().repo),
    );
    s.authenticate().await?;
    let (mut manifest, mut digest) = get_manifest(&s, &wanted, r.digest()).await?;
    if is_index(&manifest) {
        let d = pick_platform(&manifest).ok_or_else(|| {
            RegistryError::NotFound(format!(
                "no matching manifest for linux/{} in the manifest list of {}",
                crate::types::host_arch(),
                r.familiar()
            ))
        })?;
        (manifest, digest) = get_manifest(&s, &d.to_string(), Some(&d)).await?;
    }
    let (config_desc, layer_descs) = image_descriptors(&manifest)?;
    let config = get_small_blob(&s, &config_desc.0).await?;
    let cfg: Value = serde_json::from_slice(&config)
        .map_err(|e| RegistryError::Remote(format!("bad image config: {e}")))?;
    let diff_ids: Vec<Digest> = cfg["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    if diff_ids.len() != layer_descs.len() {
        return Err(RegistryError::Remote(format!(
            "the image config lists {} layers, the manifest {}",
            diff_ids.len(),
            layer_descs.len()
        )));
    }
    let blob_digests: Vec<Digest> = layer_descs.iter().map(|d| d.0.clone()).collect();
    let sem = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut tasks = Vec::new();
    for (desc, diff_id) in layer_descs.into_iter().zip(diff_ids) {
        let short = desc.0.short().to_string();
        let st = store.clone();
        let d2 = diff_id.clone();
        let present = tokio::task::spawn_blocking(move || st.has_layer(&d2))
            .await
            .map_err(|e| RegistryError::Invalid(e.to_string()))??;
        if present {
            progress.status(Some(&short), "Already exists");
            let (st, d3) = (store.clone(), diff_id.clone());
            let size = tokio::task::spawn_blocking(move || st.layer_size(&d3))
                .await
                .map_err(|e| RegistryError::Invalid(e.to_string()))??;
            tasks.push(tokio::spawn(async move {
                Ok(PulledLayer::Present(diff_id, size))
            }));
            continue;
        }
        progress.status(Some(&short), "Pulling fs layer");
        let (s, store, progress, sem) = (s.clone(), store.clone(), progress.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let staged = download_layer(&s, store, &desc, &diff_id, &progress).await?;
            progress.status(Some(&short), "Pull complete");
            Ok(PulledLayer::Staged(staged))
        }));
    }
    let mut layers = Vec::new();
    let mut failed = None;
    for t in tasks {
        match t.await {
            Ok(Ok(l)) => layers.push(l),
            Ok(Err(e)) => failed = failed.or(Some(e)),
            Err(e) => failed = failed.or(Some(RegistryError::Invalid(e.to_string()))),
        }
    }
    if let Some(e) = failed {
        for l in layers {
            if let PulledLayer::Staged(st) = l {
                store.discard_staged(st);
            }
        }
        return Err(e);
    }
    let tag = r.tag().filter(|_| r.digest().is_none()).map(|_| r.clone());
    let st = store.clone();
    // "Up to date" when the name already meant this image, as Docker says.
    let existed = {
        let (id, name) = (config_desc.0.clone(), r.familiar());
        tokio::task::spawn_blocking(move || st.resolve_image(&name).ok() == Some(id))
            .await
            .unwrap_or(false)
    };
    let id =
        tokio::task::spawn_blocking(move || store.add_pulled_image(&config, layers, tag.as_ref()))
            .await
            .map_err(|e| RegistryError::Invalid(e.to_string()))??;
    progress.status(None, format!("Digest: {digest}"));
    progress.status(
        None,
        if existed {
            format!("Status: Image is up to date for {}", r.familiar())
        } else {
            format!("Status: Downloaded newer image for {}", r.familiar())
        },
    );
    Ok((id, blob_digests))
}

type Descriptor = (Digest, u64);

fn is_index(m: &Value) -> bool {
    m["manifests"].is_array()
}

fn pick_platform(index: &Value) -> Option<Digest> {
    index["manifests"].as_array()?.iter().find_map(|m| {
        let p = &m["platform"];
        let ok = p.is_null()
            || (p["os"].as_str().unwrap_or("linux") == "linux"
                && p["architecture"].as_str() == Some(crate::types::host_arch()));
        ok.then(|| m["digest"].as_str()?.parse().ok()).flatten()
    })
}

fn descriptor(v: &Value) -> Result<Descriptor, RegistryError> {
    let d = v["digest"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            RegistryError::Remote("a manifest descriptor has no sha256 digest".into())
        })?;
    let size = v["size"]
        .as_u64()
        .ok_or_else(|| RegistryError::Remote(format!("descriptor {d} has no size")))?;
    Ok((d, size))
}

fn image_descriptors(m: &Value) -> Result<(Descriptor, Vec<Descriptor>), RegistryError> {
    let config = descriptor(&m["config"])?;
    let layers = m["layers"]
        .as_array()
        .ok_or_else(|| RegistryError::Remote("the manifest lists no layers".into()))?
        .iter()
        .map(descriptor)
        .collect::<Result<_, _>>()?;
    Ok((config, layers))
}

/// GET a manifest; verified against `expect` when pulled by digest.
async fn get_manifest(
    s: &Session,
    reference: &str,
    expect: Option<&Digest>,
) -> Result<(Value, Digest), RegistryError> {
    let url = s.url(&format!("manifests/{reference}"));
    let resp = s
        .send(
            Method::GET,
            &url,
            &[("accept", MANIFEST_TYPES.join(", "))],
            empty(),
        )
        .await?;
    if !resp.status().is_success() {
        let name = format!("{}/{}:{reference}", s.endpoint().host, s.endpoint().repo);
        return Err(
            match error_of(&format!("manifest for {name}"), resp).await {
                RegistryError::NotFound(_) => {
                    RegistryError::NotFound(format!("manifest for {name} not found"))
                }
                e => e,
            },
        );
    }
    let body = read_document(resp).await?;
    let digest = Digest::of(&body);
    if let Some(want) = expect {
        if &digest != want {
            return Err(RegistryError::Remote(format!(
                "manifest {want} from the registry does not match its digest (got {digest})"
            )));
        }
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| RegistryError::Remote(format!("bad manifest: {e}")))?;
    Ok((v, digest))
}

async fn get_small_blob(s: &Session, d: &Digest) -> Result<Vec<u8>, RegistryError> {
    let resp = s
        .send(Method::GET, &s.url(&format!("blobs/{d}")), &[], empty())
        .await?;
    let resp = follow(s, resp, &[]).await?;
    if !resp.status().is_success() {
        return Err(error_of(&format!("blob {d}"), resp).await);
    }
    let body = read_document(resp).await?;
    if &Digest::of(&body) != d {
        return Err(RegistryError::Remote(format!(
            "blob {d} from the registry does not match its digest"
        )));
    }
    Ok(body.to_vec())
}

/// Follow a blob redirect (to storage elsewhere), without our credentials.
async fn follow(
    s: &Session,
    resp: hyper::Response<hyper::body::Incoming>,
    headers: &[(&str, String)],
) -> Result<hyper::Response<hyper::body::Incoming>, RegistryError> {
    let mut resp = resp;
    for _ in 0..3 {
        if !resp.status().is_redirection() {
            return Ok(resp);
        }
        let Some(loc) = resp
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(resp);
        };
        let url = s.absolute(loc);
        let mut h = headers.to_vec();
        h.push(("authorization", String::new()));
        resp = s.send(Method::GET, &url, &h, empty()).await?;
    }
    Ok(resp)
}

/// Feeds a blocking unpacker from the download task.
struct ChanReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    cur: bytes::Bytes,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

async fn download_layer(
    s: &Session,
    store: Arc<Store>,
    desc: &Descriptor,
    diff_id: &Digest,
    progress: &Progress,
) -> Result<StagedLayer, RegistryError> {
    let short = desc.0.short().to_string();
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(32);
    let keep = store.clone();
    let unpacker = std::thread::spawn(move || {
        store.stage_layer_blob(ChanReader {
            rx,
            cur: bytes::Bytes::new(),
        })
    });
    let fed = feed(s, desc, &short, tx, progress).await;
    let staged = tokio::task::spawn_blocking(move || unpacker.join())
        .await
        .map_err(|e| RegistryError::Invalid(e.to_string()))?
        .map_err(|_| RegistryError::Invalid("layer unpacker panicked".into()))?;
    let discard = |st: Result<StagedLayer, crate::store::StoreError>| {
        if let Ok(l) = st {
            keep.discard_staged(l);
        }
    };
    if let Err(e) = fed {
        discard(staged);
        return Err(e);
    }
    let staged = staged.map_err(|e| RegistryError::Remote(format!("layer {}: {e}", desc.0)))?;
    if &staged.layer.diff_id != diff_id {
        let got = staged.layer.diff_id.clone();
        discard(Ok(staged));
        return Err(RegistryError::Remote(format!(
            "layer {} unpacks to {got}, the image config says {diff_id}",
            desc.0
        )));
    }
    progress.status(Some(&short), "Download complete");
    Ok(staged)
}

/// Download the blob into `tx`, resuming with `Range` when the connection
/// drops; verifies its digest and length.
async fn feed(
    s: &Session,
    desc: &Descriptor,
    short: &str,
    tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    progress: &Progress,
) -> Result<(), RegistryError> {
    let (digest, size) = desc;
    let url = s.url(&format!("blobs/{digest}"));
    let mut hasher = Sha256::new();
    let mut got = 0u64;
    let mut last_report = 0u64;
    let mut attempts = 0;
    let mut last_err = String::new();
    while attempts < ATTEMPTS {
        attempts += 1;
        let headers: Vec<(&str, String)> = if got > 0 {
            vec![("range", format!("bytes={got}-"))]
        } else {
            vec![]
        };
        let resp = match s.send(Method::GET, &url, &headers, empty()).await {
            Ok(r) => follow(s, r, &headers).await?,
            Err(RegistryError::Remote(e)) => {
                last_err = e;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let status = resp.status();
        if got > 0 && status != StatusCode::PARTIAL_CONTENT {
            return Err(RegistryError::Remote(format!(
                "download of {digest} was cut and the registry cannot resume it ({status})"
            )));
        }
        if !status.is_success() {
            return Err(error_of(&format!("blob {digest}"), resp).await);
        }
        let mut body = resp.into_body();
        loop {
            match body.frame().await {
                Some(Ok(f)) => {
                    let Ok(data) = f.into_data() else { continue };
                    got += data.len() as u64;
                    if got > *size {
                        return Err(RegistryError::Remote(format!(
                            "blob {digest} is longer than its {size} bytes"
                        )));
                    }
                    hasher.update(&data);
                    if tx.send(data).await.is_err() {
                        // The unpacker stopped: its error is the one to show.
                        return Ok(());
                    }
                    if got - last_report >= 1 << 20 || got == *size {
                        progress.bytes(short, "Downloading", got, *size);
                        last_report = got;
                    }
                }
                Some(Err(e)) => {
                    last_err = e.to_string();
                    break;
                }
                None => break,
            }
        }
        if got == *size {
            let have = Digest::from_hasher(hasher);
            if &have != digest {
                return Err(RegistryError::Remote(format!(
                    "blob {digest} from the registry does not match its digest (got {have})"
                )));
            }
            return Ok(());
        }
        if last_err.is_empty() {
            last_err = format!("the connection closed after {got} of {size} bytes");
        }
        tracing::info!(blob = %digest, got, size, "layer download cut, resuming");
    }
    Err(RegistryError::Remote(format!(
        "download of {digest} failed after {ATTEMPTS} attempts: {last_err}"
    )))
}
