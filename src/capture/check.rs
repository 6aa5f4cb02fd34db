//! The bundle part of `amber system check`: every bundle's manifest loads,
//! every blob it names (file lists, file, log and core chunks) is indexed as
//! the bundle's, and no bundle blob is left referenced by no bundle.

use std::collections::{BTreeSet, HashMap};

use super::manifest::{CHUNK_MEDIA_TYPE, FILES_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use super::{index, read, CaptureError};
use crate::store::Store;
use crate::types::Digest;

/// Problems found, one line each.
pub fn check(store: &Store) -> Result<Vec<String>, CaptureError> {
    let mut problems = Vec::new();
    let mut blobs_of: HashMap<String, BTreeSet<String>> = HashMap::new();
    let rows: Vec<(String, String)> = store.with_db(|conn| {
        let mut stmt = conn.prepare("SELECT bundle_id, digest FROM bundle_blobs")?;
        let v = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(v)
    })?;
    for (b, d) in rows {
        blobs_of.entry(b).or_default().insert(d);
    }
    for b in index::list(store)? {
        let mine = blobs_of.remove(&b.id).unwrap_or_default();
        if !mine.contains(&b.manifest) {
            problems.push(format!(
                "bundle {}: its manifest is not among its blobs",
                b.id
            ));
        }
        let m = match read::manifest(store, &b.id) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("bundle {}: {e}", b.id));
                continue;
            }
        };
        for c in &m.containers {
            let mut named: Vec<&Digest> = vec![&c.files];
            named.extend(&c.log.chunks);
            named.extend(c.volumes.iter().filter_map(|v| v.files.as_ref()));
            named.extend(
                c.cores
                    .iter()
                    .flat_map(|k| &k.processes)
                    .flat_map(|d| &d.chunks),
            );
            let files = match super::volumes::stored_files(store, c) {
                Ok(f) => f,
                Err(e) => {
                    problems.push(format!("bundle {} container {}: {e}", b.id, c.name));
                    continue;
                }
            };
            for d in named
                .into_iter()
                .chain(files.iter().flat_map(|f| f.chunks.iter()))
            {
                if !mine.contains(&d.to_string()) {
                    problems.push(format!(
                        "bundle {} container {}: blob {d} is not indexed as the bundle's",
                        b.id, c.name
                    ));
                }
            }
        }
    }
    // Bundle blobs that no bundle references (a removal that lost its way).
    let orphans: Vec<String> = store.with_db(|conn| {
        let mut stmt = conn.prepare(
            "SELECT digest FROM blobs WHERE media_type IN (?1, ?2, ?3)
             AND digest NOT IN (SELECT digest FROM bundle_blobs)",
        )?;
        let v = stmt
            .query_map(
                [MANIFEST_MEDIA_TYPE, FILES_MEDIA_TYPE, CHUNK_MEDIA_TYPE],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        Ok(v)
    })?;
    for d in orphans {
        problems.push(format!("bundle blob {d} is referenced by no bundle"));
    }
    Ok(problems)
}
