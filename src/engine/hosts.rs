//! The cluster inventory (docs/cluster.md): named remote daemons kept in
//! the local SQLite (migration 5) with the paths of their credentials, and
//! the API client of one of them.

use std::path::Path;

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{Engine, EngineError};
use crate::cli::client::{Client, ClientAuth};

/// One host of the inventory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostRecord {
    /// Inventory name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
    pub name: String,
    /// `tcp://ADDR:PORT` or `unix:///PATH`.
    pub url: String,
    /// CA certificate the host's certificate must chain to (mutual TLS).
    pub tlscacert: Option<String>,
    /// Our client certificate.
    pub tlscert: Option<String>,
    /// Its key.
    pub tlskey: Option<String>,
    /// A file holding the bearer token (the token itself is never stored).
    pub token_file: Option<String>,
    /// When it was added (RFC 3339).
    pub created: String,
}

impl HostRecord {
    /// How it authenticates: `tls`, `token` or `none`.
    pub fn auth_kind(&self) -> &'static str {
        if self.tlscert.is_some() {
            "tls"
        } else if self.token_file.is_some() {
            "token"
        } else {
            "none"
        }
    }
}

/// Check a new host's fields: a sane name, a URL amber talks to, and
/// either complete TLS files or a token file, each an existing file
/// (stored as absolute paths).
pub fn validate_host(h: &mut HostRecord) -> Result<(), EngineError> {
    if !super::spec::valid_name(&h.name) {
        return Err(EngineError::InvalidArgument(format!(
            "invalid host name {:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+",
            h.name
        )));
    }
    let url_ok = match h.url.split_once("://") {
        Some(("tcp", rest)) => !rest.is_empty() && !rest.contains('/'),
        Some(("unix", rest)) => rest.starts_with('/'),
        _ => false,
    };
    if !url_ok {
        return Err(EngineError::InvalidArgument(format!(
            "invalid host URL {:?}: expected tcp://ADDR:PORT or unix:///PATH",
            h.url
        )));
    }
    let tls = [&h.tlscacert, &h.tlscert, &h.tlskey];
    let given = tls.iter().filter(|f| f.is_some()).count();
    if given != 0 && given != 3 {
        return Err(EngineError::InvalidArgument(
            "TLS needs all of --tlscacert, --tlscert and --tlskey".into(),
        ));
    }
    if given == 3 && h.token_file.is_some() {
        return Err(EngineError::InvalidArgument(
            "give TLS files or --token-file, not both".into(),
        ));
    }
    for f in [
        &mut h.tlscacert,
        &mut h.tlscert,
        &mut h.tlskey,
        &mut h.token_file,
    ]
    .into_iter()
    .flatten()
    {
        let p = Path::new(f.as_str());
        if !p.is_absolute() {
            return Err(EngineError::InvalidArgument(format!(
                "{f}: give an absolute path (the daemon reads it)"
            )));
        }
        if !p.is_file() {
            return Err(EngineError::InvalidArgument(format!("{f}: no such file")));
        }
    }
    Ok(())
}

impl Engine {
    /// `cluster add`: a new inventory entry (a name in use is a conflict).
    pub fn add_host(&self, mut h: HostRecord) -> Result<HostRecord, EngineError> {
        validate_host(&mut h)?;
        h.created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let inserted = self.store.with_db(|conn| {
            Ok(conn.execute(
                "INSERT OR IGNORE INTO cluster_hosts
                 (name, url, tlscacert, tlscert, tlskey, token_file, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    h.name,
                    h.url,
                    h.tlscacert,
                    h.tlscert,
                    h.tlskey,
                    h.token_file,
                    h.created
                ],
            )?)
        })?;
        if inserted == 0 {
            return Err(EngineError::Conflict(format!(
                "host {} is already in the inventory (cluster rm it first)",
                h.name
            )));
        }
        tracing::info!(host = %h.name, url = %h.url, auth = h.auth_kind(), "added cluster host");
        Ok(h)
    }

    /// The inventory, by name.
    pub fn list_hosts(&self) -> Result<Vec<HostRecord>, EngineError> {
        Ok(self.store.with_db(|conn| {
            let mut stmt = conn.prepare(
                "SELECT name, url, tlscacert, tlscert, tlskey, token_file, created
                 FROM cluster_hosts ORDER BY name",
            )?;
            let rows = stmt
                .query_map([], host_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })?)
    }

    /// One inventory entry by name.
    pub fn host(&self, name: &str) -> Result<Option<HostRecord>, EngineError> {
        Ok(self.store.with_db(|conn| {
            Ok(conn
                .query_row(
                    "SELECT name, url, tlscacert, tlscert, tlskey, token_file, created
                     FROM cluster_hosts WHERE name = ?1",
                    [name],
                    host_row,
                )
                .optional()?)
        })?)
    }

    /// `cluster rm`.
    pub fn remove_host(&self, name: &str) -> Result<(), EngineError> {
        let n = self.store.with_db(|conn| {
            Ok(conn.execute("DELETE FROM cluster_hosts WHERE name = ?1", [name])?)
        })?;
        if n == 0 {
            return Err(EngineError::NotFound(format!("no such host: {name}")));
        }
        tracing::info!(host = name, "removed cluster host");
        Ok(())
    }

    /// The hosts a cluster command works on: all of the inventory, or the
    /// named ones (each must exist), in inventory order.
    pub fn cluster_targets(&self, names: &[String]) -> Result<Vec<HostRecord>, EngineError> {
        let all = self.list_hosts()?;
        if all.is_empty() {
            return Err(EngineError::InvalidArgument(
                "the cluster inventory is empty: add hosts with `amber cluster add NAME URL`"
                    .into(),
            ));
        }
        if names.is_empty() {
            return Ok(all);
        }
        for n in names {
            if !all.iter().any(|h| &h.name == n) {
                return Err(EngineError::NotFound(format!("no such host: {n}")));
            }
        }
        Ok(all
            .into_iter()
            .filter(|h| names.contains(&h.name))
            .collect())
    }

    /// The API client of a remote daemon: `host` is an inventory name
    /// (with its TLS files or token file) or a URL (no credentials).
    pub fn remote_client(&self, host: &str) -> Result<Client, EngineError> {
        let bad = |e: String| EngineError::InvalidArgument(format!("host {host}: {e}"));
        let Some(h) = self.host(host)? else {
            if host.contains("://") || host.starts_with('/') {
                return Client::new(host).map_err(|e| bad(e.to_string()));
            }
            return Err(EngineError::NotFound(format!(
                "no such host: {host} (add it with `amber cluster add {host} tcp://ADDR:PORT ...`)"
            )));
        };
        let auth = match (&h.tlscacert, &h.tlscert, &h.tlskey, &h.token_file) {
            (Some(ca), Some(cert), Some(key), _) => ClientAuth::Tls {
                ca: ca.into(),
                cert: cert.into(),
                key: key.into(),
            },
            (_, _, _, Some(f)) => ClientAuth::Token(
                crate::cli::remote::read_token(Path::new(f)).map_err(|e| bad(e.to_string()))?,
            ),
            _ => ClientAuth::None,
        };
        Client::with_auth(&h.url, auth).map_err(|e| bad(e.to_string()))
    }
}

fn host_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HostRecord> {
    Ok(HostRecord {
        name: r.get(0)?,
        url: r.get(1)?,
        tlscacert: r.get(2)?,
        tlscert: r.get(3)?,
        tlskey: r.get(4)?,
        token_file: r.get(5)?,
        created: r.get(6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, url: &str) -> HostRecord {
        HostRecord {
            name: name.into(),
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn validates_names_urls_and_auth() {
        assert!(validate_host(&mut rec("h1", "tcp://10.0.0.1:2376")).is_ok());
        assert!(validate_host(&mut rec("h1", "unix:///run/a.sock")).is_ok());
        assert!(validate_host(&mut rec("-x", "tcp://10.0.0.1:2376")).is_err());
        assert!(validate_host(&mut rec("a/b", "tcp://10.0.0.1:2376")).is_err());
        assert!(validate_host(&mut rec("h1", "http://x")).is_err());
        assert!(validate_host(&mut rec("h1", "tcp://")).is_err());
        let mut h = rec("h1", "tcp://10.0.0.1:2376");
        h.tlscert = Some("/etc/hostname".into());
        assert!(validate_host(&mut h).is_err(), "partial TLS");
        let mut h = rec("h1", "tcp://10.0.0.1:2376");
        h.token_file = Some("/nonexistent/token".into());
        assert!(validate_host(&mut h).is_err(), "missing token file");
        let mut h = rec("h1", "tcp://10.0.0.1:2376");
        h.token_file = Some("relative".into());
        assert!(validate_host(&mut h).is_err(), "relative path");
    }
}
