//! The one place that maps errors to HTTP status codes and Docker's
//! `{"message": ...}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::engine::EngineError;
use crate::runtime::RuntimeError;
use crate::store::StoreError;
use crate::types::api::ErrorBody;

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// One-line message.
    pub message: String,
}

impl ApiError {
    /// An error with an explicit status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::NOT_MODIFIED {
            return self.status.into_response();
        }
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, message = %self.message, "request failed");
        }
        (
            self.status,
            Json(ErrorBody {
                message: self.message,
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let status = match &e {
            StoreError::NoSuchImage(_)
            | StoreError::NoSuchContainer(_)
            | StoreError::NoSuchNetwork(_)
            | StoreError::NoSuchVolume(_) => StatusCode::NOT_FOUND,
            StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::Archive(crate::archive::ArchiveError::NotFound { .. }) => {
                StatusCode::NOT_FOUND
            }
            StoreError::Ambiguous(_)
            | StoreError::Reference(_)
            | StoreError::Archive(_)
            | StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::Locked(_)
            | StoreError::Corrupt(_)
            | StoreError::Io { .. }
            | StoreError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, error_chain(&e))
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::Store(s) => s.into(),
            EngineError::Runtime(r) => r.into(),
            EngineError::Archive(a) => StoreError::Archive(a).into(),
            EngineError::InvalidArgument(m) => ApiError::bad_request(m),
            EngineError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            EngineError::NotModified(m) => ApiError::new(StatusCode::NOT_MODIFIED, m),
            EngineError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
            EngineError::NotImplemented(m) => ApiError::new(StatusCode::NOT_IMPLEMENTED, m),
            EngineError::Registry(r) => {
                use crate::registry::client::RegistryError as R;
                let status = match &r {
                    R::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                    R::NotFound(_) => StatusCode::NOT_FOUND,
                    R::Invalid(_) => StatusCode::BAD_REQUEST,
                    R::Remote(_) => StatusCode::INTERNAL_SERVER_ERROR,
                    R::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                };
                ApiError::new(status, r.to_string())
            }
            EngineError::Net(n) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error_chain(&n))
            }
            EngineError::Remote(m) => ApiError::new(StatusCode::BAD_GATEWAY, m),
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> ApiError {
        let status = match &e {
            RuntimeError::StartFailed { .. } | RuntimeError::InvalidConfig(_) => {
                StatusCode::BAD_REQUEST
            }
            RuntimeError::WrongState { .. } => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &e {
            // Docker's wording, which the docker CLI maps to exit codes 126/127.
            RuntimeError::StartFailed { message, .. } => {
                format!("failed to create task for container: unable to start container process: {message}: unknown")
            }
            _ => error_chain(&e),
        };
        ApiError::new(status, message)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )
    }
}

/// The message with its source chain, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        src = s.source();
    }
    msg
}
