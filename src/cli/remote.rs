//! The global flags of remote access (Docker's names) and how they turn
//! into a [`ClientAuth`] for the client or a TLS setup for the daemon.

use std::path::{Path, PathBuf};

use super::client::ClientAuth;

/// Environment: any value but empty, `0` or `false` means `--tlsverify`.
pub const ENV_TLS_VERIFY: &str = "AMBER_TLS_VERIFY";
/// Environment: a directory holding `ca.pem`, `cert.pem` and `key.pem`.
pub const ENV_CERT_PATH: &str = "AMBER_CERT_PATH";

/// `--tlsverify --tlscacert --tlscert --tlskey --token-file`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RemoteFlags {
    /// Use mutual TLS and verify the remote (also AMBER_TLS_VERIFY=1).
    #[arg(long, global = true)]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA [default: $AMBER_CERT_PATH/ca.pem, ~/.amber/ca.pem].
    #[arg(long, global = true, value_name = "FILE")]
    pub tlscacert: Option<PathBuf>,
    /// Path to the TLS certificate file [default: $AMBER_CERT_PATH/cert.pem].
    #[arg(long, global = true, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,
    /// Path to the TLS key file [default: $AMBER_CERT_PATH/key.pem].
    #[arg(long, global = true, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,
    /// Client: send the bearer token in FILE to a tcp:// daemon.
    #[arg(long, global = true, value_name = "FILE", env = "AMBER_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// The three PEM files of one side of a mutual TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA the peer's certificate must chain to.
    pub ca: PathBuf,
    /// Own certificate chain.
    pub cert: PathBuf,
    /// Own private key.
    pub key: PathBuf,
}

impl RemoteFlags {
    /// Whether TLS is asked for: `--tlsverify`, `AMBER_TLS_VERIFY`, or an
    /// explicit `--tlscacert/--tlscert/--tlskey`.
    pub fn wants_tls(&self) -> bool {
        self.tlsverify
            || env_true(std::env::var(ENV_TLS_VERIFY).ok().as_deref())
            || self.tlscacert.is_some()
            || self.tlscert.is_some()
            || self.tlskey.is_some()
    }

    /// The TLS files: the flags, else `$AMBER_CERT_PATH/{ca,cert,key}.pem`,
    /// else `~/.amber/{ca,cert,key}.pem` (Docker's DOCKER_CERT_PATH rule).
    pub fn tls_files(&self) -> TlsFiles {
        let dir = std::env::var_os(ENV_CERT_PATH)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(super::credentials::user_dir);
        let pick =
            |flag: &Option<PathBuf>, name: &str| flag.clone().unwrap_or_else(|| dir.join(name));
        TlsFiles {
            ca: pick(&self.tlscacert, "ca.pem"),
            cert: pick(&self.tlscert, "cert.pem"),
            key: pick(&self.tlskey, "key.pem"),
        }
    }

    /// The client's credentials: TLS if asked for, else the token file's
    /// token, else none.
    pub fn client_auth(&self) -> anyhow::Result<ClientAuth> {
        if self.wants_tls() {
            let f = self.tls_files();
            return Ok(ClientAuth::Tls {
                ca: f.ca,
                cert: f.cert,
                key: f.key,
            });
        }
        match &self.token_file {
            Some(path) => Ok(ClientAuth::Token(read_token(path)?)),
            None => Ok(ClientAuth::None),
        }
    }
}

fn env_true(v: Option<&str>) -> bool {
    matches!(v, Some(v) if !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The token in `path`: its first line, trimmed; never empty.
pub fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the token file {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        anyhow::bail!("the token file {} is empty", path.display());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values() {
        assert!(env_true(Some("1")) && env_true(Some("yes")));
        assert!(!env_true(Some("")) && !env_true(Some("0")) && !env_true(None));
        assert!(!env_true(Some("FALSE")));
    }

    #[test]
    fn flags_pick_files() {
        let f = RemoteFlags {
            tlscacert: Some("/x/ca".into()),
            ..Default::default()
        };
        assert!(f.wants_tls());
        let files = f.tls_files();
        assert_eq!(files.ca, PathBuf::from("/x/ca"));
        assert!(files.cert.ends_with("cert.pem") && files.key.ends_with("key.pem"));
    }
}
