//! Helpers of the registry server tests: a real `amber registry serve` on a
//! loopback port it picks itself, with its own data directory, and a tiny
//! HTTP/1.1 client over `std::net` (one connection per request, so a test
//! can also cut a request off mid-body).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// The amber binary under test.
pub fn amber_bin() -> &'static str {
    env!("CARGO_BIN_EXE_amber")
}

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A running `amber registry serve`; stopped (SIGKILL if need be) on drop.
pub struct Registry {
    pub child: Option<Child>,
    pub port: u16,
    pub data: PathBuf,
    pub log: Arc<Mutex<String>>,
}

impl Registry {
    /// Start a server on `data` with extra flags; wait until it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Registry {
        let mut child = Command::new(amber_bin())
            .args([
                "--log-format",
                "json",
                "--log-level",
                "debug",
                "registry",
                "serve",
            ])
            .args(["--addr", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start amber registry serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("registry listening") {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                    let addr = v["fields"]["addr"].as_str().unwrap().to_string();
                    let _ = tx.send(addr);
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut r = Registry {
            child: Some(child),
            port: 0,
            data: data.to_path_buf(),
            log,
        };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => r.port = addr.rsplit(':').next().unwrap().parse().unwrap(),
            Err(_) => panic!("registry did not start: {}", r.log()),
        }
        r
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Send a request.
    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        request(self.port, method, path, headers, body)
    }

    /// Stop with SIGTERM and wait; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if self.child.is_some() && !self.stop() {
            eprintln!("registry did not stop cleanly; log:\n{}", self.log());
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The first error code of an error body.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Assert the status, showing the body otherwise.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Resp {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }

    /// Assert an error status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        self.expect(status);
        assert_eq!(self.code(), code, "{}", String::from_utf8_lossy(&self.body));
    }
}

fn head(method: &str, path: &str, port: u16, headers: &[(&str, &str)], len: usize) -> String {
    let mut s =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    let mut has_len = false;
    for (k, v) in headers {
        has_len |= k.eq_ignore_ascii_case("content-length");
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len {
        s.push_str(&format!("Content-Length: {len}\r\n"));
    }
    s.push_str("\r\n");
    s
}

/// One request on a fresh connection.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c.write_all(head(method, path, port, headers, body.len()).as_bytes())
        .unwrap();
    // A server may answer (and close) before taking the whole body, e.g.
    // an oversized manifest: then the write fails and the answer is read.
    let _ = c.write_all(body);
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if raw.is_empty() => panic!("read response: {e}"),
            Err(_) => break,
        }
    }
    parse(&raw, method == "HEAD")
}

/// Send the head of a request declaring `declared` body bytes, then only
/// `sent` and close the connection: a client cut off mid-upload.
pub fn cut_off(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    declared: usize,
    sent: &[u8],
) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let len = declared.to_string();
    let mut hs = headers.to_vec();
    hs.push(("Content-Length", &len));
    c.write_all(head(method, path, port, &hs, declared).as_bytes())
        .unwrap();
    c.write_all(sent).unwrap();
    c.flush().unwrap();
    // Give the server time to take what was sent before the cut.
    std::thread::sleep(Duration::from_millis(300));
    drop(c);
}

/// Start a request and leave it hanging after `sent` body bytes (the
/// connection stays open until the returned stream drops).
pub fn hang(port: u16, method: &str, path: &str, declared: usize, sent: &[u8]) -> TcpStream {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(head(method, path, port, &[], declared).as_bytes())
        .unwrap();
    c.write_all(sent).unwrap();
    c.flush().unwrap();
    c
}

fn parse(raw: &[u8], head_only: bool) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let text = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked && !head_only {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
}

/// Push `data` as a blob of `repo` in one request; returns its digest.
pub fn push_blob(r: &Registry, repo: &str, data: &[u8]) -> String {
    let d = digest(data);
    r.req(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        &[],
        data,
    )
    .expect(201);
    d
}

/// An OCI image manifest over `config` and `layers` (digest, size).
pub fn image_manifest(config: (&str, usize), layers: &[(&str, usize)]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, s)| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d, "size": s,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.0, "size": config.1,
        },
        "layers": layers,
    }))
    .unwrap()
}

/// A small real image: a gzip layer with one file, its config and manifest.
pub struct TestImage {
    pub layer: Vec<u8>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl TestImage {
    /// An image whose one file `/hello` holds `content`.
    pub fn new(content: &str) -> TestImage {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("hello").unwrap();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append(&h, content.as_bytes()).unwrap();
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let layer = gz.finish().unwrap();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [digest(&raw)]},
        }))
        .unwrap();
        let manifest = image_manifest(
            (&digest(&config), config.len()),
            &[(&digest(&layer), layer.len())],
        );
        TestImage {
            layer,
            config,
            manifest,
        }
    }

    /// Push blobs and manifest under `repo:tag`; returns the manifest digest.
    pub fn push(&self, r: &Registry, repo: &str, tag: &str) -> String {
        push_blob(r, repo, &self.layer);
        push_blob(r, repo, &self.config);
        let ct = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
        r.req(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[ct],
            &self.manifest,
        )
        .expect(201);
        digest(&self.manifest)
    }

    /// Write an OCI image layout at `dir` holding this image as `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        for b in [&self.layer, &self.config, &self.manifest] {
            let d = digest(b);
            std::fs::write(blobs.join(&d[7..]), b).unwrap();
        }
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(&self.manifest),
                "size": self.manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

/// Every file under `dir`, as paths relative to it.
pub fn files_under(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

/// podman on a private root (vfs: no mounts), its own auth file.
pub fn podman(root: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("podman")
        .env("REGISTRY_AUTH_FILE", root.join("auth.json"))
        .arg("--root")
        .arg(root.join("storage"))
        .arg("--runroot")
        .arg(root.join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ])
        .args(args)
        .output()
        .expect("podman must be installed (tests/deps.sh installs it)")
}
