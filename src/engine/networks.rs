//! The network resource (`/networks`): create, list, inspect, remove,
//! prune, and connecting containers to user networks (running ones get a
//! new interface at once).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::network::{endpoint_aliases, Mode};
use super::{lock, Engine, EngineError};
use crate::net::{ipam, link, Ipv4Net};
use crate::store::{NetworkRecord, StoreError};

/// Networks every daemon has, which cannot be removed.
const PREDEFINED: &[&str] = &["bridge", "host", "none"];

/// What `POST /networks/create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreateOptions {
    /// Name.
    pub name: String,
    /// Driver (`bridge`; empty = bridge).
    pub driver: String,
    /// `--subnet`.
    pub subnet: Option<String>,
    /// `--gateway`.
    pub gateway: Option<String>,
    /// `--internal`.
    pub internal: bool,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
}

impl Engine {
    /// `POST /networks/create`.
    pub fn create_network(&self, o: &NetworkCreateOptions) -> Result<Value, EngineError> {
        if !super::spec::valid_name(&o.name) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                o.name
            )));
        }
        if !matches!(o.driver.as_str(), "" | "bridge") {
            return Err(EngineError::NotFound(format!(
                "plugin \"{}\" not found",
                o.driver
            )));
        }
        if self
            .store
            .resolve_network(&o.name)
            .is_ok_and(|n| n.name == o.name)
        {
            return Err(EngineError::Conflict(format!(
                "network with name {} already exists",
                o.name
            )));
        }
        let _guard = ipam::lock_subnets()?;
        let existing: Vec<Ipv4Net> = self
            .store
            .networks()?
            .iter()
            .filter_map(|n| n.subnet.parse().ok())
            .collect();
        let subnet = match &o.subnet {
            Some(s) => {
                let net: Ipv4Net = s.parse().map_err(EngineError::InvalidArgument)?;
                if net.prefix > 30 {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid subnet {s}: the prefix must be at most /30"
                    )));
                }
                if existing.iter().any(|e| e.overlaps(&net)) {
                    return Err(EngineError::Conflict(
                        "invalid pool request: Pool overlaps with other one on this address space"
                            .into(),
                    ));
                }
                net.trunc()
            }
            None => {
                let mut taken = link::host_routes(&[])?;
                taken.extend(existing);
                ipam::choose_subnet(&taken)?
            }
        };
        let gateway = match &o.gateway {
            Some(g) => {
                let ip: Ipv4Addr = g.parse().map_err(|_| {
                    EngineError::InvalidArgument(format!("invalid gateway address {g}"))
                })?;
                if !subnet.contains(ip) || ip == subnet.network() || ip == subnet.broadcast() {
                    return Err(EngineError::InvalidArgument(format!(
                        "no matching subnet for gateway {g}"
                    )));
                }
                ip
            }
            None => subnet.nth(1).unwrap_or(subnet.addr),
        };
        let id = crate::store::random_hex(32);
        let rec = self.store.create_network(&NetworkRecord {
            bridge: format!("br-{}", &id[..12]),
            id,
            name: o.name.clone(),
            driver: "bridge".into(),
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            created: String::new(),
            labels: o.labels.clone(),
            internal: o.internal,
        })?;
        let made = self
            .ensure_bridge(&rec)
            .and_then(|()| self.apply_firewall());
        drop(_guard);
        if let Err(e) = made {
            let _ = link::delete(&rec.bridge);
            let _ = self.store.remove_network(&rec.id);
            let _ = self.apply_firewall();
            return Err(e);
        }
        tracing::info!(network = %rec.name, subnet = %rec.subnet, "network created");
        Ok(json!({"Id": rec.id, "Warning": ""}))
    }

    /// Running containers with an address on a network.
    fn active_members(&self, n: &NetworkRecord) -> Result<Vec<String>, EngineError> {
        Ok(self
            .store
            .endpoints_in(&n.id)?
            .into_iter()
            .filter(|e| self.net_state(&e.container_id).is_some())
            .map(|e| e.container_id)
            .collect())
    }

    fn network_json(&self, n: &NetworkRecord, with_containers: bool) -> Value {
        let mut containers = serde_json::Map::new();
        let prefix = n.subnet.parse::<Ipv4Net>().map(|s| s.prefix).unwrap_or(0);
        if with_containers {
            for e in self.store.endpoints_in(&n.id).unwrap_or_default() {
                if self.net_state(&e.container_id).is_none() {
                    continue;
                }
                let name = self
                    .store
                    .container(&e.container_id)
                    .map(|r| r.name)
                    .unwrap_or_default();
                containers.insert(
                    e.container_id.clone(),
                    json!({"Name": name, "EndpointID": "", "MacAddress": e.mac,
                           "IPv4Address": format!("{}/{prefix}", e.ip), "IPv6Address": ""}),
                );
            }
        }
        let config = if n.subnet.is_empty() {
            json!([])
        } else {
            json!([{"Subnet": n.subnet, "Gateway": n.gateway}])
        };
        let mut options = serde_json::Map::new();
        if n.driver == "bridge" {
            options.insert("com.docker.network.bridge.name".into(), json!(n.bridge));
        }
        json!({
            "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local",
            "Driver": n.driver, "EnableIPv4": true, "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": null, "Config": config},
            "Internal": n.internal, "Attachable": false, "Ingress": false,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
            "Containers": containers, "Options": options, "Labels": n.labels,
        })
    }

    /// `GET /networks` (filters `name`, `id`, `driver`).
    pub fn list_networks(
        &self,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<Vec<Value>, EngineError> {
        let matches = |key: &str, f: &dyn Fn(&str) -> bool| {
            filters.get(key).is_none_or(|vs| vs.iter().any(|v| f(v)))
        };
        Ok(self
            .store
            .networks()?
            .iter()
            .filter(|n| matches("name", &|v| n.name.contains(v)))
            .filter(|n| matches("id", &|v| n.id.starts_with(v)))
            .filter(|n| matches("driver", &|v| n.driver == v))
            .map(|n| self.network_json(n, false))
            .collect())
    }

    /// `GET /networks/{id}`.
    pub fn inspect_network(&self, name: &str) -> Result<Value, EngineError> {
        let n = self.store.resolve_network(name)?;
        Ok(self.network_json(&n, true))
    }

    /// `DELETE /networks/{id}`.
    pub fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        let n = self.store.resolve_network(name)?;
        if PREDEFINED.contains(&n.name.as_str()) {
            return Err(EngineError::Conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        if !self.active_members(&n)?.is_empty() {
            return Err(EngineError::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        for e in self.store.endpoints_in(&n.id)? {
            self.store.remove_endpoint(&n.id, &e.container_id)?;
        }
        link::delete(&n.bridge)?;
        self.store.remove_network(&n.id)?;
        self.apply_firewall()?;
        tracing::info!(network = %n.name, "network removed");
        Ok(())
    }

    /// `POST /networks/prune`: user networks without running containers.
    pub fn prune_networks(&self) -> Result<Value, EngineError> {
        let mut deleted = Vec::new();
        for n in self.store.networks()? {
            if PREDEFINED.contains(&n.name.as_str()) || !self.active_members(&n)?.is_empty() {
                continue;
            }
            self.remove_network(&n.id)?;
            deleted.push(n.name);
        }
        Ok(json!({"NetworksDeleted": deleted}))
    }

    /// `POST /networks/{id}/connect`.
    pub fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
        ip: Option<Ipv4Addr>,
    ) -> Result<(), EngineError> {
        let n = self.store.resolve_network(network)?;
        let v = self.container_view(container)?;
        if n.driver != "bridge" || !matches!(self.mode(&v)?, Mode::Bridge(_)) {
            return Err(EngineError::Conflict(format!(
                "container {} cannot be connected to network {}: only bridge networks and bridged containers can be connected",
                v.rec.name, n.name
            )));
        }
        if self
            .store
            .endpoints_of(&v.rec.id)?
            .iter()
            .any(|e| e.network_id == n.id)
        {
            return Err(EngineError::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                v.rec.name, n.name
            )));
        }
        let mut aliases = aliases.to_vec();
        aliases.extend(endpoint_aliases(&v, &n.name));
        let ep = self.lease_on(&n, &v.rec.id, &aliases, ip)?;
        let _g = lock(&self.net_lock);
        if let Some(mut st) = self.net_state(&v.rec.id) {
            if let Some(ns) = st.netns.clone().filter(|_| st.owned_netns) {
                let index = st.veths.len();
                let attached = self.attach_endpoint(&n, &ep, &ns, index, &mut st);
                if let Err(e) = attached {
                    let _ = self.store.remove_endpoint(&n.id, &v.rec.id);
                    return Err(e);
                }
                self.save_net_state(&v.rec.id, &st)?;
            }
        }
        drop(_g);
        self.refresh_network_hosts(&n.id);
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub fn disconnect_network(&self, network: &str, container: &str) -> Result<(), EngineError> {
        let n = self.store.resolve_network(network)?;
        let v = self.container_view(container)?;
        if !self
            .store
            .endpoints_of(&v.rec.id)?
            .iter()
            .any(|e| e.network_id == n.id)
        {
            return Err(EngineError::Store(StoreError::Invalid(format!(
                "container {} is not connected to network {}",
                v.rec.id, n.name
            ))));
        }
        let _g = lock(&self.net_lock);
        if let Some(mut st) = self.net_state(&v.rec.id) {
            let veth = super::network::veth_name(&v.rec.id, &n.id);
            link::delete(&veth)?;
            st.veths.retain(|x| *x != veth);
            self.save_net_state(&v.rec.id, &st)?;
        }
        drop(_g);
        self.store.remove_endpoint(&n.id, &v.rec.id)?;
        self.refresh_network_hosts(&n.id);
        Ok(())
    }
}
