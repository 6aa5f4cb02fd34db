//! The client's TLS: the system's CA bundle plus, per registry, the CAs in
//! `<certs.d>/<host:port>/*.crt` (Docker's `/etc/docker/certs.d` layout;
//! amber's is `/etc/amber/certs.d`, or `registry-certs-dir` in daemon.json).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::RegistryError;

/// Where Debian keeps the system's trusted CAs.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Default per-registry CA directory.
pub const DEFAULT_CERTS_DIR: &str = "/etc/amber/certs.d";

fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<usize, RegistryError> {
    let bad = |e: rustls::pki_types::pem::Error| {
        RegistryError::Invalid(format!("CA certificates in {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(bad)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let (added, _) = roots.add_parsable_certificates(certs);
    Ok(added)
}

/// The TLS configuration for talking to `host` (`host:port`).
pub fn client_config(certs_dir: &Path, host: &str) -> Result<Arc<ClientConfig>, RegistryError> {
    let mut roots = RootCertStore::empty();
    if Path::new(SYSTEM_BUNDLE).is_file() {
        add_pem_file(&mut roots, Path::new(SYSTEM_BUNDLE))?;
    }
    let dir: PathBuf = certs_dir.join(host);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "crt") {
                add_pem_file(&mut roots, &p)?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Invalid(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
