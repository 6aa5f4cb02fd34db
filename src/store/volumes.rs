//! Volume rows and their directories: `volumes/<name>/_data` (Docker's
//! layout). The row is written after the directory exists; removal deletes
//! the row, then hides the directory in `tmp/` before deleting it.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use rusqlite::{params, OptionalExtension};

use super::{layers, now_rfc3339, Store, StoreError};

/// A volume as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRecord {
    /// Unique name (64 hex digits for anonymous volumes).
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// User labels.
    pub labels: BTreeMap<String, String>,
    /// Made for an image VOLUME or a `-v /path` without a name.
    pub anonymous: bool,
}

const COLUMNS: &str = "name, driver, created, labels, anonymous";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VolumeRecord> {
    let labels: String = r.get(3)?;
    Ok(VolumeRecord {
        name: r.get(0)?,
        driver: r.get(1)?,
        created: r.get(2)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        anonymous: r.get::<_, i64>(4)? != 0,
    })
}

impl Store {
    /// The directory holding a volume (`_data` is its content).
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.root.join("volumes").join(name)
    }

    /// Create a volume, or return the existing one of that name (Docker's
    /// `volume create` of an existing name succeeds). The bool says whether
    /// it is new.
    pub fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(VolumeRecord, bool), StoreError> {
        if let Some(v) = self.volume(name)? {
            return Ok((v, false));
        }
        let data = self.volume_dir(name).join("_data");
        fs::create_dir_all(&data).map_err(|source| StoreError::Io {
            op: "create volume directory",
            path: data.clone(),
            source,
        })?;
        let conn = self.db();
        conn.execute(
            &format!("INSERT OR IGNORE INTO volumes ({COLUMNS}) VALUES (?1, 'local', ?2, ?3, ?4)"),
            params![
                name,
                now_rfc3339(),
                serde_json::to_string(labels).unwrap_or_else(|_| "{}".into()),
                anonymous as i64
            ],
        )?;
        drop(conn);
        let v = self
            .volume(name)?
            .ok_or_else(|| StoreError::NoSuchVolume(name.to_string()))?;
        Ok((v, true))
    }

    /// One volume by name.
    pub fn volume(&self, name: &str) -> Result<Option<VolumeRecord>, StoreError> {
        let conn = self.db();
        Ok(conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM volumes WHERE name = ?1"),
                [name],
                row,
            )
            .optional()?)
    }

    /// Every volume, by name.
    pub fn volumes(&self) -> Result<Vec<VolumeRecord>, StoreError> {
        let conn = self.db();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM volumes ORDER BY name"))?;
        let rows = stmt.query_map([], row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Volume directories without a row (a crash between the directory
    /// and the row) are removed at open.
    pub(crate) fn remove_orphan_volumes(&self) -> Result<(), StoreError> {
        let dir = self.root.join("volumes");
        let known: Vec<String> = self.volumes()?.into_iter().map(|v| v.name).collect();
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                tracing::info!(path = %e.path().display(), "removing orphaned volume directory");
                layers::remove_visible(&self.tmp, &e.path())?;
            }
        }
        Ok(())
    }

    /// Delete the row, then the directory.
    pub fn remove_volume(&self, name: &str) -> Result<(), StoreError> {
        let conn = self.db();
        conn.execute("DELETE FROM volumes WHERE name = ?1", [name])?;
        drop(conn);
        layers::remove_visible(&self.tmp, &self.volume_dir(name))
    }
}
