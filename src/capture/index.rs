//! The bundle index in SQLite (migration 4): bundles, their blobs,
//! containers, files, processes, and an FTS5 table over log lines and file
//! paths. Written in one transaction per bundle, after its blobs are durable.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;
use serde_json::Value;

use super::manifest::{FileEntry, Manifest};
use super::sink::BlobSink;
use super::CaptureError;
use crate::store::{Store, StoreError};
use crate::types::Digest;

/// One log line to index.
pub struct LogLine {
    /// RFC 3339 time.
    pub time: String,
    /// The text, without its newline.
    pub text: String,
}

/// What one container adds to the index besides its manifest entry.
pub struct IndexedContainer {
    /// Its file list.
    pub files: Vec<FileEntry>,
}

/// A row of `bundle ls`.
#[derive(Debug, Clone, Serialize)]
pub struct BundleSummary {
    /// Bundle ID.
    pub id: String,
    /// Label.
    pub label: String,
    /// Capture time.
    pub created: String,
    /// Number of containers.
    pub containers: u64,
    /// Bytes of all blobs the bundle references.
    pub size: u64,
    /// Bytes the capture added to the store.
    pub new_bytes: u64,
    /// Baseline name, when it is one.
    pub baseline: Option<String>,
    /// The manifest blob.
    pub manifest: String,
}

/// Index a complete bundle whose blobs (manifest included, in `sink`) are
/// already durable: one transaction, so it is visible only whole.
pub fn commit(
    store: &Store,
    manifest: &Manifest,
    manifest_digest: &Digest,
    sink: &BlobSink<'_>,
    containers: &[IndexedContainer],
    baseline: Option<&str>,
) -> Result<(), CaptureError> {
    let now = manifest.created.clone();
    store.with_db(|conn| {
        let tx = conn.transaction()?;
        for (d, (size, mt)) in &sink.blobs {
            tx.execute(
                "INSERT OR IGNORE INTO blobs (digest, size, media_type, created) VALUES (?1, ?2, ?3, ?4)",
                params![d.to_string(), *size as i64, mt, now],
            )?;
        }
        tx.execute(
            "INSERT INTO bundles (id, manifest, label, created, containers, size, new_bytes, baseline)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                manifest.id,
                manifest_digest.to_string(),
                manifest.label,
                manifest.created,
                manifest.containers.len() as i64,
                sink.size() as i64,
                sink.new_bytes as i64,
                baseline
            ],
        )?;
        for d in sink.blobs.keys() {
            tx.execute(
                "INSERT INTO bundle_blobs (bundle_id, digest) VALUES (?1, ?2)",
                params![manifest.id, d.to_string()],
            )?;
        }
        for (c, extra) in manifest.containers.iter().zip(containers) {
            index_container(&tx, &manifest.id, c, extra)?;
        }
        tx.commit()?;
        Ok(())
    })?;
    Ok(())
}

fn index_container(
    tx: &Transaction<'_>,
    bundle: &str,
    c: &super::ContainerCapture,
    extra: &IndexedContainer,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO bundle_containers (bundle_id, container_id, name, image_ref, image_id, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            bundle,
            c.id,
            c.name,
            c.image_ref,
            c.image_id.to_string(),
            c.status
        ],
    )?;
    let mut file = tx.prepare(
        "INSERT INTO bundle_files (bundle_id, container_id, path, kind, size, mode, digest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut text = tx.prepare(
        "INSERT INTO bundle_text (text, kind, bundle_id, container_id) VALUES (?1, 'path', ?2, ?3)",
    )?;
    for f in &extra.files {
        let path = format!("/{}", f.path);
        file.execute(params![
            bundle,
            c.id,
            path,
            f.kind,
            f.size as i64,
            f.mode,
            f.digest.as_ref().map(|d| d.to_string())
        ])?;
        text.execute(params![path, bundle, c.id])?;
    }
    index_log(tx, bundle, c)?;
    let mut proc_ = tx.prepare(
        "INSERT OR IGNORE INTO bundle_processes (bundle_id, container_id, pid, ns_pid, ppid, cmdline, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for p in &c.processes {
        let cmd: Vec<&str> = p["cmdline"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        proc_.execute(params![
            bundle,
            c.id,
            p["pid"].as_i64().unwrap_or(0),
            p["ns_pid"].as_i64(),
            p["ppid"].as_i64().unwrap_or(0),
            cmd.join(" "),
            p["state"].as_str().unwrap_or("")
        ])?;
    }
    Ok(())
}

/// A bundle's log chunks, in order; their full-text rows are added by
/// [`index_pending_logs`], after the bundle is visible, so a capture does
/// not wait for tokenizing its logs.
fn index_log(
    tx: &Transaction<'_>,
    bundle: &str,
    c: &super::ContainerCapture,
) -> Result<(), StoreError> {
    let mut chunk_row = tx.prepare(
        "INSERT INTO bundle_log_chunks (bundle_id, container_id, seq, digest) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (seq, d) in c.log.chunks.iter().enumerate() {
        chunk_row.execute(params![bundle, c.id, seq as i64, d.to_string()])?;
    }
    Ok(())
}

/// Serialises log indexers (a background one after each capture, and
/// `search`, which catches up before it queries).
static LOG_INDEX_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Add the full-text rows of every log chunk not indexed yet: one
/// contentless FTS row per (container, chunk) holding the chunk's raw JSON
/// lines (search re-reads the chunk to find the lines). Each chunk is one
/// small transaction, so the index stays usable meanwhile. Returns the
/// number of chunks indexed.
pub fn index_pending_logs(store: &Store) -> Result<usize, CaptureError> {
    let _guard = LOG_INDEX_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let pending: Vec<(String, String)> = store.with_db(|conn| {
        let mut stmt = conn.prepare(
            "SELECT DISTINCT l.container_id, l.digest FROM bundle_log_chunks l
             WHERE NOT EXISTS (SELECT 1 FROM bundle_log_index i
                               WHERE i.container_id = l.container_id AND i.digest = l.digest)",
        )?;
        let v = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(v)
    })?;
    let mut n = 0;
    for (container, digest) in pending {
        let d: Digest = digest.parse().map_err(|_| {
            CaptureError::Invalid(format!("bad digest {digest:?} in the bundle index"))
        })?;
        // Gone with a bundle removed meanwhile: nothing to index.
        let Ok(data) = store.read_blob(&d) else {
            continue;
        };
        let text = String::from_utf8_lossy(&data);
        store.with_db(|conn| {
            let tx = conn.transaction()?;
            let still: bool = tx
                .prepare("SELECT 1 FROM bundle_log_chunks WHERE container_id = ?1 AND digest = ?2")?
                .exists(params![container, digest])?;
            if still
                && tx.execute(
                    "INSERT OR IGNORE INTO bundle_log_index (container_id, digest) VALUES (?1, ?2)",
                    params![container, digest],
                )? == 1
            {
                tx.execute(
                    "INSERT INTO bundle_log_text (rowid, text) VALUES (?1, ?2)",
                    params![tx.last_insert_rowid(), text],
                )?;
                n += 1;
            }
            tx.commit()?;
            Ok(())
        })?;
    }
    Ok(n)
}

/// The manifest of the newest bundle holding container `id`, for the stat
/// cache.
pub fn latest_manifest_of(
    store: &Store,
    container_id: &str,
) -> Result<Option<Digest>, CaptureError> {
    let row: Option<String> = store.with_db(|conn| {
        Ok(conn
            .query_row(
                "SELECT b.manifest FROM bundles b JOIN bundle_containers c ON c.bundle_id = b.id
                 WHERE c.container_id = ?1 ORDER BY b.created DESC LIMIT 1",
                [container_id],
                |r| r.get(0),
            )
            .optional()?)
    })?;
    row.map(|s| parse_digest(&s)).transpose()
}

fn parse_digest(s: &str) -> Result<Digest, CaptureError> {
    s.parse()
        .map_err(|_| CaptureError::Invalid(format!("bad digest {s:?} in the bundle index")))
}

/// Every bundle, newest first.
pub fn list(store: &Store) -> Result<Vec<BundleSummary>, CaptureError> {
    Ok(store.with_db(|conn| {
        let mut stmt = conn.prepare(
            "SELECT id, label, created, containers, size, new_bytes, baseline, manifest
             FROM bundles ORDER BY created DESC",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(BundleSummary {
                    id: r.get(0)?,
                    label: r.get(1)?,
                    created: r.get(2)?,
                    containers: r.get::<_, i64>(3)? as u64,
                    size: r.get::<_, i64>(4)? as u64,
                    new_bytes: r.get::<_, i64>(5)? as u64,
                    baseline: r.get(6)?,
                    manifest: r.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })?)
}

/// Resolve a bundle ID, unique prefix or baseline name.
pub fn resolve(store: &Store, name: &str) -> Result<BundleSummary, CaptureError> {
    let all = list(store)?;
    if let Some(b) = all
        .iter()
        .find(|b| b.id == name || b.baseline.as_deref() == Some(name))
    {
        return Ok(b.clone());
    }
    let matches: Vec<&BundleSummary> = all.iter().filter(|b| b.id.starts_with(name)).collect();
    match matches.as_slice() {
        [one] if !name.is_empty() => Ok((*one).clone()),
        [] | [_] => Err(CaptureError::NotFound(format!("no such bundle: {name}"))),
        _ => Err(CaptureError::Invalid(format!(
            "bundle ID prefix {name} is ambiguous"
        ))),
    }
}

/// Remove a bundle and every blob only it referenced: rows in one
/// transaction, files afterwards. Returns the bytes freed.
pub fn remove(store: &Store, id: &str) -> Result<u64, CaptureError> {
    let freed: Vec<(Digest, u64)> = store.with_db(|conn| {
        let tx = conn.transaction()?;
        let mine: Vec<String> = {
            let mut stmt = tx.prepare("SELECT digest FROM bundle_blobs WHERE bundle_id = ?1")?;
            let v = stmt
                .query_map([id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            v
        };
        tx.execute("DELETE FROM bundle_text WHERE bundle_id = ?1", [id])?;
        tx.execute("DELETE FROM bundles WHERE id = ?1", [id])?;
        // Log chunks no remaining bundle holds for their container.
        let gone: Vec<i64> = {
            let mut stmt = tx.prepare(
                "SELECT id FROM bundle_log_index i WHERE NOT EXISTS (
                    SELECT 1 FROM bundle_log_chunks l
                    WHERE l.container_id = i.container_id AND l.digest = i.digest)",
            )?;
            let v = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            v
        };
        for rowid in gone {
            tx.execute("DELETE FROM bundle_log_text WHERE rowid = ?1", [rowid])?;
            tx.execute("DELETE FROM bundle_log_index WHERE id = ?1", [rowid])?;
        }
        let mut freed = Vec::new();
        for d in mine {
            let used: i64 = tx.query_row(
                "SELECT (SELECT COUNT(*) FROM bundle_blobs WHERE digest = ?1)
                      + (SELECT COUNT(*) FROM images WHERE id = ?1 OR manifest = ?1)
                      + (SELECT COUNT(*) FROM bundles WHERE manifest = ?1)",
                [&d],
                |r| r.get(0),
            )?;
            if used == 0 {
                let size: i64 =
                    tx.query_row("SELECT size FROM blobs WHERE digest = ?1", [&d], |r| {
                        r.get(0)
                    })?;
                tx.execute("DELETE FROM blobs WHERE digest = ?1", [&d])?;
                let digest = d.parse::<Digest>().map_err(|_| {
                    StoreError::Corrupt(format!("bad digest {d:?} in the bundle index"))
                })?;
                freed.push((digest, size as u64));
            }
        }
        tx.commit()?;
        Ok(freed)
    })?;
    let digests: Vec<Digest> = freed.iter().map(|(d, _)| d.clone()).collect();
    store.remove_blob_files(&digests);
    Ok(freed.iter().map(|(_, s)| s).sum())
}
