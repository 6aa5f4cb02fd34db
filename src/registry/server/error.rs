//! The one place that turns failures into the registry's error answers:
//! status, `{"errors":[{"code","message","detail"}]}` body, extra headers.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::storage::StorageError;
use crate::registry::distribution::{
    DigestProblem, ErrorBody, ErrorCode, ErrorInfo, API_VERSION, API_VERSION_HEADER,
};

/// An error answer of the registry.
#[derive(Debug)]
pub struct RegistryError {
    /// The spec's code.
    pub code: ErrorCode,
    /// Status, when not the code's usual one.
    pub status: Option<StatusCode>,
    /// Message (the code's description when empty).
    pub message: String,
    /// Details: the offending digest, name, range...
    pub detail: serde_json::Value,
    /// Extra headers (`WWW-Authenticate`, `Range`...).
    pub headers: Vec<(HeaderName, String)>,
}

impl RegistryError {
    /// An error with the code's message and status.
    pub fn new(code: ErrorCode) -> RegistryError {
        RegistryError {
            code,
            status: None,
            message: String::new(),
            detail: serde_json::Value::Null,
            headers: Vec::new(),
        }
    }

    /// Set the message.
    pub fn message(mut self, message: impl Into<String>) -> RegistryError {
        self.message = message.into();
        self
    }

    /// Set the detail to a string.
    pub fn detail(mut self, detail: impl ToString) -> RegistryError {
        self.detail = serde_json::Value::String(detail.to_string());
        self
    }

    /// Override the status.
    pub fn status(mut self, status: StatusCode) -> RegistryError {
        self.status = Some(status);
        self
    }

    /// Add a header.
    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> RegistryError {
        self.headers.push((name, value.into()));
        self
    }

    /// The error for a digest that failed to parse.
    pub fn bad_digest(input: &str, problem: DigestProblem) -> RegistryError {
        match problem {
            DigestProblem::Unsupported => RegistryError::new(ErrorCode::Unsupported)
                .status(StatusCode::BAD_REQUEST)
                .message("unsupported digest algorithm: only sha256 is supported"),
            DigestProblem::Invalid => {
                RegistryError::new(ErrorCode::DigestInvalid).message("invalid digest")
            }
        }
        .detail(input)
    }
}

impl From<StorageError> for RegistryError {
    fn from(e: StorageError) -> RegistryError {
        match &e {
            StorageError::DigestMismatch { expected, actual } => {
                RegistryError::new(ErrorCode::DigestInvalid)
                    .message(format!("content has digest {actual}, not {expected}"))
                    .detail(expected)
            }
            _ => RegistryError::new(ErrorCode::Unknown).message(chain(&e)),
        }
    }
}

impl From<tokio::task::JoinError> for RegistryError {
    fn from(e: tokio::task::JoinError) -> RegistryError {
        RegistryError::new(ErrorCode::Unknown).message(format!("internal task failed: {e}"))
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(e: std::io::Error) -> RegistryError {
        RegistryError::new(ErrorCode::Unknown).message(format!("i/o error: {e}"))
    }
}

/// An error with its source chain on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| self.code.status());
        if status.is_server_error() {
            tracing::error!(%status, code = %self.code, message = %self.message, "request failed");
        }
        let message = if self.message.is_empty() {
            self.code.message().to_string()
        } else {
            self.message
        };
        let body = ErrorBody {
            errors: vec![ErrorInfo {
                code: self.code,
                message,
                detail: self.detail,
            }],
        };
        let mut resp = (status, Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION));
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        resp
    }
}
