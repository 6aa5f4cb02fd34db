//! Authentication: htpasswd files with bcrypt entries (HTTP Basic) or a
//! file of static bearer tokens, checked before every request.
//!
//! With tokens, the `WWW-Authenticate: Bearer realm=...` challenge points at
//! this server's `/token` endpoint, which hands a token back to a client
//! that presents it as the password of Basic credentials. That is Docker's
//! token flow (distribution `docs/spec/auth/token.md`), so `docker login`,
//! podman and skopeo work with `--password TOKEN`; curl can send
//! `Authorization: Bearer TOKEN` directly.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::error::RegistryError;
use crate::registry::distribution::ErrorCode;

/// The realm named in Basic challenges.
pub const REALM: &str = "amber-registry";

/// A failure to load credentials.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read.
    #[error("failed to read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The token file holds no token.
    #[error("{}: no tokens in the file (one per line)", path.display())]
    NoTokens {
        /// The file.
        path: PathBuf,
    },
    /// A line is not a bcrypt htpasswd entry.
    #[error("{}:{line}: {what}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: String,
    },
}

/// How requests authenticate.
#[derive(Debug)]
pub enum Auth {
    /// Anyone may do anything.
    None,
    /// HTTP Basic against an htpasswd file.
    Htpasswd(Htpasswd),
    /// Static bearer tokens.
    Tokens(Vec<String>),
}

/// Users and bcrypt hashes of an htpasswd file.
#[derive(Debug)]
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// sha256 of `user\0password` pairs that bcrypt already accepted: Docker
    /// clients send Basic credentials on every request and a bcrypt check
    /// costs tens of milliseconds.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Htpasswd {
    /// Parse htpasswd content: `user:$2y$...` lines (what `htpasswd -B`
    /// writes); blank lines and `#` comments are skipped.
    pub fn parse(path: &Path, content: &str) -> Result<Htpasswd, AuthError> {
        let mut users = HashMap::new();
        for (i, line) in content.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |what: &str| AuthError::Invalid {
                path: path.to_path_buf(),
                line: i + 1,
                what: what.to_string(),
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| invalid("expected user:hash"))?;
            if user.is_empty() {
                return Err(invalid("empty user name"));
            }
            if !["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
                return Err(invalid(
                    "only bcrypt entries are supported (create them with htpasswd -B)",
                ));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Whether `user` / `password` match an entry.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let key: [u8; 32] = Sha256::new_with_prefix(format!("{user}\0{password}"))
            .finalize()
            .into();
        if self.verified.lock().is_ok_and(|v| v.contains(&key)) {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            if let Ok(mut v) = self.verified.lock() {
                v.insert(key);
            }
        }
        ok
    }
}

impl Auth {
    /// Load an htpasswd file.
    pub fn htpasswd(path: &Path) -> Result<Auth, AuthError> {
        let content = read(path)?;
        Ok(Auth::Htpasswd(Htpasswd::parse(path, &content)?))
    }

    /// Load a token file: one token per line, blank lines and `#` comments skipped.
    pub fn tokens(path: &Path) -> Result<Auth, AuthError> {
        let content = read(path)?;
        let tokens: Vec<String> = content
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
        if tokens.is_empty() {
            return Err(AuthError::NoTokens {
                path: path.to_path_buf(),
            });
        }
        Ok(Auth::Tokens(tokens))
    }

    /// Check a request's credentials. `token_realm` is the URL of the
    /// `/token` endpoint for the Bearer challenge.
    pub async fn check(
        self: &std::sync::Arc<Self>,
        headers: &HeaderMap,
        token_realm: &str,
    ) -> Result<(), RegistryError> {
        let authz = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match &**self {
            Auth::None => Ok(()),
            Auth::Htpasswd(_) => {
                if let Some((user, password)) = authz.as_deref().and_then(parse_basic) {
                    let me = self.clone();
                    let ok = tokio::task::spawn_blocking(move || match &*me {
                        Auth::Htpasswd(h) => h.verify(&user, &password),
                        _ => false,
                    })
                    .await?;
                    if ok {
                        return Ok(());
                    }
                }
                Err(challenge(format!("Basic realm=\"{REALM}\"")))
            }
            Auth::Tokens(_) => {
                let bearer = authz.as_deref().and_then(|a| strip_scheme(a, "Bearer"));
                if bearer.is_some_and(|t| self.token_valid(t.trim())) {
                    return Ok(());
                }
                Err(challenge(format!(
                    "Bearer realm=\"{token_realm}\",service=\"{REALM}\""
                )))
            }
        }
    }

    /// Whether this server hands out bearer tokens at `/token`.
    pub fn has_tokens(&self) -> bool {
        matches!(self, Auth::Tokens(_))
    }

    /// Whether `token` is one of the static tokens (constant time per token).
    pub fn token_valid(&self, token: &str) -> bool {
        let Auth::Tokens(tokens) = self else {
            return false;
        };
        tokens.iter().fold(false, |found, t| {
            found | ct_eq(t.as_bytes(), token.as_bytes())
        })
    }

    /// The token endpoint: a static token presented as the password of
    /// Basic credentials is handed back as a bearer token.
    pub fn issue_token(&self, headers: &HeaderMap) -> Result<serde_json::Value, RegistryError> {
        let basic = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_basic);
        match basic {
            Some((_, token)) if self.token_valid(&token) => {
                Ok(serde_json::json!({ "token": token, "access_token": token }))
            }
            _ => Err(RegistryError::new(ErrorCode::Unauthorized)
                .message("a valid token is required as the password")
                .header(header::WWW_AUTHENTICATE, format!("Basic realm=\"{REALM}\""))),
        }
    }
}

fn challenge(value: String) -> RegistryError {
    RegistryError::new(ErrorCode::Unauthorized)
        .status(StatusCode::UNAUTHORIZED)
        .header(header::WWW_AUTHENTICATE, value)
}

fn read(path: &Path) -> Result<String, AuthError> {
    std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(value: &str) -> Option<(String, String)> {
    let encoded = strip_scheme(value, "Basic")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The credentials after an auth scheme, which is case-insensitive (RFC 9110 §11.1).
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_bcrypt_only() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let h = Htpasswd::parse(Path::new("f"), &format!("# c\n\nalice:{hash}\n")).unwrap();
        assert!(h.verify("alice", "secret"));
        assert!(h.verify("alice", "secret"), "cached");
        assert!(!h.verify("alice", "wrong"));
        assert!(!h.verify("bob", "secret"));
        let err = Htpasswd::parse(Path::new("f"), "bob:{SHA}abc").unwrap_err();
        assert!(err.to_string().contains("htpasswd -B"), "{err}");
    }

    #[test]
    fn basic_header() {
        assert_eq!(
            parse_basic("Basic YWxpY2U6czpz"),
            Some(("alice".into(), "s:s".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(
            parse_basic("basic YWxpY2U6czpz"),
            Some(("alice".into(), "s:s".into()))
        );
        assert_eq!(parse_basic("Basic !!"), None);
    }

    #[test]
    fn tokens_compare() {
        let a = Auth::Tokens(vec!["abc".into(), "xyz".into()]);
        assert!(a.token_valid("xyz"));
        assert!(!a.token_valid("xy"));
        assert!(!a.token_valid(""));
    }
}
