//! The API's error type: every refusal has an HTTP status, a stable machine-readable code
//! and a human sentence. Codes are documented in `docs/API.md` and never change meaning.
//!
//! Internal failures answer with a generic message; their cause goes to the log only.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A refusal or failure, as the API reports it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The client certificate carries no usable congvan identity.
    #[error("the client certificate carries no usable identity: {0}")]
    IdentityInvalid(String),
    /// The certificate names an organisation or auditor role the directory does not know.
    #[error("{0} is not in the organisation directory")]
    UnknownIdentity(String),
    /// No such route.
    #[error("no such endpoint: {0}")]
    RouteNotFound(String),
    /// The route exists but not with this method.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// A server-side failure; the detail is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status and the stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::IdentityInvalid(_) => (StatusCode::FORBIDDEN, "identity_invalid"),
            ApiError::UnknownIdentity(_) => (StatusCode::FORBIDDEN, "identity_unknown"),
            ApiError::RouteNotFound(_) => (StatusCode::NOT_FOUND, "route_not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The JSON body of an error response.
#[derive(Serialize, serde::Deserialize, Debug)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The detail of an error response.
#[derive(Serialize, serde::Deserialize, Debug)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error");
                "the server failed to handle the request; it has been logged".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
            },
        };
        (status, Json(body)).into_response()
    }
}
