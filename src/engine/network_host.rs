//! The host side of networking at daemon start and stop: the `bridge`,
//! `host` and `none` networks, bridges and the firewall table; clean-up of
//! what vanished containers left; the ports of running containers bound
//! again; and at a clean stop with nothing running, bridges and rules
//! removed.

use std::collections::BTreeMap;

use super::containers::ContainerView;
use super::network::{subnet_of, NetState, NETNS_DIR, VETH_PREFIX};
use super::{Engine, EngineError};
use crate::net::proxy_process;
use crate::net::{firewall, ipam, link, Ipv4Net};
use crate::store::NetworkRecord;

impl Engine {
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
        // Without the table containers still run and talk to each other and
        // to published ports; only outbound masquerading is missing.
        if let Err(e) = self.apply_firewall() {
            tracing::error!(error = %e, "cannot install the firewall table (outbound masquerading)");
        }
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
        // Proxies no running container lists (a crash between a proxy's
        // start and its record).
        let keep_pids: Vec<i32> = keep_ns
            .iter()
            .filter_map(|id| self.net_state(id))
            .flat_map(|st| st.ports.into_iter().filter_map(|p| p.pid))
            .collect();
        for (pid, tag) in proxy_process::find_under(&self.data_root.join("containers")) {
            if !keep_pids.contains(&pid) {
                tracing::info!(pid, "stopping stale port proxy");
                proxy_process::stop(pid, &tag);
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

    /// Ports of a running container whose proxy is gone (killed, or the
    /// host rebooted under a live container) get a new one.
    fn rebind_ports(&self, v: &ContainerView, st: &NetState) {
        let Some(ip) = st.target_ip else { return };
        let tag = self.store.container_dir(&v.rec.id);
        let mut st = st.clone();
        let mut changed = false;
        for p in st.ports.iter_mut() {
            if p.pid.is_some_and(|pid| proxy_process::alive(pid, &tag)) {
                continue;
            }
            match self.spawn_proxy(&v.rec.id, p, ip) {
                Ok(proc_) => {
                    p.pid = Some(proc_.pid);
                    changed = true;
                }
                Err(e) => {
                    tracing::error!(container_id = %v.rec.id, error = %e, "cannot publish port again")
                }
            }
        }
        if changed {
            if let Err(e) = self.save_net_state(&v.rec.id, &st) {
                tracing::error!(container_id = %v.rec.id, error = %e, "cannot record network state");
            }
        }
    }

    /// At clean daemon shutdown with no container running, remove the
    /// bridges and the firewall table (they are made again at start), so a
    /// stopped daemon leaves nothing behind. Running containers keep their
    /// network, published ports included (their proxies are processes).
    pub fn shutdown_network(&self) {
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
