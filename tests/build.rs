//! Dockerfile builds end to end: `amber build` and `docker build` (classic
//! builder) against a real daemon, on the busybox test image. Every test
//! has its own daemon, data root and context directories, removed on drop.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{amber_bin, stderr, stdout, Daemon};

fn setup() -> Daemon {
    let d = Daemon::start();
    d.import_busybox("bb");
    d
}

/// A context directory with `files` (path, content); a path ending in `/`
/// is a directory.
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("amber-build-ctx-")
        .tempdir()
        .unwrap();
    for (p, content) in files {
        let path = dir.path().join(p);
        if p.ends_with('/') {
            std::fs::create_dir_all(&path).unwrap();
            continue;
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
    }
    dir
}

fn build(d: &Daemon, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    let c = ctx.to_str().unwrap().to_string();
    args.push(&c);
    d.amber(&args)
}

fn build_ok(d: &Daemon, ctx: &Path, extra: &[&str]) -> String {
    let out = build(d, ctx, extra);
    assert!(
        out.status.success(),
        "build failed: {}{}\n{}",
        stdout(&out),
        stderr(&out),
        d.log()
    );
    stdout(&out)
}

fn build_fails(d: &Daemon, ctx: &Path, extra: &[&str]) -> (String, String) {
    let out = build(d, ctx, extra);
    assert!(!out.status.success(), "build should fail: {}", stdout(&out));
    (stdout(&out), stderr(&out))
}

/// A gzip'd tar holding `bin/NAME` printing `text`.
fn app_tar_gz(dir: &Path, name: &str, text: &str) {
    let f = std::fs::File::create(dir.join("app.tar.gz")).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let script = format!("#!/bin/sh\necho {text}\n");
    let mut h = tar::Header::new_gnu();
    h.set_size(script.len() as u64);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    tar.append_data(&mut h, format!("bin/{name}"), script.as_bytes())
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn runtime_image_adds_an_archive_and_finds_it_on_path() {
    let d = setup();
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb\nMAINTAINER QA <qa@example.com>\nWORKDIR /usr\nRUN mkdir -p /usr/local/java\n\
         ADD app.tar.gz /usr/local/java\nENV JAVA_HOME /usr/local/java\nENV PATH $JAVA_HOME/bin:$PATH\n\
         CMD [\"javaish\"]\n",
    )]);
    app_tar_gz(ctx.path(), "javaish", "runtime-ok");
    let out = build_ok(&d, ctx.path(), &["-t", "runtime:1"]);
    assert!(out.contains("Step 1/8 : FROM bb"), "{out}");
    assert!(out.contains("Successfully tagged runtime:1"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "runtime:1"]).trim(), "runtime-ok");
    let env = d.ok(&["inspect", "-f", "{{json .Config.Env}}", "runtime:1"]);
    assert!(env.contains("JAVA_HOME=/usr/local/java"), "{env}");
    assert!(
        env.contains("PATH=/usr/local/java/bin:/usr/local/sbin"),
        "{env}"
    );
    // Extracted, not copied as an archive.
    let ls = d.ok(&["run", "--rm", "runtime:1", "ls", "/usr/local/java"]);
    assert_eq!(ls.trim(), "bin");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Author}}", "runtime:1"]).trim(),
        "QA <qa@example.com>"
    );
}

#[test]
fn tool_image_workdir_expose_and_last_cmd() {
    let d = setup();
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb\nENV MYPATH /usr/local\nWORKDIR $MYPATH\nRUN echo one > /one.txt\n\
         RUN echo two > two.txt && ls -la\nEXPOSE 80\nCMD echo $MYPATH\nCMD echo \"success\"\nCMD /bin/sh\n",
    )]);
    let out = build_ok(&d, ctx.path(), &["-t", "tool:1"]);
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("two.txt"), "RUN output is shown: {out}");
    let ports = d.ok(&["inspect", "-f", "{{json .Config.ExposedPorts}}", "tool:1"]);
    assert_eq!(ports.trim(), "{\"80/tcp\":{}}");
    let cmd = d.ok(&["inspect", "-f", "{{json .Config.Cmd}}", "tool:1"]);
    assert_eq!(cmd.trim(), "[\"/bin/sh\",\"-c\",\"/bin/sh\"]");
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "tool:1",
            "sh",
            "-c",
            "pwd; cat two.txt /one.txt"
        ]),
        "/usr/local\ntwo\none\n"
    );
    // `run -it`: the last CMD (a shell) in the WORKDIR.
    let seen = run_on_pty(&d, &["run", "-it", "--rm", "tool:1"], b"pwd; exit\n");
    assert!(seen.contains("/usr/local"), "{seen}");
}

/// Run amber on a pseudo-terminal, type `input` once it started, return
/// everything it printed.
fn run_on_pty(d: &Daemon, args: &[&str], input: &[u8]) -> String {
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = Command::new(amber_bin())
        .arg("-H")
        .arg(d.host())
        .args(args)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    let mut reader = master.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&seen).contains("# ") && Instant::now() < deadline {
        if let Ok(c) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.extend(c);
        }
    }
    master.write_all(input).unwrap();
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if let Ok(c) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.extend(c);
        }
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    while let Ok(c) = rx.recv_timeout(Duration::from_millis(200)) {
        seen.extend(c);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn multi_stage_copies_only_what_is_asked() {
    let d = setup();
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb AS builder\nRUN mkdir -p /out /junk && echo artifact > /out/app && echo x > /junk/file\n\
         RUN echo 1 > /out/one.bin && echo 2 > /out/two.bin && mkdir /out/dir.bin && echo 3 > /out/dir.bin/three\n\
         RUN echo r > /root-file.txt\n\
         FROM bb\nCOPY --from=builder /out/app /usr/bin/app\nCOPY --from=0 /out /copied/\n\
         COPY --from=builder /out/*.bin /bins/\nCOPY --from=builder /*.txt /rootglob/\nCMD cat /usr/bin/app\n",
    )]);
    build_ok(&d, ctx.path(), &["-t", "multi:1"]);
    assert_eq!(d.ok(&["run", "--rm", "multi:1"]).trim(), "artifact");
    assert_eq!(
        d.ok(&["run", "--rm", "multi:1", "cat", "/copied/app"])
            .trim(),
        "artifact"
    );
    // A glob in --from: files by name, a directory's contents.
    assert_eq!(
        d.ok(&["run", "--rm", "multi:1", "ls", "/bins"]),
        "one.bin\nthree\ntwo.bin\n"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "multi:1", "cat", "/rootglob/root-file.txt"]),
        "r\n"
    );
    let out = d.amber(&["run", "--rm", "multi:1", "ls", "/junk"]);
    assert!(
        !out.status.success(),
        "the build stage's files leaked: {}",
        stdout(&out)
    );
    // --target stops at the named stage.
    build_ok(
        &d,
        ctx.path(),
        &["-t", "multi:builder", "--target", "builder"],
    );
    assert_eq!(
        d.ok(&["run", "--rm", "multi:builder", "cat", "/junk/file"])
            .trim(),
        "x"
    );
}

#[test]
fn rebuild_uses_the_cache_and_a_change_invalidates_from_its_step() {
    let d = setup();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM bb\nENV A=1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /seen\nCOPY b.txt /b.txt\nRUN echo done\n",
        ),
        ("a.txt", "a1"),
        ("b.txt", "b1"),
    ]);
    let first = build_ok(&d, ctx.path(), &["-t", "cached:1"]);
    assert!(!first.contains("Using cache"), "{first}");
    let id1 = d.ok(&["inspect", "-f", "{{.Id}}", "cached:1"]);
    let t = Instant::now();
    let again = build_ok(&d, ctx.path(), &["-t", "cached:1"]);
    let cached_time = t.elapsed();
    assert_eq!(again.matches(" ---> Using cache").count(), 5, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    assert_eq!(d.ok(&["inspect", "-f", "{{.Id}}", "cached:1"]), id1);
    eprintln!("fully cached rebuild: {cached_time:?}");
    assert!(
        cached_time < Duration::from_secs(2),
        "cached rebuild took {cached_time:?}"
    );
    // A touched but unchanged file keeps the cache.
    let f = std::fs::File::options()
        .write(true)
        .open(ctx.path().join("b.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(
        build_ok(&d, ctx.path(), &[]).matches("Using cache").count(),
        5
    );
    // Changing b.txt invalidates its COPY and what follows, not before.
    std::fs::write(ctx.path().join("b.txt"), "b2").unwrap();
    let out = build_ok(&d, ctx.path(), &["-t", "cached:2"]);
    let steps: Vec<&str> = out.split("Step ").skip(1).collect();
    for (i, s) in steps.iter().enumerate() {
        let cached = s.contains("Using cache");
        assert_eq!(cached, (1..=3).contains(&i), "step {}: {s}", i + 1);
    }
    assert_eq!(d.ok(&["run", "--rm", "cached:2", "cat", "/b.txt"]), "b2");
    // --no-cache rebuilds everything (here with RUN steps off the network).
    let out = build_ok(&d, ctx.path(), &["--no-cache", "--network", "none"]);
    assert!(!out.contains("Using cache"), "{out}");
    // The store is consistent: layers moved in by rename, no leftovers.
    d.assert_check_clean();
    assert!(d.entries("tmp").is_empty(), "{:?}", d.entries("tmp"));
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn docker_build_against_amber() {
    let d = setup();
    let ctx = context(&[
        ("Dockerfile", "FROM bb\nARG GREETING=hi\nCOPY msg /msg\nRUN echo \"$GREETING $(cat /msg)\" > /out\nCMD cat /out\n"),
        ("msg", "from docker"),
    ]);
    let c = ctx.path().to_str().unwrap();
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_HOST", d.host())
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .args([
            "build",
            "-t",
            "viadocker:1",
            "--build-arg",
            "GREETING=hello",
            c,
        ])
        .stdin(Stdio::null());
    let out = cmd.output().expect("docker CLI");
    assert!(
        out.status.success(),
        "docker build failed: {}{}\n{}",
        stdout(&out),
        stderr(&out),
        d.log()
    );
    let text = stdout(&out);
    assert!(text.contains("Step 1/5 : FROM bb"), "{text}");
    assert!(text.contains("Successfully tagged viadocker:1"), "{text}");
    assert_eq!(
        d.ok(&["run", "--rm", "viadocker:1"]).trim(),
        "hello from docker"
    );
    // The same Dockerfile through amber hits the cache docker's build made.
    let again = build_ok(
        &d,
        ctx.path(),
        &["-t", "viaamber:1", "--build-arg", "GREETING=hello"],
    );
    assert_eq!(again.matches("Using cache").count(), 4, "{again}");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Id}}", "viaamber:1"]),
        d.ok(&["inspect", "-f", "{{.Id}}", "viadocker:1"])
    );
    // A Dockerfile outside the context (docker adds it to the tar).
    let outside = context(&[("Dockerfile.other", "FROM bb\nCMD echo outside\n")]);
    let f = outside.path().join("Dockerfile.other");
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_HOST", d.host())
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .args(["build", "-t", "outside:1", "-f", f.to_str().unwrap(), c])
        .stdin(Stdio::null());
    let out = cmd.output().expect("docker CLI");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(d.ok(&["run", "--rm", "outside:1"]), "outside\n");
    // Quiet mode prints only the ID.
    let out = build_ok(&d, ctx.path(), &["-q", "--build-arg", "GREETING=hello"]);
    assert_eq!(
        out.trim(),
        d.ok(&["inspect", "-f", "{{.Id}}", "viaamber:1"]).trim()
    );
}

#[test]
fn bad_dockerfiles_fail_with_one_line_and_the_line_number() {
    let d = setup();
    let cases: &[(&str, &str)] = &[
        (
            "FROM bb\nRUN true\nFROBNICATE x\n",
            "line 3: unknown instruction: FROBNICATE",
        ),
        ("# no stage\nRUN true\n", "line 2"),
        (
            "FROM bb\nCOPY ../x /x\n",
            "line 2: forbidden path outside the build context",
        ),
        (
            "FROM bb\nCOPY /etc/passwd /x\n",
            "line 2: file not found in build context",
        ),
        (
            "FROM bb\nCOPY escape /x\n",
            "line 2: forbidden path outside the build context",
        ),
        (
            "FROM bb\nADD http://127.0.0.1:9/none /x\n",
            "line 2: failed to download",
        ),
        (
            "FROM bb\nENV\n",
            "line 2: ENV requires at least one argument",
        ),
        ("FROM missing-image\n", "line 1: No such image"),
    ];
    for (df, want) in cases {
        let ctx = context(&[("Dockerfile", df)]);
        std::os::unix::fs::symlink("../../../../etc/passwd", ctx.path().join("escape")).unwrap();
        let (_, err) = build_fails(&d, ctx.path(), &["-t", "bad:1"]);
        assert!(err.contains(want), "{df:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // A failing RUN: its output, its exit code, no tag, no container left.
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb\nRUN echo about to fail; exit 3\nRUN echo never\n",
    )]);
    let (out, err) = build_fails(&d, ctx.path(), &["-t", "bad:1"]);
    assert!(out.contains("about to fail"), "{out}");
    assert!(err.contains("line 2: The command '/bin/sh -c echo about to fail; exit 3' returned a non-zero code: 3"), "{err}");
    assert!(!out.contains("never"), "{out}");
    assert!(d.amber(&["inspect", "bad:1"]).status.code() != Some(0));
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    d.assert_check_clean();
    // An undeclared build arg is a warning, as Docker does.
    let ctx = context(&[("Dockerfile", "FROM bb\nRUN true\n")]);
    let out = build_ok(&d, ctx.path(), &["--build-arg", "NOPE=1"]);
    assert!(
        out.contains("[Warning] One or more build-args [NOPE] were not consumed"),
        "{out}"
    );
}

#[test]
fn hostile_context_tar_does_not_escape() {
    let d = setup();
    let victim = tempfile::tempdir().unwrap();
    let target = victim.path().join("pwned");
    // `..` entries, and a symlink to outside then a file through it.
    let hdr = |size: usize| {
        let mut h = tar::Header::new_gnu();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    };
    let mut tar = tar::Builder::new(Vec::new());
    let df = b"FROM bb\nCOPY . /ctx/\n";
    tar.append_data(&mut hdr(df.len()), "Dockerfile", &df[..])
        .unwrap();
    let mut h = hdr(0);
    h.set_entry_type(tar::EntryType::Symlink);
    tar.append_link(&mut h, "link", victim.path()).unwrap();
    for name in ["../../../../../../tmp/amber-escape-test", "link/pwned"] {
        let mut h = hdr(4);
        let raw = h.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        tar.append(&h, &b"evil"[..]).unwrap();
    }
    let data = tar.into_inner().unwrap();
    let mut child = Command::new(amber_bin())
        .args(["-H", &d.host(), "build", "-t", "hostile:1", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        !target.exists(),
        "a context entry was written outside the context"
    );
    assert!(!Path::new("/tmp/amber-escape-test").exists());
    // Whether refused or built, nothing got out; a build copies the link as a link.
    if out.status.success() {
        let ls = d.ok(&["run", "--rm", "hostile:1", "ls", "-la", "/ctx"]);
        assert!(!ls.contains("pwned"), "{ls}");
    } else {
        assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    }
}

/// Serve `body` on 127.0.0.1 (never another address) to up to `count`
/// connections, for at most 30 seconds.
fn serve(body: Vec<u8>, count: usize) -> (u16, std::thread::JoinHandle<usize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let h = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut served = 0;
        while served < count && Instant::now() < deadline {
            let mut s = match listener.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            served += 1;
            s.set_nonblocking(false).unwrap();
            // Read the whole request head before answering.
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            if head.starts_with(b"GET /redirect ") {
                let _ = s.write_all(b"HTTP/1.0 302 Found\r\nLocation: /files/data.gz\r\n\r\n");
                continue;
            }
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nLast-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
        served
    });
    (port, h)
}

#[test]
fn add_url_downloads_without_extracting() {
    let d = setup();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"not extracted").unwrap();
    let body = gz.finish().unwrap();
    let (port, server) = serve(body.clone(), 4);
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM bb\nADD http://127.0.0.1:{port}/files/data.gz /dl/\nADD http://127.0.0.1:{port}/files/data.gz /named.gz\nADD http://127.0.0.1:{port}/redirect /via-redirect.gz\n"),
    )]);
    build_ok(&d, ctx.path(), &["-t", "url:1"]);
    assert_eq!(server.join().unwrap(), 4);
    let sum = d.ok(&[
        "run",
        "--rm",
        "url:1",
        "sh",
        "-c",
        "ls -l /dl/data.gz /named.gz | wc -l; stat -c '%a %Y' /named.gz; cat /dl/data.gz | gunzip; \
         gunzip -c /via-redirect.gz",
    ]);
    // Mode 0600 and the Last-Modified time, as Docker gives them.
    assert_eq!(sum, "2\n600 1700000000\nnot extractednot extracted");
}

#[test]
fn dockerignore_globs_chown_and_archives() {
    let d = setup();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM bb\nCOPY . /ctx/\nCOPY src/*.txt /globbed/\nCOPY --chown=tester:users src/a.txt /owned\n\
             ADD xz.tar.xz /xz/\nADD zst.tar.zst /zst/\nADD plain.tar /plain/\nADD notatar.gz /raw/\n",
        ),
        (".dockerignore", "*.log\nsecret/\n!secret/keep\n"),
        ("src/a.txt", "a"),
        ("src/b.txt", "b"),
        ("src/c.md", "c"),
        ("debug.log", "x"),
        ("secret/key", "k"),
        ("secret/keep", "kept"),
    ]);
    for (name, tool) in [
        ("xz.tar.xz", "xz"),
        ("zst.tar.zst", "zstd"),
        ("plain.tar", ""),
    ] {
        let staging = ctx.path().join("stage");
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join(format!("in-{name}")), "inside").unwrap();
        let tar_path = ctx.path().join(name);
        let st = Command::new("tar")
            .arg("-cf")
            .arg(&tar_path)
            .args(if tool.is_empty() {
                vec![]
            } else {
                vec!["--use-compress-program", tool]
            })
            .arg("-C")
            .arg(&staging)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::remove_dir_all(&staging).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"plain text, compressed").unwrap();
    std::fs::write(ctx.path().join("notatar.gz"), gz.finish().unwrap()).unwrap();
    build_ok(&d, ctx.path(), &["-t", "misc:1"]);
    // A compressed file that is not a tar is copied as it is.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "misc:1",
            "sh",
            "-c",
            "gunzip -c /raw/notatar.gz"
        ]),
        "plain text, compressed"
    );
    let ls = d.ok(&[
        "run",
        "--rm",
        "misc:1",
        "sh",
        "-c",
        "cd /ctx && find . -type f | sort",
    ]);
    assert!(
        !ls.contains("debug.log") && !ls.contains("secret/key"),
        "{ls}"
    );
    assert!(
        ls.contains("./secret/keep") && ls.contains("./src/c.md"),
        "{ls}"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "misc:1", "ls", "/globbed"]),
        "a.txt\nb.txt\n"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "misc:1", "stat", "-c", "%u:%g", "/owned"])
            .trim(),
        "1000:100"
    );
    for f in [
        "/xz/in-xz.tar.xz",
        "/zst/in-zst.tar.zst",
        "/plain/in-plain.tar",
    ] {
        assert_eq!(d.ok(&["run", "--rm", "misc:1", "cat", f]), "inside", "{f}");
    }
}

#[test]
fn onbuild_healthcheck_user_volume_and_heredoc() {
    let d = setup();
    let base = context(&[(
        "Dockerfile",
        "FROM bb\nONBUILD RUN touch /tmp/triggered\nHEALTHCHECK --interval=5s CMD true\nUSER tester\nVOLUME /data\nSTOPSIGNAL SIGINT\n",
    )]);
    build_ok(&d, base.path(), &["-t", "obase:1"]);
    let hc = d.ok(&["inspect", "-f", "{{json .Config.Healthcheck}}", "obase:1"]);
    assert_eq!(
        hc.trim(),
        "{\"Interval\":5000000000,\"Test\":[\"CMD-SHELL\",\"true\"]}"
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Config.User}}", "obase:1"])
            .trim(),
        "tester"
    );
    let child = context(&[(
        "Dockerfile",
        "FROM obase:1\nUSER root\nRUN <<EOF\necho from heredoc > /heredoc\nid -u >> /heredoc\nEOF\n\
         ENV WHO=world\nCOPY <<EOF /etc/greeting\nhello $WHO\nEOF\nCOPY <<'EOF' /etc/raw\n$WHO\nEOF\n\
         RUN cat <<-END >> /heredoc\n\tindented\n\tEND\nCMD cat /heredoc /tmp/triggered /etc/greeting /etc/raw\n",
    )]);
    let out = build_ok(&d, child.path(), &["-t", "ochild:1"]);
    assert!(out.contains("# Executing 1 build trigger"), "{out}");
    assert_eq!(
        d.ok(&["run", "--rm", "ochild:1"]),
        "from heredoc\n0\nindented\nhello world\n$WHO\n"
    );
}

#[test]
fn scratch_image_and_dockerfile_outside_the_context() {
    let d = setup();
    let ctx = context(&[("hello.txt", "hi from scratch\n"), ("link-to-hello", "")]);
    std::fs::remove_file(ctx.path().join("link-to-hello")).unwrap();
    std::os::unix::fs::symlink("hello.txt", ctx.path().join("link-to-hello")).unwrap();
    let elsewhere = context(&[(
        "scratch.Dockerfile",
        "FROM scratch\nCOPY --from=bb /bin/busybox /bin/busybox\nCOPY link-to-hello /\n\
         ENTRYPOINT [\"/bin/busybox\"]\nCMD [\"cat\", \"/link-to-hello\"]\n",
    )]);
    let df = elsewhere.path().join("scratch.Dockerfile");
    let out = build_ok(
        &d,
        ctx.path(),
        &["-t", "scratchy:1", "-f", df.to_str().unwrap()],
    );
    assert!(out.contains("Step 1/5 : FROM scratch"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "scratchy:1"]), "hi from scratch\n");
    let layers = d.ok(&["inspect", "-f", "{{len .RootFS.Layers}}", "scratchy:1"]);
    assert_eq!(layers.trim(), "2");
    // Cached the second time, scratch included.
    let again = build_ok(&d, ctx.path(), &["-f", df.to_str().unwrap()]);
    assert_eq!(again.matches("Using cache").count(), 4, "{again}");
    // A Dockerfile inside the context by another name; a missing one.
    std::fs::write(ctx.path().join("other.df"), "FROM bb\nCMD echo other\n").unwrap();
    let other = ctx.path().join("other.df");
    build_ok(
        &d,
        ctx.path(),
        &["-t", "other:1", "-f", other.to_str().unwrap()],
    );
    assert_eq!(d.ok(&["run", "--rm", "other:1"]), "other\n");
    let (_, err) = build_fails(&d, ctx.path(), &[]);
    assert!(
        err.contains("Cannot locate specified Dockerfile: Dockerfile"),
        "{err}"
    );
}

#[test]
fn a_client_going_away_cancels_the_build() {
    let d = setup();
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb\nRUN echo started; sleep 60\nRUN echo never\n",
    )]);
    let mut child = Command::new(amber_bin())
        .args(["-H", &d.host(), "build", "-t", "cancelled:1"])
        .arg(ctx.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("started") {
        let n = out.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "build ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The container goes, then the build's end is logged.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.ok(&["ps", "-aq"]).trim().is_empty() || !d.log().contains("the build was cancelled") {
        assert!(
            Instant::now() < deadline,
            "the RUN container outlived the client, or the build was not cancelled"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(d.amber(&["inspect", "cancelled:1"]).status.code() != Some(0));
}

/// `amber build ARGS` with `input` on stdin.
fn build_stdin(d: &Daemon, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(amber_bin())
        .args(["-H", &d.host(), "build"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn dockerfile_on_stdin() {
    let d = setup();
    // No context: `build -` with a Dockerfile.
    let out = build_stdin(
        &d,
        &["-t", "stdin:1", "-"],
        b"FROM bb\nCMD echo from stdin\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.ok(&["run", "--rm", "stdin:1"]), "from stdin\n");
    // A context directory and `-f -`.
    let ctx = context(&[("data.txt", "ctx data\n")]);
    let c = ctx.path().to_str().unwrap();
    let df = b"FROM bb\nCOPY data.txt /\nCMD cat /data.txt\n";
    let out = build_stdin(&d, &["-t", "stdinf:1", "-f", "-", c], df);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.ok(&["run", "--rm", "stdinf:1"]), "ctx data\n");
}

#[test]
fn a_refused_build_answers_after_reading_the_whole_body() {
    let d = Daemon::start();
    // One raw exchange that writes the whole body before reading the answer,
    // as the docker CLI does: a daemon that answers with the body unread
    // closes the connection and the write fails (a broken pipe).
    let post = |query: &str, body: &[u8]| -> String {
        let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        let head = format!(
            "POST /build?{query} HTTP/1.1\r\nHost: amber\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body)
            .unwrap_or_else(|e| panic!("{query}: the body was cut off: {e}\n{}", d.log()));
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    };
    let padding = vec![0u8; 8 << 20];
    // Refused before the body is read: an invalid tag.
    let mut tar = tar::Builder::new(Vec::new());
    let df = b"FROM scratch\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
    let mut body = tar.into_inner().unwrap();
    body.extend_from_slice(&padding);
    let answer = post("t=Bad%20Tag", &body);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid tag"), "{answer}");
    // Refused on its first bytes: a compression amber does not read.
    let mut body = vec![0xfd, b'7', b'z', b'X', b'Z', 0x00];
    body.extend_from_slice(&padding);
    let answer = post("t=xz:1", &body);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("errorDetail"), "{answer}");
    assert!(answer.contains("xz"), "{answer}");
}
