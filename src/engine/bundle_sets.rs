//! Bundle sets (docs/cluster.md): list, inspect, diff, search and remove
//! the sets `cluster capture` records; their member bundles are ordinary
//! bundles of this store.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::cluster::{BundleSet, SetHost};
use super::{Engine, EngineError};

/// Whether `id` names a bundle set (`s-…`) rather than a bundle.
pub fn is_set_id(id: &str) -> bool {
    id.starts_with("s-")
}

impl Engine {
    /// Every bundle set, newest first.
    pub fn list_sets(&self) -> Result<Vec<BundleSet>, EngineError> {
        let (sets, hosts) = self.store.with_db(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, label, annotations, created, duration_ms FROM bundle_sets
                 ORDER BY created DESC",
            )?;
            let sets = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut stmt = conn.prepare(
                "SELECT set_id, host, url, bundle_id, status, error, bytes, containers, ms
                 FROM bundle_set_hosts ORDER BY set_id, position",
            )?;
            let hosts = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        SetHost {
                            host: r.get(1)?,
                            url: r.get(2)?,
                            bundle: r.get(3)?,
                            status: r.get(4)?,
                            error: r.get(5)?,
                            bytes: r.get::<_, i64>(6)? as u64,
                            containers: r.get::<_, i64>(7)? as u64,
                            ms: r.get::<_, i64>(8)? as u64,
                        },
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((sets, hosts))
        })?;
        let mut by_set: HashMap<String, Vec<SetHost>> = HashMap::new();
        for (s, h) in hosts {
            by_set.entry(s).or_default().push(h);
        }
        Ok(sets
            .into_iter()
            .map(|(id, label, ann, created, ms)| BundleSet {
                hosts: by_set.remove(&id).unwrap_or_default(),
                annotations: serde_json::from_str(&ann).unwrap_or_default(),
                id,
                label,
                created,
                duration_ms: ms as u64,
            })
            .collect())
    }

    /// A set by ID or unique ID prefix (`s-…`).
    pub fn bundle_set(&self, name: &str) -> Result<BundleSet, EngineError> {
        let all = self.list_sets()?;
        if let Some(s) = all.iter().find(|s| s.id == name) {
            return Ok(s.clone());
        }
        let mut found: Vec<BundleSet> =
            all.into_iter().filter(|s| s.id.starts_with(name)).collect();
        match found.len() {
            1 if name.len() > 2 => Ok(found.remove(0)),
            0 | 1 => Err(EngineError::NotFound(format!("no such bundle set: {name}"))),
            _ => Err(EngineError::InvalidArgument(format!(
                "bundle set ID prefix {name} is ambiguous"
            ))),
        }
    }

    /// `bundle inspect s-…`: the set with, per host, whether its bundle is
    /// (still) here and the bundle's size.
    pub fn bundle_set_manifest(&self, name: &str) -> Result<Value, EngineError> {
        let set = self.bundle_set(name)?;
        let bundles: HashMap<String, crate::capture::BundleSummary> = self
            .list_bundles()?
            .into_iter()
            .map(|b| (b.id.clone(), b))
            .collect();
        let mut v =
            serde_json::to_value(&set).map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        for (h, out) in set
            .hosts
            .iter()
            .zip(v["hosts"].as_array_mut().into_iter().flatten())
        {
            let here = h.bundle.as_ref().and_then(|b| bundles.get(b));
            out["present"] = json!(here.is_some() && h.status == "ok");
            if let Some(b) = here {
                out["size"] = json!(b.size);
            }
        }
        Ok(v)
    }

    /// Summary rows of sets for `bundle ls` (containers and size summed
    /// over the member bundles that are here).
    pub fn list_set_summaries(&self) -> Result<Vec<Value>, EngineError> {
        let bundles: HashMap<String, crate::capture::BundleSummary> = self
            .list_bundles()?
            .into_iter()
            .map(|b| (b.id.clone(), b))
            .collect();
        Ok(self
            .list_sets()?
            .into_iter()
            .map(|s| {
                let (mut containers, mut size, mut new_bytes, mut bytes) = (0, 0, 0, 0);
                for (h, b) in s.ok_hosts() {
                    bytes += h.bytes;
                    if let Some(b) = bundles.get(b) {
                        containers += b.containers;
                        size += b.size;
                        new_bytes += b.new_bytes;
                    }
                }
                let ok = s.ok_hosts().count();
                json!({
                    "id": s.id, "label": s.label, "created": s.created,
                    "containers": containers, "size": size, "new_bytes": new_bytes,
                    "bytes_moved": bytes, "hosts": s.hosts.len(), "hosts_ok": ok,
                    "duration_ms": s.duration_ms,
                    "members": s.hosts.iter().map(|h| json!({
                        "host": h.host, "bundle": h.bundle, "status": h.status,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect())
    }

    /// The set and host a bundle belongs to, by bundle ID.
    pub fn set_members(&self) -> Result<HashMap<String, (String, String)>, EngineError> {
        let mut out = HashMap::new();
        for s in self.list_sets()? {
            for (h, b) in s.ok_hosts() {
                out.insert(b.to_string(), (s.id.clone(), h.host.clone()));
            }
        }
        Ok(out)
    }

    /// `bundle rm s-…`: the set and its member bundles. Returns the bytes
    /// freed.
    pub fn remove_set(&self, name: &str) -> Result<u64, EngineError> {
        let set = self.bundle_set(name)?;
        let mut freed = 0;
        for h in &set.hosts {
            let Some(b) = &h.bundle else { continue };
            match self.remove_bundle(b) {
                Ok(n) => freed += n,
                Err(EngineError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.store.with_db(|conn| {
            conn.execute("DELETE FROM bundle_sets WHERE id = ?1", [&set.id])?;
            Ok(())
        })?;
        tracing::info!(set_id = %set.id, freed, "removed bundle set");
        Ok(freed)
    }

    /// `bundle diff s-A s-B`: per host (of either set), the bundle diff of
    /// its two bundles, or why there is none.
    pub fn bundle_set_diff(&self, a: &str, b: &str) -> Result<Value, EngineError> {
        let (sa, sb) = (self.bundle_set(a)?, self.bundle_set(b)?);
        let mut hosts: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
        for (h, id) in sa.ok_hosts() {
            hosts.entry(h.host.clone()).or_default().0 = Some(id.to_string());
        }
        for (h, id) in sb.ok_hosts() {
            hosts.entry(h.host.clone()).or_default().1 = Some(id.to_string());
        }
        for h in sa.hosts.iter().chain(&sb.hosts) {
            hosts.entry(h.host.clone()).or_default();
        }
        let mut out = Vec::new();
        for (host, (ba, bb)) in hosts {
            let mut row = json!({"host": host, "a": ba, "b": bb});
            match (&ba, &bb) {
                (Some(x), Some(y)) => match self.bundle_diff(x, y) {
                    Ok(d) => row["diff"] = d,
                    Err(e) => row["error"] = json!(e.to_string()),
                },
                (Some(_), None) => row["error"] = json!("no bundle of this host in B"),
                (None, Some(_)) => row["error"] = json!("no bundle of this host in A"),
                (None, None) => row["error"] = json!("no bundle of this host in either set"),
            }
            out.push(row);
        }
        Ok(json!({"a": sa.id, "b": sb.id, "hosts": out}))
    }

    /// `bundle search`, aware of sets: `bundle` may be a set (its members
    /// are searched), and a hit in a set's member bundle names its `set`
    /// and `host`.
    pub fn search_with_sets(
        &self,
        text: &str,
        bundle: Option<&str>,
        container: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Value>, EngineError> {
        let mut hits = match bundle {
            Some(s) if is_set_id(s) => {
                let set = self.bundle_set(s)?;
                let mut all = Vec::new();
                for (_, b) in set.ok_hosts() {
                    match self.search_bundles(text, Some(b), container, limit) {
                        Ok(v) => all.extend(v),
                        Err(EngineError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                all.truncate(limit);
                all
            }
            _ => self.search_bundles(text, bundle, container, limit)?,
        };
        let members = self.set_members()?;
        for h in &mut hits {
            let Some(b) = h["bundle"].as_str() else {
                continue;
            };
            if let Some((set, host)) = members.get(b) {
                h["set"] = json!(set);
                h["host"] = json!(host);
            }
        }
        Ok(hits)
    }
}
