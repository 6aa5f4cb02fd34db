//! Pull, push, login check and search: the registry client with the
//! engine's store, configuration and Docker's name rules.

use std::sync::Arc;

use super::{Engine, EngineError};
use crate::registry::client::{self, Credentials, Progress};
use crate::store::BlobCompression;
use crate::types::{Digest, Reference, DEFAULT_DOMAIN};

/// One search result, in Docker's shape.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchResult {
    /// Repository (with the registry host).
    pub name: String,
    /// Always empty: a registry's catalog has no descriptions.
    pub description: String,
    /// Always 0.
    pub star_count: u64,
    /// Always false.
    pub is_official: bool,
    /// Always false.
    pub is_automated: bool,
}

impl Engine {
    /// `POST /images/create?fromImage=NAME&tag=TAG`.
    pub async fn pull_image(
        &self,
        name: &str,
        creds: Option<Credentials>,
        progress: &Progress,
    ) -> Result<Digest, EngineError> {
        let r = Reference::parse(name).map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        Ok(client::pull(self.ctx(creds, progress), &r).await?)
    }

    /// `POST /images/{name}/push?tag=`.
    pub async fn push_image(
        &self,
        name: &str,
        compression: BlobCompression,
        creds: Option<Credentials>,
        progress: &Progress,
    ) -> Result<Digest, EngineError> {
        let r = Reference::parse(name).map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        let store = self.store.clone();
        let familiar = r.familiar();
        let id = tokio::task::spawn_blocking(move || store.resolve_image(&familiar))
            .await
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))?
            .map_err(|_| {
                EngineError::NotFound(format!(
                    "An image does not exist locally with the tag: {}",
                    r.familiar_name()
                ))
            })?;
        let pushed = client::push(self.ctx(creds, progress), &id, &r, compression).await?;
        Ok(pushed.digest)
    }

    /// `POST /auth`: check credentials against a registry.
    pub async fn check_login(&self, creds: Credentials) -> Result<(), EngineError> {
        let host = registry_host(&creds.serveraddress);
        let host = if host.is_empty() || host == DEFAULT_DOMAIN {
            "registry-1.docker.io".to_string()
        } else {
            host
        };
        let ep = client::Endpoint::new(&host, &host, "", &self.registry);
        let s = client::Session::new(ep, Some(creds), "pull", &self.registry)?;
        s.authenticate().await?;
        Ok(())
    }

    /// `GET /images/search?term=&limit=`: `HOST/TERM` searches that
    /// registry's catalog.
    pub async fn search(
        &self,
        term: &str,
        limit: usize,
        creds: Option<Credentials>,
    ) -> Result<Vec<SearchResult>, EngineError> {
        let (host, query) = match term.split_once('/') {
            Some((h, q)) if h.contains('.') || h.contains(':') || h == "localhost" => (h, q),
            _ => (DEFAULT_DOMAIN, term),
        };
        let names =
            client::search_catalog(host, query, limit.clamp(1, 100), creds, &self.registry).await?;
        Ok(names
            .into_iter()
            .map(|n| SearchResult {
                name: format!("{host}/{n}"),
                description: String::new(),
                star_count: 0,
                is_official: false,
                is_automated: false,
            })
            .collect())
    }

    fn ctx<'a>(&'a self, creds: Option<Credentials>, progress: &'a Progress) -> client::Ctx<'a> {
        client::Ctx {
            store: self.store.clone(),
            creds,
            cfg: &self.registry,
            seen: &self.seen_blobs,
            progress,
        }
    }

    /// The store, shared (for long transfers on other threads).
    pub fn shared_store(&self) -> Arc<crate::store::Store> {
        self.store.clone()
    }
}

/// `https://host:port/v1/` or `host:port` → `host:port`.
pub fn registry_host(addr: &str) -> String {
    let a = addr
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    a.split('/').next().unwrap_or(a).to_string()
}
