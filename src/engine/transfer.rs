//! `save` and `load`: which images a list of names means (Docker's rules),
//! then the store's archive writer and reader.

use std::io::{Read, Write};

use super::{Engine, EngineError};
use crate::store::{LoadReport, SaveImage, SaveOptions, SavePlan};
use crate::types::Reference;

impl Engine {
    /// Plan `GET /images/get?names=...`: a name with a tag (or an ID) saves
    /// that image under that tag (none for an ID); a repository without a
    /// tag saves every tag of it, as `docker save busybox` does.
    pub fn plan_save(&self, names: &[String], opts: &SaveOptions) -> Result<SavePlan, EngineError> {
        if names.is_empty() {
            return Err(EngineError::InvalidArgument(
                "no image to save: give at least one name".into(),
            ));
        }
        let mut images: Vec<SaveImage> = Vec::new();
        let add = |images: &mut Vec<SaveImage>, id, tag: Option<Reference>| {
            let pos = match images.iter().position(|i| i.id == id) {
                Some(p) => p,
                None => {
                    images.push(SaveImage { id, tags: vec![] });
                    images.len() - 1
                }
            };
            if let Some(t) = tag {
                if !images[pos].tags.contains(&t) {
                    images[pos].tags.push(t);
                }
            }
        };
        for name in names {
            let untagged = Reference::parse_name_only(name)
                .ok()
                .filter(|r| r.tag().is_none() && r.digest().is_none());
            if let Some(repo) = untagged {
                let mut any = false;
                for rec in self.store.list_images()? {
                    for t in &rec.tags {
                        let Ok(r) = Reference::parse(t) else { continue };
                        if r.domain() == repo.domain() && r.path() == repo.path() {
                            add(&mut images, rec.id.clone(), Some(r));
                            any = true;
                        }
                    }
                }
                if any {
                    continue;
                }
            }
            let id = self.store.resolve_image(name)?;
            let tag = Reference::parse(name)
                .ok()
                .filter(|r| {
                    r.digest().is_none()
                        && self.store.resolve_image(&r.familiar()).ok() == Some(id.clone())
                })
                .filter(|_| !looks_like_id(name, &id));
            add(&mut images, id, tag);
        }
        Ok(self.store.plan_save(&images, opts)?)
    }

    /// Stream a planned archive.
    pub fn write_save<W: Write>(&self, plan: &SavePlan, out: W) -> Result<(), EngineError> {
        Ok(self.store.write_save(plan, out)?)
    }

    /// `POST /images/load`. The new layers are unpacked in the background
    /// once their verified tars are stored (see `store::unpack`).
    pub fn load_images<R: Read + Send + 'static>(
        &self,
        input: R,
    ) -> Result<LoadReport, EngineError> {
        let report = self.store.load(input)?;
        self.unpack_in_background(report.layers_added.clone());
        Ok(report)
    }

    /// Unpack pending layers on a thread of their own; a consumer that
    /// needs one first waits for it (`Store::ensure_unpacked`).
    pub(super) fn unpack_in_background(&self, layers: Vec<crate::types::Digest>) {
        if layers.is_empty() {
            return;
        }
        let store = self.store.clone();
        std::thread::spawn(move || {
            for id in layers {
                if let Err(e) = store.ensure_unpacked(&id) {
                    tracing::error!(digest = %id, error = %e, "failed to unpack a loaded layer");
                }
            }
        });
    }
}

/// Whether `name` designates the image by its ID (full or a prefix).
fn looks_like_id(name: &str, id: &crate::types::Digest) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    !hex.is_empty() && id.hex().starts_with(hex)
}
