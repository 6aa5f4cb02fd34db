//! Vocabulary of the distribution spec shared by server and client: error
//! codes and their HTTP statuses, manifest media types, repository name and
//! tag grammar, digest parsing.
//!
//! Spec: opencontainers/distribution-spec v1.1.1 `spec.md` ("Error Codes",
//! "Pulling manifests"); Docker's additions from distribution/distribution
//! `registry/api/errcode` and `registry/api/v2/errors.go`.

use std::fmt;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::types::Digest;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker foreign layer: its bytes live at `urls`, not in the registry.
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The manifest media types the server stores, image manifests first.
pub const MANIFEST_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
];

/// Whether `media_type` names an index (manifest list) rather than an image.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// The header every registry v2 answer carries (Docker clients check it on `/v2/`).
pub const API_VERSION_HEADER: &str = "Docker-Distribution-API-Version";
/// Its value.
pub const API_VERSION: &str = "registry/2.0";
/// Header with the digest of the content sent or stored.
pub const CONTENT_DIGEST_HEADER: &str = "Docker-Content-Digest";
/// Header with the id of a blob upload session.
pub const UPLOAD_UUID_HEADER: &str = "Docker-Upload-UUID";

/// An error code of the distribution spec (plus Docker's `RANGE_INVALID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Blob unknown to registry.
    BlobUnknown,
    /// Blob upload invalid.
    BlobUploadInvalid,
    /// Blob upload unknown to registry.
    BlobUploadUnknown,
    /// Provided digest did not match uploaded content.
    DigestInvalid,
    /// Manifest references a manifest or blob unknown to registry.
    ManifestBlobUnknown,
    /// Manifest invalid.
    ManifestInvalid,
    /// Manifest unknown to registry.
    ManifestUnknown,
    /// Invalid repository name.
    NameInvalid,
    /// Repository name not known to registry.
    NameUnknown,
    /// Provided length did not match content length (or exceeds a limit).
    SizeInvalid,
    /// Authentication required.
    Unauthorized,
    /// Requested access to the resource is denied.
    Denied,
    /// The operation is unsupported.
    Unsupported,
    /// Too many requests.
    Toomanyrequests,
    /// Invalid content range (Docker's, not in the OCI spec).
    RangeInvalid,
    /// Invalid `n` in a paginated listing (Docker's).
    PaginationNumberInvalid,
    /// A server-side failure (Docker's `UNKNOWN`, answered with 500).
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire, e.g. `BLOB_UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BlobUnknown => "BLOB_UNKNOWN",
            BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            DigestInvalid => "DIGEST_INVALID",
            ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ManifestInvalid => "MANIFEST_INVALID",
            ManifestUnknown => "MANIFEST_UNKNOWN",
            NameInvalid => "NAME_INVALID",
            NameUnknown => "NAME_UNKNOWN",
            SizeInvalid => "SIZE_INVALID",
            Unauthorized => "UNAUTHORIZED",
            Denied => "DENIED",
            Unsupported => "UNSUPPORTED",
            Toomanyrequests => "TOOMANYREQUESTS",
            RangeInvalid => "RANGE_INVALID",
            PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            Unknown => "UNKNOWN",
        }
    }

    /// The HTTP status Docker's registry answers the code with.
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            BlobUnknown | BlobUploadUnknown | ManifestUnknown | NameUnknown => {
                StatusCode::NOT_FOUND
            }
            BlobUploadInvalid
            | DigestInvalid
            | ManifestBlobUnknown
            | ManifestInvalid
            | NameInvalid
            | SizeInvalid
            | PaginationNumberInvalid => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            Denied => StatusCode::FORBIDDEN,
            Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Toomanyrequests => StatusCode::TOO_MANY_REQUESTS,
            RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The spec's one-line description of the code.
    pub fn message(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BlobUnknown => "blob unknown to registry",
            BlobUploadInvalid => "blob upload invalid",
            BlobUploadUnknown => "blob upload unknown to registry",
            DigestInvalid => "provided digest did not match uploaded content",
            ManifestBlobUnknown => "manifest references a manifest or blob unknown to registry",
            ManifestInvalid => "manifest invalid",
            ManifestUnknown => "manifest unknown to registry",
            NameInvalid => "invalid repository name",
            NameUnknown => "repository name not known to registry",
            SizeInvalid => "provided length did not match content length",
            Unauthorized => "authentication required",
            Denied => "requested access to the resource is denied",
            Unsupported => "the operation is unsupported",
            Toomanyrequests => "too many requests",
            RangeInvalid => "invalid content range",
            PaginationNumberInvalid => "invalid number of results requested",
            Unknown => "unknown error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of an error body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// The code, e.g. `BLOB_UNKNOWN`.
    pub code: ErrorCode,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// Unstructured details (the digest, the name...).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// The error body of a registry answer: `{"errors":[{"code":...}]}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The errors, at least one.
    pub errors: Vec<ErrorInfo>,
}

/// Longest repository name Docker's registry accepts (path length on disk).
pub const MAX_NAME_LEN: usize = 255;

/// Whether `name` is a repository name of the spec:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
/// This is what keeps `..`, empty components and anything starting with a
/// separator (so every path trick) out of the storage paths.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    let run = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && alnum(b[*i]) {
            *i += 1;
        }
        *i > start
    };
    if !run(&mut i) {
        return false;
    }
    while i < b.len() {
        // Separator: ".", "_", "__" or one or more "-".
        let sep = match b[i] {
            b'.' => 1,
            b'_' if b.get(i + 1) == Some(&b'_') => 2,
            b'_' => 1,
            b'-' => b[i..].iter().take_while(|&&x| x == b'-').count(),
            _ => return false,
        };
        i += sep;
        if !run(&mut i) {
            return false;
        }
    }
    true
}

/// Whether `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let ok = |x: &u8| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-');
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(ok)
}

/// Why a digest string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestProblem {
    /// Well-formed but not sha256 (e.g. sha512): answered with UNSUPPORTED.
    Unsupported,
    /// Not a digest at all: DIGEST_INVALID.
    Invalid,
}

/// Parse a digest of the spec's grammar, accepting only sha256.
pub fn parse_digest(s: &str) -> Result<Digest, DigestProblem> {
    if let Ok(d) = s.parse::<Digest>() {
        return Ok(d);
    }
    // algorithm ::= component ([+._-] component)*; encoded ::= [a-zA-Z0-9=_-]+
    let Some((alg, enc)) = s.split_once(':') else {
        return Err(DigestProblem::Invalid);
    };
    let alg_ok = !alg.is_empty()
        && alg.split(['+', '.', '_', '-']).all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit())
        });
    let enc_ok = !enc.is_empty()
        && enc
            .bytes()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'=' | b'_' | b'-'));
    if alg_ok && enc_ok && alg != "sha256" {
        Err(DigestProblem::Unsupported)
    } else {
        Err(DigestProblem::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_grammar() {
        for good in [
            "a",
            "busybox",
            "library/busybox",
            "a.b/c_d/e__f/g---h",
            "0x/1.2",
            "my-org/sub/repo9",
        ] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "..",
            "../etc",
            "a/../b",
            "a/./b",
            "/a",
            "a/",
            "a//b",
            "A",
            "a___b",
            "a_.b",
            "-a",
            "a-",
            "a.",
            "_manifests",
            "a/_layers",
            "a%2fb",
            "a b",
            &"a".repeat(256),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    proptest::proptest! {
        /// Whatever passes the name grammar joins onto a data directory
        /// as plain components only: no way out of it.
        #[test]
        fn valid_names_stay_inside_the_root(name in "[a-z0-9._/%-]{0,24}") {
            if valid_name(&name) {
                let path = std::path::Path::new("/data/repositories").join(&name);
                proptest::prop_assert!(path.starts_with("/data/repositories/"));
                for c in std::path::Path::new(&name).components() {
                    let plain = matches!(c, std::path::Component::Normal(s)
                        if !s.to_string_lossy().starts_with(['_', '.', '-']));
                    proptest::prop_assert!(plain, "{name}");
                }
                proptest::prop_assert!(!name.contains('%') && !name.contains("//"));
            }
        }

        #[test]
        fn digests_parse_or_refuse_without_panic(s in ".{0,80}") {
            let _ = parse_digest(&s);
            let _ = valid_tag(&s);
            let _ = valid_name(&s);
        }
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        for good in ["latest", "v1.0", "_x", "A-b.c_d", &"t".repeat(128)] {
            assert!(valid_tag(good), "{good}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "..", &"t".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn digests_sha256_only() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(parse_digest(&format!("sha256:{hex}")).is_ok());
        assert_eq!(
            parse_digest(&format!("sha512:{hex}{hex}")),
            Err(DigestProblem::Unsupported)
        );
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:xyz",
            "../x",
            ":abc",
            "sha256:../../",
        ] {
            assert_eq!(parse_digest(bad), Err(DigestProblem::Invalid), "{bad}");
        }
    }

    #[test]
    fn error_codes_serialize_as_on_the_wire() {
        let body = ErrorBody {
            errors: vec![ErrorInfo {
                code: ErrorCode::ManifestBlobUnknown,
                message: "m".into(),
                detail: serde_json::Value::Null,
            }],
        };
        let s = serde_json::to_string(&body).unwrap();
        assert_eq!(
            s,
            r#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"m"}]}"#
        );
        for code in [
            ErrorCode::RangeInvalid,
            ErrorCode::Toomanyrequests,
            ErrorCode::Denied,
        ] {
            let j = serde_json::to_string(&code).unwrap();
            assert_eq!(j, format!("\"{}\"", code.as_str()));
        }
    }
}
