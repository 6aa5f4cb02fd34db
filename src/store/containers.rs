//! Container records: name, image, creation spec (JSON, owned by the
//! engine), and the writable layer directories under `containers/<id>/`.

use std::fs;
use std::path::PathBuf;

use rusqlite::{params, OptionalExtension};

use super::{db_digest, layers, now_rfc3339, Store, StoreError};
use crate::types::Digest;

/// What the store keeps of a container.
#[derive(Debug, Clone)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// Unique name (without Docker's leading `/`).
    pub name: String,
    /// The image it was created from.
    pub image_id: Digest,
    /// The image as the user named it.
    pub image_ref: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// The engine's creation spec (JSON).
    pub spec: String,
    /// Restarts done by the restart policy.
    pub restart_count: i64,
    /// Stopped by `stop`/`kill` (for `unless-stopped`).
    pub stopped_by_user: bool,
}

/// A container to create.
#[derive(Debug, Clone)]
pub struct NewContainer<'a> {
    /// 64 hex digits.
    pub id: &'a str,
    /// Unique name.
    pub name: &'a str,
    /// Image.
    pub image_id: &'a Digest,
    /// The image as named.
    pub image_ref: &'a str,
    /// Engine spec JSON.
    pub spec: &'a str,
}

const COLUMNS: &str =
    "id, name, image_id, image_ref, created, spec, restart_count, stopped_by_user";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ContainerRecord, String)> {
    let image: String = r.get(2)?;
    Ok((
        ContainerRecord {
            id: r.get(0)?,
            name: r.get(1)?,
            image_id: Digest::of(b""),
            image_ref: r.get(3)?,
            created: r.get(4)?,
            spec: r.get(5)?,
            restart_count: r.get(6)?,
            stopped_by_user: r.get::<_, i64>(7)? != 0,
        },
        image,
    ))
}

fn finish((mut rec, image): (ContainerRecord, String)) -> Result<ContainerRecord, StoreError> {
    rec.image_id = db_digest(&image)?;
    Ok(rec)
}

impl Store {
    /// The directory of a container (runtime files, log, upper and work).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// Create the container's directories, then its row. A name already in
    /// use is a conflict naming the holder.
    pub fn create_container(&self, c: &NewContainer<'_>) -> Result<ContainerRecord, StoreError> {
        if let Some(holder) = self.container_by_name(c.name)? {
            return Err(name_conflict(c.name, &holder.id));
        }
        let dir = self.container_dir(c.id);
        for sub in ["upper", "work"] {
            fs::create_dir_all(dir.join(sub)).map_err(|source| StoreError::Io {
                op: "create container directory",
                path: dir.join(sub),
                source,
            })?;
        }
        let now = now_rfc3339();
        let conn = self.db();
        let inserted = conn.execute(
            &format!("INSERT INTO containers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0)"),
            params![
                c.id,
                c.name,
                c.image_id.to_string(),
                c.image_ref,
                now,
                c.spec
            ],
        );
        drop(conn);
        if let Err(e) = inserted {
            let _ = fs::remove_dir_all(&dir);
            return match self.container_by_name(c.name)? {
                Some(holder) => Err(name_conflict(c.name, &holder.id)),
                None => Err(e.into()),
            };
        }
        self.container(c.id)
    }

    /// One container by full ID.
    pub fn container(&self, id: &str) -> Result<ContainerRecord, StoreError> {
        let conn = self.db();
        let r = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?;
        r.map(finish)
            .transpose()?
            .ok_or_else(|| StoreError::NoSuchContainer(id.to_string()))
    }

    fn container_by_name(&self, name: &str) -> Result<Option<ContainerRecord>, StoreError> {
        let conn = self.db();
        let r = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM containers WHERE name = ?1"),
                [name],
                row,
            )
            .optional()?;
        r.map(finish).transpose()
    }

    /// Resolve a name (with or without `/`), full ID or unique ID prefix.
    pub fn resolve_container(&self, name_or_id: &str) -> Result<ContainerRecord, StoreError> {
        let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if name.is_empty() {
            return Err(StoreError::NoSuchContainer(name_or_id.to_string()));
        }
        if let Some(r) = self.container_by_name(name)? {
            return Ok(r);
        }
        let is_hex = name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if is_hex {
            let ids: Vec<String> = {
                let conn = self.db();
                let mut stmt =
                    conn.prepare("SELECT id FROM containers WHERE id LIKE ?1 LIMIT 2")?;
                let v = stmt
                    .query_map([format!("{name}%")], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                v
            };
            match ids.len() {
                1 => return self.container(&ids[0]),
                2 => {
                    return Err(StoreError::Ambiguous(format!(
                        "multiple containers found with provided prefix: {name}"
                    )))
                }
                _ => {}
            }
        }
        Err(StoreError::NoSuchContainer(name_or_id.to_string()))
    }

    /// Every container, newest first.
    pub fn list_containers(&self) -> Result<Vec<ContainerRecord>, StoreError> {
        let conn = self.db();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM containers ORDER BY created DESC, id"
        ))?;
        let rows: Vec<_> = stmt.query_map([], row)?.collect::<Result<_, _>>()?;
        rows.into_iter().map(finish).collect()
    }

    /// Containers created from an image.
    pub fn containers_using(&self, image: &Digest) -> Result<Vec<String>, StoreError> {
        let conn = self.db();
        let mut stmt = conn.prepare("SELECT id FROM containers WHERE image_id = ?1")?;
        let ids = stmt
            .query_map([image.to_string()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// Rename a container.
    pub fn rename_container(&self, id: &str, new_name: &str) -> Result<(), StoreError> {
        if let Some(holder) = self.container_by_name(new_name)? {
            return Err(name_conflict(new_name, &holder.id));
        }
        let conn = self.db();
        conn.execute(
            "UPDATE containers SET name = ?1 WHERE id = ?2",
            params![new_name, id],
        )?;
        Ok(())
    }

    /// Record restart-policy bookkeeping.
    pub fn set_container_restart(
        &self,
        id: &str,
        count: i64,
        stopped_by_user: bool,
    ) -> Result<(), StoreError> {
        let conn = self.db();
        conn.execute(
            "UPDATE containers SET restart_count = ?1, stopped_by_user = ?2 WHERE id = ?3",
            params![count, stopped_by_user as i64, id],
        )?;
        Ok(())
    }

    /// Delete the row, then the directory (hidden first, so a crash never
    /// leaves half a container visible).
    pub fn remove_container(&self, id: &str) -> Result<(), StoreError> {
        let conn = self.db();
        conn.execute("DELETE FROM containers WHERE id = ?1", [id])?;
        drop(conn);
        layers::remove_visible(&self.tmp, &self.container_dir(id))
    }
}

fn name_conflict(name: &str, holder: &str) -> StoreError {
    StoreError::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}
