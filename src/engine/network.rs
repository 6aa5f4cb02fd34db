//! A container's network at start and stop: its namespace, veth pairs on
//! its networks' bridges, address leases (in the store, kept until the
//! container is removed), published ports, `/etc/hosts` and
//! `/etc/resolv.conf`; the default networks at daemon start, and the
//! clean-up of whatever vanished containers left behind.
//!
//! The state of a running container's network is `containers/<id>/network.json`,
//! written after set-up and removed by teardown; it is how a restarted
//! daemon finds the ports to proxy again and what the clean-up compares with.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Digest as _;

use super::containers::ContainerView;
use super::{lock, Engine, EngineError};
use crate::net::proxy::{self, Forward, Proto};
use crate::net::{firewall, hosts, ipam, link, Ipv4Net, NetError};
use crate::store::{EndpointRecord, NetworkRecord, StoreError};
use crate::types::ports::{parse_port_key, PortBinding};

/// The engine's record of a set-up network (`containers/<id>/network.json`).
const STATE_FILE: &str = "network.json";
/// Namespace files of bridged containers, under the data root.
const NETNS_DIR: &str = "netns";
/// The netns a `--network host` container joins: evaluated by the
/// container's first process, which has not left the host's namespace.
const HOST_NETNS: &str = "/proc/self/ns/net";
/// Prefix of host-side veth names (`ve` + 11 hex digits = 13 < 15).
const VETH_PREFIX: &str = "ve";

/// One published port as bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    /// `tcp` or `udp`.
    pub proto: Proto,
    /// Port in the container.
    pub container_port: u16,
    /// Host address bound (`0.0.0.0` for all).
    pub host_ip: String,
    /// Host port bound.
    pub host_port: u16,
}

/// What a running container's network consists of.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetState {
    /// The namespace the container joined (None: a private one, `none`).
    pub netns: Option<PathBuf>,
    /// Whether the engine created `netns` (and removes it at teardown).
    pub owned_netns: bool,
    /// Host-side veth names.
    pub veths: Vec<String>,
    /// Published ports.
    pub ports: Vec<PublishedPort>,
    /// The shim the state belongs to (set once started).
    pub shim_pid: Option<i32>,
    /// Address the ports forward to.
    pub target_ip: Option<Ipv4Addr>,
}

/// The network mode of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A private namespace with only `lo`.
    None,
    /// The host's namespace.
    Host,
    /// Another container's namespace.
    Container(String),
    /// A bridge network by name.
    Bridge(String),
}

/// Parse `HostConfig.NetworkMode`.
pub fn mode_of(network_mode: &str) -> Mode {
    match network_mode {
        "" | "default" | "bridge" => Mode::Bridge("bridge".into()),
        "none" => Mode::None,
        "host" => Mode::Host,
        m => match m.strip_prefix("container:") {
            Some(c) => Mode::Container(c.to_string()),
            None => Mode::Bridge(m.to_string()),
        },
    }
}

/// Host-side veth name of a container on a network.
pub(super) fn veth_name(container_id: &str, network_id: &str) -> String {
    let h = sha2::Sha256::digest(format!("{container_id}/{network_id}").as_bytes());
    format!("{VETH_PREFIX}{}", &hex::encode(h)[..11])
}

fn subnet_of(n: &NetworkRecord) -> Result<(Ipv4Net, Ipv4Addr), EngineError> {
    let bad = || {
        EngineError::Store(StoreError::Corrupt(format!(
            "network {} has a bad subnet {:?} or gateway {:?}",
            n.name, n.subnet, n.gateway
        )))
    };
    let subnet: Ipv4Net = n.subnet.parse().map_err(|_| bad())?;
    let gw: Ipv4Addr = n.gateway.parse().map_err(|_| bad())?;
    Ok((subnet, gw))
}

impl Engine {
    fn netns_path(&self, id: &str) -> PathBuf {
        self.data_root.join(NETNS_DIR).join(id)
    }

    fn state_path(&self, id: &str) -> PathBuf {
        self.store.container_dir(id).join(STATE_FILE)
    }

    /// The network state of a container whose network is set up.
    pub(super) fn net_state(&self, id: &str) -> Option<NetState> {
        let data = std::fs::read(self.state_path(id)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    pub(super) fn save_net_state(&self, id: &str, st: &NetState) -> Result<(), EngineError> {
        let data = serde_json::to_vec_pretty(st)
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        let path = self.state_path(id);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, &data)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| EngineError::Net(NetError::io("write", &path, e)))
    }

    /// The bridge network rows and the firewall table for them.
    pub(super) fn apply_firewall(&self) -> Result<(), EngineError> {
        let mut rules = Vec::new();
        for n in self.store.networks()? {
            if n.driver != "bridge" {
                continue;
            }
            let (subnet, _) = subnet_of(&n)?;
            rules.push(firewall::BridgeRule {
                bridge: n.bridge.clone(),
                subnet,
                internal: n.internal,
            });
        }
        firewall::apply(&firewall::table_name(&self.net_opts.bridge), &rules)?;
        Ok(())
    }

    /// Ensure a bridge network's link exists, addressed and up.
    pub(super) fn ensure_bridge(&self, n: &NetworkRecord) -> Result<(), EngineError> {
        let (subnet, gw) = subnet_of(n)?;
        link::ensure_bridge(
            &n.bridge,
            &Ipv4Net::new(gw, subnet.prefix).unwrap_or(subnet),
        )?;
        Ok(())
    }

    /// At daemon start: the `bridge`, `host` and `none` networks, their
    /// bridges and rules; then clean up after containers that are gone or
    /// stopped, and proxy the ports of running ones again.
    pub(super) fn init_networks(&self) -> Result<(), EngineError> {
        if let Err(e) = crate::net::enable_forwarding() {
            tracing::warn!(error = %e, "cannot enable IPv4 forwarding");
        }
        let _guard = ipam::lock_subnets()?;
        self.default_bridge_row()?;
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if self.store.resolve_network(name).is_err() {
                self.store.create_network(&NetworkRecord {
                    id: crate::store::random_hex(32),
                    name: name.into(),
                    driver: driver.into(),
                    subnet: String::new(),
                    gateway: String::new(),
                    bridge: String::new(),
                    created: String::new(),
                    labels: BTreeMap::new(),
                    internal: false,
                })?;
            }
        }
        for n in self.store.networks()? {
            if n.driver == "bridge" {
                self.ensure_bridge(&n)?;
            }
        }
        drop(_guard);
        self.apply_firewall()?;
        self.clean_stale_network()?;
        Ok(())
    }

    /// Create (or re-address, with `--bip`) the default network's row.
    fn default_bridge_row(&self) -> Result<(), EngineError> {
        let want_bridge = self.net_opts.bridge.clone();
        let existing = self.store.resolve_network("bridge").ok();
        let (subnet, gw) = match (&existing, self.net_opts.bip) {
            (Some(n), None) if n.bridge == want_bridge => return Ok(()),
            (Some(n), None) => subnet_of(n)?,
            (_, Some(bip)) => (bip.trunc(), bip.addr),
            (None, None) => {
                let mut taken = link::host_routes(std::slice::from_ref(&want_bridge))?;
                for n in self.store.networks()? {
                    if let Ok(s) = n.subnet.parse::<Ipv4Net>() {
                        taken.push(s);
                    }
                }
                let s = ipam::choose_subnet(&taken)?;
                (s, s.nth(1).unwrap_or(s.addr))
            }
        };
        if let Some(n) = &existing {
            if n.bridge == want_bridge && n.subnet == subnet.to_string() {
                return Ok(());
            }
            if !self.store.endpoints_in(&n.id)?.is_empty() {
                return Err(EngineError::Conflict(format!(
                    "cannot change the default bridge to {want_bridge} {gw}/{}: containers have addresses on it; remove them first",
                    subnet.prefix
                )));
            }
            if n.bridge != want_bridge {
                link::delete(&n.bridge)?;
            }
            self.store.remove_network(&n.id)?;
        }
        self.store.create_network(&NetworkRecord {
            id: existing
                .map(|n| n.id)
                .unwrap_or_else(|| crate::store::random_hex(32)),
            name: "bridge".into(),
            driver: "bridge".into(),
            subnet: subnet.to_string(),
            gateway: gw.to_string(),
            bridge: want_bridge,
            created: String::new(),
            labels: BTreeMap::new(),
            internal: false,
        })?;
        Ok(())
    }

    /// Remove namespaces, veths and state files no running container owns;
    /// re-bind the published ports of running containers.
    fn clean_stale_network(&self) -> Result<(), EngineError> {
        let mut keep_veths = Vec::new();
        let mut keep_ns = Vec::new();
        for rec in self.store.list_containers()? {
            let Ok(v) = self.view_of(rec) else { continue };
            let running = matches!(
                v.state.status,
                crate::runtime::Status::Running | crate::runtime::Status::Paused
            );
            match (running, self.net_state(&v.rec.id)) {
                (true, Some(st)) => {
                    keep_veths.extend(st.veths.iter().cloned());
                    keep_ns.push(v.rec.id.clone());
                    self.rebind_ports(&v, &st);
                }
                (false, Some(_)) => self.teardown_network(&v.rec.id),
                _ => {}
            }
        }
        let bridges: Vec<String> = self
            .store
            .networks()?
            .into_iter()
            .filter(|n| n.driver == "bridge")
            .map(|n| n.bridge)
            .collect();
        for (name, master) in link::links_with_master() {
            let ours = master.as_ref().is_some_and(|m| bridges.contains(m));
            if ours && name.starts_with(VETH_PREFIX) && !keep_veths.contains(&name) {
                tracing::info!(link = %name, "removing stale veth");
                link::delete(&name)?;
            }
        }
        let dir = self.data_root.join(NETNS_DIR);
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if !keep_ns.contains(&id) {
                tracing::info!(path = %e.path().display(), "removing stale network namespace");
                link::remove_netns(&e.path())?;
            }
        }
        Ok(())
    }

    fn rebind_ports(&self, v: &ContainerView, st: &NetState) {
        let Some(ip) = st.target_ip else { return };
        let mut fwds = Vec::new();
        for p in &st.ports {
            match self.bind_port(p, ip) {
                Ok(f) => fwds.push(f),
                Err(e) => {
                    tracing::error!(container_id = %v.rec.id, error = %e, "cannot publish port again")
                }
            }
        }
        lock(&self.forwards).insert(v.rec.id.clone(), fwds);
    }

    fn bind_port(&self, p: &PublishedPort, target: Ipv4Addr) -> Result<Forward, NetError> {
        let ip: IpAddr = p
            .host_ip
            .parse()
            .map_err(|_| NetError::Invalid(format!("invalid IP address: {}", p.host_ip)))?;
        proxy::start(
            p.proto,
            SocketAddr::new(ip, p.host_port),
            SocketAddr::new(IpAddr::V4(target), p.container_port),
        )
    }

    /// Set up the container's network before its start; returns the
    /// namespace it joins (None: a new one with `lo` only).
    pub(super) fn setup_network(&self, v: &ContainerView) -> Result<Option<PathBuf>, EngineError> {
        let _g = lock(&self.net_lock);
        let id = &v.rec.id;
        self.teardown_locked(id);
        let done = self.setup_locked(v);
        if done.is_err() {
            self.teardown_locked(id);
        }
        done
    }

    fn setup_locked(&self, v: &ContainerView) -> Result<Option<PathBuf>, EngineError> {
        let id = &v.rec.id;
        let dir = self.store.container_dir(id);
        let hostname = if v.spec.config.hostname.is_empty() {
            id[..12].to_string()
        } else {
            v.spec.config.hostname.clone()
        };
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = crate::runtime::container_resolv_conf(&host_resolv);
        let mut st = NetState::default();
        match self.mode(v)? {
            Mode::None => {
                hosts::write_in_place(&dir.join("hosts"), &hosts::render(None, &[]))?;
                hosts::write_in_place(&dir.join("resolv.conf"), &resolv)?;
            }
            Mode::Host => {
                let h = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
                hosts::write_in_place(&dir.join("hosts"), &h)?;
                hosts::write_in_place(&dir.join("resolv.conf"), &host_resolv)?;
                st.netns = Some(PathBuf::from(HOST_NETNS));
            }
            Mode::Container(other) => {
                let o = self.store.resolve_container(&other)?;
                let ov = self.view_of(o)?;
                let pid = ov.state.pid.filter(|_| {
                    matches!(
                        ov.state.status,
                        crate::runtime::Status::Running | crate::runtime::Status::Paused
                    )
                });
                let Some(pid) = pid else {
                    return Err(EngineError::Conflict(format!(
                        "cannot join network of a non running container: {}",
                        ov.rec.id
                    )));
                };
                let ns = match self.net_state(&ov.rec.id).and_then(|s| s.netns) {
                    Some(p) if p != Path::new(HOST_NETNS) => p,
                    _ => PathBuf::from(format!("/proc/{pid}/ns/net")),
                };
                let odir = self.store.container_dir(&ov.rec.id);
                for f in ["hosts", "resolv.conf"] {
                    let data = std::fs::read_to_string(odir.join(f)).unwrap_or_default();
                    hosts::write_in_place(&dir.join(f), &data)?;
                }
                st.netns = Some(ns);
            }
            Mode::Bridge(name) => {
                let ip = self.attach_bridges(v, &mut st)?;
                let own = hosts::HostEntry {
                    ip: ip.to_string(),
                    names: vec![hostname.clone()],
                };
                hosts::write_in_place(&dir.join("hosts"), &hosts::render(Some(&own), &[]))?;
                hosts::write_in_place(&dir.join("resolv.conf"), &resolv)?;
                st.ports = self.publish_ports(v, ip, &name)?;
                st.target_ip = Some(ip);
            }
        }
        let ns = st.netns.clone();
        self.save_net_state(id, &st)?;
        // Peers must resolve before the process starts.
        self.write_hosts(id)?;
        Ok(ns)
    }

    /// At create: the network (or the container whose network is shared) exists.
    pub(super) fn check_network(
        &self,
        spec: &super::spec::ContainerSpec,
    ) -> Result<(), EngineError> {
        match mode_of(&spec.host_config.network_mode) {
            // 400, not 404: a client takes a 404 on create for a missing
            // image and would try to pull it.
            Mode::Bridge(name) => match self.store.resolve_network(&name) {
                Err(StoreError::NoSuchNetwork(n)) => {
                    return Err(EngineError::InvalidArgument(format!(
                        "network {n} not found"
                    )))
                }
                other => {
                    other?;
                }
            },
            Mode::Container(c) => {
                self.store.resolve_container(&c)?;
            }
            Mode::Host | Mode::None => {}
        }
        check_port_bindings(spec)
    }

    /// The container's mode, with its network checked to exist.
    pub(super) fn mode(&self, v: &ContainerView) -> Result<Mode, EngineError> {
        let m = mode_of(&v.spec.host_config.network_mode);
        if let Mode::Bridge(name) = &m {
            let n = self.store.resolve_network(name)?;
            return Ok(match n.driver.as_str() {
                "host" => Mode::Host,
                "null" => Mode::None,
                _ => Mode::Bridge(n.name),
            });
        }
        Ok(m)
    }

    /// Lease addresses (primary network first, then those connected), make
    /// the namespace and one veth per network; returns the primary address.
    fn attach_bridges(
        &self,
        v: &ContainerView,
        st: &mut NetState,
    ) -> Result<Ipv4Addr, EngineError> {
        let id = &v.rec.id;
        let Mode::Bridge(primary) = self.mode(v)? else {
            return Err(EngineError::InvalidArgument("not a bridge network".into()));
        };
        let net = self.store.resolve_network(&primary)?;
        let aliases = endpoint_aliases(v, &net.name);
        self.lease_on(&net, id, &aliases)?;
        let ns = self.netns_path(id);
        link::create_netns(&ns)?;
        st.netns = Some(ns.clone());
        st.owned_netns = true;
        let mut eps = self.store.endpoints_of(id)?;
        // The primary network is eth0 and carries the default route.
        eps.sort_by_key(|e| e.network_id != net.id);
        let mut primary_ip = None;
        for (i, ep) in eps.iter().enumerate() {
            let n = self.store.resolve_network(&ep.network_id)?;
            let ip = self.attach_endpoint(&n, ep, &ns, i, st)?;
            primary_ip.get_or_insert(ip);
        }
        primary_ip.ok_or_else(|| EngineError::InvalidArgument("no network address".into()))
    }

    pub(super) fn lease_on(
        &self,
        net: &NetworkRecord,
        id: &str,
        aliases: &[String],
    ) -> Result<EndpointRecord, EngineError> {
        let (subnet, gw) = subnet_of(net)?;
        Ok(self.store.add_endpoint(&net.id, id, aliases, |used| {
            ipam::next_address(&subnet, gw, used)
                .map(|(ip, mac)| (ip.to_string(), mac))
                .map_err(|e| StoreError::Invalid(e.to_string()))
        })?)
    }

    pub(super) fn attach_endpoint(
        &self,
        n: &NetworkRecord,
        ep: &EndpointRecord,
        ns: &Path,
        index: usize,
        st: &mut NetState,
    ) -> Result<Ipv4Addr, EngineError> {
        let (subnet, gw) = subnet_of(n)?;
        let ip: Ipv4Addr = ep.ip.parse().map_err(|_| {
            EngineError::Store(StoreError::Corrupt(format!("bad lease address {}", ep.ip)))
        })?;
        if !link::exists(&n.bridge) {
            self.ensure_bridge(n)?;
        }
        let host = veth_name(&ep.container_id, &n.id);
        st.veths.push(host.clone());
        link::add_veth(&link::VethOptions {
            host: &host,
            bridge: &n.bridge,
            netns: ns,
            ifname: &format!("eth{index}"),
            mac: &ep.mac,
            addr: Ipv4Net::new(ip, subnet.prefix).unwrap_or(subnet),
            default_gateway: (index == 0).then_some(gw),
        })?;
        Ok(ip)
    }

    /// Bind the published ports (`-p`, and `-P` for exposed ones).
    fn publish_ports(
        &self,
        v: &ContainerView,
        target: Ipv4Addr,
        endpoint: &str,
    ) -> Result<Vec<PublishedPort>, EngineError> {
        let mut out = Vec::new();
        let mut fwds = Vec::new();
        for (key, b) in port_plan(v) {
            let (port, proto) = parse_port_key(&key).map_err(EngineError::InvalidArgument)?;
            let proto = match proto.as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                other => {
                    return Err(EngineError::InvalidArgument(format!(
                        "publishing {other} ports is not supported"
                    )))
                }
            };
            let host_ip = if b.host_ip.is_empty() {
                "0.0.0.0".to_string()
            } else {
                b.host_ip.clone()
            };
            let (lo, hi) = match b.host_port.as_str() {
                "" | "0" => (0, 0),
                hp => crate::types::ports::parse_range(hp).map_err(EngineError::InvalidArgument)?,
            };
            let mut last_err = None;
            let mut bound = None;
            for hp in lo..=hi {
                let p = PublishedPort {
                    proto,
                    container_port: port,
                    host_ip: host_ip.clone(),
                    host_port: hp,
                };
                match self.bind_port(&p, target) {
                    Ok(f) => {
                        bound = Some((p, f));
                        break;
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            let Some((mut p, f)) = bound else {
                let e = last_err.map(|e| e.to_string()).unwrap_or_default();
                return Err(EngineError::Net(NetError::Invalid(format!(
                    "driver failed programming external connectivity on endpoint {} ({}): {e}",
                    v.rec.name, endpoint
                ))));
            };
            p.host_port = f.host.port();
            out.push(p);
            fwds.push(f);
        }
        lock(&self.forwards).insert(v.rec.id.clone(), fwds);
        Ok(out)
    }

    /// Record the shim that owns the network (after a successful start).
    pub(super) fn network_started(&self, id: &str, shim_pid: i32) {
        let _g = lock(&self.net_lock);
        if let Some(mut st) = self.net_state(id) {
            st.shim_pid = Some(shim_pid);
            if let Err(e) = self.save_net_state(id, &st) {
                tracing::error!(container_id = %id, error = %e, "cannot record network state");
            }
        }
        drop(_g);
        self.refresh_peer_hosts(id);
    }

    /// The shim `shim_pid` exited: tear down its network unless a newer
    /// start already owns it.
    pub(super) fn network_exited(&self, id: &str, shim_pid: i32) {
        let _g = lock(&self.net_lock);
        match self.net_state(id) {
            // A state without a shim is a start in progress: not ours.
            Some(st) if st.shim_pid == Some(shim_pid) => self.teardown_locked(id),
            _ => return,
        }
        drop(_g);
        self.refresh_peer_hosts(id);
    }

    /// Undo everything `setup_network` did (idempotent).
    pub(super) fn teardown_network(&self, id: &str) {
        let _g = lock(&self.net_lock);
        self.teardown_locked(id);
    }

    fn teardown_locked(&self, id: &str) {
        lock(&self.forwards).remove(id);
        let st = self.net_state(id).unwrap_or_default();
        let mut veths = st.veths.clone();
        for ep in self.store.endpoints_of(id).unwrap_or_default() {
            veths.push(veth_name(id, &ep.network_id));
        }
        for v in veths {
            if let Err(e) = link::delete(&v) {
                tracing::error!(container_id = %id, error = %e, "cannot remove veth");
            }
        }
        let ns = self.netns_path(id);
        if let Err(e) = link::remove_netns(&ns) {
            tracing::error!(container_id = %id, error = %e, "cannot remove network namespace");
        }
        let _ = std::fs::remove_file(self.state_path(id));
    }

    /// Rewrite `/etc/hosts` of the running members of every user network
    /// `id` is on, so they resolve each other by name and alias.
    pub(super) fn refresh_peer_hosts(&self, id: &str) {
        let Ok(eps) = self.store.endpoints_of(id) else {
            return;
        };
        for ep in eps {
            self.refresh_network_hosts(&ep.network_id);
        }
    }

    pub(super) fn refresh_network_hosts(&self, network_id: &str) {
        let Ok(members) = self.store.endpoints_in(network_id) else {
            return;
        };
        for m in members {
            if let Err(e) = self.write_hosts(&m.container_id) {
                tracing::warn!(container_id = %m.container_id, error = %e, "cannot update /etc/hosts");
            }
        }
    }

    /// A running container's hosts file: itself, then its peers on user networks.
    fn write_hosts(&self, id: &str) -> Result<(), EngineError> {
        let Some(st) = self.net_state(id) else {
            return Ok(());
        };
        let Some(ip) = st.target_ip else {
            return Ok(());
        };
        let rec = self.store.container(id)?;
        let v = self.view_of(rec)?;
        let hostname = if v.spec.config.hostname.is_empty() {
            id[..12].to_string()
        } else {
            v.spec.config.hostname.clone()
        };
        let own = hosts::HostEntry {
            ip: ip.to_string(),
            names: vec![hostname],
        };
        let mut peers = Vec::new();
        for ep in self.store.endpoints_of(id)? {
            let n = self.store.resolve_network(&ep.network_id)?;
            // The default bridge has no name resolution (as Docker's).
            if n.name == "bridge" {
                continue;
            }
            for other in self.store.endpoints_in(&n.id)? {
                if other.container_id == id || self.net_state(&other.container_id).is_none() {
                    continue;
                }
                let Ok(orec) = self.store.container(&other.container_id) else {
                    continue;
                };
                let mut names = vec![orec.name.clone()];
                names.extend(other.aliases.iter().cloned());
                names.push(orec.id[..12].to_string());
                peers.push(hosts::HostEntry {
                    ip: other.ip.clone(),
                    names,
                });
            }
        }
        let path = self.store.container_dir(id).join("hosts");
        hosts::write_in_place(&path, &hosts::render(Some(&own), &peers))?;
        Ok(())
    }

    /// `.NetworkSettings` of inspect, as Docker shows it.
    pub(super) fn network_settings(&self, v: &ContainerView) -> Value {
        let id = &v.rec.id;
        let alive = matches!(
            v.state.status,
            crate::runtime::Status::Running | crate::runtime::Status::Paused
        );
        let st = self.net_state(id).filter(|_| alive);
        let running = st.is_some();
        let mut networks = serde_json::Map::new();
        let mut top = json!({"Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""});
        let mode = self.mode(v).ok();
        match &mode {
            Some(Mode::Host) | Some(Mode::None) => {
                let name = if mode == Some(Mode::Host) {
                    "host"
                } else {
                    "none"
                };
                if let Ok(n) = self.store.resolve_network(name) {
                    networks.insert(name.into(), endpoint_json(&n, None, running));
                }
            }
            _ => {}
        }
        for ep in self.store.endpoints_of(id).unwrap_or_default() {
            let Ok(n) = self.store.resolve_network(&ep.network_id) else {
                continue;
            };
            let e = endpoint_json(&n, Some(&ep), running);
            if n.name == "bridge" && running {
                for k in ["Gateway", "IPAddress", "IPPrefixLen", "MacAddress"] {
                    top[k] = e[k].clone();
                }
            }
            networks.insert(n.name.clone(), e);
        }
        let mut ports = serde_json::Map::new();
        if running {
            for key in v.spec.config.exposed_ports.iter().flatten().map(|(k, _)| k) {
                ports.insert(key.clone(), Value::Null);
            }
            for p in st.iter().flat_map(|s| s.ports.iter()) {
                let key = format!("{}/{}", p.container_port, p.proto.as_str());
                let entry = ports.entry(key).or_insert_with(|| json!([]));
                if !entry.is_array() {
                    *entry = json!([]);
                }
                if let Some(a) = entry.as_array_mut() {
                    a.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
                }
            }
        }
        let sandbox = st
            .as_ref()
            .and_then(|s| s.netns.clone())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        json!({
            "Bridge": "", "SandboxID": "", "SandboxKey": sandbox, "Ports": ports,
            "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "EndpointID": "", "Gateway": top["Gateway"], "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": top["IPAddress"],
            "IPPrefixLen": top["IPPrefixLen"], "IPv6Gateway": "", "MacAddress": top["MacAddress"],
            "Networks": networks,
        })
    }

    /// `Ports` of a `GET /containers/json` row.
    pub(super) fn summary_ports(&self, id: &str) -> Value {
        let ports: Vec<Value> = self
            .net_state(id)
            .map(|s| s.ports)
            .unwrap_or_default()
            .iter()
            .map(|p| {
                json!({"IP": p.host_ip, "PrivatePort": p.container_port,
                       "PublicPort": p.host_port, "Type": p.proto.as_str()})
            })
            .collect();
        Value::Array(ports)
    }

    /// At clean daemon shutdown: close the proxies; with no container
    /// running, remove the bridges and the firewall table too (they are
    /// made again at start), so a stopped daemon leaves nothing behind.
    pub fn shutdown_network(&self) {
        lock(&self.forwards).clear();
        let any_running = self
            .store
            .list_containers()
            .unwrap_or_default()
            .iter()
            .any(|r| self.net_state(&r.id).is_some());
        if any_running {
            return;
        }
        for n in self.store.networks().unwrap_or_default() {
            if n.driver == "bridge" {
                if let Err(e) = link::delete(&n.bridge) {
                    tracing::error!(error = %e, "cannot remove bridge");
                }
            }
        }
        if let Err(e) = firewall::remove(&firewall::table_name(&self.net_opts.bridge)) {
            tracing::error!(error = %e, "cannot remove the firewall table");
        }
    }
}

/// `(port key, binding)` to publish: `-p` bindings, then (`-P`) every
/// exposed port without one on a free host port.
fn port_plan(v: &ContainerView) -> Vec<(String, PortBinding)> {
    let h = &v.spec.host_config;
    let mut out = Vec::new();
    for (k, bs) in h.port_bindings.iter().flatten() {
        for b in bs.iter().flatten() {
            out.push((k.clone(), b.clone()));
        }
    }
    if h.publish_all_ports {
        for k in v.spec.config.exposed_ports.iter().flatten().map(|(k, _)| k) {
            if !out.iter().any(|(o, _)| o == k) {
                out.push((k.clone(), PortBinding::default()));
            }
        }
    }
    out
}

/// `PortBindings` as Docker validates them at create: port keys, host
/// addresses and host ports (or ranges).
fn check_port_bindings(spec: &super::spec::ContainerSpec) -> Result<(), EngineError> {
    let bad = EngineError::InvalidArgument;
    for (key, bindings) in spec.host_config.port_bindings.iter().flatten() {
        let (_, proto) = parse_port_key(key)
            .map_err(|_| bad(format!("invalid port specification: \"{key}\"")))?;
        if !matches!(proto.as_str(), "tcp" | "udp") {
            return Err(bad(format!("invalid proto: {proto}")));
        }
        for b in bindings.iter().flatten() {
            if !b.host_ip.is_empty() && b.host_ip.parse::<IpAddr>().is_err() {
                return Err(bad(format!("invalid IP address: {}", b.host_ip)));
            }
            if !matches!(b.host_port.as_str(), "" | "0") {
                crate::types::ports::parse_range(&b.host_port)
                    .map_err(|_| bad(format!("invalid hostPort: {}", b.host_port)))?;
            }
        }
    }
    Ok(())
}

/// Aliases asked for in `NetworkingConfig.EndpointsConfig[net].Aliases`.
pub(super) fn endpoint_aliases(v: &ContainerView, net: &str) -> Vec<String> {
    v.spec
        .networking_config
        .as_ref()
        .and_then(|n| n.get("EndpointsConfig"))
        .and_then(|e| e.get(net))
        .and_then(|e| e.get("Aliases"))
        .and_then(|a| serde_json::from_value::<Vec<String>>(a.clone()).ok())
        .unwrap_or_default()
}

fn endpoint_json(n: &NetworkRecord, ep: Option<&EndpointRecord>, running: bool) -> Value {
    let prefix = n.subnet.parse::<Ipv4Net>().map(|s| s.prefix).unwrap_or(0);
    let (ip, mac, gw, pfx) = match ep {
        Some(e) if running => (e.ip.as_str(), e.mac.as_str(), n.gateway.as_str(), prefix),
        _ => ("", "", "", 0),
    };
    json!({
        "IPAMConfig": null, "Links": null,
        "Aliases": ep.map(|e| e.aliases.clone()).filter(|a| !a.is_empty()),
        "MacAddress": mac, "DriverOpts": null, "NetworkID": n.id, "EndpointID": "",
        "Gateway": gw, "IPAddress": ip, "IPPrefixLen": pfx, "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_names() {
        assert_eq!(mode_of(""), Mode::Bridge("bridge".into()));
        assert_eq!(mode_of("default"), Mode::Bridge("bridge".into()));
        assert_eq!(mode_of("none"), Mode::None);
        assert_eq!(mode_of("container:web"), Mode::Container("web".into()));
        assert_eq!(mode_of("backend"), Mode::Bridge("backend".into()));
        let n = veth_name(&"a".repeat(64), &"b".repeat(64));
        assert!(n.len() <= link::MAX_IFNAME && n.starts_with(VETH_PREFIX));
    }
}
