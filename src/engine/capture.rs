//! Engine glue of capture bundles (`crate::capture`): resolves containers,
//! freezes a running one only while its upper dir is read (always thawing
//! it, even on error), collects `/proc`, cgroup and network state, and
//! hands everything to the capture module to store and index.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{json, Value};

use super::capture_core::core_report;
use super::{lock, ContainerView, Engine, EngineError};
use crate::capture::{self, BlobSink, CaptureError, ContainerCapture, IndexedContainer, Manifest};
use crate::runtime::{self, Cgroup, Status};
use crate::store::StoreError;

/// Marker written in a container's directory while capture holds it
/// frozen; a daemon killed meanwhile thaws the container at start.
const FROZEN_MARKER: &str = "capture-frozen";
/// Test hook: milliseconds to hold a container frozen after its files are
/// stored and before the bundle is indexed (to kill the daemon mid-capture
/// deterministically). Unset in normal use.
const HOLD_ENV: &str = "AMBER_CAPTURE_HOLD_MS";
/// Cgroup files kept as statistics (v2 and v1 names; absent ones skipped).
const CGROUP_FILES: &[&str] = &[
    "memory.current",
    "memory.max",
    "memory.peak",
    "memory.events",
    "memory.stat",
    "cpu.stat",
    "cpu.max",
    "pids.current",
    "pids.max",
    "io.stat",
    "memory.usage_in_bytes",
    "memory.limit_in_bytes",
    "memory.max_usage_in_bytes",
    "memory.failcnt",
    "memory.oom_control",
    "cpuacct.usage",
    "cpuacct.stat",
];

/// Serialises captures and bundle removal, so a blob found in the store by
/// one capture is not collected by a concurrent `bundle rm`.
pub(super) static CAPTURE_LOCK: Mutex<()> = Mutex::new(());

/// What `POST /amber/v1/capture` asks for.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct CaptureOptions {
    /// Containers by name or ID.
    pub containers: Vec<String>,
    /// Capture every container.
    pub all: bool,
    /// Free-form label.
    pub label: String,
    /// `key=value` annotations.
    pub annotations: BTreeMap<String, String>,
    /// Do not freeze running containers.
    pub no_pause: bool,
    /// Keep the content of volumes and bind mounts too.
    pub volumes: bool,
    /// Cap of one mount's content in bytes (default
    /// [`capture::volumes::DEFAULT_MAX_SIZE`]); a bigger one is recorded as
    /// skipped.
    pub volumes_max_size: Option<u64>,
    /// Take a core dump of each process of running containers (gcore).
    pub core: bool,
}

/// How long after the last capture or import the logs are indexed.
const INDEX_WHEN_QUIET: std::time::Duration = std::time::Duration::from_secs(2);

/// When the last capture or import ended (ms since the epoch).
static LAST_BUNDLE_WRITE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl From<CaptureError> for EngineError {
    fn from(e: CaptureError) -> EngineError {
        match e {
            CaptureError::Store(s) => EngineError::Store(s),
            CaptureError::NotFound(m) => EngineError::NotFound(m),
            CaptureError::Invalid(m) => EngineError::InvalidArgument(m),
            CaptureError::Io { op, path, source } => EngineError::Store(StoreError::Io {
                op,
                path: path.into(),
                source,
            }),
        }
    }
}

impl Engine {
    /// Capture containers into a new bundle; returns its summary.
    pub fn capture(&self, opts: &CaptureOptions) -> Result<Value, EngineError> {
        self.capture_bundle(opts, None)
    }

    /// Capture into a bundle, named as a baseline when `baseline` is given.
    pub(super) fn capture_bundle(
        &self,
        opts: &CaptureOptions,
        baseline: Option<&str>,
    ) -> Result<Value, EngineError> {
        let started = Instant::now();
        let views = self.capture_targets(opts)?;
        let _guard = lock(&CAPTURE_LOCK);
        let store = self.store();
        if let Some(name) = baseline {
            if capture::index::resolve(store, name)
                .is_ok_and(|b| b.baseline.as_deref() == Some(name))
            {
                return Err(EngineError::Conflict(format!(
                    "baseline {name} already exists"
                )));
            }
        }
        let host = self.host_state()?;
        // Containers are captured in parallel, each frozen only for its own
        // walk; each thread has its own sink, merged afterwards.
        let captured = std::thread::scope(|s| {
            let handles: Vec<_> = views
                .iter()
                .map(|v| {
                    s.spawn(move || {
                        let mut sink = BlobSink::new(store);
                        let r = self.capture_one(v, &mut sink, opts);
                        r.map(|x| (x, sink))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(EngineError::InvalidArgument(
                            "a capture worker panicked".into(),
                        ))
                    })
                })
                .collect::<Vec<_>>()
        });
        let mut sink = BlobSink::new(store);
        let mut entries = Vec::new();
        let mut indexed = Vec::new();
        let mut report = Vec::new();
        let mut failed = None;
        for c in captured {
            match c {
                Ok(((entry, extra, r), part)) => {
                    sink.merge(part);
                    entries.push(entry);
                    indexed.push(extra);
                    report.push(r);
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failed {
            sink.discard();
            return Err(e);
        }
        let manifest = Manifest {
            format_version: capture::FORMAT_VERSION,
            id: capture::new_bundle_id(),
            label: opts.label.clone(),
            annotations: opts.annotations.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            host,
            containers: entries,
        };
        let finished = capture::finish(store, &mut sink, &manifest, &indexed, baseline);
        let (digest, size, new_bytes) = finished.inspect_err(|_| sink.discard())?;
        self.index_logs_in_background();
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(bundle_id = %manifest.id, containers = views.len(), size, new_bytes, ms, "captured bundle");
        Ok(json!({
            "Id": manifest.id, "Manifest": digest, "Label": manifest.label,
            "Created": manifest.created, "Size": size, "NewBytes": new_bytes,
            "DurationMs": ms, "Containers": report,
        }))
    }

    fn capture_targets(&self, opts: &CaptureOptions) -> Result<Vec<ContainerView>, EngineError> {
        if opts.all && !opts.containers.is_empty() {
            return Err(EngineError::InvalidArgument(
                "give containers or --all, not both".into(),
            ));
        }
        if opts.all {
            let recs = self.store.list_containers()?;
            if recs.is_empty() {
                return Err(EngineError::InvalidArgument(
                    "there are no containers to capture".into(),
                ));
            }
            return recs.into_iter().map(|r| self.view_of(r)).collect();
        }
        if opts.containers.is_empty() {
            return Err(EngineError::InvalidArgument(
                "capture needs at least one container, or --all".into(),
            ));
        }
        let mut views: Vec<ContainerView> = Vec::new();
        for name in &opts.containers {
            let v = self.container_view(name)?;
            if !views.iter().any(|x| x.rec.id == v.rec.id) {
                views.push(v);
            }
        }
        Ok(views)
    }

    /// One container: its writable layer (frozen if running), log, state.
    fn capture_one(
        &self,
        v: &ContainerView,
        sink: &mut BlobSink<'_>,
        opts: &CaptureOptions,
    ) -> Result<(ContainerCapture, IndexedContainer, Value), EngineError> {
        let id = &v.rec.id;
        let dir = self.store.container_dir(id);
        let inspect = self.inspect_container(id)?;
        let cache = capture::stat_cache(&self.store, id);
        let freeze = v.state.status == Status::Running && !opts.no_pause;
        let t0 = Instant::now();
        let mounts = if opts.volumes {
            capture::volumes::mounts_of(&inspect, |n| {
                self.store.volume_dir(n).join("_data").display().to_string()
            })
        } else {
            Vec::new()
        };
        let max = opts
            .volumes_max_size
            .unwrap_or(capture::volumes::DEFAULT_MAX_SIZE);
        // The mounts are read in the same frozen moment as the layer.
        let walked = self.with_frozen(&dir, freeze, || {
            let upper = capture::walk::walk_upper(&dir.join("upper"), sink, &cache.files)?;
            let vols = mounts
                .into_iter()
                .map(|m| capture::volumes::capture_mount(sink, m, max))
                .collect::<Result<Vec<_>, CaptureError>>()?;
            Ok((upper, vols))
        });
        let frozen_ms = t0.elapsed().as_millis() as u64;
        let ((files, stats), vols) = walked?;
        let files_digest = capture::put_file_list(sink, &files)?;
        let upper_count = files.len();
        let files = capture::volumes::merge(
            files,
            vols.iter()
                .map(|(v, f)| (v.destination.as_str(), f.clone()))
                .collect(),
        );
        let volumes: Vec<capture::VolumeCapture> = vols.into_iter().map(|(v, _)| v).collect();
        let log = capture::capture_log(sink, &dir.join("container.log"), cache.log.as_ref())?;
        let live = matches!(v.state.status, Status::Running | Status::Paused);
        let pids = if live {
            self.container_pids(id)
        } else {
            Vec::new()
        };
        let sockets = pids
            .first()
            .map(|p| capture::procs::sockets(*p))
            .unwrap_or_default();
        let names = capture::procs::socket_names(&sockets);
        let processes: Vec<Value> = pids
            .iter()
            .filter_map(|p| capture::procs::process(*p, &names))
            .collect();
        // After the frozen walk: ptrace cannot attach to a frozen task.
        let cores = opts
            .core
            .then(|| self.core_dumps(v, &processes, sink))
            .transpose()?;
        let entry = ContainerCapture {
            id: id.clone(),
            name: v.rec.name.clone(),
            image_ref: v.rec.image_ref.clone(),
            image_id: v.rec.image_id.clone(),
            status: v.status().to_string(),
            frozen: freeze,
            network: network_state(&inspect, pids.first().copied()),
            inspect,
            files: files_digest,
            file_count: upper_count as u64,
            log,
            processes,
            sockets: Value::Array(sockets),
            cgroup: self.cgroup_state(id, &dir, live),
            volumes,
            cores,
        };
        let mut report = json!({
            "Id": id, "Name": v.rec.name, "Status": entry.status, "Frozen": freeze,
            "FrozenMs": if freeze { frozen_ms } else { 0 }, "Files": files.len(),
            "FilesRead": stats.read, "FilesReused": stats.reused,
            "Volumes": entry.volumes.iter().map(|v| json!({
                "Destination": v.destination, "Name": v.name, "Size": v.size,
                "Files": v.file_count, "Skipped": v.skipped,
            })).collect::<Vec<_>>(),
        });
        if let Some(c) = &entry.cores {
            report["Cores"] = core_report(c);
        }
        Ok((entry, IndexedContainer { files }, report))
    }

    /// Run `f` with the container frozen when `freeze`; always thaw, and
    /// report both errors when `f` and the thaw fail.
    fn with_frozen<T>(
        &self,
        dir: &Path,
        freeze: bool,
        f: impl FnOnce() -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        if !freeze {
            return f();
        }
        let marker = dir.join(FROZEN_MARKER);
        std::fs::write(&marker, b"").map_err(|source| StoreError::Io {
            op: "write",
            path: marker.clone(),
            source,
        })?;
        if let Err(e) = runtime::pause(dir) {
            let _ = std::fs::remove_file(&marker);
            // Exited since it was looked at: nothing to freeze any more.
            if runtime::state(dir).is_ok_and(|s| s.status == Status::Exited) {
                return f();
            }
            return Err(e.into());
        }
        let out = f();
        if let Some(ms) = std::env::var(HOLD_ENV).ok().and_then(|s| s.parse().ok()) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let thawed = runtime::resume(dir);
        if thawed.is_ok() {
            let _ = std::fs::remove_file(&marker);
        }
        match (out, thawed) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), Ok(())) => Err(e),
            (Ok(_), Err(t)) => Err(t.into()),
            (Err(e), Err(t)) => Err(EngineError::InvalidArgument(format!(
                "capture failed: {e}; and thawing the container failed too: {t}"
            ))),
        }
    }

    /// Full-text index the new bundles' log chunks without holding up the
    /// capture (`search` catches up itself when it runs first). Indexing
    /// is the least urgent work there is and costs seconds of CPU for
    /// hundreds of MiB of logs: it starts once no capture or import has
    /// ended for [`INDEX_WHEN_QUIET`], so that a burst of them (a cluster
    /// capture: each host captures, then the coordinator imports them all)
    /// does not compete with it.
    pub(super) fn index_logs_in_background(&self) {
        let stamp = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        LAST_BUNDLE_WRITE.store(
            stamp(std::time::SystemTime::now()),
            std::sync::atomic::Ordering::Relaxed,
        );
        let store = std::sync::Arc::clone(&self.store);
        std::thread::spawn(move || {
            let quiet = INDEX_WHEN_QUIET.as_millis() as u64;
            loop {
                let last = LAST_BUNDLE_WRITE.load(std::sync::atomic::Ordering::Relaxed);
                let now = stamp(std::time::SystemTime::now());
                if now >= last + quiet {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(last + quiet - now));
            }
            match capture::index::index_pending_logs(&store) {
                Ok(n) => tracing::debug!(chunks = n, "indexed captured log chunks"),
                Err(e) => tracing::warn!(error = %e, "failed to index captured logs"),
            }
        });
    }

    /// Thaw containers a killed daemon left frozen mid-capture (called at
    /// start).
    pub(super) fn thaw_interrupted_captures(&self) {
        let Ok(recs) = self.store.list_containers() else {
            return;
        };
        for rec in recs {
            let dir = self.store.container_dir(&rec.id);
            let marker = dir.join(FROZEN_MARKER);
            if !marker.exists() {
                continue;
            }
            match runtime::resume(&dir) {
                Ok(()) => {
                    tracing::info!(container_id = %rec.id, "thawed container left frozen by an interrupted capture")
                }
                Err(e) => {
                    tracing::warn!(container_id = %rec.id, error = %e, "could not thaw container after an interrupted capture")
                }
            }
            let _ = std::fs::remove_file(&marker);
        }
    }

    fn cgroup_state(&self, id: &str, dir: &Path, live: bool) -> Value {
        if !live {
            return Value::Null;
        }
        let mut files = serde_json::Map::new();
        for p in Cgroup::new(&self.cgroup_parent, id).paths() {
            for name in CGROUP_FILES {
                if let Ok(text) = std::fs::read_to_string(p.join(name)) {
                    files.insert((*name).to_string(), json!(text.trim_end()));
                }
            }
        }
        json!({
            "stats": runtime::stats(dir).ok(),
            "oom_killed": Cgroup::new(&self.cgroup_parent, id).oom_killed(),
            "files": files,
        })
    }

    /// Engine version, kernel, cgroup layout, CPUs, memory, containers and
    /// images of this host.
    fn host_state(&self) -> Result<Value, EngineError> {
        let info = self.info()?;
        let mut containers = Vec::new();
        for rec in self.store.list_containers()? {
            let status = self
                .view_of(rec.clone())
                .map(|v| v.status())
                .unwrap_or("unknown");
            containers.push(
                json!({"id": rec.id, "name": rec.name, "image": rec.image_ref, "status": status}),
            );
        }
        let images: Vec<Value> = self
            .store
            .list_images()?
            .into_iter()
            .map(|i| json!({"id": i.id, "tags": i.tags, "size": i.size}))
            .collect();
        Ok(json!({
            "hostname": info["Name"], "engine_version": crate::VERSION,
            "kernel": info["KernelVersion"], "os": info["OperatingSystem"],
            "architecture": info["Architecture"], "cgroup_version": info["CgroupVersion"],
            "ncpu": info["NCPU"], "mem_total": info["MemTotal"],
            "containers": containers, "images": images,
        }))
    }
}

/// Inspect's network settings plus the namespace's routes and addresses.
fn network_state(inspect: &Value, pid: Option<i32>) -> Value {
    let mut out = json!({"settings": inspect["NetworkSettings"]});
    let Some(pid) = pid else {
        return out;
    };
    out["routes"] = json!(parse_routes(
        &std::fs::read_to_string(format!("/proc/{pid}/net/route")).unwrap_or_default()
    ));
    out["interfaces"] = json!(std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|n| n.trim().to_string()))
        .collect::<Vec<_>>());
    // Addresses through `ip` in the container's netns; absent tools are said.
    let addrs = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "ip", "-j", "addr"])
        .output();
    out["addresses"] = match addrs {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).unwrap_or(Value::Null),
        Ok(o) => json!({"error": String::from_utf8_lossy(&o.stderr).trim()}),
        Err(e) => json!({"error": format!("nsenter/ip unavailable: {e}")}),
    };
    out
}

/// `/proc/net/route` (IPv4, little-endian hex) as destination/gateway/mask.
fn parse_routes(text: &str) -> Vec<Value> {
    let ip = |h: &str| {
        u32::from_str_radix(h, 16)
            .map(|v| std::net::Ipv4Addr::from(v.swap_bytes()).to_string())
            .unwrap_or_default()
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8).then(|| {
                json!({"iface": f[0], "destination": ip(f[1]), "gateway": ip(f[2]), "mask": ip(f[7])})
            })
        })
        .collect()
}

/// Bundle queries and removal (thin: the capture module does the work).
impl Engine {
    /// `bundle ls`.
    pub fn list_bundles(&self) -> Result<Vec<capture::BundleSummary>, EngineError> {
        Ok(capture::index::list(&self.store)?)
    }

    /// `bundle inspect`: the manifest.
    pub fn bundle_manifest(&self, name: &str) -> Result<Manifest, EngineError> {
        Ok(capture::read::manifest(&self.store, name)?)
    }

    /// `bundle rm`: returns the bytes freed.
    pub fn remove_bundle(&self, name: &str) -> Result<u64, EngineError> {
        let _guard = lock(&CAPTURE_LOCK);
        let b = capture::index::resolve(&self.store, name)?;
        if b.baseline.is_some() {
            self.remove_prepared_uppers(&b.id);
        }
        let freed = capture::index::remove(&self.store, &b.id)?;
        tracing::info!(bundle_id = %b.id, freed, "removed bundle");
        Ok(freed)
    }

    /// `bundle prune`: remove every bundle that is not a baseline.
    pub fn prune_bundles(&self) -> Result<Value, EngineError> {
        let mut removed = Vec::new();
        let mut freed = 0;
        for b in self.list_bundles()? {
            if b.baseline.is_none() {
                freed += self.remove_bundle(&b.id)?;
                removed.push(b.id);
            }
        }
        let staging = capture::recv::prune(&self.store, false);
        Ok(json!({"BundlesDeleted": removed, "SpaceReclaimed": freed, "StagingRemoved": staging}))
    }

    /// `bundle search`.
    pub fn search_bundles(
        &self,
        text: &str,
        bundle: Option<&str>,
        container: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Value>, EngineError> {
        if text.trim().is_empty() {
            return Err(EngineError::InvalidArgument(
                "search needs some text".into(),
            ));
        }
        let bundle = match bundle {
            Some(b) => Some(capture::index::resolve(&self.store, b)?.id),
            None => None,
        };
        Ok(capture::search::search(
            &self.store,
            text,
            bundle.as_deref(),
            container,
            limit,
        )?)
    }

    /// `bundle files`.
    pub fn bundle_files(
        &self,
        name: &str,
        container: &str,
        path: &str,
    ) -> Result<Vec<Value>, EngineError> {
        let m = self.bundle_manifest(name)?;
        Ok(capture::read::files(&self.store, &m, container, path)?)
    }

    /// `bundle cat`.
    pub fn bundle_cat(
        &self,
        name: &str,
        container: &str,
        path: &str,
    ) -> Result<Vec<u8>, EngineError> {
        let m = self.bundle_manifest(name)?;
        Ok(capture::read::cat(&self.store, &m, container, path)?)
    }

    /// `bundle diff A B`.
    pub fn bundle_diff(&self, a: &str, b: &str) -> Result<Value, EngineError> {
        let ma = self.bundle_manifest(a)?;
        let mb = self.bundle_manifest(b)?;
        Ok(capture::diff::diff(&self.store, &ma, &mb)?)
    }
}

/// Bundle archives.
impl Engine {
    /// Plan `bundle export` (its exact size is known before it streams).
    pub fn plan_bundle_export(
        &self,
        name: &str,
        opts: &capture::archive::ExportOptions,
    ) -> Result<capture::archive::ExportPlan, EngineError> {
        Ok(capture::archive::plan_export_with(&self.store, name, opts)?)
    }

    /// Write a planned export.
    pub fn write_bundle_export(
        &self,
        plan: &capture::archive::ExportPlan,
        w: impl std::io::Write,
    ) -> Result<(), EngineError> {
        Ok(capture::archive::write_export(&self.store, plan, w)?)
    }

    /// `bundle import`: verified whole before it becomes visible.
    pub fn import_bundle(
        &self,
        r: impl std::io::Read,
    ) -> Result<capture::archive::ImportReport, EngineError> {
        self.import_bundle_with(r, &capture::archive::ImportOptions::default())
    }

    /// `bundle import` of a thin or resumable archive (docs/transfer.md).
    /// The capture lock is held only while the bundle is made visible, so
    /// several imports stream and verify in parallel.
    pub fn import_bundle_with(
        &self,
        r: impl std::io::Read,
        opts: &capture::archive::ImportOptions,
    ) -> Result<capture::archive::ImportReport, EngineError> {
        let report = capture::archive::import_with(&self.store, r, opts, &CAPTURE_LOCK)?;
        self.index_logs_in_background();
        tracing::info!(bundle_id = %report.id, new_bytes = report.new_bytes, "imported bundle");
        Ok(report)
    }
}
