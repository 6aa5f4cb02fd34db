//! Whole-cluster commands (docs/cluster.md): every host of the inventory
//! asked in parallel through its API, each within a timeout, one host's
//! failure never failing the others. `cluster capture` gathers the hosts'
//! bundles into one bundle set on this daemon (the coordinator).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::hosts::HostRecord;
use super::{Engine, EngineError};
use crate::cli::client::{enc, read_all, Client};

/// How long `cluster ls` waits for a host.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long `cluster ps`/`images` wait for a host.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default per-host limit of capture, transfer, baseline and rollback.
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// How one host's part ended.
#[derive(Debug)]
enum Outcome<T> {
    Ok(T),
    Failed(String),
    Timeout,
}

impl<T> Outcome<T> {
    fn status(&self) -> &'static str {
        match self {
            Outcome::Ok(_) => "ok",
            Outcome::Failed(_) => "failed",
            // A host that does not answer in time has failed; its error
            // says it timed out.
            Outcome::Timeout => "failed",
        }
    }
}

/// Run `f` against every host at once, each within `limit`; results in
/// host order, with the milliseconds each took.
async fn fan_out<T, F, Fut>(
    engine: &Engine,
    hosts: &[HostRecord],
    limit: Duration,
    f: F,
) -> Vec<(Outcome<T>, u64)>
where
    F: Fn(Client, &HostRecord) -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let jobs = hosts.iter().map(|h| {
        let client = engine.remote_client(&h.name);
        let f = &f;
        async move {
            let t = Instant::now();
            let out = match client {
                Err(e) => Outcome::Failed(e.to_string()),
                Ok(c) => match tokio::time::timeout(limit, f(c, h)).await {
                    Ok(Ok(v)) => Outcome::Ok(v),
                    Ok(Err(e)) => Outcome::Failed(e),
                    Err(_) => Outcome::Timeout,
                },
            };
            (out, t.elapsed().as_millis() as u64)
        }
    });
    futures_util::future::join_all(jobs).await
}

async fn get_json(c: &Client, path: &str) -> Result<Value, String> {
    c.get::<Value>(path).await.map_err(|e| e.to_string())
}

async fn post_json(c: &Client, path: &str, body: &Value) -> Result<Value, String> {
    let resp = c.post_json(path, body).await.map_err(|e| e.to_string())?;
    let bytes = read_all(resp).await.map_err(|e| e.to_string())?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("unexpected answer: {e}"))
}

fn timeout_of(secs: Option<u64>) -> Result<Duration, EngineError> {
    match secs.unwrap_or(DEFAULT_TIMEOUT_SECS) {
        0 => Err(EngineError::InvalidArgument(
            "--timeout must be at least 1 second".into(),
        )),
        s => Ok(Duration::from_secs(s)),
    }
}

/// What `POST /amber/v1/cluster/capture` asks for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterCaptureOptions {
    /// Label of the set (and of each host's bundle).
    pub label: String,
    /// `key=value` annotations.
    pub annotations: BTreeMap<String, String>,
    /// Only these inventory hosts (all when empty).
    pub hosts: Vec<String>,
    /// Keep volume content too.
    pub volumes: bool,
    /// Per-host limit, seconds, of its capture and of its transfer.
    pub timeout: Option<u64>,
}

/// One host's part of a bundle set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetHost {
    /// Inventory name.
    pub host: String,
    /// Its URL at capture time.
    pub url: String,
    /// The bundle it captured (here when `status` is `ok`).
    pub bundle: Option<String>,
    /// `ok` or `failed` (a timeout is a failure; its error says so).
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Bytes transferred to the coordinator.
    pub bytes: u64,
    /// Containers captured.
    pub containers: u64,
    /// Milliseconds of its capture and transfer.
    pub ms: u64,
}

/// A bundle set: one `cluster capture`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleSet {
    /// `s-<hex>`.
    pub id: String,
    /// Label.
    pub label: String,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Capture time (RFC 3339).
    pub created: String,
    /// Milliseconds until the set was complete.
    pub duration_ms: u64,
    /// Per host, in inventory order.
    pub hosts: Vec<SetHost>,
}

impl BundleSet {
    /// Hosts whose bundle is here.
    pub fn ok_hosts(&self) -> impl Iterator<Item = (&SetHost, &str)> {
        self.hosts
            .iter()
            .filter(|h| h.status == "ok")
            .filter_map(|h| h.bundle.as_deref().map(|b| (h, b)))
    }
}

/// A new set ID.
fn new_set_id() -> String {
    format!("s-{}", crate::store::random_hex(6))
}

/// Inventory and listings across the cluster.
impl Engine {
    /// `cluster ls`: each host with whether it answers, its version and
    /// its number of containers (all hosts at once, a short timeout).
    pub async fn cluster_ls(&self) -> Result<Vec<Value>, EngineError> {
        let hosts = self.list_hosts()?;
        let res = fan_out(self, &hosts, PROBE_TIMEOUT, |c, _| async move {
            let (v, cs) = tokio::join!(
                get_json(&c, "/version"),
                get_json(&c, "/containers/json?all=1")
            );
            let v = v?;
            Ok((
                v["Version"].as_str().unwrap_or_default().to_string(),
                cs.ok().and_then(|c| c.as_array().map(|a| a.len())),
            ))
        })
        .await;
        Ok(hosts
            .iter()
            .zip(res)
            .map(|(h, (out, ms))| {
                let mut row = json!({
                    "Name": h.name, "Url": h.url, "Auth": h.auth_kind(),
                    "Reachable": matches!(out, Outcome::Ok(_)), "Ms": ms,
                });
                match out {
                    Outcome::Ok((version, containers)) => {
                        row["Version"] = json!(version);
                        row["Containers"] = json!(containers);
                    }
                    Outcome::Failed(e) => row["Error"] = json!(e),
                    Outcome::Timeout => {
                        row["Error"] =
                            json!(format!("no answer within {} s", PROBE_TIMEOUT.as_secs()))
                    }
                }
                row
            })
            .collect())
    }

    /// `cluster ps` (`what` = `containers`, with `all`) and `cluster
    /// images` (`what` = `images`): every host's list, each item with a
    /// `Host` field; `Errors` lists the hosts that did not answer.
    pub async fn cluster_list(
        &self,
        what: &str,
        all: bool,
        names: &[String],
    ) -> Result<Value, EngineError> {
        let path = match what {
            "containers" => format!("/containers/json?all={}", if all { 1 } else { 0 }),
            "images" => "/images/json".to_string(),
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "cannot list {other:?} across the cluster"
                )))
            }
        };
        let hosts = self.cluster_targets(names)?;
        let res = fan_out(self, &hosts, LIST_TIMEOUT, |c, _| {
            let path = path.clone();
            async move { get_json(&c, &path).await }
        })
        .await;
        let mut items = Vec::new();
        let mut errors = Vec::new();
        for (h, (out, _)) in hosts.iter().zip(res) {
            match out {
                Outcome::Ok(Value::Array(list)) => {
                    for mut it in list {
                        if let Value::Object(m) = &mut it {
                            m.insert("Host".into(), json!(h.name));
                        }
                        items.push(it);
                    }
                }
                Outcome::Ok(_) => errors.push(json!({"Host": h.name, "Error": "not a list"})),
                Outcome::Failed(e) => errors.push(json!({"Host": h.name, "Error": e})),
                Outcome::Timeout => errors.push(json!({
                    "Host": h.name,
                    "Error": format!("no answer within {} s", LIST_TIMEOUT.as_secs()),
                })),
            }
        }
        Ok(json!({"Items": items, "Errors": errors, "Hosts": hosts.len()}))
    }
}

/// `cluster capture`.
impl Engine {
    /// Every host captures all its containers at once; then every host's
    /// bundle is pulled here, in parallel, and one bundle set is recorded. A host that
    /// fails or times out is recorded as such; the others still succeed.
    pub async fn cluster_capture(
        self: &Arc<Self>,
        opts: &ClusterCaptureOptions,
    ) -> Result<BundleSet, EngineError> {
        let limit = timeout_of(opts.timeout)?;
        let hosts = self.cluster_targets(&opts.hosts)?;
        let t0 = Instant::now();
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let body = json!({
            "all": true, "label": opts.label, "annotations": opts.annotations,
            "volumes": opts.volumes,
        });
        let capture = |c: Client, _: &HostRecord| {
            let body = body.clone();
            async move {
                let v = post_json(&c, "/amber/v1/capture", &body).await?;
                let id = v["Id"]
                    .as_str()
                    .ok_or("the host's capture answer has no Id")?
                    .to_string();
                let n = v["Containers"].as_array().map_or(0, |a| a.len()) as u64;
                Ok((c, id, n))
            }
        };
        // Each host captures, then its bundle is pulled here as soon as
        // it is done, while other hosts may still capture; all hosts in
        // parallel (an import takes the capture lock only to make its
        // bundle visible).
        let capture = &capture;
        let pulls = hosts.iter().map(|h| async move {
            let (out, ms) = fan_out(self, std::slice::from_ref(h), limit, capture)
                .await
                .pop()
                .unwrap_or((Outcome::Failed("no result".into()), 0));
            let mut part = SetHost {
                host: h.name.clone(),
                url: h.url.clone(),
                bundle: None,
                status: out.status().into(),
                error: None,
                bytes: 0,
                containers: 0,
                ms,
            };
            match out {
                Outcome::Ok((client, id, n)) => {
                    part.bundle = Some(id.clone());
                    part.containers = n;
                    let t = Instant::now();
                    let pulled = tokio::time::timeout(limit, self.pull_bundle(&client, &id)).await;
                    part.ms += t.elapsed().as_millis() as u64;
                    match pulled {
                        Ok(Ok(p)) => {
                            part.bytes = p.bytes_sent;
                            part.bundle = Some(p.bundle);
                        }
                        Ok(Err(e)) => {
                            part.status = "failed".into();
                            part.error = Some(format!("transfer of {id}: {e}"));
                        }
                        Err(_) => {
                            part.status = "failed".into();
                            part.error = Some(format!(
                                "transfer of {id}: timed out: not done within {} s",
                                limit.as_secs()
                            ));
                        }
                    }
                }
                Outcome::Failed(e) => part.error = Some(format!("capture: {e}")),
                Outcome::Timeout => {
                    part.error = Some(format!("capture: timed out: no answer within {} s", limit.as_secs()))
                }
            }
            if part.status != "ok" {
                tracing::warn!(host = %part.host, status = %part.status, error = ?part.error, "cluster capture: host not in the set");
            }
            part
        });
        let parts = futures_util::future::join_all(pulls).await;
        let set = BundleSet {
            id: new_set_id(),
            label: opts.label.clone(),
            annotations: opts.annotations.clone(),
            created,
            duration_ms: t0.elapsed().as_millis() as u64,
            hosts: parts,
        };
        let engine = Arc::clone(self);
        let record = set.clone();
        super::bundle_transfer::blocking(move || engine.record_set(&record)).await?;
        let ok = set.ok_hosts().count();
        tracing::info!(set_id = %set.id, hosts = set.hosts.len(), ok, ms = set.duration_ms, "captured bundle set");
        Ok(set)
    }

    fn record_set(&self, s: &BundleSet) -> Result<(), EngineError> {
        let annotations = serde_json::to_string(&s.annotations)
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        self.store.with_db(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO bundle_sets (id, label, annotations, created, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![s.id, s.label, annotations, s.created, s.duration_ms as i64],
            )?;
            for (i, h) in s.hosts.iter().enumerate() {
                tx.execute(
                    "INSERT INTO bundle_set_hosts
                     (set_id, position, host, url, bundle_id, status, error, bytes, containers, ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    rusqlite::params![
                        s.id,
                        i as i64,
                        h.host,
                        h.url,
                        h.bundle,
                        h.status,
                        h.error,
                        h.bytes as i64,
                        h.containers as i64,
                        h.ms as i64
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })?;
        Ok(())
    }
}

/// What `POST /amber/v1/cluster/baselines` and `.../rollback` ask for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterBaselineOptions {
    /// Baseline name (create only; the path names it for rollback).
    pub name: String,
    /// Only these hosts (all of the inventory, or all of the baseline's).
    pub hosts: Vec<String>,
    /// Keep volume content too (create).
    pub volumes: bool,
    /// Remove containers created since (rollback).
    pub prune: bool,
    /// Per-host limit, seconds.
    pub timeout: Option<u64>,
}

/// Cluster baselines.
impl Engine {
    /// `cluster baseline create NAME`: every host creates its baseline NAME
    /// of all its containers, in parallel; the hosts are recorded here.
    pub async fn cluster_baseline_create(
        &self,
        opts: &ClusterBaselineOptions,
    ) -> Result<Vec<Value>, EngineError> {
        let name = opts.name.clone();
        if !super::spec::valid_name(&name) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid baseline name {name:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+"
            )));
        }
        let limit = timeout_of(opts.timeout)?;
        let hosts = self.cluster_targets(&opts.hosts)?;
        let path = format!("/amber/v1/baselines?name={}", enc(&name));
        let body = json!({"all": true, "volumes": opts.volumes, "label": format!("cluster baseline {name}")});
        let res = fan_out(self, &hosts, limit, |c, _| {
            let (path, body) = (path.clone(), body.clone());
            async move { post_json(&c, &path, &body).await }
        })
        .await;
        let rows = result_rows(&hosts, res, limit, |v| {
            (
                v["Containers"].as_array().map_or(0, |a| a.len()),
                v["Id"].as_str().map(String::from),
            )
        });
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.store.with_db(|conn| {
            let tx = conn.transaction()?;
            for r in &rows {
                tx.execute(
                    "INSERT OR REPLACE INTO cluster_baselines (name, host, status, error, created)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![
                        name,
                        r["Host"].as_str(),
                        r["Status"].as_str(),
                        r["Error"].as_str(),
                        now
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })?;
        Ok(rows)
    }

    /// `cluster rollback NAME`: every host of the baseline (that created
    /// its part) rolls back to it, in parallel.
    pub async fn cluster_rollback(
        &self,
        name: &str,
        opts: &ClusterBaselineOptions,
    ) -> Result<Vec<Value>, EngineError> {
        let limit = timeout_of(opts.timeout)?;
        let members: Vec<String> = self.store.with_db(|conn| {
            let mut stmt = conn.prepare(
                "SELECT host FROM cluster_baselines WHERE name = ?1 AND status = 'ok' ORDER BY host",
            )?;
            let v = stmt
                .query_map([name], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(v)
        })?;
        if members.is_empty() {
            return Err(EngineError::NotFound(format!(
                "no such cluster baseline: {name}"
            )));
        }
        for h in &opts.hosts {
            if !members.contains(h) {
                return Err(EngineError::InvalidArgument(format!(
                    "host {h} has no part of cluster baseline {name}"
                )));
            }
        }
        let wanted: Vec<String> = if opts.hosts.is_empty() {
            members
        } else {
            opts.hosts.clone()
        };
        let hosts = self.cluster_targets(&wanted)?;
        let path = format!(
            "/amber/v1/baselines/{}/rollback?prune={}",
            enc(name),
            if opts.prune { 1 } else { 0 }
        );
        let res = fan_out(self, &hosts, limit, |c, _| {
            let path = path.clone();
            async move { post_json(&c, &path, &json!({})).await }
        })
        .await;
        Ok(result_rows(&hosts, res, limit, |v| {
            let n = |k: &str| v[k].as_array().map_or(0, |a| a.len());
            (
                n("Reset") + n("Restored"),
                v["Bundle"].as_str().map(String::from),
            )
        }))
    }
}

/// One row per host: `Host`, `Status`, `Count`, `Bundle`, `Ms`, `Error`,
/// and the host's whole answer as `Result`.
fn result_rows(
    hosts: &[HostRecord],
    res: Vec<(Outcome<Value>, u64)>,
    limit: Duration,
    summarize: impl Fn(&Value) -> (usize, Option<String>),
) -> Vec<Value> {
    hosts
        .iter()
        .zip(res)
        .map(|(h, (out, ms))| {
            let mut row = json!({"Host": h.name, "Status": out.status(), "Ms": ms});
            match out {
                Outcome::Ok(v) => {
                    let (n, bundle) = summarize(&v);
                    row["Count"] = json!(n);
                    row["Bundle"] = json!(bundle);
                    row["Result"] = v;
                }
                Outcome::Failed(e) => row["Error"] = json!(e),
                Outcome::Timeout => {
                    row["Error"] =
                        json!(format!("timed out: no answer within {} s", limit.as_secs()))
                }
            }
            row
        })
        .collect()
}
