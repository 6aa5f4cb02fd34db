//! Instructions that change only the image config: ARG, ENV, LABEL,
//! MAINTAINER, CMD, ENTRYPOINT, EXPOSE, VOLUME, USER, STOPSIGNAL, SHELL,
//! HEALTHCHECK, ONBUILD. Each becomes a config-only image (no layer),
//! reused from the cache when the same step was made on the same parent.

use serde_json::{json, Value};

use super::executor::{set_env, Builder, Stage};
use super::instructions::{healthcheck, parse_arg, port_keys, quote, valid_signal};
use super::parser::{self, name_values, Args, Instruction};
use super::shell::{process_word, process_words};
use super::BuildError;

/// Make `cfg[key]` an object and return it.
fn object<'a>(s: &'a mut Stage, key: &str) -> &'a mut serde_json::Map<String, Value> {
    let cfg = s.cfg();
    if !cfg.get(key).is_some_and(Value::is_object) {
        cfg.insert(key.into(), json!({}));
    }
    // invariant: just made an object.
    cfg.get_mut(key)
        .and_then(Value::as_object_mut)
        .expect("object")
}

impl Builder<'_> {
    /// `ARG NAME[=default]...`: declared for this stage; a `--build-arg`
    /// wins, then the default, then a global ARG of the same name.
    pub(super) fn arg(&mut self, s: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        let lookup = |k: &str| s.lookup(k);
        let parsed = parse_arg(i, &lookup, self.escape)?;
        let mut text = Vec::new();
        for (k, default) in parsed {
            let global = self
                .meta_args
                .iter()
                .rev()
                .find(|(n, _)| *n == k)
                .and_then(|(_, v)| v.clone());
            let v = self.opts.build_args.get(&k).cloned().or(default).or(global);
            if self.opts.build_args.contains_key(&k) && !self.used_args.contains(&k) {
                self.used_args.push(k.clone());
            }
            text.push(match &v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            });
            s.args.push((k, v));
        }
        // A config-only step as Docker's (its values are in the cache key).
        self.commit_config(s, &format!("ARG {}", text.join(" ")))
    }

    /// `ENV`/`LABEL` in both forms; values see the variables of before
    /// the instruction.
    pub(super) fn env_or_label(
        &mut self,
        s: &mut Stage,
        i: &Instruction,
    ) -> Result<(), BuildError> {
        let esc = self.escape;
        let env = i.keyword == "ENV";
        let mut done = Vec::new();
        for (k, v) in name_values(&i.keyword, &i.text(), esc, i.line)? {
            let lookup = |n: &str| s.lookup(n);
            let k = process_word(&k, &lookup, esc).map_err(BuildError::Invalid)?;
            let v = process_word(&v, &lookup, esc).map_err(BuildError::Invalid)?;
            done.push((k, v));
        }
        let text: Vec<String> = done
            .iter()
            .map(|(k, v)| {
                if env {
                    format!("{k}={v}")
                } else {
                    format!("{}={}", quote(k), quote(v))
                }
            })
            .collect();
        for (k, v) in done {
            if env {
                set_env(s, &k, &v);
            } else {
                object(s, "Labels").insert(k, json!(v));
            }
        }
        self.commit_config(s, &format!("{} {}", i.keyword, text.join(" ")))
    }

    /// `MAINTAINER name`: the image's author.
    pub(super) fn maintainer(&mut self, s: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        let m = i.text();
        s.doc["author"] = json!(m);
        self.commit_config(s, &format!("MAINTAINER {m}"))
    }

    /// `CMD`/`ENTRYPOINT`; an ENTRYPOINT drops a CMD inherited from the
    /// base image (Docker's rule), not one set in this Dockerfile.
    pub(super) fn cmd_or_entrypoint(
        &mut self,
        s: &mut Stage,
        i: &Instruction,
    ) -> Result<(), BuildError> {
        let argv = self.command_form(s, i);
        if i.keyword == "CMD" {
            s.cfg().insert("Cmd".into(), json!(argv));
            s.cmd_set = true;
        } else {
            s.cfg().insert("Entrypoint".into(), json!(argv));
            if !s.cmd_set {
                s.cfg().insert("Cmd".into(), Value::Null);
            }
        }
        self.commit_config(s, &format!("{} {}", i.keyword, json!(argv)))
    }

    /// `EXPOSE 80 53/udp 8000-8002`.
    pub(super) fn expose(&mut self, s: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        let lookup = |k: &str| s.lookup(k);
        let words = process_words(&i.text(), &lookup, self.escape).map_err(BuildError::Invalid)?;
        let mut ports = Vec::new();
        for w in &words {
            ports.extend(port_keys(w)?);
        }
        let map = object(s, "ExposedPorts");
        for p in &ports {
            map.insert(p.clone(), json!({}));
        }
        self.commit_config(s, &format!("EXPOSE {}", ports.join(" ")))
    }

    /// `VOLUME /a /b` or `VOLUME ["/a"]`.
    pub(super) fn volume(&mut self, s: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        let esc = self.escape;
        let lookup = |k: &str| s.lookup(k);
        let vols = match &i.args {
            Args::Json(v) => v
                .iter()
                .map(|w| process_word(w, &lookup, esc))
                .collect::<Result<Vec<_>, _>>(),
            Args::Text(t) => process_words(t, &lookup, esc),
        }
        .map_err(BuildError::Invalid)?;
        if vols.is_empty() || vols.iter().any(|v| v.trim().is_empty()) {
            return Err(BuildError::Invalid(
                "VOLUME specified can not be an empty string".into(),
            ));
        }
        let map = object(s, "Volumes");
        for v in &vols {
            map.insert(v.clone(), json!({}));
        }
        self.commit_config(s, &format!("VOLUME {}", json!(vols)))
    }

    /// `USER name[:group]`, `STOPSIGNAL SIG`.
    pub(super) fn user_or_stopsignal(
        &mut self,
        s: &mut Stage,
        i: &Instruction,
    ) -> Result<(), BuildError> {
        let lookup = |k: &str| s.lookup(k);
        let v = process_word(i.text().trim(), &lookup, self.escape).map_err(BuildError::Invalid)?;
        let key = if i.keyword == "USER" {
            "User"
        } else {
            if !valid_signal(&v) {
                return Err(BuildError::Invalid(format!("Invalid signal: {v}")));
            }
            "StopSignal"
        };
        s.cfg().insert(key.into(), json!(v));
        self.commit_config(s, &format!("{} {v}", i.keyword))
    }

    /// `SHELL ["executable", "param"]`: the shell of later shell forms.
    pub(super) fn shell(&mut self, s: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        match &i.args {
            Args::Json(v) if !v.is_empty() => {
                s.cfg().insert("Shell".into(), json!(v));
                self.commit_config(s, &format!("SHELL {}", json!(v)))
            }
            _ => Err(BuildError::Invalid(
                "SHELL requires the arguments to be in JSON form".into(),
            )),
        }
    }

    /// `HEALTHCHECK [--interval=...] CMD ...` or `HEALTHCHECK NONE`.
    pub(super) fn healthcheck(&mut self, s: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        let hc = healthcheck(i)?;
        s.cfg().insert("Healthcheck".into(), hc.clone());
        self.commit_config(s, &format!("HEALTHCHECK {hc}"))
    }

    /// `ONBUILD INSTRUCTION`: stored, run by builds that use this image.
    pub(super) fn onbuild(&mut self, s: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        let t = parser::parse_instruction(&i.text(), i.line)?;
        if matches!(t.keyword.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
            return Err(BuildError::Invalid(format!(
                "{} isn't allowed as an ONBUILD trigger",
                t.keyword
            )));
        }
        let cfg = s.cfg();
        let mut list = cfg
            .get("OnBuild")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        list.push(json!(t.original));
        cfg.insert("OnBuild".into(), json!(list));
        self.commit_config(s, &format!("ONBUILD {}", t.original))
    }
}
