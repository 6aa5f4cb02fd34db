//! Image and tag records: indexing, lookup by name / ID / ID prefix,
//! tagging and removal with Docker's rules.

use rusqlite::{params, OptionalExtension};

use super::import::NewLayer;
use super::{blobs, db_digest, layers, now_rfc3339, Store, StoreError};
use crate::types::api::DeleteItem;
use crate::types::{Digest, Reference};

/// An image to index (its files already in place).
pub(crate) struct NewImage<'a> {
    pub id: &'a Digest,
    pub config_size: usize,
    pub manifest: &'a Digest,
    pub manifest_size: usize,
    pub layers: &'a [NewLayer],
    pub parent: Option<&'a Digest>,
    pub tag: Option<&'a Reference>,
    /// A container to re-base on this image (same transaction).
    pub rebase: Option<&'a str>,
}

/// What the store knows of one image.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// Config digest.
    pub id: Digest,
    /// OCI manifest digest.
    pub manifest: Digest,
    /// Parent image, for committed images.
    pub parent: Option<Digest>,
    /// Sum of layer sizes.
    pub size: i64,
    /// When the store got it (RFC 3339).
    pub created: String,
    /// When it was last tagged.
    pub last_tagged: Option<String>,
    /// Tags, familiar form, sorted.
    pub tags: Vec<String>,
    /// Layer diff IDs, bottom first.
    pub layers: Vec<Digest>,
}

/// Options of [`Store::remove_image`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoveOptions {
    /// Remove even when referenced by several repositories.
    pub force: bool,
}

const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

impl Store {
    pub(crate) fn index_image(&self, img: &NewImage<'_>) -> Result<(), StoreError> {
        let now = now_rfc3339();
        let size: u64 = img.layers.iter().map(|l| l.size).sum();
        let mut conn = self.db();
        let tx = conn.transaction()?;
        let put_blob = "INSERT OR IGNORE INTO blobs (digest, size, media_type, created) VALUES (?1, ?2, ?3, ?4)";
        tx.execute(
            put_blob,
            params![
                img.id.to_string(),
                img.config_size as i64,
                MEDIA_CONFIG,
                now
            ],
        )?;
        tx.execute(
            put_blob,
            params![
                img.manifest.to_string(),
                img.manifest_size as i64,
                MEDIA_MANIFEST,
                now
            ],
        )?;
        for l in img.layers {
            tx.execute(
                "INSERT OR IGNORE INTO layers (diff_id, size, created) VALUES (?1, ?2, ?3)",
                params![l.diff_id.to_string(), l.size as i64, now],
            )?;
        }
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO images (id, manifest, parent, size, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![img.id.to_string(), img.manifest.to_string(), img.parent.map(|p| p.to_string()), size as i64, now],
        )?;
        if inserted == 1 {
            for (i, l) in img.layers.iter().enumerate() {
                tx.execute(
                    "INSERT INTO image_layers (image_id, position, diff_id) VALUES (?1, ?2, ?3)",
                    params![img.id.to_string(), i as i64, l.diff_id.to_string()],
                )?;
            }
        }
        if let Some(tag) = img.tag {
            set_tag(&tx, tag, img.id, &now)?;
        }
        if let Some(c) = img.rebase {
            tx.execute(
                "UPDATE containers SET image_id = ?1 WHERE id = ?2",
                params![img.id.to_string(), c],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Resolve a name, tag, full ID or unique ID prefix to an image ID.
    pub fn resolve_image(&self, name: &str) -> Result<Digest, StoreError> {
        let conn = self.db();
        if let Ok(d) = name.parse::<Digest>() {
            return image_exists(&conn, &d)?.ok_or_else(|| StoreError::NoSuchImage(name.into()));
        }
        let parsed = Reference::parse(name);
        if let Ok(r) = &parsed {
            let id: Option<String> = conn
                .query_row(
                    "SELECT image_id FROM tags WHERE name = ?1",
                    [r.familiar()],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(id) = id {
                return db_digest(&id);
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        let is_hex = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if is_hex {
            let mut stmt = conn.prepare("SELECT id FROM images WHERE id LIKE ?1 LIMIT 2")?;
            let ids: Vec<String> = stmt
                .query_map([format!("sha256:{prefix}%")], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            match ids.len() {
                1 => return db_digest(&ids[0]),
                2 => {
                    return Err(StoreError::Ambiguous(format!(
                        "ambiguous image ID prefix {name:?}: it matches several images; give more digits"
                    )))
                }
                _ => {}
            }
        }
        match parsed {
            Ok(r) => Err(StoreError::NoSuchImage(r.familiar())),
            Err(_) if is_hex => Err(StoreError::NoSuchImage(name.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Every image, newest first.
    pub fn list_images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let ids: Vec<String> = {
            let conn = self.db();
            let mut stmt = conn.prepare("SELECT id FROM images ORDER BY created DESC, id")?;
            let ids = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids
        };
        ids.iter().map(|id| self.image(&db_digest(id)?)).collect()
    }

    /// IDs of the images whose parent is `parent` (the build cache's
    /// candidates), newest first.
    pub fn children(&self, parent: &Digest) -> Result<Vec<Digest>, StoreError> {
        let conn = self.db();
        let mut stmt =
            conn.prepare("SELECT id FROM images WHERE parent = ?1 ORDER BY created DESC, id")?;
        let ids: Vec<String> = stmt
            .query_map([parent.to_string()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.iter().map(|id| db_digest(id)).collect()
    }

    /// One image's record.
    pub fn image(&self, id: &Digest) -> Result<ImageRecord, StoreError> {
        let conn = self.db();
        let row = conn
            .query_row(
                "SELECT manifest, parent, size, created, last_tagged FROM images WHERE id = ?1",
                [id.to_string()],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                    ))
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::NoSuchImage(id.to_string()))?;
        let mut stmt = conn.prepare("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")?;
        let tags = stmt
            .query_map([id.to_string()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut stmt =
            conn.prepare("SELECT diff_id FROM image_layers WHERE image_id = ?1 ORDER BY position")?;
        let layer_ids: Vec<String> = stmt
            .query_map([id.to_string()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ImageRecord {
            id: id.clone(),
            manifest: db_digest(&row.0)?,
            parent: row.1.as_deref().map(db_digest).transpose()?,
            size: row.2,
            created: row.3,
            last_tagged: row.4,
            tags,
            layers: layer_ids
                .iter()
                .map(|s| db_digest(s))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The raw config JSON of an image (verified against its digest).
    pub fn image_config(&self, id: &Digest) -> Result<Vec<u8>, StoreError> {
        blobs::read(&self.root, id)
    }

    /// The directories of an image's layers, bottom first, unpacked (waiting
    /// for any deferred unpack): what a mount or a walk of the files needs.
    pub fn unpacked_layer_dirs(
        &self,
        rec: &ImageRecord,
    ) -> Result<Vec<std::path::PathBuf>, StoreError> {
        for d in &rec.layers {
            self.ensure_unpacked(d)?;
        }
        Ok(self.layer_dirs(rec))
    }

    /// The paths of an image's layer directories, bottom first, for display
    /// (they may still be unpacking: see [`Store::unpacked_layer_dirs`]).
    pub fn layer_dirs(&self, rec: &ImageRecord) -> Vec<std::path::PathBuf> {
        rec.layers
            .iter()
            .map(|d| layers::layer_dir(&self.root, d).join("diff"))
            .collect()
    }

    /// Give the image `source` (any name form) the tag `target`.
    pub fn tag(&self, source: &str, target: &str) -> Result<Reference, StoreError> {
        let id = self.resolve_image(source)?;
        let r = Reference::parse(target)?;
        if r.digest().is_some() {
            return Err(StoreError::Invalid(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        let mut conn = self.db();
        let tx = conn.transaction()?;
        set_tag(&tx, &r, &id, &now_rfc3339())?;
        tx.commit()?;
        Ok(r)
    }

    /// Remove a tag or an image, as `docker rmi` does: a tag name untags
    /// (and deletes the image when it was the last tag); an ID deletes the
    /// image with all its tags, refusing when tags of several repositories
    /// point at it unless forced.
    pub fn remove_image(
        &self,
        name: &str,
        opts: RemoveOptions,
    ) -> Result<Vec<DeleteItem>, StoreError> {
        let id = self.resolve_image(name)?;
        let rec = self.image(&id)?;
        let by_tag = Reference::parse(name)
            .ok()
            .map(|r| r.familiar())
            .filter(|t| rec.tags.contains(t));
        let untag: Vec<String> = match &by_tag {
            Some(t) if !opts.force || rec.tags.len() > 1 => vec![t.clone()],
            _ => {
                let repos: std::collections::BTreeSet<_> =
                    rec.tags.iter().map(|t| repo_of(t)).collect();
                if repos.len() > 1 && !opts.force {
                    return Err(StoreError::Conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        id.short()
                    )));
                }
                rec.tags.clone()
            }
        };
        let users = self.containers_using(&id)?;
        let last_tags_go = untag.len() == rec.tags.len();
        if last_tags_go && !users.is_empty() && !opts.force {
            let what = match &by_tag {
                Some(t) => format!("unable to remove repository reference \"{t}\""),
                None => format!("unable to delete {}", id.short()),
            };
            return Err(StoreError::Conflict(format!(
                "conflict: {what} (must force) - container {} is using its referenced image {}",
                &users[0][..12.min(users[0].len())],
                id.short()
            )));
        }
        // An image that containers use survives a forced removal, untagged.
        let delete_image = last_tags_go && users.is_empty();
        let mut out: Vec<DeleteItem> = untag
            .iter()
            .map(|t| DeleteItem {
                untagged: Some(t.clone()),
                deleted: None,
            })
            .collect();
        let freed = self.delete_rows(&id, &untag, delete_image)?;
        if delete_image {
            out.push(DeleteItem {
                untagged: None,
                deleted: Some(id.to_string()),
            });
            for layer in &freed {
                self.remove_layer_dir(layer)?;
                out.push(DeleteItem {
                    untagged: None,
                    deleted: Some(layer.to_string()),
                });
            }
            for blob in [&id, &rec.manifest] {
                let _ = std::fs::remove_file(blobs::blob_path(&self.root, blob));
            }
            tracing::info!(image_id = %id, "image removed");
        }
        Ok(out)
    }

    /// Delete tag rows, and the image's rows when asked; return the layers
    /// no image uses any more (their rows deleted, their dirs still there).
    fn delete_rows(
        &self,
        id: &Digest,
        tags: &[String],
        image: bool,
    ) -> Result<Vec<Digest>, StoreError> {
        let mut conn = self.db();
        let tx = conn.transaction()?;
        for t in tags {
            tx.execute("DELETE FROM tags WHERE name = ?1", [t])?;
        }
        let mut freed = Vec::new();
        if image {
            let manifest: String = tx.query_row(
                "SELECT manifest FROM images WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )?;
            let layer_ids: Vec<String> = {
                let mut stmt =
                    tx.prepare("SELECT DISTINCT diff_id FROM image_layers WHERE image_id = ?1")?;
                let v = stmt
                    .query_map([id.to_string()], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                v
            };
            tx.execute("DELETE FROM images WHERE id = ?1", [id.to_string()])?;
            tx.execute(
                "DELETE FROM blobs WHERE digest IN (?1, ?2)",
                [id.to_string(), manifest],
            )?;
            for l in layer_ids {
                let users: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM image_layers WHERE diff_id = ?1",
                    [&l],
                    |r| r.get(0),
                )?;
                if users == 0 {
                    tx.execute("DELETE FROM layers WHERE diff_id = ?1", [&l])?;
                    freed.push(db_digest(&l)?);
                }
            }
        }
        tx.commit()?;
        Ok(freed)
    }
}

fn set_tag(
    tx: &rusqlite::Transaction<'_>,
    tag: &Reference,
    id: &Digest,
    now: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO tags (name, image_id, created) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, created = excluded.created",
        params![tag.familiar(), id.to_string(), now],
    )?;
    tx.execute(
        "UPDATE images SET last_tagged = ?1 WHERE id = ?2",
        params![now, id.to_string()],
    )?;
    Ok(())
}

fn image_exists(conn: &rusqlite::Connection, d: &Digest) -> Result<Option<Digest>, StoreError> {
    let found: Option<String> = conn
        .query_row(
            "SELECT id FROM images WHERE id = ?1",
            [d.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(found.map(|_| d.clone()))
}

/// `repo:tag` → `repo` (a colon before a `/` is a registry port).
pub fn repo_of(tag: &str) -> &str {
    match tag.rfind(':') {
        Some(i) if !tag[i + 1..].contains('/') => &tag[..i],
        _ => tag,
    }
}
