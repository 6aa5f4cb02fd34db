//! Shared helpers of the end-to-end tests: a real `amber daemon` on a
//! temporary data root and socket, the `amber` and `docker` binaries as
//! clients, and the busybox test image.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The amber binary under test.
pub fn amber_bin() -> &'static str {
    env!("CARGO_BIN_EXE_amber")
}

/// A busybox root filesystem tar, built once and shared by every test
/// binary through one cache file keyed by the build script and the busybox
/// binary (so runs do not leave a copy each behind in the temp dir).
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/busybox.sh");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::fs::read(&script).unwrap().hash(&mut h);
        if let Ok(m) = std::fs::metadata("/bin/busybox") {
            use std::os::unix::fs::MetadataExt;
            (m.size(), m.mtime(), m.ino()).hash(&mut h);
        }
        let dir = std::env::temp_dir().join("amber-test-busybox");
        std::fs::create_dir_all(&dir).unwrap();
        let tar = dir.join(format!("busybox-{:016x}.tar", h.finish()));
        if tar.exists() {
            return tar;
        }
        // Built under a private name, renamed into place: concurrent test
        // binaries never read a half-written tar.
        let part = dir.join(format!(".busybox-{}.tar", std::process::id()));
        let st = Command::new(script)
            .arg(&part)
            .status()
            .expect("run busybox.sh");
        assert!(st.success(), "tests/images/busybox.sh failed");
        std::fs::rename(&part, &tar).unwrap();
        tar
    })
}

/// A running daemon with its own data root, socket and cgroup parent;
/// on drop its containers are removed, it is stopped, and its cgroup
/// parent directories are deleted.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub cgroup_parent: String,
    /// Default bridge name, unique per test daemon (the subnet is chosen
    /// by the daemon among those no host route uses).
    pub bridge: String,
    /// Extra `amber daemon` flags.
    pub extra_args: Vec<String>,
}

/// A bridge name unique to this test process and daemon (≤ 15 bytes).
fn unique_bridge() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "amt{}-{}",
        std::process::id() % 10_000_000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A cgroup parent name unique to this test process and daemon.
fn unique_cgroup_parent() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "amber-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

impl Daemon {
    /// Start a daemon and wait until it answers.
    pub fn start() -> Daemon {
        Daemon::start_with_args(&[])
    }

    /// Start a daemon with extra flags on a fresh directory.
    pub fn start_with_args(extra_args: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("amber-e2e-")
            .tempdir()
            .unwrap();
        Daemon::start_with(dir, extra_args.iter().map(|a| a.to_string()).collect())
    }

    fn start_with(dir: tempfile::TempDir, extra_args: Vec<String>) -> Daemon {
        let mut d = Daemon {
            dir,
            child: None,
            cgroup_parent: unique_cgroup_parent(),
            bridge: unique_bridge(),
            extra_args,
        };
        d.spawn();
        d
    }

    /// The data root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("amber.sock")
    }

    /// `unix:///...` address.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// (Re)start the daemon process on the same root and socket.
    pub fn spawn(&mut self) {
        self.spawn_with_env(&[]);
    }

    /// (Re)start the daemon process with extra environment variables.
    pub fn spawn_with_env(&mut self, env: &[(&str, &str)]) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let child = Command::new(amber_bin())
            .args(["daemon", "--data-root"])
            .arg(self.root())
            .args(["-H", &self.host()])
            .args(if self.extra_args.iter().any(|a| a == "--log-level") {
                &[][..]
            } else {
                &["--log-level", "debug"][..]
            })
            .args([
                "--cgroup-parent",
                &self.cgroup_parent,
                "--bridge",
                &self.bridge,
            ])
            .args(if self.extra_args.iter().any(|a| a == "--config-file") {
                &[][..]
            } else {
                // Never the host's /etc/amber/daemon.json.
                &["--config-file", "/nonexistent/amber-test-daemon.json"][..]
            })
            .args(&self.extra_args)
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        // The socket is bound before the store opens (and recovers): wait
        // for an answer, not just a connection.
        while Instant::now() < deadline {
            if self.pings() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon did not start: {}", self.log());
    }

    /// Whether the daemon answers `GET /_ping` on its socket.
    pub fn pings(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(self.socket()) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        buf.starts_with(b"HTTP/1.1 200")
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// SIGKILL the daemon (crash simulation).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM the daemon and wait for a clean exit; returns its status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        c.wait().ok()
    }

    /// Run `amber -H <this daemon> ARGS`.
    pub fn amber(&self, args: &[&str]) -> Output {
        Command::new(amber_bin())
            .arg("-H")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Run `amber` and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.amber(args);
        assert!(
            out.status.success(),
            "amber {args:?} failed: {}\n{}",
            stderr(&out),
            self.log()
        );
        stdout(&out)
    }

    /// Run `amber` and require failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.amber(args);
        assert!(
            !out.status.success(),
            "amber {args:?} should fail but printed {}",
            stdout(&out)
        );
        stderr(&out)
    }

    /// Run the real `docker` CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_API_VERSION")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the docker CLI must be installed (.ci/run installs it)")
    }

    /// Import the busybox tar as `name`; returns the image ID.
    pub fn import_busybox(&self, name: &str) -> String {
        let tar = busybox_tar().to_str().unwrap().to_string();
        self.ok(&["import", &tar, name]).trim().to_string()
    }

    /// Wait until the container's log holds `needle` (10 s at most).
    pub fn wait_log(&self, name: &str, needle: &str) {
        for _ in 0..200 {
            if self.ok(&["logs", name]).contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{name} never logged {needle:?}: {}",
            self.ok(&["logs", name])
        );
    }

    /// `amber system check` is clean.
    pub fn assert_check_clean(&self) {
        let out = self.amber(&["system", "check"]);
        assert!(
            out.status.success(),
            "system check found problems:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
    }

    /// Entries under a data-root subdirectory.
    pub fn entries(&self, sub: &str) -> Vec<String> {
        match std::fs::read_dir(self.root().join(sub)) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Daemon {
    /// Remove every container of this daemon (force), if it is up.
    pub fn remove_all_containers(&self) {
        if self.child.is_none() {
            return;
        }
        let ids = stdout(&self.amber_quiet(&["ps", "-aq", "--no-trunc"]));
        for id in ids.split_whitespace() {
            let _ = self.amber_quiet(&["rm", "-f", id]);
        }
    }

    fn amber_quiet(&self, args: &[&str]) -> Output {
        Command::new(amber_bin())
            .arg("-H")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Shims and port proxies of containers of this data root still alive.
    pub fn live_shims(&self) -> Vec<i32> {
        let root = self.root().display().to_string();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if (cmd.contains(" shim ") || cmd.contains(" proxy ")) && cmd.contains(&root) {
                out.push(pid);
            }
        }
        out
    }

    /// Cgroup directories of this daemon's parent, in every hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = e.path().join(&self.cgroup_parent);
            if p.is_dir() {
                out.push(p);
            }
        }
        let v2 = Path::new("/sys/fs/cgroup").join(&self.cgroup_parent);
        if v2.is_dir() {
            out.push(v2);
        }
        out
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.remove_all_containers();
        self.stop();
        for pid in self.live_shims() {
            // SAFETY: killing a leftover shim of this test's data root.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for d in self.cgroup_dirs() {
            for sub in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if sub.path().is_dir() {
                    let _ = std::fs::remove_dir(sub.path());
                }
            }
            let _ = std::fs::remove_dir(&d);
        }
        self.remove_network_leftovers();
        for m in amber::runtime::host_mounts_under(self.dir.path())
            .into_iter()
            .rev()
        {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

impl Daemon {
    /// Bridges and the firewall table a crashed daemon may have left (a
    /// clean stop with no container running removes them itself).
    pub fn remove_network_leftovers(&self) {
        let mut bridges = vec![self.bridge.clone()];
        // User networks' bridges, from the daemon's database.
        if let Ok(db) = rusqlite::Connection::open(self.root().join("amber.db")) {
            if let Ok(mut stmt) = db.prepare("SELECT bridge FROM networks WHERE driver = 'bridge'")
            {
                if let Ok(rows) = stmt.query_map([], |r| r.get::<_, String>(0)) {
                    bridges.extend(rows.flatten());
                }
            }
        }
        for b in bridges {
            if Path::new("/sys/class/net").join(&b).exists() {
                let _ = Command::new("ip")
                    .args(["link", "del", &b])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let table = amber::net::firewall::table_name(&self.bridge);
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &table])
            .stderr(Stdio::null())
            .status();
    }

    /// Whether the default bridge link exists.
    pub fn bridge_exists(&self) -> bool {
        Path::new("/sys/class/net").join(&self.bridge).exists()
    }
}

/// stdout as a string.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as a string.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Lowercase hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// Parse JSON output, or fail the test showing it.
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// A TCP port that is free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /` over plain HTTP/1.0; retries until the server answers.
pub fn http_get(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect_timeout(
                &addr.parse().unwrap(),
                Duration::from_secs(2),
            )?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            use std::io::{Read, Write};
            s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            if out.is_empty() {
                return Err(std::io::Error::other("empty answer"));
            }
            Ok(out)
        })();
        match attempt {
            Ok(body) => return body,
            Err(e) if Instant::now() > deadline => panic!("GET {addr}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
