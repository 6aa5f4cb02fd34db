//! `import`: a root filesystem tar becomes a one-layer image.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::PathBuf;

use oci_spec::image::{
    Arch, Config, Descriptor, HistoryBuilder, ImageConfigurationBuilder, ImageManifestBuilder,
    MediaType, Os, RootFsBuilder,
};

use super::{blobs, layers, now_rfc3339, Store, StoreError};
use crate::archive::{self, ExtractOptions};
use crate::types::{Digest, Reference};

/// Options of [`Store::import`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Tag to give the new image.
    pub tag: Option<Reference>,
    /// Commit message stored in the history.
    pub message: String,
    /// Dockerfile instructions applied to the config (`CMD ["sh"]`, `ENV A=b`).
    pub changes: Vec<String>,
    /// Allow device nodes (privileged import).
    pub allow_devices: bool,
}

/// A layer unpacked in `tmp/`, not yet installed.
#[derive(Debug)]
pub struct StagedLayer {
    /// The staging directory (holding `diff/` and the tar-split).
    pub dir: std::path::PathBuf,
    /// What it will be once installed.
    pub layer: NewLayer,
}

/// What a new image is made of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ImageParts<'a> {
    /// The config JSON, as stored.
    pub config_json: &'a [u8],
    /// Its layers, bottom first.
    pub layers: &'a [NewLayer],
    /// The image it was built from.
    pub parent: Option<&'a Digest>,
    /// Its tag.
    pub tag: Option<&'a Reference>,
}

/// A layer that has been unpacked and installed.
#[derive(Debug, Clone)]
pub struct NewLayer {
    /// sha256 of the layer's uncompressed tar.
    pub diff_id: Digest,
    /// Bytes of that tar.
    pub size: u64,
}

impl Store {
    /// Import a (plain, gzip or zstd) tar of a root filesystem as an image.
    /// Nothing becomes visible unless the whole archive unpacked cleanly.
    pub fn import<R: Read + Send + 'static>(
        &self,
        input: R,
        opts: &ImportOptions,
    ) -> Result<Digest, StoreError> {
        let mut config = Config::default();
        for change in &opts.changes {
            apply_change(&mut config, change)?;
        }
        let layer = self.unpack_layer(input, opts.allow_devices)?;
        let created = now_rfc3339();
        let history = HistoryBuilder::default()
            .created(created.clone())
            .created_by("amber import")
            .comment(opts.message.clone())
            .build()
            .map_err(spec_err)?;
        let rootfs = RootFsBuilder::default()
            .typ("layers")
            .diff_ids(vec![layer.diff_id.to_string()])
            .build()
            .map_err(spec_err)?;
        let image_config = ImageConfigurationBuilder::default()
            .created(created)
            .architecture(Arch::default())
            .os(Os::default())
            .config(config)
            .rootfs(rootfs)
            .history(vec![history])
            .build()
            .map_err(spec_err)?;
        let config_json = serde_json::to_vec(&image_config).map_err(json_err)?;
        self.add_image(&config_json, &[layer], None, opts.tag.as_ref())
    }

    /// Unpack one layer tar into `tmp/`, then install it under `layers/`.
    pub fn unpack_layer<R: Read + Send + 'static>(
        &self,
        input: R,
        allow_devices: bool,
    ) -> Result<NewLayer, StoreError> {
        let reader = archive::decompress(input)?.1;
        let staged = self.stage_layer(reader, allow_devices, false)?;
        layers::install(&self.root, &staged.dir, &staged.layer.diff_id)?;
        Ok(staged.layer)
    }

    /// Unpack one (uncompressed) layer tar into a staging directory under
    /// `tmp/`, recording its tar-split; [`layers::install`] makes it
    /// visible. On error nothing is left behind.
    pub(crate) fn stage_layer<R: Read>(
        &self,
        input: R,
        allow_devices: bool,
        skip_digest: bool,
    ) -> Result<StagedLayer, StoreError> {
        let staging = self.staging("layer");
        let diff = staging.join("diff");
        fs::create_dir_all(&diff).map_err(|source| StoreError::Io {
            op: "create",
            path: diff.clone(),
            source,
        })?;
        let opts = ExtractOptions {
            allow_devices,
            split: Some(staging.join(archive::split::SPLIT_FILE)),
            skip_digest,
        };
        match archive::extract_layer(input, &diff, &opts) {
            Ok(summary) => Ok(StagedLayer {
                dir: staging,
                layer: NewLayer {
                    diff_id: summary.diff_id,
                    size: summary.tar_size,
                },
            }),
            Err(e) => {
                layers::remove_tree(&staging);
                Err(e.into())
            }
        }
    }

    /// Install a layer whose tar `write` produces (from another thread, into
    /// the pipe it is given) and whose digest it returns: the stream is
    /// unpacked once and hashed once, by the writer.
    pub fn install_written_layer<F>(&self, write: F) -> Result<NewLayer, StoreError>
    where
        F: FnOnce(std::io::PipeWriter) -> Result<(Digest, u64), StoreError> + Send,
    {
        let (reader, writer) = std::io::pipe().map_err(|source| StoreError::Io {
            op: "create a pipe for",
            path: "a layer".into(),
            source,
        })?;
        let (staged, written) = std::thread::scope(|s| {
            let producer = s.spawn(move || write(writer));
            let staged = self.stage_layer(reader, true, true);
            let written = producer
                .join()
                .unwrap_or_else(|_| Err(StoreError::Invalid("the layer writer panicked".into())));
            (staged, written)
        });
        // The writer's error explains a cut stream better than the reader's.
        let (mut staged, (diff_id, size)) = match (staged, written) {
            (Ok(s), Ok(w)) => (s, w),
            (Ok(s), Err(e)) => {
                layers::remove_tree(&s.dir);
                return Err(e);
            }
            (Err(_), Err(e)) | (Err(e), Ok(_)) => return Err(e),
        };
        staged.layer.diff_id = diff_id;
        staged.layer.size = size;
        layers::install(&self.root, &staged.dir, &staged.layer.diff_id)?;
        Ok(staged.layer)
    }

    /// Write the config and an OCI manifest for installed layers, then index
    /// the image (rows only after the files are in place).
    pub fn add_image(
        &self,
        config_json: &[u8],
        layers: &[NewLayer],
        parent: Option<&Digest>,
        tag: Option<&Reference>,
    ) -> Result<Digest, StoreError> {
        self.add_image_rebasing(config_json, layers, parent, tag, None)
    }

    /// [`Store::add_image`], also re-basing a container on the new image in
    /// the same transaction (commit of a stopped container).
    pub(crate) fn add_image_rebasing(
        &self,
        config_json: &[u8],
        layers: &[NewLayer],
        parent: Option<&Digest>,
        tag: Option<&Reference>,
        rebase: Option<&str>,
    ) -> Result<Digest, StoreError> {
        let image = ImageParts {
            config_json,
            layers,
            parent,
            tag,
        };
        self.add_image_installing(&image, rebase, &[])
    }

    /// Write an image's config and manifest, install the staged pending
    /// layers `pending` (from `stage_pending_layer`, writeback started),
    /// then index it: one journal commit makes every new file's content
    /// durable, one more every new name, before the row.
    pub(crate) fn add_image_installing(
        &self,
        image: &ImageParts<'_>,
        rebase: Option<&str>,
        pending: &[(PathBuf, Digest)],
    ) -> Result<Digest, StoreError> {
        let ImageParts {
            config_json,
            layers,
            parent,
            tag,
        } = *image;
        let config_id = Digest::of(config_json);
        let manifest_json = manifest_json(config_json, &config_id, layers)?;
        let staged = blobs::stage(&self.root, &self.tmp, &[config_json, &manifest_json])?;
        // invariant: `stage` gives one digest per blob given, two here.
        let manifest_id = staged.digests[1].clone();
        for (dir, _) in pending {
            layers::sync_pending(dir)?;
        }
        staged.sync()?;
        for (dir, diff_id) in pending {
            layers::rename_pending(&self.root, dir, diff_id)?;
        }
        staged.install()?;
        if !pending.is_empty() {
            let root = layers::layer_root(&self.root);
            super::fsync_dir(&root).map_err(|source| StoreError::Io {
                op: "sync",
                path: root,
                source,
            })?;
        }
        let record = super::images::NewImage {
            id: &config_id,
            config_size: config_json.len(),
            manifest: &manifest_id,
            manifest_size: manifest_json.len(),
            layers,
            parent,
            tag,
            rebase,
        };
        self.index_image(&record)?;
        tracing::info!(image_id = %config_id, "image created");
        Ok(config_id)
    }
}

/// The OCI manifest of an image.
fn manifest_json(
    config_json: &[u8],
    config_id: &Digest,
    layers: &[NewLayer],
) -> Result<Vec<u8>, StoreError> {
    let layer_descs = layers
        .iter()
        .map(|l| Descriptor::new(MediaType::ImageLayer, l.size, oci_digest(&l.diff_id)))
        .collect::<Vec<_>>();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config_json.len() as u64,
            oci_digest(config_id),
        ))
        .layers(layer_descs)
        .build()
        .map_err(spec_err)?;
    serde_json::to_vec(&manifest).map_err(json_err)
}

/// Our digest as oci-spec's type.
pub(crate) fn oci_digest(d: &Digest) -> oci_spec::image::Digest {
    // invariant: a `Digest` always holds a valid sha256 digest string.
    d.to_string().parse().expect("valid sha256 digest")
}

fn spec_err(e: oci_spec::OciSpecError) -> StoreError {
    StoreError::Invalid(format!("invalid image configuration: {e}"))
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Invalid(format!("failed to encode JSON: {e}"))
}

/// Apply one Dockerfile-style instruction of `import --change` to a config.
pub fn apply_change(config: &mut Config, change: &str) -> Result<(), StoreError> {
    let bad = |why: &str| StoreError::Invalid(format!("invalid change {change:?}: {why}"));
    let (keyword, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((change.trim(), ""));
    let rest = rest.trim();
    match keyword.to_ascii_uppercase().as_str() {
        "CMD" => {
            config.set_cmd(Some(command_form(rest).map_err(|_| bad("bad JSON array"))?));
        }
        "ENTRYPOINT" => {
            config.set_entrypoint(Some(command_form(rest).map_err(|_| bad("bad JSON array"))?));
        }
        "ENV" => {
            let mut env = config.env().clone().unwrap_or_default();
            for (k, v) in key_values(rest).ok_or_else(|| bad("expected KEY=VALUE"))? {
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
            config.set_env(Some(env));
        }
        "LABEL" => {
            let mut labels = config.labels().clone().unwrap_or_default();
            labels.extend(key_values(rest).ok_or_else(|| bad("expected KEY=VALUE"))?);
            config.set_labels(Some(labels));
        }
        "WORKDIR" => {
            config.set_working_dir(Some(rest.to_string()));
        }
        "USER" => {
            config.set_user(Some(rest.to_string()));
        }
        "STOPSIGNAL" => {
            config.set_stop_signal(Some(rest.to_string()));
        }
        "EXPOSE" => {
            let mut ports = config.exposed_ports().clone().unwrap_or_default();
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
            config.set_exposed_ports(Some(ports));
        }
        "VOLUME" => {
            let mut vols = config.volumes().clone().unwrap_or_default();
            // `VOLUME ["/a", "/b"]` or `VOLUME /a /b` (not a shell command).
            let paths: Vec<String> = if rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|_| bad("bad JSON array"))?
            } else {
                rest.split_whitespace().map(str::to_string).collect()
            };
            vols.extend(paths.into_iter().filter(|v| !v.is_empty()));
            config.set_volumes(Some(vols));
        }
        _ => return Err(bad("unsupported instruction")),
    }
    Ok(())
}

/// JSON array form, or shell form wrapped in `/bin/sh -c`.
fn command_form(rest: &str) -> Result<Vec<String>, serde_json::Error> {
    if rest.starts_with('[') {
        serde_json::from_str(rest)
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
    }
}

/// `K=V K2="v 2"` or the legacy `K V` form.
fn key_values(rest: &str) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    if !rest.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace)?;
        out.insert(k.to_string(), v.trim().to_string());
        return Some(out);
    }
    for word in shell_words(rest) {
        let (k, v) = word.split_once('=')?;
        if k.is_empty() {
            return None;
        }
        out.insert(k.to_string(), v.to_string());
    }
    Some(out)
}

/// Split on whitespace, honouring double and single quotes.
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_changes() {
        let mut c = Config::default();
        for ch in [
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/init",
            "ENV A=1 B=\"two words\"",
            "ENV A 3",
            "WORKDIR /srv",
            "USER tester",
            "EXPOSE 80 53/udp",
            "LABEL bug=1234",
            "VOLUME /cache /data",
        ] {
            apply_change(&mut c, ch).unwrap();
        }
        assert_eq!(c.cmd().clone().unwrap(), vec!["sh", "-c", "echo hi"]);
        assert_eq!(
            c.entrypoint().clone().unwrap(),
            vec!["/bin/sh", "-c", "/bin/init"]
        );
        let env = c.env().clone().unwrap();
        assert!(env.contains(&"B=two words".to_string()));
        assert!(env.contains(&"A=3".to_string()) && !env.contains(&"A=1".to_string()));
        assert_eq!(c.exposed_ports().clone().unwrap(), vec!["80/tcp", "53/udp"]);
        assert_eq!(c.labels().clone().unwrap()["bug"], "1234");
        assert_eq!(c.volumes().clone().unwrap(), vec!["/cache", "/data"]);
        assert!(apply_change(&mut c, "FROB x").is_err());
        assert!(apply_change(&mut c, "CMD [broken").is_err());
    }
}
