//! A container's network at start and stop: its namespace, veth pairs on
//! its networks' bridges, address leases (in the store, kept until the
//! container is removed), published ports, `/etc/hosts` and
//! `/etc/resolv.conf`. The daemon-wide side is `network_host.rs`, what
//! inspect and peers see is `network_view.rs`.
//!
//! The state of a running container's network is `containers/<id>/network.json`,
//! written after set-up and removed by teardown; it is how a restarted
//! daemon finds the ports to proxy again and what the clean-up compares with.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::containers::ContainerView;
use super::{lock, Engine, EngineError};
use crate::net::proxy::Proto;
use crate::net::proxy_process;
use crate::net::{hosts, ipam, link, Ipv4Net, NetError};
use crate::store::{EndpointRecord, NetworkRecord, StoreError};
use crate::types::ports::{parse_port_key, PortBinding};

/// The engine's record of a set-up network (`containers/<id>/network.json`).
const STATE_FILE: &str = "network.json";
/// Namespace files of bridged containers, under the data root.
pub(super) const NETNS_DIR: &str = "netns";
/// The netns a `--network host` container joins: evaluated by the
/// container's first process, which has not left the host's namespace.
const HOST_NETNS: &str = "/proc/self/ns/net";
/// Prefix of host-side veth names (`ve` + 11 hex digits = 13 < 15).
pub(super) const VETH_PREFIX: &str = "ve";

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
    /// The `amber proxy` process serving it.
    #[serde(default)]
    pub pid: Option<i32>,
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

/// A network row's subnet and gateway, parsed.
pub(super) fn subnet_of(n: &NetworkRecord) -> Result<(Ipv4Net, Ipv4Addr), EngineError> {
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
    pub(super) fn netns_path(&self, id: &str) -> PathBuf {
        self.data_root.join(NETNS_DIR).join(id)
    }

    pub(super) fn state_path(&self, id: &str) -> PathBuf {
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

    /// Set up the container's network before its start; returns the
    /// namespace it joins (None: a new one with `lo` only).
    pub(super) fn setup_network(&self, v: &ContainerView) -> Result<Option<PathBuf>, EngineError> {
        let _g = lock(&self.net_lock);
        let id = &v.rec.id;
        self.teardown_locked(id, true);
        let done = self.setup_locked(v);
        if done.is_err() {
            self.teardown_locked(id, true);
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
        let resolv = self.container_resolv(v, &crate::runtime::container_resolv_conf(&host_resolv));
        let extra = self.extra_hosts(v)?;
        let mut st = NetState::default();
        match self.mode(v)? {
            Mode::None => {
                hosts::write_in_place(&dir.join("hosts"), &hosts::render(None, &extra))?;
                hosts::write_in_place(&dir.join("resolv.conf"), &resolv)?;
            }
            Mode::Host => {
                let mut h = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
                for e in &extra {
                    h.push_str(&format!("{}\t{}\n", e.ip, e.names.join(" ")));
                }
                hosts::write_in_place(&dir.join("hosts"), &h)?;
                let resolv = self.container_resolv(v, &host_resolv);
                hosts::write_in_place(&dir.join("resolv.conf"), &resolv)?;
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
                Err(e) => return Err(e.into()),
                Ok(n) => {
                    let cfg = spec.networking_config.as_ref();
                    let asked = requested_ip(cfg, &name)?.or(requested_ip(cfg, &n.name)?);
                    if asked.is_some() && n.name == "bridge" {
                        return Err(EngineError::InvalidArgument(
                            "user specified IP address is supported on user defined networks only"
                                .into(),
                        ));
                    }
                }
            },
            Mode::Container(c) => {
                self.store.resolve_container(&c)?;
            }
            Mode::Host | Mode::None => {}
        }
        for h in spec.host_config.extra_hosts.iter().flatten() {
            hosts::parse_extra_host(h, "0.0.0.0").map_err(EngineError::InvalidArgument)?;
        }
        for d in spec.host_config.dns.iter().flatten() {
            if d.parse::<IpAddr>().is_err() {
                return Err(EngineError::InvalidArgument(format!(
                    "{d} is not an ip address"
                )));
            }
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
        self.lease_on(&net, id, &aliases, endpoint_ip(v, &net.name)?)?;
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

    /// Lease an address on `net`: `ip` if asked (`--ip`), else the next free one.
    pub(super) fn lease_on(
        &self,
        net: &NetworkRecord,
        id: &str,
        aliases: &[String],
        ip: Option<Ipv4Addr>,
    ) -> Result<EndpointRecord, EngineError> {
        let (subnet, gw) = subnet_of(net)?;
        Ok(self.store.add_endpoint(&net.id, id, aliases, |used| {
            match ip {
                Some(ip) => ipam::requested_address(&subnet, gw, used, ip),
                None => ipam::next_address(&subnet, gw, used),
            }
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
        let mut out: Vec<PublishedPort> = Vec::new();
        let published = self.publish_each(v, target, endpoint, &mut out);
        if published.is_err() {
            self.stop_proxies(&v.rec.id, &out);
        }
        published.map(|()| out)
    }

    fn publish_each(
        &self,
        v: &ContainerView,
        target: Ipv4Addr,
        endpoint: &str,
        out: &mut Vec<PublishedPort>,
    ) -> Result<(), EngineError> {
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
                let mut p = PublishedPort {
                    proto,
                    container_port: port,
                    host_ip: host_ip.clone(),
                    host_port: hp,
                    pid: None,
                };
                match self.spawn_proxy(&v.rec.id, &p, target) {
                    Ok(proc_) => {
                        p.pid = Some(proc_.pid);
                        p.host_port = proc_.host_port;
                        bound = Some(p);
                        break;
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            let Some(p) = bound else {
                let e = last_err.map(|e| e.to_string()).unwrap_or_default();
                return Err(EngineError::Net(NetError::Invalid(format!(
                    "driver failed programming external connectivity on endpoint {} ({}): {e}",
                    v.rec.name, endpoint
                ))));
            };
            out.push(p);
        }
        Ok(())
    }

    /// Start the proxy process of one published port.
    pub(super) fn spawn_proxy(
        &self,
        id: &str,
        p: &PublishedPort,
        target: Ipv4Addr,
    ) -> Result<proxy_process::ProxyProcess, NetError> {
        let ip: IpAddr = p
            .host_ip
            .parse()
            .map_err(|_| NetError::Invalid(format!("invalid IP address: {}", p.host_ip)))?;
        proxy_process::spawn(
            &super::shim_exe(),
            &self.store.container_dir(id),
            p.proto,
            SocketAddr::new(ip, p.host_port),
            SocketAddr::new(IpAddr::V4(target), p.container_port),
        )
    }

    /// Stop the proxies of published ports (their ports are free after).
    pub(super) fn stop_proxies(&self, id: &str, ports: &[PublishedPort]) {
        let tag = self.store.container_dir(id);
        for pid in ports.iter().filter_map(|p| p.pid) {
            proxy_process::stop(pid, &tag);
        }
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
    ///
    /// The container's processes are gone, so unmounting its namespace
    /// lets the kernel destroy it, veths included, in one batch; deleting
    /// each veth itself costs a grace period (~20 ms) under the global
    /// rtnl lock, which made a parallel stop of 10 containers (a rollback)
    /// take 10 of them in a row. The wait for the veths to vanish happens
    /// off `net_lock`, so containers stopping together wait together; one
    /// still there after that (something else holds the namespace) is
    /// deleted as before.
    pub(super) fn network_exited(&self, id: &str, shim_pid: i32) {
        let _g = lock(&self.net_lock);
        let veths = match self.net_state(id) {
            // A state without a shim is a start in progress: not ours.
            Some(st) if st.shim_pid == Some(shim_pid) => self.teardown_locked(id, false),
            _ => return,
        };
        drop(_g);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while veths.iter().any(|v| link::exists(v)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if veths.iter().any(|v| link::exists(v)) {
            let _g = lock(&self.net_lock);
            // Unless a new start owns them by now.
            if self.net_state(id).is_none() {
                self.delete_veths(id, &veths);
            }
        }
        self.refresh_peer_hosts(id);
    }

    /// Undo everything `setup_network` did (idempotent).
    pub(super) fn teardown_network(&self, id: &str) {
        let _g = lock(&self.net_lock);
        self.teardown_locked(id, true);
    }

    /// Release the container's network; with `delete_links`, delete its
    /// veths first, else return them (they go with the namespace).
    fn teardown_locked(&self, id: &str, delete_links: bool) -> Vec<String> {
        let st = self.net_state(id).unwrap_or_default();
        self.stop_proxies(id, &st.ports);
        let mut veths = st.veths.clone();
        for ep in self.store.endpoints_of(id).unwrap_or_default() {
            let v = veth_name(id, &ep.network_id);
            if !veths.contains(&v) {
                veths.push(v);
            }
        }
        if delete_links {
            self.delete_veths(id, &veths);
        }
        let ns = self.netns_path(id);
        if let Err(e) = link::remove_netns(&ns) {
            tracing::error!(container_id = %id, error = %e, "cannot remove network namespace");
        }
        let _ = std::fs::remove_file(self.state_path(id));
        veths
    }

    fn delete_veths(&self, id: &str, veths: &[String]) {
        for v in veths {
            if let Err(e) = link::delete(v) {
                tracing::error!(container_id = %id, error = %e, "cannot remove veth");
            }
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

/// The address asked for in `NetworkingConfig.EndpointsConfig[net].IPAMConfig`.
pub(super) fn endpoint_ip(v: &ContainerView, net: &str) -> Result<Option<Ipv4Addr>, EngineError> {
    requested_ip(v.spec.networking_config.as_ref(), net)
}

fn requested_ip(
    cfg: Option<&serde_json::Value>,
    net: &str,
) -> Result<Option<Ipv4Addr>, EngineError> {
    let ip = cfg
        .and_then(|n| n.get("EndpointsConfig"))
        .and_then(|e| e.get(net))
        .and_then(|e| e.get("IPAMConfig"))
        .and_then(|c| c.get("IPv4Address"))
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty());
    match ip {
        None => Ok(None),
        Some(a) => a
            .parse()
            .map(Some)
            .map_err(|_| EngineError::InvalidArgument(format!("invalid IPv4 address: {a}"))),
    }
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
