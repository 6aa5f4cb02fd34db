//! A small cluster on one machine for the cluster tests: N "hosts", each a
//! network namespace joined to a bridge the test creates (a veth pair per
//! host, a 10.x.y.0/24 no route uses), each running its own `amber daemon`
//! (own data root, default bridge name and cgroup parent) entered into
//! the namespace with `nsenter --net`, with its own mount namespace where
//! only /sys's network entries are the namespace's (`ip netns exec` would
//! replace all of /sys, cgroups included), plus a coordinator
//! daemon in the root namespace. Each host daemon listens with mutual TLS
//! on its namespace's address (`tcp://ADDR:2376`, certificates from
//! `amber cluster certs`), which is how the coordinator reaches it; the
//! test itself also drives each host over its unix socket. Everything is
//! removed on drop, also when a test fails.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{amber_bin, Daemon};

/// One host: its namespace, address and daemon.
pub struct Host {
    /// Inventory name (`h1`, `h2`, ...).
    pub name: String,
    /// Network namespace name.
    pub ns: String,
    /// Its address on the test bridge.
    pub addr: String,
    /// Its daemon (the process runs inside `ns`).
    pub daemon: Daemon,
    /// Environment the daemon is (re)started with.
    pub env: Vec<(String, String)>,
    /// Its certificates (`DIR/NAME/{ca,cert,key}.pem`).
    pub certs: std::path::PathBuf,
    /// Its veth inside the namespace (down = cut off).
    pub link: String,
}

/// The namespaces, bridge and daemons of one test.
pub struct Cluster {
    /// Prefix of every name this cluster made.
    pub prefix: String,
    /// The bridge joining the namespaces (in the root namespace).
    pub bridge: String,
    /// The hosts, in order.
    pub hosts: Vec<Host>,
    /// The coordinator (root namespace).
    pub coord: Daemon,
    /// `amber cluster certs` output: `client/` is the coordinator's.
    pub certs: tempfile::TempDir,
    namespaces: Vec<String>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A 10.a.b.0/24 that no route of the root namespace uses.
fn free_subnet() -> (u8, u8) {
    let routes = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-4", "route", "show", "table", "all"])
            .output()
            .expect("ip route")
            .stdout,
    )
    .into_owned();
    let pid = std::process::id();
    for i in 0..200u32 {
        let a = 100 + ((pid / 250 + i) % 100) as u8;
        let b = ((pid + i * 7) % 250) as u8;
        if !routes.contains(&format!("10.{a}.{b}.")) && !routes.contains(&format!("10.{a}.0.0/16"))
        {
            return (a, b);
        }
    }
    panic!("no free 10.x.y.0/24 for the test bridge");
}

impl Cluster {
    /// Build `n` hosts (each daemon started with `env`) and a coordinator.
    pub fn new(n: usize, env: &[(&str, &str)]) -> Cluster {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "ac{}{}",
            std::process::id() % 100_000,
            (b'a' + SEQ.fetch_add(1, Ordering::SeqCst) as u8) as char
        );
        let bridge = format!("{prefix}br");
        let coord = Daemon::start();
        // Clusters of one test binary are made in parallel: choosing a
        // subnet and taking it (the bridge's address) is one step.
        static SUBNET: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let taking = SUBNET.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = free_subnet();
        let certs = tempfile::Builder::new()
            .prefix("amber-cluster-certs-")
            .tempdir()
            .unwrap();
        let mut gen = Command::new(amber_bin());
        gen.args(["cluster", "certs", "--out"])
            .arg(certs.path().join("pki"));
        for i in 1..=n {
            gen.arg(format!("h{i}=10.{a}.{b}.{i}"));
        }
        let out = gen.output().expect("run amber cluster certs");
        assert!(
            out.status.success(),
            "cluster certs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut c = Cluster {
            prefix: prefix.clone(),
            bridge: bridge.clone(),
            hosts: Vec::new(),
            coord,
            certs,
            namespaces: Vec::new(),
        };
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["addr", "add", &format!("10.{a}.{b}.254/24"), "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        drop(taking);
        for i in 1..=n {
            let ns = format!("{prefix}n{i}");
            let (outer, inner) = (format!("{prefix}v{i}"), format!("{prefix}p{i}"));
            ip(&["netns", "add", &ns]);
            c.namespaces.push(ns.clone());
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ]);
            ip(&["link", "set", &outer, "master", &bridge, "up"]);
            ip(&["link", "set", &inner, "netns", &ns]);
            let addr = format!("10.{a}.{b}.{i}");
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                &inner,
            ]);
            ip(&["-n", &ns, "link", "set", &inner, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            let dir = tempfile::Builder::new()
                .prefix("amber-cluster-")
                .tempdir()
                .unwrap();
            let daemon = Daemon {
                dir,
                child: None,
                cgroup_parent: format!("amber-test-{prefix}-h{i}"),
                bridge: format!("{prefix}d{i}"),
                extra_args: Vec::new(),
            };
            let mut h = Host {
                name: format!("h{i}"),
                ns,
                addr,
                daemon,
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                certs: c.certs.path().join("pki").join(format!("h{i}")),
                link: inner.clone(),
            };
            h.spawn();
            c.hosts.push(h);
        }
        c
    }

    /// `amber cluster add` every host on the coordinator: its TLS address
    /// with the client certificate.
    pub fn add_all(&self) {
        let client = self.certs.path().join("pki").join("client");
        for h in &self.hosts {
            self.coord.ok(&[
                "cluster",
                "add",
                &h.name,
                &h.url(),
                "--cert-path",
                client.to_str().unwrap(),
            ]);
        }
    }

    /// Host `i` (1-based).
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i - 1]
    }

    /// Host `i` (1-based), mutable.
    pub fn host_mut(&mut self, i: usize) -> &mut Host {
        &mut self.hosts[i - 1]
    }
}

impl Host {
    /// Its TLS address.
    pub fn url(&self) -> String {
        format!("tcp://{}:2376", self.addr)
    }

    /// Down (cut off from the cluster) or up its link.
    pub fn set_link(&self, up: bool) {
        ip(&[
            "-n",
            &self.ns,
            "link",
            "set",
            &self.link,
            if up { "up" } else { "down" },
        ]);
    }

    /// (Re)start the daemon inside the namespace and wait for it.
    pub fn spawn(&mut self) {
        if !self.try_spawn() {
            panic!(
                "host daemon {} did not start: {}",
                self.name,
                self.daemon.log()
            );
        }
    }

    /// (Re)start the daemon; whether it answers within 20 s.
    fn try_spawn(&mut self) -> bool {
        let url = self.url();
        let certs = self.certs.clone();
        let d = &mut self.daemon;
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(d.dir.path().join("daemon.log"))
            .unwrap();
        // The daemon looks links up in /sys/class/net: it gets a sysfs of
        // its own namespace there (and where those entries point), in a
        // mount namespace of its own, as `ip netns exec` would give it, but
        // keeping the rest of /sys (cgroups). Each step execs the next, so
        // the child's pid is the daemon's.
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .args(["--", "unshare", "--mount", "--propagation", "slave", "--"])
            .args(["sh", "-c", SYSFS_SETUP, "sh"])
            .arg(amber_bin())
            .args(["daemon", "--data-root"])
            .arg(d.root())
            .args(["-H", &d.host(), "-H", &url, "--tlsverify"])
            .arg("--tlscacert")
            .arg(certs.join("ca.pem"))
            .arg("--tlscert")
            .arg(certs.join("cert.pem"))
            .arg("--tlskey")
            .arg(certs.join("key.pem"))
            .args([
                "--log-level",
                "debug",
                "--cgroup-parent",
                &d.cgroup_parent,
                "--bridge",
                &d.bridge,
                "--config-file",
                "/nonexistent/amber-test-daemon.json",
            ])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn();
        let Ok(child) = child else {
            return false; // nsenter (util-linux) must be installed
        };
        d.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if d.pings() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The daemon's pid.
    pub fn pid(&self) -> i32 {
        self.daemon.child.as_ref().expect("daemon running").id() as i32
    }

    /// Send a signal to the daemon.
    pub fn signal(&self, sig: i32) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }
}

/// Mount a sysfs of the current network namespace over the host's
/// network entries, then exec the arguments.
const SYSFS_SETUP: &str = r#"set -e
t=$(mktemp -d)
mount -t sysfs sysfs "$t"
mount --bind "$t/class/net" /sys/class/net
mount --bind "$t/devices/virtual/net" /sys/devices/virtual/net
umount -l "$t"
rmdir "$t"
exec "$@""#;

impl Drop for Cluster {
    fn drop(&mut self) {
        // A stopped daemon cannot clean up: let it go on first; a killed
        // one is started again (it thaws what it left frozen) to remove
        // its containers.
        for h in &mut self.hosts {
            if h.daemon.child.is_some() {
                h.signal(libc::SIGCONT);
            } else {
                let _ = h.try_spawn();
            }
        }
        // Each host daemon's own drop removes its containers, stops it and
        // removes its cgroups; then the namespaces and the bridge go.
        self.hosts.clear();
        for ns in &self.namespaces {
            ip_quiet(&["netns", "del", ns]);
        }
        ip_quiet(&["link", "del", &self.bridge]);
    }
}
