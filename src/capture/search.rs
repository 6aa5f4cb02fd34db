//! `bundle search`: FTS5 over file paths (one row per path and bundle) and
//! log chunks (one contentless row per container and chunk, holding the
//! chunk's raw JSON lines). A chunk hit is narrowed to its matching lines by
//! reading the chunk back.

use std::collections::HashMap;

use rusqlite::params;
use serde_json::{json, Value};

use super::{log_lines, CaptureError};
use crate::store::Store;
use crate::types::Digest;

/// A chunk that matched, with the bundles (newest first) holding it.
struct ChunkHit {
    container: String,
    digest: String,
    bundles: Vec<(String, String, String)>,
}

/// Full-text search over captured log lines and file paths. A log line
/// held by several bundles is one hit naming the newest (and listing all).
pub fn search(
    store: &Store,
    text: &str,
    bundle: Option<&str>,
    container: Option<&str>,
    limit: usize,
) -> Result<Vec<Value>, CaptureError> {
    super::index::index_pending_logs(store)?;
    // A phrase query: the user's words in order, quotes doubled (FTS5 syntax).
    let query = format!("\"{}\"", text.replace('"', "\"\""));
    let (chunks, paths) = store.with_db(|conn| {
        let mut stmt = conn.prepare(
            "SELECT c.name, i.digest, b.id, b.created, b.label
             FROM bundle_log_text t
             JOIN bundle_log_index i ON i.id = t.rowid
             JOIN bundle_log_chunks l ON l.container_id = i.container_id AND l.digest = i.digest
             JOIN bundle_containers c ON c.bundle_id = l.bundle_id AND c.container_id = l.container_id
             JOIN bundles b ON b.id = l.bundle_id
             WHERE bundle_log_text MATCH ?1
               AND (?2 IS NULL OR b.id = ?2) AND (?3 IS NULL OR c.name = ?3)
             ORDER BY t.rowid, b.created DESC",
        )?;
        let mut chunks: Vec<ChunkHit> = Vec::new();
        let mut rows = stmt.query(params![query, bundle, container])?;
        while let Some(r) = rows.next()? {
            let (name, digest): (String, String) = (r.get(0)?, r.get(1)?);
            let b = (r.get(2)?, r.get(3)?, r.get(4)?);
            match chunks.last_mut() {
                Some(h) if h.container == name && h.digest == digest => {
                    if !h.bundles.iter().any(|x| x.0 == b.0) {
                        h.bundles.push(b)
                    }
                }
                _ => chunks.push(ChunkHit {
                    container: name,
                    digest,
                    bundles: vec![b],
                }),
            }
        }
        let mut stmt = conn.prepare(
            "SELECT t.text, c.name, b.id, b.created, b.label
             FROM bundle_text t
             JOIN bundle_containers c ON c.bundle_id = t.bundle_id AND c.container_id = t.container_id
             JOIN bundles b ON b.id = t.bundle_id
             WHERE bundle_text MATCH ?1
               AND (?2 IS NULL OR b.id = ?2) AND (?3 IS NULL OR c.name = ?3)
             ORDER BY b.created DESC, t.rowid LIMIT ?4",
        )?;
        let paths = stmt
            .query_map(params![query, bundle, container, limit as i64], |r| {
                Ok(json!({
                    "kind": "path", "text": r.get::<_, String>(0)?, "time": "",
                    "container": r.get::<_, String>(1)?, "bundle": r.get::<_, String>(2)?,
                    "bundles": [r.get::<_, String>(2)?],
                    "captured": r.get::<_, String>(3)?, "label": r.get::<_, String>(4)?,
                }))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((chunks, paths))
    })?;
    let mut hits = log_hits(store, text, chunks, limit)?;
    hits.extend(paths);
    Ok(hits)
}

/// The matching lines of the matching chunks, one hit per line (the same
/// line is in a chunk of every capture whose last chunk held it).
fn log_hits(
    store: &Store,
    text: &str,
    mut chunks: Vec<ChunkHit>,
    limit: usize,
) -> Result<Vec<Value>, CaptureError> {
    // Newest bundle first.
    chunks.sort_by(|a, b| b.bundles[0].1.cmp(&a.bundles[0].1));
    let words = words(text);
    let mut hits: Vec<Value> = Vec::new();
    let mut by_line: HashMap<(String, String, String), usize> = HashMap::new();
    for ch in chunks {
        let digest: Digest = ch.digest.parse().map_err(|_| {
            CaptureError::Invalid(format!("bad digest {:?} in the bundle index", ch.digest))
        })?;
        for line in log_lines(&store.read_blob(&digest)?) {
            let have = self::words(&line.text);
            if !words.iter().all(|w| have.contains(w)) {
                continue;
            }
            let key = (ch.container.clone(), line.time.clone(), line.text.clone());
            let ids: Vec<&String> = ch.bundles.iter().map(|b| &b.0).collect();
            if let Some(&i) = by_line.get(&key) {
                if let Some(a) = hits[i]["bundles"].as_array_mut() {
                    for id in ids {
                        if !a.iter().any(|x| x == id) {
                            a.push(json!(id));
                        }
                    }
                }
                continue;
            }
            if hits.len() >= limit {
                continue;
            }
            let (id, created, label) = &ch.bundles[0];
            by_line.insert(key, hits.len());
            hits.push(json!({
                "kind": "log", "text": line.text, "time": line.time, "container": ch.container,
                "bundle": id, "bundles": ids, "captured": created, "label": label,
            }));
        }
    }
    Ok(hits)
}

/// Lowercase alphanumeric words, as FTS5's default tokenizer splits text.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_the_tokenizer() {
        assert_eq!(words("Started-WEB ok!"), ["started", "web", "ok"]);
        assert!(words("--").is_empty());
    }
}
