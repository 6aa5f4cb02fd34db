use std::cell::RefCell;
use std::collections::BTreeMap;

use super::*;
use crate::build::context::Context;
use crate::build::instructions::{duration_ns, port_keys};
use crate::build::RunSpec;

/// A host that keeps images in memory and records runs.
#[derive(Default)]
struct Fake {
    images: RefCell<Vec<(Option<String>, Image)>>,
    runs: RefCell<Vec<RunSpec>>,
    tags: RefCell<Vec<(String, String)>>,
}

impl BuildHost for Fake {
    fn image(&self, name: &str) -> Result<Image, BuildError> {
        if name == "base" {
            return Ok(Image {
                id: "sha256:base".into(),
                config: json!({"config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "OnBuild": null}, "rootfs": {"diff_ids": []}}),
            });
        }
        if name == "trigger" {
            return Ok(Image {
                id: "sha256:trigger".into(),
                config: json!({"config": {"OnBuild": ["ENV FROM_TRIGGER=1"]}}),
            });
        }
        Err(BuildError::Host(format!("No such image: {name}")))
    }
    fn cached(&self, parent: Option<&str>, probe: &Value) -> Result<Option<Image>, BuildError> {
        Ok(self
            .images
            .borrow()
            .iter()
            .find(|(p, i)| p.as_deref() == parent && &i.config["container_config"] == probe)
            .map(|(_, i)| i.clone()))
    }
    fn commit(
        &self,
        parent: Option<&str>,
        config: Value,
        change: Change<'_>,
        _out: &mut Output<'_>,
    ) -> Result<Image, BuildError> {
        if let Change::Run(r) = change {
            self.runs.borrow_mut().push(r.clone());
        }
        let n = self.images.borrow().len();
        let img = Image {
            id: format!("sha256:{n:064}"),
            config,
        };
        self.images
            .borrow_mut()
            .push((parent.map(str::to_string), img.clone()));
        Ok(img)
    }
    fn export(
        &self,
        _image: &str,
        _path: &str,
        _out: &mut dyn std::io::Write,
    ) -> Result<(), BuildError> {
        Err(BuildError::Host("no export in the fake".into()))
    }
    fn tag(&self, image: &str, name: &str) -> Result<(), BuildError> {
        self.tags.borrow_mut().push((image.into(), name.into()));
        Ok(())
    }
}

fn run(host: &Fake, dockerfile: &str, opts: BuildOptions) -> (Result<String, BuildError>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let ctx = Context::open(dir.path());
    let mut text = String::new();
    let mut out = |s: &str| text.push_str(s);
    let opts = BuildOptions {
        work_dir: dir.path().to_path_buf(),
        ..opts
    };
    let r = build(host, &ctx, &opts, &mut out);
    (r, text)
}

fn config_of(host: &Fake, id: &str) -> Value {
    host.images
        .borrow()
        .iter()
        .find(|(_, i)| i.id == id)
        .unwrap()
        .1
        .config["config"]
        .clone()
}

#[test]
fn metadata_steps_and_output() {
    let h = Fake::default();
    let df = "FROM base\nMAINTAINER qa\nENV MYPATH /usr/local\nENV PATH=$MYPATH/bin:$PATH X=\"a b\"\nLABEL a=1 \"b c\"=2\nEXPOSE 80 53/udp\nCMD echo one\nCMD [\"echo\", \"two\"]\nUSER tester\nSTOPSIGNAL SIGINT\nVOLUME /data $MYPATH\nSHELL [\"/bin/ash\", \"-c\"]\nENTRYPOINT run\nHEALTHCHECK --interval=30s --retries=3 CMD curl -f x\nONBUILD RUN echo later\n";
    let (r, text) = run(
        &h,
        df,
        BuildOptions {
            tags: vec!["x:1".into()],
            ..Default::default()
        },
    );
    let id = r.unwrap();
    let c = config_of(&h, &id);
    assert_eq!(
        c["Env"],
        json!(["PATH=/usr/local/bin:/bin", "MYPATH=/usr/local", "X=a b"])
    );
    assert_eq!(c["Labels"], json!({"a": "1", "b c": "2"}));
    assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
    // ENTRYPOINT keeps a CMD set in this Dockerfile; the last CMD wins.
    assert_eq!(c["Cmd"], json!(["echo", "two"]));
    assert_eq!(c["Entrypoint"], json!(["/bin/ash", "-c", "run"]));
    assert_eq!(c["User"], "tester");
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["Volumes"], json!({"/data": {}, "/usr/local": {}}));
    assert_eq!(
        c["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "curl -f x"], "Interval": 30_000_000_000i64, "Retries": 3})
    );
    assert_eq!(c["OnBuild"], json!(["RUN echo later"]));
    assert!(
        text.starts_with("Step 1/15 : FROM base\n ---> base\nStep 2/15 : MAINTAINER qa\n"),
        "{text}"
    );
    assert!(text.contains("Successfully tagged x:1\n"), "{text}");
    assert_eq!(h.tags.borrow()[0].1, "x:1");
}

#[test]
fn cache_reuses_identical_steps() {
    let h = Fake::default();
    let df = "FROM base\nENV A=1\nRUN echo $A\nENV B=2\n";
    let (a, _) = run(&h, df, BuildOptions::default());
    let n = h.images.borrow().len();
    let (b, text) = run(&h, df, BuildOptions::default());
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(text.matches("Using cache").count(), 3, "{text}");
    assert_eq!(h.images.borrow().len(), n);
    // A change in the middle invalidates from there on.
    let (_, text) = run(
        &h,
        "FROM base\nENV A=1\nRUN echo changed\nENV B=2\n",
        BuildOptions::default(),
    );
    assert_eq!(text.matches("Using cache").count(), 1, "{text}");
    // --no-cache
    let (_, text) = run(
        &h,
        df,
        BuildOptions {
            no_cache: true,
            ..Default::default()
        },
    );
    assert_eq!(text.matches("Using cache").count(), 0);
}

#[test]
fn run_forms_args_and_env() {
    let h = Fake::default();
    let df = "ARG V=1\nFROM base\nARG V\nARG W=w\nENV W=env\nRUN echo $V\nRUN [\"echo\", \"x\"]\nWORKDIR /tmp\n";
    let mut args = BTreeMap::new();
    args.insert("V".to_string(), "9".to_string());
    args.insert("UNUSED".to_string(), "1".to_string());
    args.insert(
        "http_proxy".to_string(),
        "http://127.0.0.1:3128".to_string(),
    );
    let (r, text) = run(
        &h,
        df,
        BuildOptions {
            build_args: args,
            ..Default::default()
        },
    );
    r.unwrap();
    let runs = h.runs.borrow();
    assert_eq!(runs[0].argv, vec!["/bin/sh", "-c", "echo $V"]);
    // The build arg reaches RUN; ENV wins over an ARG of the same name.
    assert!(runs[0].env.contains(&"V=9".to_string()));
    assert!(
        runs[0].env.contains(&"W=env".to_string()) && !runs[0].env.contains(&"W=w".to_string())
    );
    assert_eq!(runs[1].argv, vec!["echo", "x"]);
    // A proxy arg reaches RUN without an ARG, and no warning names it.
    assert!(runs[1]
        .env
        .contains(&"http_proxy=http://127.0.0.1:3128".to_string()));
    assert!(!text.contains("http_proxy]"), "{text}");
    assert!(
        text.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{text}"
    );
    // The args are part of the cache key.
    let images = h.images.borrow();
    let probes: Vec<&Value> = images
        .iter()
        .map(|(_, i)| &i.config["container_config"]["Cmd"])
        .collect();
    assert!(
        probes.contains(&&json!(["|1", "V=9", "/bin/sh", "-c", "echo $V"])),
        "{probes:?}"
    );
    assert!(probes.contains(&&json!(["/bin/sh", "-c", "#(nop) ARG V=9"])));
}

#[test]
fn stages_targets_and_triggers() {
    let h = Fake::default();
    let df = "FROM base AS one\nENV S=1\nFROM one\nENV T=2\nFROM base AS three\nENV U=3\n";
    let (r, _) = run(
        &h,
        df,
        BuildOptions {
            target: Some("one".into()),
            ..Default::default()
        },
    );
    let c = config_of(&h, &r.unwrap());
    assert!(c["Env"].to_string().contains("S=1") && !c["Env"].to_string().contains("T=2"));
    let (r, _) = run(
        &h,
        "FROM base AS one\nENV S=1\nFROM one\nENV T=2\n",
        BuildOptions::default(),
    );
    let c = config_of(&h, &r.unwrap());
    assert!(c["Env"].to_string().contains("S=1") && c["Env"].to_string().contains("T=2"));
    let (r, _) = run(
        &h,
        df,
        BuildOptions {
            target: Some("nope".into()),
            ..Default::default()
        },
    );
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("failed to reach build target nope"));
    let (r, text) = run(&h, "FROM trigger\nENV X=1\n", BuildOptions::default());
    let c = config_of(&h, &r.unwrap());
    assert!(text.contains("# Executing 1 build trigger"), "{text}");
    assert!(c["Env"].to_string().contains("FROM_TRIGGER=1"));
    assert!(c["OnBuild"].is_null());
}

#[test]
fn errors_carry_line_numbers() {
    let h = Fake::default();
    let cases = [
        (
            "FROM base\nRUN x\nBOGUS y\n",
            "line 3: unknown instruction: BOGUS",
        ),
        ("RUN x\n", "line 1"),
        ("# only a comment\n", "needs a FROM"),
        ("FROM nothing\n", "line 1: No such image: nothing"),
        (
            "FROM base\nEXPOSE 80/xyz\n",
            "line 2: Invalid containerPort",
        ),
        (
            "FROM base\nSHELL sh -c\n",
            "line 2: SHELL requires the arguments to be in JSON form",
        ),
        ("FROM base\nENV A=${B:?needB}\n", "line 2: B: needB"),
        (
            "FROM base\n\nCOPY ../x /x\n",
            "line 3: forbidden path outside the build context",
        ),
        (
            "FROM base\nCOPY nothing /x\n",
            "line 2: file not found in build context",
        ),
        (
            "FROM base\nCOPY only\n",
            "line 2: COPY requires at least two arguments",
        ),
        (
            "FROM base\nADD http://127.0.0.1:1/x /x\n",
            "line 2: failed to download",
        ),
        (
            "FROM a b\n",
            "line 1: FROM requires either one or three arguments",
        ),
        ("FROM scratch\n", "No image was generated"),
        (
            "FROM base\nRUN --mount=type=cache,target=/x true\n",
            "line 2: unknown flag: mount",
        ),
    ];
    for (df, want) in cases {
        let (r, _) = run(&h, df, BuildOptions::default());
        let e = r.unwrap_err().to_string();
        assert!(e.contains(want), "{df:?}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn labels_option_and_durations() {
    let h = Fake::default();
    let mut labels = BTreeMap::new();
    labels.insert("built-by".to_string(), "amber test".to_string());
    let (r, _) = run(
        &h,
        "FROM base\n",
        BuildOptions {
            labels,
            ..Default::default()
        },
    );
    let c = config_of(&h, &r.unwrap());
    assert_eq!(c["Labels"]["built-by"], "amber test");
    assert_eq!(duration_ns("1m30s"), Some(90_000_000_000));
    assert_eq!(duration_ns("500ms"), Some(500_000_000));
    assert_eq!(duration_ns("5"), None);
    assert_eq!(
        port_keys("8000-8002").unwrap(),
        vec!["8000/tcp", "8001/tcp", "8002/tcp"]
    );
    assert_eq!(port_keys("53/UDP").unwrap(), vec!["53/udp"]);
    assert!(port_keys("9-1").is_err() && port_keys("70000").is_err());
    assert_eq!(clean_path("/a/./b/../c/"), "/a/c");
}

#[test]
fn cancelled_before_a_step() {
    let h = Fake::default();
    let opts = BuildOptions::default();
    opts.cancel
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (r, text) = run(&h, "FROM base\nENV A=1\n", opts);
    assert!(matches!(r, Err(BuildError::Cancelled)), "{r:?}");
    assert!(!text.contains("Step"), "{text}");
}

#[test]
fn global_args_in_from() {
    let h = Fake::default();
    let mut args = BTreeMap::new();
    args.insert("BASE".to_string(), "base".to_string());
    let (r, text) = run(
        &h,
        "ARG BASE=nothing\nFROM ${BASE}\nARG BASE\nENV USED=$BASE\n",
        BuildOptions {
            build_args: args,
            ..Default::default()
        },
    );
    let c = config_of(&h, &r.unwrap());
    assert!(c["Env"].to_string().contains("USED=base"), "{c}");
    assert!(!text.contains("[Warning]"), "{text}");
    // Without the build arg, the global default names the base.
    let (r, _) = run(&h, "ARG BASE=base\nFROM $BASE\n", BuildOptions::default());
    assert_eq!(r.unwrap(), "sha256:base");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        let kw = prop::sample::select(vec![
            "FROM",
            "ARG",
            "ENV",
            "LABEL",
            "RUN",
            "CMD",
            "ENTRYPOINT",
            "EXPOSE",
            "VOLUME",
            "USER",
            "WORKDIR",
            "STOPSIGNAL",
            "SHELL",
            "HEALTHCHECK",
            "ONBUILD",
            "MAINTAINER",
            "COPY",
        ]);
        (kw, "[ -~]{0,24}").prop_map(|(k, rest)| format!("{k} {rest}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever the instructions, the executor answers, never panics,
        /// and an error names a line.
        #[test]
        fn never_panics(lines in prop::collection::vec(line(), 0..8)) {
            let h = Fake::default();
            let df = format!("FROM base\n{}\n", lines.join("\n"));
            let (r, _) = run(&h, &df, BuildOptions::default());
            if let Err(e) = r {
                let msg = e.to_string();
                prop_assert!(msg.contains("line") || msg.contains("No image") || msg.contains("target"), "{}", msg);
            }
        }
    }
}
