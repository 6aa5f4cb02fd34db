//! What others see of a container's network: `/etc/hosts` of members of
//! user networks (names and aliases of running peers), inspect's
//! `.NetworkSettings` and the `Ports` of `ps`.

use serde_json::{json, Value};

use super::containers::ContainerView;
use super::network::Mode;
use super::{Engine, EngineError};
use crate::net::{hosts, Ipv4Net};
use crate::store::{EndpointRecord, NetworkRecord};

impl Engine {
    /// `--add-host` entries, `host-gateway` being the default bridge's address.
    pub(super) fn extra_hosts(
        &self,
        v: &ContainerView,
    ) -> Result<Vec<hosts::HostEntry>, EngineError> {
        let gateway = self
            .store
            .resolve_network("bridge")
            .map(|n| n.gateway)
            .unwrap_or_default();
        v.spec
            .host_config
            .extra_hosts
            .iter()
            .flatten()
            .map(|h| hosts::parse_extra_host(h, &gateway).map_err(EngineError::InvalidArgument))
            .collect()
    }

    /// resolv.conf from `base` with `--dns`, `--dns-search`, `--dns-option`.
    pub(super) fn container_resolv(&self, v: &ContainerView, base: &str) -> String {
        let h = &v.spec.host_config;
        let or_empty = |x: &Option<Vec<String>>| x.clone().unwrap_or_default();
        hosts::resolv_conf(
            base,
            &or_empty(&h.dns),
            &or_empty(&h.dns_search),
            &or_empty(&h.dns_options),
        )
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
    pub(super) fn write_hosts(&self, id: &str) -> Result<(), EngineError> {
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
        let mut peers = self.extra_hosts(&v)?;
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
