//! RUN (a process in a container of the current image, with the build
//! args in its environment and its cache key) and WORKDIR (a directory made
//! in the image when missing); the shell of shell forms.

use serde_json::json;

use super::executor::{clean_path, env_list, nop, Builder, Stage, PREDEFINED_ARGS};
use super::parser::{Args, Instruction};
use super::shell::process_word;
use super::{BuildError, Change, RunSpec};

impl Builder<'_> {
    /// Exec form as is; shell form through SHELL (default `/bin/sh -c`).
    pub(super) fn command_form(&self, s: &Stage, i: &Instruction) -> Vec<String> {
        match &i.args {
            Args::Json(v) => v.clone(),
            Args::Text(t) => {
                let mut argv = shell_of(s);
                argv.push(t.clone());
                argv
            }
        }
    }

    /// `WORKDIR dir`: relative to the previous one; created if missing.
    pub(super) fn workdir(&mut self, s: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        let lookup = |k: &str| s.lookup(k);
        let w = process_word(i.text().trim(), &lookup, self.escape).map_err(BuildError::Invalid)?;
        let cur = s.doc["config"]["WorkingDir"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let dir = clean_path(&if w.starts_with('/') {
            w
        } else {
            format!("{}/{w}", if cur.is_empty() { "/" } else { &cur })
        });
        s.cfg().insert("WorkingDir".into(), json!(dir));
        let d = dir.clone();
        let mut mk = move |root: &std::path::Path| {
            super::rootfs::ensure_dir(root, &d, super::context::Owner::default())
        };
        self.commit(
            s,
            &nop(s, &format!("WORKDIR {dir}")),
            Change::Files(&mut mk),
        )
    }

    /// `RUN` in shell, exec or heredoc form.
    pub(super) fn run_step(&mut self, s: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        let mut argv = self.command_form(s, i);
        if let (Some(h), Args::Text(t)) = (i.heredocs.first(), &i.args) {
            let shell = shell_of(s);
            argv = shell;
            if t.trim().starts_with("<<") && i.heredocs.len() == 1 {
                argv.push(h.content.clone());
            } else {
                let mut script = t.clone();
                for h in &i.heredocs {
                    script.push('\n');
                    script.push_str(&h.content);
                    script.push_str(&h.name);
                }
                argv.push(script);
            }
        }
        let args = s.run_args();
        let mut probe_cmd = Vec::new();
        if !args.is_empty() {
            probe_cmd.push(format!("|{}", args.len()));
            probe_cmd.extend(args.iter().cloned());
        }
        probe_cmd.extend(argv.iter().cloned());
        let mut env = env_list(&s.doc);
        env.extend(args);
        // Proxy args reach RUN undeclared, and stay out of the cache key
        // and the image, as Docker's.
        for (k, v) in &self.opts.build_args {
            let declared = s.args.iter().any(|(n, _)| n == k);
            let set = env
                .iter()
                .any(|e| e.split_once('=').map(|x| x.0) == Some(k.as_str()));
            if PREDEFINED_ARGS.contains(&k.as_str()) && !declared && !set {
                env.push(format!("{k}={v}"));
            }
        }
        let spec = RunSpec {
            argv,
            env,
            workdir: s.doc["config"]["WorkingDir"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            user: s.doc["config"]["User"].as_str().unwrap_or("").to_string(),
            cancel: self.opts.cancel.clone(),
            network: self.opts.network.clone(),
        };
        self.commit(s, &probe_cmd, Change::Run(&spec))
    }
}

/// SHELL of the stage, or `/bin/sh -c`.
pub(super) fn shell_of(s: &Stage) -> Vec<String> {
    s.doc["config"]["Shell"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}
