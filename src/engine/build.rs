//! `POST /build`: the engine's side of a Dockerfile build. The context tar
//! is unpacked into a private directory under `tmp/`, then `build::build`
//! runs with this engine as its [`BuildHost`]: RUN steps run in a
//! container of the step's parent, COPY/ADD write into a (never started)
//! container's root, and each step's container is committed with the fast
//! path (its upper dir renamed into the layer store) and removed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{lock, Engine, LogCursor};
use crate::archive;
use crate::build::{self, BuildError, BuildHost, BuildOptions, Change, Image, Output, RunSpec};
use crate::runtime::{self, Status};
use crate::store::CommitLayer;
use crate::types::api::ContainerConfig;
use crate::types::container::CreateRequest;
use crate::types::{Digest, Reference};

/// How often a RUN step's log is read while it runs.
const RUN_POLL: Duration = Duration::from_millis(25);
/// How long a cancelled RUN's container gets to die after SIGKILL.
const CANCEL_WAIT: Duration = Duration::from_secs(10);
/// Files the runtime creates as bind-mount targets; empty ones are not the
/// step's changes.
const MOUNT_TARGETS: &[&str] = &["etc/hostname", "etc/hosts", "etc/resolv.conf"];

fn host_err(e: impl std::fmt::Display) -> BuildError {
    BuildError::Host(e.to_string())
}

impl Engine {
    /// Unpack a build context tar (plain, gzip or zstd) and build it.
    /// Returns the image ID; `out` receives the build's text.
    pub fn build<R: Read + Send + 'static>(
        self: &Arc<Self>,
        context: R,
        mut opts: BuildOptions,
        out: &mut Output<'_>,
    ) -> Result<String, BuildError> {
        let work = self
            .data_root
            .join("tmp")
            .join(format!("build-{}", crate::store::random_hex(8)));
        let ctx_dir = work.join("context");
        std::fs::create_dir_all(&ctx_dir)
            .map_err(|e| host_err(format!("cannot create {}: {e}", ctx_dir.display())))?;
        tracing::info!(dockerfile = %opts.dockerfile, tags = ?opts.tags, "build started");
        let result = unpack_context(context, &ctx_dir).and_then(|()| {
            opts.work_dir = work.clone();
            let ctx = build::context::Context::open(&ctx_dir);
            let host = Host { engine: self };
            build::build(&host, &ctx, &opts, out)
        });
        match &result {
            Ok(id) => tracing::info!(image_id = %id, "build finished"),
            Err(e) => tracing::info!(error = %e, "build failed"),
        }
        if let Err(e) = std::fs::remove_dir_all(&work) {
            tracing::error!(path = %work.display(), error = %e, "failed to remove a build's work directory");
        }
        result
    }
}

/// Most bytes of a build context read after its tar's end marker.
const TRAILER_MAX: u64 = 1 << 20;

/// Unpack the client's context: regular files, directories, symlinks and
/// hard links only, each kept inside `dir` by the tar crate's checks.
fn unpack_context<R: Read + Send + 'static>(input: R, dir: &Path) -> Result<(), BuildError> {
    let (_, mut reader) = archive::decompress(input)
        .map_err(|e| BuildError::Context(format!("invalid build context: {e}")))?;
    let mut padded = PadAtEof {
        inner: &mut reader,
        read: 0,
        pad: None,
    };
    unpack_entries(&mut padded, dir)?;
    // Read the tar's padding after its end marker (a server that answers
    // with request bytes unread resets the connection and the client loses
    // the answer). Bounded: padding is a few KiB, and whatever a client
    // sends past this — or after a refused context — is left to the API's
    // bounded drain of the raw body (`api::body`), not decompressed here.
    let _ = std::io::copy(&mut (&mut reader).take(TRAILER_MAX), &mut std::io::sink());
    Ok(())
}

fn unpack_entries(reader: &mut dyn Read, dir: &Path) -> Result<(), BuildError> {
    let bad = |e: std::io::Error| BuildError::Context(format!("invalid build context: {e}"));
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink() || kind.is_hard_link()) {
            continue;
        }
        entry.unpack_in(dir).map_err(bad)?;
    }
    Ok(())
}

/// The docker CLI (28) sends a context whose last entry lacks its padding
/// and the end-of-archive blocks (its tar rewriter never closes the
/// writer); dockerd accepts it. At EOF this completes the last 512-byte
/// block with zeros and adds the two zero blocks, nothing more: a stream cut
/// inside an entry's data still fails.
struct PadAtEof<'a> {
    inner: &'a mut dyn Read,
    read: u64,
    pad: Option<usize>,
}

impl Read for PadAtEof<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pad.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            let partial = (self.read % 512) as usize;
            let fill = if partial == 0 { 0 } else { 512 - partial };
            self.pad = Some(fill + 1024);
        }
        let left = self.pad.unwrap_or(0);
        let n = left.min(buf.len());
        buf[..n].fill(0);
        self.pad = Some(left - n);
        Ok(n)
    }
}

/// The engine as a build sees it.
struct Host<'a> {
    engine: &'a Arc<Engine>,
}

impl Host<'_> {
    fn digest(s: &str) -> Result<Digest, BuildError> {
        s.parse()
            .map_err(|_| BuildError::Host(format!("bad image ID {s}")))
    }

    /// The parent of a step: the image, or the empty image of `FROM scratch`.
    fn parent_or_scratch(&self, parent: Option<&str>) -> Result<Digest, BuildError> {
        match parent {
            Some(p) => Self::digest(p),
            None => self.scratch(),
        }
    }

    /// A fixed empty image (same ID every time, so the cache works).
    fn scratch(&self) -> Result<Digest, BuildError> {
        let doc = json!({
            "architecture": super::docker_arch(), "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
        });
        let bytes = serde_json::to_vec(&doc).map_err(host_err)?;
        self.engine
            .store
            .add_image(&bytes, &[], None, None)
            .map_err(host_err)
    }

    fn layers(&self, image: &Digest) -> Result<Vec<crate::store::NewLayer>, BuildError> {
        self.engine.store.image_new_layers(image).map_err(host_err)
    }

    /// A container of `parent` (never started for file steps).
    fn container(&self, parent: &Digest, spec: &RunSpec) -> Result<String, BuildError> {
        let mut req = CreateRequest {
            config: ContainerConfig {
                image: parent.to_string(),
                cmd: Some(spec.argv.clone()),
                entrypoint: Some(vec![String::new()]),
                env: Some(spec.env.clone()),
                working_dir: spec.workdir.clone(),
                user: spec.user.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        req.host_config.network_mode = match spec.network.as_str() {
            "" | "default" => "bridge".into(),
            other => other.into(),
        };
        let created = self.engine.create_container(None, req).map_err(host_err)?;
        Ok(created.id)
    }

    fn remove(&self, id: &str) {
        if let Err(e) = self.engine.destroy(id, true) {
            tracing::error!(container_id = %id, error = %e, "failed to remove a build container");
        }
    }

    /// Run a RUN step's container to its end, streaming its output.
    fn run(&self, id: &str, spec: &RunSpec, out: &mut Output<'_>) -> Result<(), BuildError> {
        out(&format!(" ---> Running in {}\n", &id[..12]));
        self.engine.start_container(id).map_err(host_err)?;
        let dir = self.engine.store.container_dir(id);
        let mut cursor = LogCursor::new(dir.join("container.log"));
        let st = loop {
            let st = runtime::wait(&dir, RUN_POLL).map_err(host_err)?;
            for rec in cursor.read_new().map_err(host_err)? {
                out(&rec.log);
            }
            if st.status != Status::Running && st.status != Status::Paused {
                break st;
            }
            if build::cancelled(&spec.cancel) {
                let _ = runtime::kill(&dir, runtime::Signal::SIGKILL);
                let _ = runtime::wait(&dir, CANCEL_WAIT);
                return Err(BuildError::Cancelled);
            }
        };
        for rec in cursor.read_new().map_err(host_err)? {
            out(&rec.log);
        }
        let code = st.exit_code.unwrap_or(-1) as i64;
        if code != 0 {
            return Err(BuildError::RunFailed {
                command: spec.argv.join(" "),
                code,
            });
        }
        Ok(())
    }

    /// Commit a stopped step container: its upper becomes the top layer
    /// (renamed, not copied). An empty upper (a file step that changed
    /// nothing) makes a config-only image instead.
    fn commit_container(
        &self,
        id: &str,
        parent: &Digest,
        mut doc: Value,
        allow_empty: bool,
    ) -> Result<Image, BuildError> {
        let upper = self.engine.store.container_dir(id).join("upper");
        for t in MOUNT_TARGETS {
            let p = upper.join(t);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = std::fs::remove_file(&p);
            }
        }
        if allow_empty && is_empty_dir(&upper) {
            set_empty_layer(&mut doc, true);
            return self.commit_config(parent, doc);
        }
        let _guard = lock(&self.engine.mount_lock);
        let summary = archive::layer_diff_id(&upper).map_err(host_err)?;
        push_diff_id(&mut doc, &summary.diff_id)?;
        set_empty_layer(&mut doc, false);
        let bytes = serde_json::to_vec(&doc).map_err(host_err)?;
        let layer = CommitLayer {
            diff_id: summary.diff_id,
            size: summary.size,
        };
        let new = self
            .engine
            .store
            .commit_stopped(id, &layer, &bytes, parent, None)
            .map_err(host_err)?;
        Ok(Image {
            id: new.to_string(),
            config: doc,
        })
    }

    fn commit_config(&self, parent: &Digest, doc: Value) -> Result<Image, BuildError> {
        let layers = self.layers(parent)?;
        let bytes = serde_json::to_vec(&doc).map_err(host_err)?;
        let id = self
            .engine
            .store
            .add_image(&bytes, &layers, Some(parent), None)
            .map_err(host_err)?;
        Ok(Image {
            id: id.to_string(),
            config: doc,
        })
    }

    /// Write into a stopped container's root with `f`.
    fn with_root(
        &self,
        id: &str,
        parent: &Digest,
        f: &mut dyn FnMut(&Path) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        if self.layers(parent)?.is_empty() {
            // Nothing below: the upper dir is the whole root.
            let upper: PathBuf = self.engine.store.container_dir(id).join("upper");
            return f(&upper);
        }
        let mut inner: Result<(), BuildError> = Ok(());
        self.engine
            .with_rootfs(id, |root| {
                inner = f(root);
                Ok(())
            })
            .map_err(host_err)?;
        inner
    }
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}

fn push_diff_id(doc: &mut Value, d: &Digest) -> Result<(), BuildError> {
    if !doc["rootfs"]["diff_ids"].is_array() {
        doc["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    doc["rootfs"]["diff_ids"]
        .as_array_mut()
        .ok_or_else(|| BuildError::Host("config has no rootfs.diff_ids".into()))?
        .push(json!(d.to_string()));
    Ok(())
}

fn set_empty_layer(doc: &mut Value, empty: bool) {
    if let Some(last) = doc["history"].as_array_mut().and_then(|h| h.last_mut()) {
        if empty {
            last["empty_layer"] = json!(true);
        } else if let Some(o) = last.as_object_mut() {
            o.remove("empty_layer");
        }
    }
}

impl BuildHost for Host<'_> {
    fn image(&self, name: &str) -> Result<Image, BuildError> {
        let id = self.engine.store.resolve_image(name).map_err(|e| {
            BuildError::Host(format!(
                "{e} (amber does not pull yet: import or load it first)"
            ))
        })?;
        let raw = self.engine.store.image_config(&id).map_err(host_err)?;
        let config = serde_json::from_slice(&raw)
            .map_err(|e| host_err(format!("image {id} has a bad config: {e}")))?;
        Ok(Image {
            id: id.to_string(),
            config,
        })
    }

    fn cached(&self, parent: Option<&str>, probe: &Value) -> Result<Option<Image>, BuildError> {
        let parent = self.parent_or_scratch(parent)?;
        let store = &self.engine.store;
        for id in store.children(&parent).map_err(host_err)? {
            let Ok(raw) = store.image_config(&id) else {
                continue;
            };
            let Ok(config) = serde_json::from_slice::<Value>(&raw) else {
                continue;
            };
            if &config["container_config"] == probe {
                return Ok(Some(Image {
                    id: id.to_string(),
                    config,
                }));
            }
        }
        Ok(None)
    }

    fn commit(
        &self,
        parent: Option<&str>,
        mut doc: Value,
        change: Change<'_>,
        out: &mut Output<'_>,
    ) -> Result<Image, BuildError> {
        let parent = self.parent_or_scratch(parent)?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        doc["created"] = json!(now);
        if let Some(last) = doc["history"].as_array_mut().and_then(|h| h.last_mut()) {
            last["created"] = json!(now);
        }
        match change {
            Change::Config => self.commit_config(&parent, doc),
            Change::Run(spec) => {
                if self.layers(&parent)?.is_empty() {
                    return Err(BuildError::Invalid(
                        "RUN needs a filesystem with a shell: the image is empty (FROM scratch)"
                            .into(),
                    ));
                }
                let id = self.container(&parent, spec)?;
                let ran = self.run(&id, spec, out);
                let result = ran.and_then(|()| self.commit_container(&id, &parent, doc, false));
                self.remove(&id);
                out(&format!("Removing intermediate container {}\n", &id[..12]));
                result
            }
            Change::Files(f) => {
                let spec = RunSpec {
                    argv: doc["container_config"]["Cmd"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_else(|| vec!["/bin/sh".into()]),
                    env: Vec::new(),
                    workdir: String::new(),
                    user: String::new(),
                    cancel: Default::default(),
                    network: String::new(),
                };
                let id = self.container(&parent, &spec)?;
                let result = self
                    .with_root(&id, &parent, f)
                    .and_then(|()| self.commit_container(&id, &parent, doc, true));
                self.remove(&id);
                result
            }
        }
    }

    fn export(&self, image: &str, path: &str, out: &mut dyn Write) -> Result<(), BuildError> {
        let parent = Self::digest(image)?;
        let spec = RunSpec {
            argv: vec!["/bin/sh".into()],
            env: Vec::new(),
            workdir: String::new(),
            user: String::new(),
            cancel: Default::default(),
            network: String::new(),
        };
        let id = self.container(&parent, &spec)?;
        let result = self.with_root(&id, &parent, &mut |root| {
            archive::copy::write_tar_of(root, path, &mut *out)
                .map(|_| ())
                .map_err(|e| {
                    BuildError::Context(format!("{path} in {}: {e}", build::short_id(image)))
                })
        });
        self.remove(&id);
        result
    }

    fn tag(&self, image: &str, name: &str) -> Result<(), BuildError> {
        let r = Reference::parse(name)
            .map_err(|e| BuildError::Invalid(format!("invalid tag {name:?}: {e}")))?;
        self.engine
            .store
            .tag(image, &r.to_string())
            .map(|_| ())
            .map_err(host_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn context_without_its_end_blocks_unpacks() {
        let full = tar_of(&[
            ("Dockerfile", b"FROM x\n"),
            ("a", b"47 bytes......................................."),
        ]);
        // As docker 28 sends it: the last entry's data, no padding, no end.
        let cut = full[..512 + 512 + 512 + 47].to_vec();
        let dir = tempfile::tempdir().unwrap();
        unpack_context(std::io::Cursor::new(cut), dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap().len(), 47);
        // Cut inside an entry's data by more than a block: refused.
        let big = tar_of(&[("big", &[7u8; 4096])]);
        let dir = tempfile::tempdir().unwrap();
        let e = unpack_context(std::io::Cursor::new(big[..512 + 1000].to_vec()), dir.path());
        assert!(e.is_err());
    }
}
