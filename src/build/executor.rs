//! The executor: stages (`FROM ... AS`, `--target`), build args, each
//! instruction applied to the image config or run through the host, the
//! build cache (a child of the same parent with the same `container_config`
//! is reused, as Docker's classic builder does) and the classic builder's
//! output.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::context::Context;
use super::instructions::{parse_arg, quote};
use super::parser::{self, Instruction};
use super::shell::process_words;
use super::{short_id, BuildError, BuildHost, Change, Image, Output};

/// Args Docker lets through without an `ARG` line.
pub(super) const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The PATH a base image without one gets (Docker's `DefaultPathEnv`).
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What `POST /build` asks for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's path in the context.
    pub dockerfile: String,
    /// Names to tag the result with.
    pub tags: Vec<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Stop after this stage.
    pub target: Option<String>,
    /// Do not use the cache.
    pub no_cache: bool,
    /// Labels set on the final image.
    pub labels: BTreeMap<String, String>,
    /// A private scratch directory for the build's temporary files.
    pub work_dir: PathBuf,
    /// Set to stop the build (between steps, and a running RUN).
    pub cancel: super::Cancel,
    /// Network mode of RUN containers (`--network`; empty: the default).
    pub network: String,
}

/// One stage in progress.
pub(super) struct Stage {
    pub name: Option<String>,
    /// The current image (None: `FROM scratch` before any step).
    pub image: Option<Image>,
    /// The config document being built.
    pub doc: Value,
    /// Declared args and their values.
    pub args: Vec<(String, Option<String>)>,
    /// CMD was set in this Dockerfile (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl Stage {
    /// `$NAME` during substitution: ENV first, then ARG.
    pub fn lookup(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        if let Some(v) = env_list(&self.doc)
            .iter()
            .find_map(|e| e.strip_prefix(&prefix))
        {
            return Some(v.to_string());
        }
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
    }

    /// The `config` object of the document (made one if missing).
    pub fn cfg(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.doc["config"].is_object() {
            self.doc["config"] = json!({});
        }
        // invariant: just made an object.
        self.doc["config"].as_object_mut().expect("config object")
    }

    /// Build args visible to RUN: declared, valued, not overridden by ENV.
    pub fn run_args(&self) -> Vec<String> {
        let env = env_list(&self.doc);
        let mut out: Vec<String> = Vec::new();
        for (k, v) in &self.args {
            let Some(v) = v else { continue };
            if env
                .iter()
                .any(|e| e.split_once('=').map(|x| x.0) == Some(k.as_str()))
            {
                continue;
            }
            out.retain(|e| e.split_once('=').map(|x| x.0) != Some(k.as_str()));
            out.push(format!("{k}={v}"));
        }
        out
    }
}

/// `config.Env` of a config document.
pub(super) fn env_list(doc: &Value) -> Vec<String> {
    doc["config"]["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The running build.
pub(super) struct Builder<'a> {
    pub host: &'a dyn BuildHost,
    pub ctx: &'a Context,
    pub opts: &'a BuildOptions,
    pub out: &'a mut Output<'a>,
    pub escape: char,
    /// Finished stages, for `COPY --from` and `FROM <stage>`.
    pub stages: Vec<(Option<String>, Option<Image>)>,
    /// Global args (before the first FROM).
    pub meta_args: Vec<(String, Option<String>)>,
    /// Build args some ARG consumed.
    pub used_args: Vec<String>,
    step: usize,
    total: usize,
}

/// Run a build; returns the final image ID.
pub fn build(
    host: &dyn BuildHost,
    ctx: &Context,
    opts: &BuildOptions,
    out: &mut Output<'_>,
) -> Result<String, BuildError> {
    let name = if opts.dockerfile.is_empty() {
        "Dockerfile"
    } else {
        opts.dockerfile.as_str()
    };
    let df = parser::parse(&ctx.read(name)?)?;
    let instructions = plan(df.instructions, opts)?;
    let mut b = Builder {
        host,
        ctx,
        opts,
        out,
        escape: df.escape,
        stages: Vec::new(),
        meta_args: Vec::new(),
        used_args: Vec::new(),
        step: 0,
        total: instructions.len(),
    };
    let id = b.run(&instructions)?;
    b.finish(&id)?;
    Ok(id)
}

/// The instructions to run: checked for a FROM (only ARG before it), cut
/// after the `--target` stage, with `--label`s as a last LABEL step.
fn plan(mut ins: Vec<Instruction>, opts: &BuildOptions) -> Result<Vec<Instruction>, BuildError> {
    let Some(first_from) = ins.iter().position(|i| i.keyword == "FROM") else {
        let line = ins.first().map(|i| i.line).unwrap_or(1);
        return Err(BuildError::Step {
            line,
            message: "no build stage in current context: the Dockerfile needs a FROM".into(),
        });
    };
    if let Some(bad) = ins[..first_from].iter().find(|i| i.keyword != "ARG") {
        return Err(BuildError::Step {
            line: bad.line,
            message: format!(
                "{} before the first FROM: only ARG may come before FROM",
                bad.keyword
            ),
        });
    }
    let end = stage_end(&ins, opts.target.as_deref())?;
    ins.truncate(end);
    if !opts.labels.is_empty() {
        let text: Vec<String> = opts
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
            .collect();
        let line = ins.last().map(|i| i.line).unwrap_or(1);
        let label = format!("LABEL {}", text.join(" "));
        ins.push(parser::parse_instruction(&label, line)?);
    }
    Ok(ins)
}

/// Index just past the last instruction of the target stage (all when no
/// target).
fn stage_end(ins: &[Instruction], target: Option<&str>) -> Result<usize, BuildError> {
    let Some(target) = target.filter(|t| !t.is_empty()) else {
        return Ok(ins.len());
    };
    let mut found = false;
    for (i, x) in ins.iter().enumerate() {
        if x.keyword != "FROM" {
            continue;
        }
        if found {
            return Ok(i);
        }
        let text = x.text();
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.len() == 3
            && words[1].eq_ignore_ascii_case("as")
            && words[2].eq_ignore_ascii_case(target)
        {
            found = true;
        }
    }
    if found {
        Ok(ins.len())
    } else {
        Err(BuildError::Invalid(format!(
            "failed to reach build target {target} in Dockerfile"
        )))
    }
}

impl<'a> Builder<'a> {
    /// The unused build-arg warning, `Successfully built`, the tags.
    fn finish(&mut self, id: &str) -> Result<(), BuildError> {
        let unused: Vec<&str> = self
            .opts
            .build_args
            .keys()
            .map(String::as_str)
            .filter(|k| !self.used_args.iter().any(|u| u == k) && !PREDEFINED_ARGS.contains(k))
            .collect();
        if !unused.is_empty() {
            (self.out)(&format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                unused.join(" ")
            ));
        }
        (self.out)(&format!("Successfully built {}\n", short_id(id)));
        for t in &self.opts.tags {
            self.host.tag(id, t)?;
            (self.out)(&format!("Successfully tagged {t}\n"));
        }
        Ok(())
    }

    fn run(&mut self, ins: &[Instruction]) -> Result<String, BuildError> {
        let mut stage: Option<Stage> = None;
        for i in ins {
            if super::cancelled(&self.opts.cancel) {
                return Err(BuildError::Cancelled);
            }
            self.step += 1;
            (self.out)(&format!(
                "Step {}/{} : {}\n",
                self.step, self.total, i.original
            ));
            let res = match (&mut stage, i.keyword.as_str()) {
                (_, "FROM") => {
                    if let Some(s) = stage.take() {
                        self.stages.push((s.name, s.image));
                    }
                    self.from(i).map(|s| stage = Some(s))
                }
                (None, "ARG") => self.meta_arg(i),
                (Some(s), _) => self.dispatch(s, i),
                (None, _) => Err(BuildError::Invalid("instruction before FROM".into())),
            };
            res.map_err(|e| at_line(e, i.line))?;
        }
        let s =
            stage.ok_or_else(|| BuildError::Invalid("no build stage in the Dockerfile".into()))?;
        match s.image {
            Some(img) => Ok(img.id),
            None => Err(BuildError::Invalid(
                "No image was generated. Is your Dockerfile empty?".into(),
            )),
        }
    }

    fn meta_arg(&mut self, i: &Instruction) -> Result<(), BuildError> {
        let lookup = |k: &str| {
            self.meta_args
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| v.clone())
        };
        let parsed = parse_arg(i, &lookup, self.escape)?;
        for (k, default) in parsed {
            if self.opts.build_args.contains_key(&k) && !self.used_args.contains(&k) {
                self.used_args.push(k.clone());
            }
            let v = self.opts.build_args.get(&k).cloned().or(default);
            self.meta_args.push((k, v));
        }
        Ok(())
    }

    fn from(&mut self, i: &Instruction) -> Result<Stage, BuildError> {
        i.check_flags(&["platform"])?;
        let lookup = |k: &str| {
            self.meta_args
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| v.clone())
        };
        let words = process_words(&i.text(), &lookup, self.escape).map_err(BuildError::Invalid)?;
        let (base, name) = match words.as_slice() {
            [b] => (b.clone(), None),
            [b, as_, n] if as_.eq_ignore_ascii_case("as") => {
                (b.clone(), Some(n.to_ascii_lowercase()))
            }
            _ => {
                return Err(BuildError::Invalid(
                    "FROM requires either one or three arguments".into(),
                ))
            }
        };
        let image =
            if base == "scratch" {
                None
            } else if let Some((_, img)) = self
                .stages
                .iter()
                .find(|(n, _)| n.as_deref() == Some(base.to_ascii_lowercase().as_str()))
            {
                Some(img.clone().ok_or_else(|| {
                    BuildError::Invalid(format!("stage {base} produced no image"))
                })?)
            } else {
                Some(self.host.image(&base)?)
            };
        let doc = match &image {
            Some(img) => {
                (self.out)(&format!(" ---> {}\n", short_id(&img.id)));
                img.config.clone()
            }
            None => scratch_doc(),
        };
        let mut doc = doc;
        // Docker's classic builder gives a base without PATH the default one.
        if !env_list(&doc).iter().any(|e| e.starts_with("PATH=")) {
            let mut env = env_list(&doc);
            env.push(DEFAULT_PATH.into());
            if !doc["config"].is_object() {
                doc["config"] = json!({});
            }
            doc["config"]["Env"] = json!(env);
        }
        let mut stage = Stage {
            name,
            image,
            doc,
            args: Vec::new(),
            cmd_set: false,
        };
        self.onbuild_triggers(&mut stage, i.line)?;
        Ok(stage)
    }

    /// Run the base image's ONBUILD triggers, then clear them.
    fn onbuild_triggers(&mut self, s: &mut Stage, line: usize) -> Result<(), BuildError> {
        let triggers: Vec<String> = s.doc["config"]["OnBuild"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if triggers.is_empty() {
            return Ok(());
        }
        (self.out)(&format!(
            "# Executing {} build trigger{}\n",
            triggers.len(),
            if triggers.len() == 1 { "" } else { "s" }
        ));
        s.cfg().insert("OnBuild".into(), Value::Null);
        for t in triggers {
            let ins = parser::parse_instruction(&t, line)?;
            self.dispatch(s, &ins)?;
        }
        Ok(())
    }

    fn dispatch(&mut self, s: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        // COPY, ADD and HEALTHCHECK check their own flags; the rest take none
        // (BuildKit's `RUN --mount` and friends are not classic-builder syntax).
        if !matches!(i.keyword.as_str(), "COPY" | "ADD" | "HEALTHCHECK") {
            i.check_flags(&[])?;
        }
        match i.keyword.as_str() {
            "ARG" => self.arg(s, i),
            "ENV" | "LABEL" => self.env_or_label(s, i),
            "MAINTAINER" => self.maintainer(s, i),
            "CMD" | "ENTRYPOINT" => self.cmd_or_entrypoint(s, i),
            "EXPOSE" => self.expose(s, i),
            "VOLUME" => self.volume(s, i),
            "USER" | "STOPSIGNAL" => self.user_or_stopsignal(s, i),
            "SHELL" => self.shell(s, i),
            "HEALTHCHECK" => self.healthcheck(s, i),
            "ONBUILD" => self.onbuild(s, i),
            "WORKDIR" => self.workdir(s, i),
            "RUN" => self.run_step(s, i),
            "COPY" | "ADD" => self.copy_step(s, i),
            other => Err(BuildError::Invalid(format!("unknown instruction: {other}"))),
        }
    }

    /// A metadata-only step.
    pub(super) fn commit_config(&mut self, s: &mut Stage, text: &str) -> Result<(), BuildError> {
        let cmd = nop(s, text);
        self.commit(s, &cmd, Change::Config)
    }

    /// Probe the cache with `probe_cmd`; on a miss, make the step's image.
    pub(super) fn commit(
        &mut self,
        s: &mut Stage,
        probe_cmd: &[String],
        change: Change<'_>,
    ) -> Result<(), BuildError> {
        let mut probe = s.doc["config"].clone();
        if !probe.is_object() {
            probe = json!({});
        }
        probe["Cmd"] = json!(probe_cmd);
        let parent = s.image.as_ref().map(|i| i.id.clone());
        if !self.opts.no_cache {
            if let Some(hit) = self.host.cached(parent.as_deref(), &probe)? {
                (self.out)(" ---> Using cache\n");
                (self.out)(&format!(" ---> {}\n", short_id(&hit.id)));
                s.doc = hit.config.clone();
                s.image = Some(hit);
                return Ok(());
            }
        }
        let mut doc = s.doc.clone();
        doc["container_config"] = probe;
        let created_by = probe_cmd.join(" ");
        let entry =
            json!({"created_by": created_by, "empty_layer": matches!(change, Change::Config)});
        match doc["history"].as_array_mut() {
            Some(h) => h.push(entry),
            None => doc["history"] = json!([entry]),
        }
        let img = self
            .host
            .commit(parent.as_deref(), doc, change, &mut *self.out)?;
        (self.out)(&format!(" ---> {}\n", short_id(&img.id)));
        s.doc = img.config.clone();
        s.image = Some(img);
        Ok(())
    }

    /// An earlier stage (by name or index) or an image, for `COPY --from`.
    pub(super) fn copy_source(&self, name: &str) -> Result<Image, BuildError> {
        let lower = name.to_ascii_lowercase();
        let stage = match name.parse::<usize>() {
            Ok(n) => self.stages.get(n),
            Err(_) => self
                .stages
                .iter()
                .find(|(n, _)| n.as_deref() == Some(lower.as_str())),
        };
        match stage {
            Some((_, Some(img))) => Ok(img.clone()),
            Some((_, None)) => Err(BuildError::Invalid(format!(
                "stage {name} has no filesystem (FROM scratch with no steps)"
            ))),
            None => self.host.image(name),
        }
    }
}

/// `["/bin/sh","-c","#(nop) TEXT"]`: the classic builder's metadata key.
pub(super) fn nop(s: &Stage, text: &str) -> Vec<String> {
    let mut v = super::run::shell_of(s);
    v.push(format!("#(nop) {text}"));
    v
}

/// Set `k=v` in the stage's Env, in place when `k` is there.
pub(super) fn set_env(s: &mut Stage, k: &str, v: &str) {
    let mut env = env_list(&s.doc);
    let entry = format!("{k}={v}");
    match env
        .iter()
        .position(|e| e.split_once('=').map(|x| x.0).unwrap_or(e) == k)
    {
        Some(p) => env[p] = entry,
        None => env.push(entry),
    }
    s.cfg().insert("Env".into(), json!(env));
}

/// The config document of `FROM scratch`.
fn scratch_doc() -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    json!({
        "architecture": arch, "os": "linux",
        "config": {"Env": [DEFAULT_PATH]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    })
}

/// Lexically clean an absolute path.
pub(super) fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// Attach the instruction's line to an error that lacks one.
fn at_line(e: BuildError, line: usize) -> BuildError {
    match e {
        BuildError::Step { .. } | BuildError::Parse(_) | BuildError::Cancelled => e,
        other => BuildError::Step {
            line,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
#[path = "executor_tests.rs"]
mod tests;
