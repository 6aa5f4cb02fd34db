//! Network rows and their address leases (endpoints). The store keeps
//! addresses as strings: choosing one is the caller's (`net::ipam`), done
//! inside the store's transaction so two containers never get the same.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{now_rfc3339, Store, StoreError};

/// A network as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRecord {
    /// 64 hex digits.
    pub id: String,
    /// Unique name (`bridge`, `host`, `none`, user names).
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// IPv4 CIDR (`172.18.0.0/16`), empty for host/null.
    pub subnet: String,
    /// Gateway address (the bridge's), empty for host/null.
    pub gateway: String,
    /// Bridge link name, empty for host/null.
    pub bridge: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// User labels.
    pub labels: BTreeMap<String, String>,
    /// No masquerading (`--internal`).
    pub internal: bool,
}

/// A container's address on a network (its lease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    /// The network.
    pub network_id: String,
    /// The container.
    pub container_id: String,
    /// IPv4 address.
    pub ip: String,
    /// MAC address.
    pub mac: String,
    /// DNS aliases on this network.
    pub aliases: Vec<String>,
}

const NET_COLUMNS: &str = "id, name, driver, subnet, gateway, bridge, created, labels, internal";

fn net_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NetworkRecord> {
    let labels: String = r.get(7)?;
    Ok(NetworkRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        driver: r.get(2)?,
        subnet: r.get(3)?,
        gateway: r.get(4)?,
        bridge: r.get(5)?,
        created: r.get(6)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        internal: r.get::<_, i64>(8)? != 0,
    })
}

fn ep_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EndpointRecord> {
    let aliases: String = r.get(4)?;
    Ok(EndpointRecord {
        network_id: r.get(0)?,
        container_id: r.get(1)?,
        ip: r.get(2)?,
        mac: r.get(3)?,
        aliases: serde_json::from_str(&aliases).unwrap_or_default(),
    })
}

impl Store {
    /// Add a network. Its `created` is set here. A name in use is a conflict.
    pub fn create_network(&self, n: &NetworkRecord) -> Result<NetworkRecord, StoreError> {
        let conn = self.db();
        let labels = serde_json::to_string(&n.labels).unwrap_or_else(|_| "{}".into());
        let done = conn.execute(
            &format!("INSERT INTO networks ({NET_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
            params![
                n.id,
                n.name,
                n.driver,
                n.subnet,
                n.gateway,
                n.bridge,
                now_rfc3339(),
                labels,
                n.internal as i64
            ],
        );
        drop(conn);
        match done {
            Ok(_) => self.network_by_id(&n.id),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Conflict(format!(
                    "network with name {} already exists",
                    n.name
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every network, by name.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>, StoreError> {
        let conn = self.db();
        let mut stmt =
            conn.prepare(&format!("SELECT {NET_COLUMNS} FROM networks ORDER BY name"))?;
        let rows = stmt.query_map([], net_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn network_by_id(&self, id: &str) -> Result<NetworkRecord, StoreError> {
        let conn = self.db();
        conn.query_row(
            &format!("SELECT {NET_COLUMNS} FROM networks WHERE id = ?1"),
            [id],
            net_row,
        )
        .optional()?
        .ok_or_else(|| StoreError::NoSuchNetwork(id.to_string()))
    }

    /// Resolve a network by name, full ID or unique ID prefix.
    pub fn resolve_network(&self, name_or_id: &str) -> Result<NetworkRecord, StoreError> {
        let all = self.networks()?;
        if let Some(n) = all
            .iter()
            .find(|n| n.name == name_or_id || n.id == name_or_id)
        {
            return Ok(n.clone());
        }
        let by_prefix: Vec<&NetworkRecord> = if name_or_id.is_empty() {
            Vec::new()
        } else {
            all.iter()
                .filter(|n| n.id.starts_with(name_or_id))
                .collect()
        };
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(StoreError::NoSuchNetwork(name_or_id.to_string())),
            _ => Err(StoreError::Ambiguous(format!(
                "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
                by_prefix.len()
            ))),
        }
    }

    /// Delete a network row (its endpoints must be gone).
    pub fn remove_network(&self, id: &str) -> Result<(), StoreError> {
        let conn = self.db();
        conn.execute("DELETE FROM networks WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Lease an address: `choose` gets the addresses in use on the network
    /// and returns `(ip, mac)`; both are recorded in one exclusive
    /// transaction. An existing lease of the container is returned as is.
    pub fn add_endpoint(
        &self,
        network_id: &str,
        container_id: &str,
        aliases: &[String],
        choose: impl FnOnce(&[String]) -> Result<(String, String), StoreError>,
    ) -> Result<EndpointRecord, StoreError> {
        let mut conn = self.db();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        let existing = tx
            .query_row(
                "SELECT network_id, container_id, ip, mac, aliases FROM endpoints
                 WHERE network_id = ?1 AND container_id = ?2",
                params![network_id, container_id],
                ep_row,
            )
            .optional()?;
        if let Some(e) = existing {
            return Ok(e);
        }
        let used: Vec<String> = {
            let mut stmt = tx.prepare("SELECT ip FROM endpoints WHERE network_id = ?1")?;
            let v = stmt
                .query_map([network_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            v
        };
        let (ip, mac) = choose(&used)?;
        let aliases_json = serde_json::to_string(aliases).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "INSERT INTO endpoints (network_id, container_id, ip, mac, aliases)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![network_id, container_id, ip, mac, aliases_json],
        )?;
        tx.commit()?;
        Ok(EndpointRecord {
            network_id: network_id.into(),
            container_id: container_id.into(),
            ip,
            mac,
            aliases: aliases.to_vec(),
        })
    }

    /// A container's leases, in the order they were made.
    pub fn endpoints_of(&self, container_id: &str) -> Result<Vec<EndpointRecord>, StoreError> {
        self.endpoints_where("container_id", container_id)
    }

    /// The leases on a network.
    pub fn endpoints_in(&self, network_id: &str) -> Result<Vec<EndpointRecord>, StoreError> {
        self.endpoints_where("network_id", network_id)
    }

    fn endpoints_where(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Vec<EndpointRecord>, StoreError> {
        let conn = self.db();
        let mut stmt = conn.prepare(&format!(
            "SELECT network_id, container_id, ip, mac, aliases FROM endpoints
             WHERE {column} = ?1 ORDER BY rowid"
        ))?;
        let rows = stmt.query_map([value], ep_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Free a lease.
    pub fn remove_endpoint(&self, network_id: &str, container_id: &str) -> Result<(), StoreError> {
        let conn = self.db();
        conn.execute(
            "DELETE FROM endpoints WHERE network_id = ?1 AND container_id = ?2",
            params![network_id, container_id],
        )?;
        Ok(())
    }
}
